"""Boards, the trend chart and downloads in a real browser (issue 23): an analyst saves ads to a board
from the search page, sees the board as a filter and a facet, charts it, asks for more like it, takes
an ad off; the search page charts a query with dates; the Download menu gives a CSV that Python's csv
module reads, with formula-looking cells neutralised.

The library is its own: ten sample ads with made-up campaign dates (`date`, one month apart) and a
brand that looks like a spreadsheet formula."""

from __future__ import annotations

import csv
import shutil
from urllib.parse import urlencode

import httpx
import pytest
from helpers import serve
from test_browser import screenshot

from api.app import create_app
from engine.ingest.metadata import load_metadata
from engine.library import Library
from engine.search import SearchRequest

FORMULA_BRAND = '=HYPERLINK("http://attacker.example","click")'
ADS = 10


@pytest.fixture(scope="module")
def dated(tmp_path_factory, settings, encoders, sample_dir, truth):
    """(base URL, library, the ads' truth rows) for ten readable sample ads dated a month apart."""
    folder = tmp_path_factory.mktemp("dated-ads")
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]][:ADS]
    rows = ["path,brand,date"]
    for n, ad in enumerate(ads):
        name = ad["file"].rsplit("/", 1)[-1]
        shutil.copy(sample_dir / ad["file"], folder / name)
        brand = FORMULA_BRAND if n == 0 else ad["brand"]
        rows.append(f'{name},"{brand.replace(chr(34), chr(34) * 2)}",2024-{n + 1:02d}-15')
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path_factory.mktemp("dated-db")
    library = Library(settings.with_overrides(db=db), encoders=encoders)
    report = library.ingest([folder], metadata=load_metadata(folder / "metadata.csv", None))
    assert report.ingested == len(ads) and not report.metadata_skipped
    with serve(create_app(library)) as port:
        yield f"http://127.0.0.1:{port}", library, ads
    library.close()


def save_card(page, card, board: str) -> str:
    """Save one result card to `board` through its "Save to board" form; the confirmation's text."""
    if not card.locator("details.save").evaluate("d => d.open"):
        card.locator("details.save summary").click()
    card.locator("details.save input[name=board]").fill(board)
    card.locator("details.save").evaluate("d => d.dataset.before = '1'")  # htmx swaps in a new element
    card.locator("details.save button[type=submit]").click()
    saved = card.locator(f"details.save:not([data-before]) .saved:has-text('{board.title()}')")
    saved.wait_for()  # the answer to this save, not the one shown before it
    return saved.inner_text()


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all("ol.grid li.card[data-id]", "els => els.map(e => e.dataset.id)")


def test_a_board_made_from_the_search_page_filters_facets_charts_and_finds_more_like_it(page, dated):
    base, library, ads = dated
    query = ads[1]["headline"]
    page.goto(f"{base}/?q={query}")
    cards = page.locator("ol.grid li.card")
    first, second = card_ids(page)[:2]
    assert save_card(page, cards.nth(0), "Keepers") == "Saved to Keepers"  # a new name makes the board
    assert save_card(page, cards.nth(1), "keepers") == "Saved to Keepers"  # then case does not count
    assert save_card(page, cards.nth(1), "Keepers") == "Already on Keepers"
    assert set(library.boards.ids("Keepers")) == {first, second}
    screenshot(page, "save-to-board")

    page.goto(f"{base}/boards")
    assert page.locator("tr[data-board='Keepers'] .count").inner_text() == "2"
    page.locator("tr[data-board='Keepers'] a").click()
    page.wait_for_url("**/boards/Keepers")
    assert sorted(card_ids(page)) == sorted([first, second])
    page.locator("#trend .uplot").wait_for()  # the board's ads over time
    assert "per month of date" in page.locator("#trend figcaption").inner_text()
    assert page.locator("#trend .trend-note").inner_text().startswith("2 in ")
    downloads = page.eval_on_selector_all("details.download a", "els => els.map(e => e.href)")
    assert downloads and all("where=board%3DKeepers" in url for url in downloads)
    screenshot(page, "board")

    page.get_by_text("Search and refine within this board").click()
    page.wait_for_url("**/?where=board*")
    assert sorted(card_ids(page)) == sorted([first, second])
    assert page.locator("ul.chips a.chip").inner_text() == "board=Keepers ×"
    facet = page.locator("section.facet[data-field='board'] li[data-value='Keepers']")
    assert facet.locator(".count").inner_text() == "2"  # counted inside Qdrant, like any field

    page.goto(f"{base}/boards/Keepers")
    page.locator("a.like-board").click()
    page.wait_for_url("**/boards/Keepers/similar")
    similar = card_ids(page)
    expected = [h.id for h in library.like_board("Keepers", "hybrid", 24).hits]
    assert similar == expected and similar and not {first, second} & set(similar)

    page.goto(f"{base}/boards/Keepers")
    page.locator(f"li.card[data-id='{first}'] form.remove button").click()
    page.locator("li.card.removed").wait_for()
    assert "Taken off Keepers" in page.locator("li.card.removed").inner_text()
    assert library.boards.ids("Keepers") == [second]
    assert library.get(first)["paths"]  # the ad stays in the library

    page.goto(f"{base}/images/{second}")
    assert page.locator("p.on-boards a").inner_text() == "Keepers"


def test_save_to_board_says_why_it_cannot_and_keeps_nothing_half_done(page, dated):
    base, library, _ = dated
    page.goto(f"{base}/?q=sale")
    card = page.locator("ol.grid li.card").first
    card.locator("details.save summary").click()
    card.locator("details.save input[name=board]").fill("-bad name")
    card.locator("details.save button[type=submit]").click()
    error = card.locator("details.save .error")
    error.wait_for()
    assert "bad board name" in error.inner_text() and "starting with a letter or digit" in error.inner_text()
    assert "-bad name" not in [b["name"] for b in library.boards.list()]


def test_the_search_page_charts_a_query_with_dates(page, dated):
    base, library, ads = dated
    page.goto(f"{base}/?q=%22{ads[2]['brand'].split()[0]}%22")  # a phrase: counted exactly
    page.locator("#trend .uplot").wait_for()
    caption = page.locator("#trend figcaption").inner_text()
    assert caption == "ads (exact count) per month of date"
    answer = httpx.get(f"{base}/api/trend", params={"q": f'"{ads[2]["brand"].split()[0]}"'}).json()
    total = answer["series"][0]["total"]
    months = len(answer["buckets"])
    assert total >= 1
    assert (
        page.locator("#trend .trend-note").inner_text()
        == f"{total} in {months} month{'' if months == 1 else 's'}"
    )
    screenshot(page, "trend")


def test_the_download_menu_gives_every_match_as_csv_with_formulas_neutralised(page, dated, tmp_path):
    base, library, ads = dated
    page.goto(f"{base}/?{urlencode({'where': f'brand={FORMULA_BRAND}'})}")
    page.locator("details.download summary").click()
    screenshot(page, "download")
    with page.expect_download() as info:
        page.locator("details.download a", has_text="CSV").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == "adsearch-export.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = library.search(SearchRequest(where=[f"brand={FORMULA_BRAND}"], k=50)).hits
    assert [r["id"] for r in rows] == sorted(h.id for h in expected) and len(rows) == 1
    assert rows[0]["brand"] == "'" + FORMULA_BRAND  # a cell a spreadsheet would run starts with '
    assert library.get(rows[0]["id"])["brand"] == FORMULA_BRAND  # the library keeps the value as given
