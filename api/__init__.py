"""HTTP face of adsearch: JSON API and server-rendered pages over engine.library.Library."""

from api.app import create_app

__all__ = ["create_app"]
