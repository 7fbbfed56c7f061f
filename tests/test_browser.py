"""The web pages in a real browser: Debian's chromium, headless, driven by Playwright.

Set ADSEARCH_SCREENSHOTS_DIR=docs/screenshots to refresh the README's screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (scripts/test.sh installs it as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    target = os.environ.get("ADSEARCH_SCREENSHOTS_DIR")
    if target:
        page.wait_for_load_state("networkidle")
        page.evaluate("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def readable(truth):
    return [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]]


def first_card_file(page) -> str:
    return page.locator("ol.grid li.card").first.locator("a.thumb-link").get_attribute("href")


LABELS = {"tesseract": "Tesseract", "ppocr": "PP-OCR"}


def check_reader_marks(page, payload: dict) -> None:
    """Each word box names its reader (class, data-reader, tooltip; ppocr dashed, tesseract solid), and the
    caption and the details table name the readers with their word counts."""
    readers = payload["ocr_readers"]
    boxes = page.eval_on_selector_all(
        "svg.boxes rect.box",
        """els => els.map(e => ({reader: e.dataset.reader, classes: [...e.classList],
            title: e.querySelector('title').textContent, dash: getComputedStyle(e).strokeDasharray,
            tabindex: e.getAttribute('tabindex')}))""",
    )
    assert len(boxes) == len(payload["ocr_words"])
    for box, word in zip(boxes, payload["ocr_words"], strict=True):
        assert box["reader"] == word.get("reader", "tesseract") and box["reader"] in readers
        assert f"reader-{box['reader']}" in box["classes"] and box["tabindex"] == "0"
        assert box["title"].endswith(f"%, {box['reader']})")
        assert (box["dash"] not in ("none", "")) == (box["reader"] == "ppocr"), box
    caption = page.locator("figure.ad-view figcaption").inner_text()
    assert caption.startswith((f"{len(boxes)} words read: ", f"{len(boxes)} word read: "))
    for reader in readers:
        count = sum(b["reader"] == reader for b in boxes)
        assert payload["ocr_words_by_reader"][reader] == count
        assert f"{count} by {LABELS[reader]}" in caption
    assert "confidence" in caption and "Outline = reader" in caption
    row = page.locator("tr", has=page.locator("th", has_text="OCR readers")).locator("td").inner_text()
    assert row == ", ".join(LABELS[r] for r in readers)
    page.focus("svg.boxes rect.box")  # the boxes stay reachable from the keyboard
    assert page.evaluate("document.activeElement.dataset.reader") == boxes[0]["reader"]
    page.evaluate("document.activeElement.blur()")


def test_search_updates_in_place_shares_the_url_and_opens_the_ad_with_word_boxes(
    page, api_server, truth, api_library
):
    ad = readable(truth)[0]
    page.goto(api_server + "/")
    page.evaluate("window.__stayed = true")  # survives only if results load without a page reload
    page.fill("#q", ad["headline"])
    page.click("button[type=submit] >> text=Search")
    page.wait_for_selector("ol.grid li.card")
    assert page.evaluate("window.__stayed === true")
    assert "q=" in page.url and "hybrid" in page.url
    first = page.locator("ol.grid li.card").first
    assert ad["brand"].split()[0] in first.locator(".snippet").inner_text() or ad["headline"].split()[0] in (
        first.locator(".snippet").inner_text()
    )
    assert first.locator("mark").count() >= 1  # matched words highlighted
    expected_id = api_library.search(ad["headline"], k=1).hits[0].id
    assert first_card_file(page) == f"/images/{expected_id}"
    screenshot(page, "search")

    first.locator("a.open").click()
    page.wait_for_selector("svg.boxes rect.box")
    words = page.eval_on_selector_all("svg.boxes rect.box", "els => els.map(e => e.dataset.word)")
    assert ad["brand"].split()[0] in words
    check_reader_marks(page, api_library.get(expected_id))
    assert page.locator("pre.ocr").first.inner_text().startswith(ad["brand"])
    assert page.locator("h2", has_text="More like this").count() == 1
    screenshot(page, "image")

    page.goto(api_server + page.url.split(api_server, 1)[1])  # the page's own URL works on its own
    shared = page.context.new_page()
    shared.goto(f"{api_server}/?q={ad['headline'].replace(' ', '+')}&mode=hybrid")
    assert first_card_file(shared) == f"/images/{expected_id}"  # a shared URL shows the same results


def test_upload_an_image_and_find_it(page, api_server, truth, sample_dir):
    ad = next(a for a in truth if not a["text"])
    page.goto(api_server + "/")
    page.set_input_files("#file", str(sample_dir / ad["file"]))
    page.click("text=Find similar ads")
    page.wait_for_selector("ol.grid li.card")
    page.locator("ol.grid li.card").first.locator("a.open").click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == Path(ad["file"]).name


def test_keyboard_only_search(page, api_server, truth):
    ad = readable(truth)[1]
    page.goto(api_server + "/")
    assert page.evaluate("document.activeElement.id") == "q"  # the query box has focus on arrival
    page.keyboard.type(ad["brand"])
    page.keyboard.press("Enter")
    page.wait_for_selector("ol.grid li.card")
    for _ in range(40):  # tab forward to the first result's link, then open it with Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('li.card') !== null"):
            break
    assert page.evaluate("document.activeElement.tagName") == "A"
    page.keyboard.press("Enter")
    page.wait_for_selector("svg.boxes")
    assert "/images/" in page.url and page.locator("h1").inner_text() == Path(ad["file"]).name


def test_stats_page_and_phone_width(browser, api_server, truth, api_library):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    image_id = api_library.search(readable(truth)[0]["headline"], k=1).hits[0].id
    for path in ("/", f"/?q={readable(truth)[0]['brand']}", f"/images/{image_id}", "/stats"):
        page.goto(api_server + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path  # no sideways scrolling
    tiles = page.locator("ul.tiles li").all_inner_texts()
    assert any(t.startswith(str(len(truth))) for t in tiles)
    assert page.locator("figure.chart svg").count() == 5
    context.close()
    wide = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    wide.goto(api_server + "/stats")
    screenshot(wide, "stats")
    wide.context.close()
