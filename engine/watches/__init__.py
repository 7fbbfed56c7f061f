"""Watches: saved searches checked against every newly ingested ad, their matches kept durably
(book.py), what "matches" means and the check after each ingest (check.py), an Atom feed per watch
(feed.py)."""

from engine.watches.book import DEFAULT_TOP, MAX_TOP, Watch, WatchBook, check_name
from engine.watches.check import check_watches, is_exact

__all__ = ["DEFAULT_TOP", "MAX_TOP", "Watch", "WatchBook", "check_name", "check_watches", "is_exact"]
