"""The watches pages in a real browser (issue 23): a watch saved before an upload collects the
uploaded ad; the watches page counts it as unseen, the watch's page shows it, the feed is linked."""

from __future__ import annotations

import hashlib

import httpx
from helpers import serve
from test_browser import screenshot

from api.app import create_app
from engine.library import Library
from engine.schema import point_id


def test_a_watch_collects_an_upload_made_after_it_and_the_pages_show_it(
    page, tmp_path, settings, encoders, sample_dir, truth
):
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]]
    library = Library(settings.with_overrides(db=tmp_path / "db"), encoders=encoders)
    library.ingest([sample_dir / ads[0]["file"]])
    with serve(create_app(library)) as port:
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=base, timeout=120)
        assert (
            http.post("/api/watches", json={"name": "all pngs", "where": ["format=PNG"]}).status_code == 201
        )
        png = next(a for a in ads[1:] if a["file"].endswith(".png"))
        files = {
            "files": (png["file"].rsplit("/", 1)[-1], (sample_dir / png["file"]).read_bytes(), "image/png")
        }
        job = http.post("/api/images", params={"wait": "true"}, files=files).json()
        assert job["status"] == "done"

        page.goto(f"{base}/watches")
        row = page.locator("tr[data-watch='all pngs']")
        assert row.locator(".unseen").inner_text() == "1"
        screenshot(page, "watches")
        assert page.locator("a[type='application/atom+xml']").first.get_attribute("href") == (
            "/watches/all%20pngs/feed.atom"
        )
        row.locator("a").first.click()
        page.wait_for_url("**/watches/all%20pngs")
        cards = page.locator("li.card")
        uploaded = point_id(hashlib.sha256((sample_dir / png["file"]).read_bytes()).hexdigest())
        assert cards.count() == 1 and cards.first.get_attribute("data-id") == uploaded
        page.goto(f"{base}/watches")
        assert page.locator("tr[data-watch='all pngs'] .unseen").inner_text() == "0"  # seen now
    library.close()
