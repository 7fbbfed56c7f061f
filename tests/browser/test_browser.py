"""The web pages in a real browser: Debian's chromium, headless, driven by Playwright.

Set ADSEARCH_SCREENSHOTS_DIR=docs/screenshots to refresh the README's screenshots.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import groupby
from pathlib import Path

import httpx
import pytest
from helpers import ARGS, CHROMIUM, png_bytes

from engine.search import SearchRequest
from engine.store import point_id


def screenshot(page, name: str) -> None:
    target = os.environ.get("ADSEARCH_SCREENSHOTS_DIR")
    if target:
        page.wait_for_load_state("networkidle")
        # lazy images below the fold never decode until scrolled to: load them all, and wait 5 s at most
        page.evaluate(
            """Promise.race([new Promise(done => setTimeout(done, 5000)), Promise.all([...document.images]
                .map(i => { i.loading = "eager"; return i.decode().catch(() => null); }))])"""
        )
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
    expected_id = api_library.search(SearchRequest(q=ad["headline"], k=1)).hits[0].id
    assert first_card_file(page) == f"/images/{expected_id}"
    fusion = api_library.search(SearchRequest(q=ad["headline"], k=1)).fusion  # how it weighed the channels
    shown = page.locator(".summary .fusion")
    assert shown.get_attribute("data-rule") == fusion["rule"] and fusion["reason"] in shown.inner_text()
    assert all(f"{c}={w}" in shown.inner_text() for c, w in fusion["weights"].items())
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
    image_id = api_library.search(SearchRequest(q=readable(truth)[0]["headline"], k=1)).hits[0].id
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


# ---------------------------------------------------------------------- uploads and the guards (issue #12)


def library_state(http: httpx.Client) -> tuple[int, list[str]]:
    """What a write would change: the number of images and the upload jobs."""
    jobs = http.get("/api/jobs", params={"limit": 200}).json()["jobs"]
    return http.get("/health").json()["images"], [j["id"] for j in jobs]


@contextmanager
def static_site(pages: dict[str, str]):
    """Another origin: Python's http.server on a free 127.0.0.1 port serving `pages` (path -> HTML)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            html = pages.get(self.path.split("?", 1)[0])
            if html is None:
                self.send_error(404)
                return
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def rebinding_browser(pw):
    """Chromium where evil.example resolves to 127.0.0.1: what a DNS-rebinding attacker arranges."""
    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rules])
    yield browser
    browser.close()


# A page on another site: on load it posts a PNG to the app with fetch (no-cors: the answer is opaque
# but the request is sent), tries to DELETE a stored image, then submits a multipart form carrying the
# same PNG (built with DataTransfer), which CORS does not stop.
ATTACK_PAGE = """<!doctype html><meta charset="utf-8"><title>You won a prize</title>
<form id="form" method="post" enctype="multipart/form-data" action="APP/api/images?wait=true">
  <input id="files" name="files" type="file">
</form>
<script>
const app = "APP";
const bytes = Uint8Array.from(atob("PNG"), c => c.charCodeAt(0));
const file = name => new File([bytes], name, {type: "image/png"});
(async () => {
  const report = {};
  const body = new FormData();
  body.append("files", file("fetched.png"));
  try {
    report.post = (await fetch(app + "/api/images?wait=true", {method: "POST", mode: "no-cors", body})).type;
  } catch (e) { report.post = "error: " + e; }
  try {
    report.delete = (await fetch(app + "/api/images/IMAGE_ID", {method: "DELETE"})).status;
  } catch (e) { report.delete = "error: " + e; }
  console.log("attack " + JSON.stringify(report));
  const chosen = new DataTransfer();
  chosen.items.add(file("form.png"));
  document.getElementById("files").files = chosen.files;
  document.getElementById("form").submit();
})();
</script>
"""


@pytest.mark.parametrize("attacker_host", ["127.0.0.1", "evil.example"])  # same site (other port), cross-site
def test_a_page_on_another_origin_cannot_upload_or_delete(
    rebinding_browser, api_server, truth, attacker_host
):
    data = png_bytes()
    with httpx.Client(base_url=api_server, timeout=60) as http:
        hits = http.get("/api/search", params={"q": readable(truth)[0]["headline"], "k": 1}).json()["hits"]
        image_id = hits[0]["id"]  # a stored image the page tries to delete
        stored = http.get(f"/api/images/{image_id}").json()
        before = library_state(http)
        html = (ATTACK_PAGE.replace("APP", api_server).replace("PNG", base64.b64encode(data).decode())
                .replace("IMAGE_ID", image_id))  # fmt: skip
        context = rebinding_browser.new_context()
        page = context.new_page()
        sent, answers, console = [], [], []

        def on_response(response):
            if response.url.startswith(api_server):
                sent.append(response.request)
                answers.append((response.request.method, response.status))

        page.on("response", on_response)
        page.on("console", lambda m: console.append(m.text))
        try:
            with static_site({"/": html}) as port:
                page.goto(f"http://{attacker_host}:{port}/")
                page.wait_for_url(f"{api_server}/api/images?wait=true", timeout=30_000)  # the form's answer
                page.wait_for_load_state()
            text = page.inner_text("body")
            assert "cross-site request refused" in text
            expected = (
                "Sec-Fetch-Site is same-site"
                if attacker_host == "127.0.0.1"
                else "Sec-Fetch-Site is cross-site"
            )
            assert expected in text
            posts = [(r, status) for r, (_, status) in zip(sent, answers, strict=True) if r.method == "POST"]
            assert sorted(r.resource_type for r, _ in posts) == ["document", "fetch"]  # both reached the app
            assert [status for _, status in posts] == [403, 403]
            form = next(r for r, _ in posts if r.resource_type == "document").all_headers()
            assert form["origin"] == f"http://{attacker_host}:{port}"
            assert form["sec-fetch-site"] == ("same-site" if attacker_host == "127.0.0.1" else "cross-site")
            report = json.loads(next(m for m in console if m.startswith("attack ")).removeprefix("attack "))
            assert report["post"] == "opaque" and report["delete"] != 200  # CORS preflight or 403
            assert ("DELETE", 200) not in answers
        finally:
            context.close()
        assert library_state(http) == before  # no image, no upload job
        assert http.get(f"/api/images/{image_id}").json() == stored
        assert http.get(f"/api/images/{point_id(hashlib.sha256(data).hexdigest())}").status_code == 404


def test_a_rebound_name_gets_400_in_the_browser(rebinding_browser, api_server):
    port = api_server.rsplit(":", 1)[1]
    context = rebinding_browser.new_context()
    page = context.new_page()
    try:
        answer = page.goto(f"http://evil.example:{port}/")
        assert answer.status == 400
        assert "--allowed-hosts" in page.inner_text("body")
        # a script on the rebound page (same origin as far as the browser knows) cannot read the API
        read = page.evaluate("fetch('/api/stats').then(async r => [r.status, await r.text()])")
        assert read[0] == 400 and '"images"' not in read[1]
        assert page.goto(f"{api_server}/api/stats").status == 200  # the app's own name works
    finally:
        context.close()


WATCH_JOB = """() => {
  window.__marker = 1;
  window.__seen = [];
  const note = () => {
    const job = document.querySelector('#job');
    if (job) window.__seen.push([job.dataset.status, job.querySelector('progress') !== null]);
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def test_the_upload_page_follows_the_job_in_place(page, api_server, tmp_path):
    data = png_bytes()
    upload = tmp_path / "page-upload.png"
    upload.write_bytes(data)
    expected_id = point_id(hashlib.sha256(data).hexdigest())
    with httpx.Client(base_url=api_server, timeout=60) as http:
        images = http.get("/health").json()["images"]
        try:
            page.goto(api_server + "/upload")
            assert page.locator("#job").get_attribute("data-status") == ""
            page.evaluate(WATCH_JOB)
            page.set_input_files("#files", str(upload))
            page.click("form.upload button[type=submit]")
            page.wait_for_selector("#job[data-status=done]", timeout=60_000)
            assert page.evaluate("window.__marker") == 1  # no page reload: HTMX swapped the section
            assert page.url == api_server + "/upload"
            seen = page.evaluate("window.__seen")
            assert any(status in ("queued", "running") and progress for status, progress in seen), seen
            progress = page.locator("#job progress")
            assert progress.get_attribute("max") == "1" and progress.get_attribute("value") == "1"
            rows = page.locator("#job table.job-results tbody tr")
            assert rows.count() == 1
            cells = rows.first.locator("td").all_inner_texts()
            assert cells[:2] == ["page-upload.png", "ingested"]
            link = rows.first.locator("a")
            assert link.get_attribute("href") == f"/images/{expected_id}"
            assert http.get("/health").json()["images"] == images + 1
            link.click()
            page.wait_for_url(f"{api_server}/images/{expected_id}")
            assert page.locator("h1").inner_text() == f"{hashlib.sha256(data).hexdigest()}.png"
            page.wait_for_selector("svg.boxes")
        finally:
            http.delete(f"/api/images/{expected_id}")
        assert http.get(f"/api/images/{expected_id}").status_code == 404
        assert http.get("/health").json()["images"] == images


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"api_key": "s3cret"}, "wrong", "missing or wrong API key"),
        ({"max_upload_bytes": 100}, None, "larger than"),
    ],
)
def test_the_upload_page_says_why_an_upload_is_refused(
    page, api_server, api_library, tmp_path, overrides, key, message
):
    upload = tmp_path / "refused.png"
    upload.write_bytes(png_bytes())
    original = api_library.settings
    api_library.settings = original.with_overrides(**overrides)
    try:
        images = httpx.get(api_server + "/health").json()["images"]
        page.goto(api_server + "/upload")
        if key:
            page.fill("#api_key", key)
        page.set_input_files("#files", str(upload))
        with page.expect_response(
            lambda r: r.url == api_server + "/upload" and r.request.method == "POST"
        ) as answer:
            page.click("form.upload button[type=submit]")
        assert answer.value.status == 200  # htmx swaps only 2xx answers, so the page's own is 200
        assert message in answer.value.text()  # the server did render the reason into #job
        page.wait_for_selector("#job .error[role=alert]", timeout=5_000)
        assert message in page.locator("#job .error").inner_text()
        assert httpx.get(api_server + "/health").json()["images"] == images
        plain = httpx.post(  # a plain form post (no htmx) gets the status that says why
            api_server + "/upload", files={"files": ("refused.png", png_bytes())}, data={"api_key": key or ""}
        )
        assert plain.status_code in (401, 413) and message in plain.text
    finally:
        api_library.settings = original


# ---------------------------------------------------------------------- filters, facets, paging (issue #13)


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all("ol.grid li.card", "els => els.map(e => e.dataset.id)")


def wait_for_search(page, present: bool) -> None:
    """Until the URL has (or no longer has) a filter, after an in-place swap."""
    page.wait_for_function(f"location.search.includes('where=') === {str(present).lower()}")
    page.wait_for_load_state("networkidle")


def test_facets_add_and_remove_filters_in_place(page, api_server, api_library):
    page.goto(api_server + "/?q=sale&mode=hybrid")
    page.evaluate("window.__stayed = true")
    assert page.locator("ul.chips").count() == 0
    facet = page.locator("section.facet[data-field=format]")
    values = dict(zip(facet.locator("li").evaluate_all("els => els.map(e => e.dataset.value)"),
                      map(int, facet.locator(".count").all_inner_texts()), strict=True))  # fmt: skip
    assert values == {v["value"]: v["count"] for v in api_library.facets("format", [], 10)["values"]}
    assert "JPEG" in values and "PNG" in values
    facet.locator("li[data-value=JPEG] a.facet-value").click()
    wait_for_search(page, present=True)
    assert page.evaluate("window.__stayed === true")  # swapped in place, no reload
    assert "where=format%3DJPEG" in page.url and "q=sale" in page.url and "mode=hybrid" in page.url
    ids = card_ids(page)
    assert ids and all(api_library.get(i)["format"] == "JPEG" for i in ids)
    assert len(ids) == values["JPEG"]  # the search ranks every matching image
    assert page.locator("a.chip").all_inner_texts() == ["format=JPEG ×"]
    assert f"of {values['JPEG']} result" in page.locator(".summary").inner_text()
    active = page.locator("section.facet[data-field=format] .facet-value.active")
    assert active.inner_text() == "JPEG"  # the active value is no longer a link
    assert page.locator("section.facet[data-field=format] a.facet-value").count() == 0
    screenshot(page, "facets")

    page.locator("section.facet[data-field=format]").wait_for()
    page.fill("#q", "car")  # a new query keeps the filters
    page.click("button[type=submit] >> text=Search")
    page.wait_for_function("location.search.includes('q=car')")
    page.wait_for_load_state("networkidle")
    assert "where=format%3DJPEG" in page.url
    assert all(api_library.get(i)["format"] == "JPEG" for i in card_ids(page))

    page.locator("a.chip", has_text="format=JPEG").click()
    wait_for_search(page, present=False)
    assert page.evaluate("window.__stayed === true")
    assert page.locator("a.chip").count() == 0 and "q=car" in page.url
    formats = {api_library.get(i)["format"] for i in card_ids(page)}
    assert formats >= {"JPEG", "PNG"}


def test_browse_a_filter_without_a_query(page, api_server, api_library):
    page.goto(api_server + "/?where=has_text%3Dfalse")
    expected = api_library.search(SearchRequest(where=["has_text=false"], k=24))
    assert card_ids(page) == [h.id for h in expected.hits] and expected.total
    assert f"{expected.total} of {expected.total} result" in page.locator(".summary").inner_text()
    assert "browse" in page.locator(".summary").inner_text()
    assert page.locator("a.chip").all_inner_texts() == ["has_text=false ×"]
    assert page.locator(".score").count() == 0  # browsing has no scores


def test_next_and_previous_page_in_place(page, api_server, api_library):
    where, k = ["width>=1"], 5
    page.goto(api_server + f"/?q=sale&mode=hybrid&where=width%3E%3D1&k={k}")
    page.evaluate("window.__stayed = true")
    first = card_ids(page)
    total = api_library.search(SearchRequest(q="sale", where=where).deeper(k)).total
    assert len(first) == k and total > 2 * k
    summary = page.locator(".summary").inner_text()
    assert f"{k} of {total} results" in summary and "(1–5)" in summary
    assert page.locator("nav.pager a.prev").count() == 0

    page.click("nav.pager a.next")
    page.wait_for_function("location.search.includes('offset=5')")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__stayed === true")
    second = card_ids(page)
    assert second == [
        h.id for h in api_library.search(SearchRequest(q="sale", where=where, offset=k).deeper(k)).hits
    ]
    assert not set(first) & set(second)
    assert "(6–10)" in page.locator(".summary").inner_text()
    assert page.locator("ol.grid .rank").first.inner_text() == "#6"
    assert "k=5" in page.url and "where=width%3E%3D1" in page.url

    page.click("nav.pager a.prev")
    page.wait_for_function("!location.search.includes('offset=')")
    page.wait_for_load_state("networkidle")
    assert card_ids(page) == first and page.evaluate("window.__stayed === true")

    last = (total - 1) // k * k  # the last page has no "Next page"
    page.goto(api_server + f"/?q=sale&mode=hybrid&where=width%3E%3D1&k={k}&offset={last}")
    assert len(card_ids(page)) == total - last
    assert page.locator("nav.pager a.next").count() == 0 and page.locator("nav.pager a.prev").count() == 1


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("q=car&where=colour%3Dred", "unknown field 'colour'"),
        ("where=width%3E%3Dwide", "not a valid integer value for field width"),
        ("where=format%3E%3DPNG", "needs a number or date field"),
        ("q=car&" + "&".join(["where=width%3E%3D1"] * 21), "at most 20 filter clauses"),
    ],
)
def test_a_bad_filter_in_the_url_says_why(page, api_server, query, reason):
    answer = page.goto(api_server + "/?" + query)
    assert answer.status == 200
    assert reason in page.locator("#results .error[role=alert]").inner_text()
    assert page.locator("ol.grid").count() == 0


# ---------------------------------------------------------------------- diversity and feedback (issue #13)


def in_order(pairs) -> list[str]:
    """Ids in rank order, each run of equal (4-decimal) scores sorted by id: the engine orders ties
    arbitrarily, so two runs of one search may swap them."""
    return [i for _, run in groupby(pairs, key=lambda p: p[1]) for i in sorted(i for i, _ in run)]


def hit_ids(response) -> list[str]:
    return in_order((h.id, f"{h.score:.4f}") for h in response.hits)


def page_ids(page) -> list[str]:
    """The cards' ids as hit_ids gives them."""
    cards = page.eval_on_selector_all(
        "ol.grid li.card", "els => els.map(e => [e.dataset.id, e.querySelector('.score').textContent])"
    )
    return in_order(map(tuple, cards))


def wait_for_param(page, param: str, present: bool) -> None:
    """Until the URL has (or no longer has) `param` (e.g. 'negative='), after an in-place swap."""
    page.wait_for_function(f"location.search.includes({json.dumps(param)}) === {str(present).lower()}")
    page.wait_for_load_state("networkidle")


def file_name(api_library, image_id: str) -> str:
    return Path(api_library.get(image_id)["paths"][0]).name


def test_diverse_results_toggle_reranks_and_travels_with_the_links(page, api_server, api_library):
    q = "sale"
    plain = hit_ids(api_library.search(SearchRequest(q=q, k=24)))
    diverse = hit_ids(api_library.search(SearchRequest(q=q, k=24, diverse=True)))
    assert plain != diverse  # else the test could not tell the toggle did anything
    page.goto(api_server + f"/?q={q}&mode=hybrid")
    page.evaluate("window.__stayed = true")
    assert page_ids(page) == plain
    box = page.get_by_role("checkbox", name="Diverse results")
    assert not box.is_checked()
    box.focus()  # keyboard: Space toggles it, which re-runs the search at once
    with page.expect_request(lambda r: "diverse=1" in r.url and r.headers.get("hx-request") == "true"):
        page.keyboard.press("Space")
    wait_for_param(page, "diverse=1", present=True)
    assert page.evaluate("window.__stayed === true")  # swapped in place
    assert box.is_checked() and "q=sale" in page.url
    assert page_ids(page) == diverse
    assert "· diverse" in page.locator(".summary").inner_text()

    # kept by the facet links, the filter chips and the pager
    page.locator("section.facet[data-field=format] li[data-value=JPEG] a.facet-value").click()
    wait_for_search(page, present=True)
    assert "diverse=1" in page.url
    assert page_ids(page) == hit_ids(
        api_library.search(SearchRequest(q=q, where=["format=JPEG"], k=24, diverse=True))
    )
    page.locator("a.chip", has_text="format=JPEG").click()
    wait_for_search(page, present=False)
    assert "diverse=1" in page.url and page_ids(page) == diverse
    assert page.evaluate("window.__stayed === true") and box.is_checked()

    box.uncheck()  # off again: the plain ranking
    wait_for_param(page, "diverse=", present=False)
    assert page_ids(page) == plain and "diverse" not in page.locator(".summary").inner_text()

    shared = page.context.new_page()  # a shared URL: box ticked, same ranking, the pager keeps it
    shared.goto(api_server + f"/?q={q}&mode=hybrid&diverse=1&k=5")
    assert shared.get_by_role("checkbox", name="Diverse results").is_checked()
    assert page_ids(shared) == hit_ids(api_library.search(SearchRequest(q=q, k=5, diverse=True)))
    assert "diverse=1" in shared.locator("nav.pager a.next").get_attribute("href")
    shared.click("nav.pager a.next")
    wait_for_param(shared, "offset=5", present=True)
    assert page_ids(shared) == hit_ids(api_library.search(SearchRequest(q=q, k=5, offset=5, diverse=True)))


def test_not_this_drops_a_result_and_its_chip_brings_it_back(page, api_server, api_library):
    q = "car"
    before = hit_ids(api_library.search(SearchRequest(q=q, k=24)))
    first = before[0]
    expected = hit_ids(api_library.search(SearchRequest(q=q, k=24, negative=[first])))
    assert expected != [i for i in before if i != first]  # the engine re-ranks, not only hides it
    page.goto(api_server + f"/?q={q}&mode=hybrid")
    page.evaluate("window.__stayed = true")
    assert page_ids(page) == before
    assert page.locator("a.chip.example").count() == 0
    page.locator(f"li.card[data-id='{first}']").get_by_role("link", name="Not this: ad 1").click()
    wait_for_param(page, "negative=", present=True)
    assert page.evaluate("window.__stayed === true")
    assert f"negative={first}" in page.url and "positive=" not in page.url and "q=car" in page.url
    ids = page_ids(page)
    assert first not in ids and ids == expected
    chip = page.locator("ul.chips.examples a.chip.example.unlike")
    assert chip.count() == 1 and page.locator("a.chip.example.like").count() == 0
    assert chip.inner_text().strip() == f"Not: {file_name(api_library, first)} ×"
    assert chip.get_attribute("aria-label").startswith("Not: ")
    assert f"/api/images/{first}/thumbnail" in chip.locator("img").get_attribute("src")
    assert "not like 1 example" in page.locator(".summary").inner_text()

    shared = page.context.new_page()  # the URL alone shows the same view
    shared.goto(page.url)
    assert page_ids(shared) == expected and shared.locator("a.chip.example.unlike").count() == 1
    shared.close()

    page.fill("#q", "sedan")  # a new query keeps the example, as it keeps the filters
    page.click("button[type=submit] >> text=Search")
    wait_for_param(page, "q=sedan", present=True)
    assert f"negative={first}" in page.url
    assert page_ids(page) == hit_ids(api_library.search(SearchRequest(q="sedan", k=24, negative=[first])))
    page.fill("#q", q)
    page.click("button[type=submit] >> text=Search")
    wait_for_param(page, "q=car", present=True)

    chip.click()  # removing the chip restores the original ranking
    wait_for_param(page, "negative=", present=False)
    assert page.evaluate("window.__stayed === true")
    assert page_ids(page) == before and page_ids(page)[0] == first
    assert page.locator("ul.chips.examples").count() == 0


def test_more_like_this_from_the_keyboard_steers_the_search(page, api_server, api_library):
    q = "burger"
    before = hit_ids(api_library.search(SearchRequest(q=q, k=24)))
    liked = before[1]
    expected = hit_ids(api_library.search(SearchRequest(q=q, k=24, positive=[liked])))
    assert expected != [i for i in before if i != liked]
    page.goto(api_server + f"/?q={q}&mode=hybrid")
    page.evaluate("window.__stayed = true")
    page.focus(f"li.card[data-id='{liked}'] a.open")
    page.keyboard.press("Tab")  # the feedback links follow "Open ad 2" in the tab order
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "More like this: ad 2"
    page.keyboard.press("Enter")
    wait_for_param(page, "positive=", present=True)
    assert page.evaluate("window.__stayed === true")
    assert f"positive={liked}" in page.url and "negative=" not in page.url
    ids = page_ids(page)
    assert liked not in ids and ids == expected
    chip = page.locator("a.chip.example.like")
    assert chip.inner_text().strip() == f"Like: {file_name(api_library, liked)} ×"
    assert "more like 1 example" in page.locator(".summary").inner_text()

    # and "Not this" on another result: both examples steer the search, both in the URL
    top = page.locator("ol.grid li.card").first.get_attribute("data-id")
    page.locator(f"li.card[data-id='{top}']").get_by_role("link", name="Not this: ad 1").click()
    wait_for_param(page, "negative=", present=True)
    assert f"positive={liked}" in page.url and f"negative={top}" in page.url
    assert page_ids(page) == hit_ids(
        api_library.search(SearchRequest(q=q, k=24, positive=[liked], negative=[top]))
    )
    assert [c.split(":")[0] for c in page.locator("a.chip.example").all_inner_texts()] == ["Like", "Not"]

    chip.click()  # the "Like" chip goes; the "Not" one stays
    wait_for_param(page, "positive=", present=False)
    assert f"negative={top}" in page.url
    assert page_ids(page) == hit_ids(api_library.search(SearchRequest(q=q, k=24, negative=[top])))
    page.locator("a.chip.example.unlike").click()
    wait_for_param(page, "negative=", present=False)
    assert page_ids(page) == before and page.locator("a.chip.example").count() == 0


def test_more_like_this_is_capped_and_a_bad_example_says_why(page, api_server, api_library):
    ids = hit_ids(api_library.search(SearchRequest(q="car", k=24)))
    liked = ids[:20]  # 20 examples: the most a URL may carry, so no more "More like this"
    page.goto(api_server + "/?q=car&" + "&".join(f"positive={i}" for i in liked))
    assert page_ids(page) == hit_ids(api_library.search(SearchRequest(q="car", k=24, positive=liked)))
    assert page.locator("a.chip.example.like").count() == 20
    assert page.locator("li.card a.fb.like").count() == 0 and page.locator("li.card a.fb.unlike").count() > 0
    for query, reason in [
        ("q=car&negative=not-an-id", "not an image id in 'not this'"),
        ("q=car&" + "&".join(f"positive={i}" for i in ids[:21]), "at most 20 'more like this' examples"),
        ("q=car&positive=00000000-0000-0000-0000-000000000000", "no image with id"),
    ]:
        answer = page.goto(api_server + "/?" + query)
        assert answer.status == 200
        assert reason in page.locator("#results .error[role=alert]").inner_text()
        assert page.locator("ol.grid").count() == 0
    page.goto(api_server + f"/?where=has_text%3Dfalse&negative={ids[0]}")  # browsing: noted, no buttons
    assert any("need a text query" in n for n in page.locator("#results .note").all_inner_texts())
    assert page.locator("li.card").count() > 0 and page.locator("a.fb").count() == 0
    assert page.locator("a.chip.example.unlike").count() == 1  # still removable
