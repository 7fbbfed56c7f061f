"""An Atom feed (RFC 4287) of one watch's matches: a feed reader subscribes to it like any other.
Built with the standard library's ElementTree, which escapes every text it writes."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import quote
from xml.etree import ElementTree as ET

from engine.watches.book import Watch
from engine.watches.check import is_exact

ATOM = "http://www.w3.org/2005/Atom"
SUMMARY_CHARS = 300
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def atom_feed(watch: Watch, matches: list[dict], payloads: dict[str, dict], base_url: str) -> bytes:
    """The feed: one entry per match (newest first) with the ad's page, its thumbnail and the text
    read in it. `payloads` are the matched ads' payloads by id (a deleted ad has none: left out)."""
    ET.register_namespace("", ATOM)
    base = base_url.rstrip("/")
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", f"urn:adsearch:watch:{quote(watch.name)}")
    _text(feed, "title", f"adsearch watch: {watch.name}")
    _text(feed, "subtitle", describe(watch))
    _text(feed, "updated", matches[0]["found_at"] if matches else watch.created_at)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=f"{base}/watches/{quote(watch.name)}/feed.atom")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", href=f"{base}/watches")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "adsearch")
    for match in matches:
        if match["id"] in payloads:
            _entry(feed, watch, match, payloads[match["id"]], base)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def describe(watch: Watch) -> str:
    """One line saying what the watch matches."""
    what = " and ".join(filter(None, [f"'{watch.query}'" if watch.query else "", *watch.where]))
    if is_exact(watch):
        return f"new ads matching {what}"
    return f"new ads among the top {watch.top} for {what} ({watch.mode})"


def _entry(feed: ET.Element, watch: Watch, match: dict, payload: dict, base: str) -> None:
    image_id = match["id"]
    paths = payload.get("paths") or [image_id]
    text = (payload.get("ocr_text") or "").strip()
    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    _text(entry, "id", f"urn:adsearch:watch:{quote(watch.name)}:{image_id}")
    _text(entry, "title", PurePosixPath(paths[0]).name)
    _text(entry, "updated", match["found_at"])
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=f"{base}/images/{image_id}")
    thumbnail = f"{base}/api/images/{image_id}/thumbnail?size=256"
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="enclosure", type="image/jpeg", href=thumbnail)
    _text(entry, "summary", text[:SUMMARY_CHARS])
    html = f'<p><img src="{thumbnail}" alt=""></p><pre>{_escape(text)}</pre>'
    content = _text(entry, "content", html)
    content.set("type", "html")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = NOT_XML.sub("\ufffd", text)  # a control character read from a file is not XML
    return element


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
