"""The JSON API over real HTTP (uvicorn on a localhost port), against the synthetic sample."""

from __future__ import annotations

import io
from collections import Counter

import httpx
import pytest
from PIL import Image

from ocr_text import DEFAULT_READERS


@pytest.fixture(scope="module")
def http(api_server):
    with httpx.Client(base_url=api_server, timeout=60) as client:
        yield client


def readable(truth):
    return [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]]


def name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def id_of(http, ad) -> str:
    hits = http.get("/api/search", params={"q": ad["brand"], "mode": "keyword", "k": 1}).json()["hits"]
    assert name(hits[0]["paths"][0]) == name(ad["file"])
    return hits[0]["id"]


def test_health_and_openapi(http, truth):
    health = http.get("/health").json()
    assert (health["status"], health["images"], health["saturated"]) == ("ok", len(truth), False)
    spec = http.get("/openapi.json").json()
    assert {"/api/search", "/api/search/image", "/api/images", "/api/stats"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200


def test_search_returns_explained_hits_with_urls(http, truth):
    ad = readable(truth)[0]
    data = http.get("/api/search", params={"q": ad["headline"], "k": 5}).json()
    top = data["hits"][0]
    assert name(top["paths"][0]) == name(ad["file"]) and top["rank"] == 1
    assert set(top["channels"]) == {"image", "text", "keywords"} and top["channels"]["text"]["rank"] == 1
    assert top["thumbnail_url"].startswith(f"/api/images/{top['id']}/thumbnail")
    assert top["page_url"] == f"/images/{top['id']}"
    page2 = http.get("/api/search", params={"q": ad["headline"], "k": 2, "offset": 2}).json()
    assert [h["id"] for h in page2["hits"]] == [h["id"] for h in data["hits"][2:4]]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x" * 501},
        {"q": "car", "k": 0},
        {"q": "car", "k": 101},
        {"q": "car", "mode": "fuzzy"},
        {"q": "car", "weights": "pixels=1"},
        {"q": "car", "weights": "text=abc"},
        {"q": "car", "offset": -1},
    ],
)
def test_bad_search_parameters_are_422_with_a_reason(http, params):
    response = http.get("/api/search", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize("q", ["", "   "])
def test_an_empty_query_browses_every_image_newest_first(http, q):
    data = http.get("/api/search", params={"q": q, "k": 100}).json()
    assert data["mode"] == "browse" and data["total"] == http.get("/health").json()["images"] == len(
        data["hits"]
    )
    stamps = [http.get(f"/api/images/{h['id']}").json()["ingested_at"] for h in data["hits"]]
    assert stamps == sorted(stamps, reverse=True)


def test_image_metadata_ocr_file_and_thumbnail(http, truth, sample_dir):
    ad = readable(truth)[1]
    image_id = id_of(http, ad)
    info = http.get(f"/api/images/{image_id}").json()
    assert ad["brand"] in info["ocr_text"] and "ocr_words" not in info
    ocr = http.get(f"/api/images/{image_id}/ocr").json()
    assert ocr["words"] and {"text", "confidence", "left", "top", "width", "height"} <= set(ocr["words"][0])
    assert ocr["raw_text"] and ocr["width"] == info["width"]
    assert ocr["readers"] == info["ocr_readers"] == list(DEFAULT_READERS)  # read with the defaults
    assert ocr["words_by_reader"] == info["ocr_words_by_reader"] and ocr["errors"] == info["ocr_errors"] == {}
    original = http.get(f"/api/images/{image_id}/file")
    assert original.content == (sample_dir / ad["file"]).read_bytes()
    assert original.headers["content-type"] == ("image/png" if ad["file"].endswith(".png") else "image/jpeg")
    thumb = http.get(f"/api/images/{image_id}/thumbnail", params={"size": 128})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 128
    assert http.get(f"/api/images/{image_id}/thumbnail", params={"size": 128}).content == thumb.content


READERS = {"tesseract", "ppocr"}


def test_every_ocr_word_names_its_reader_and_the_counts_add_up(http, api_library, truth):
    stored = dict(api_library.store.scroll())
    assert len(stored) == len(truth)
    seen_readers: set[str] = set()
    for image_id, payload in stored.items():
        ocr = http.get(f"/api/images/{image_id}/ocr").json()
        assert {"id", "text", "raw_text", "confidence", "width", "height", "words"} <= set(ocr)
        readers, words = ocr["readers"], ocr["words"]
        assert readers and set(readers) <= READERS and len(set(readers)) == len(readers)
        assert readers == payload["ocr_readers"] and ocr["errors"] == payload.get("ocr_errors", {})
        assert isinstance(ocr["errors"], dict) and set(ocr["errors"]) <= set(readers)
        assert all(w["reader"] in READERS for w in words), image_id
        per_reader = Counter(w["reader"] for w in words)
        assert set(per_reader) <= set(readers), image_id  # no word from a reader that did not run
        assert set(per_reader) <= set(ocr["words_by_reader"]) <= set(readers)
        assert {r: per_reader[r] for r in ocr["words_by_reader"]} == ocr["words_by_reader"], image_id
        assert sum(ocr["words_by_reader"].values()) == len(words)
        assert [w["text"] for w in words] == [w["text"] for w in payload["ocr_words"]]
        seen_readers |= set(per_reader)
    assert seen_readers  # the sample has text, so some reader read some of it


def test_ocr_of_points_stored_before_there_were_several_readers(http, api_library, truth):
    """Old payloads have no `reader` on words and no ocr_readers / ocr_words_by_reader / ocr_errors."""
    from engine.store import PointData

    image_id = id_of(http, readable(truth)[4])
    point = next(p for p in api_library.store.points() if p.id == image_id)
    old_keys = ("ocr_readers", "ocr_words_by_reader", "ocr_errors")
    legacy = {k: v for k, v in point.payload.items() if k not in old_keys}
    legacy["ocr_words"] = [{k: v for k, v in w.items() if k != "reader"} for w in point.payload["ocr_words"]]
    api_library.store.upsert([PointData(point.id, point.vectors, legacy)])
    try:
        ocr = http.get(f"/api/images/{image_id}/ocr").json()
        assert ocr["readers"] == ["tesseract"] and ocr["errors"] == {}
        assert {w["reader"] for w in ocr["words"]} == {"tesseract"}
        assert ocr["words_by_reader"] == {"tesseract": len(legacy["ocr_words"])} and ocr["words"]
        page = http.get(f"/images/{image_id}")
        assert page.status_code == 200 and 'data-reader="tesseract"' in page.text
    finally:
        api_library.store.upsert([point])
    assert http.get(f"/api/images/{image_id}/ocr").json()["readers"] == point.payload["ocr_readers"]


def test_ids_only_no_path_traversal(http):
    for bad in ["..%2f..%2fetc%2fpasswd", "%2fetc%2fpasswd", "not-a-uuid", "../../etc/passwd"]:
        response = http.get(f"/api/images/{bad}/file")
        assert response.status_code in (404, 422), bad
        assert b"root:" not in response.content
    missing = "00000000-0000-0000-0000-000000000000"
    assert http.get(f"/api/images/{missing}").status_code == 404


def test_similar_leaves_the_image_itself_out(http, truth):
    image_id = id_of(http, readable(truth)[2])
    data = http.get(f"/api/images/{image_id}/similar", params={"k": 5}).json()
    assert len(data["hits"]) == 5 and image_id not in [h["id"] for h in data["hits"]]
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3, 4, 5]


def test_search_by_uploaded_image(http, truth, sample_dir):
    ad = next(a for a in truth if not a["text"])
    with open(sample_dir / ad["file"], "rb") as f:
        data = http.post("/api/search/image", files={"file": (name(ad["file"]), f)}, data={"k": "3"}).json()
    assert name(data["hits"][0]["paths"][0]) == name(ad["file"])
    bad = http.post("/api/search/image", files={"file": ("x.png", b"<html>not an image</html>")})
    assert bad.status_code == 422 and "not an image" in bad.json()["detail"]


def test_stats(http, truth):
    s = http.get("/api/stats").json()
    assert s["images"] == len(truth) == sum(s["formats"].values()) == sum(s["text_words"].values())
    assert s["with_text"] + s["without_text"] == s["images"] and s["without_text"] >= 3
    assert s["text_words"]["no text"] == s["without_text"]
    assert s["channels"] == {"image": True, "text": True, "keywords": True}
    assert s["models"]["text"].endswith("all-MiniLM-L6-v2")


def test_upload_then_find_then_delete(http, api_library, tmp_path):
    import random

    from dataset.synthetic import available_fonts, render_ad

    image, ad = render_ad(6, random.Random(99), available_fonts())
    image.putpixel((0, 0), (1, 2, 3))  # bytes no sample image has
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    files = [
        ("files", ("new-ad.png", buffer.getvalue(), "image/png")),
        ("files", ("fake.png", b"GIF89a junk")),
    ]
    before = http.get("/health").json()["images"]
    results = {r["name"]: r for r in http.post("/api/images?wait=true", files=files).json()["results"]}
    assert results["new-ad.png"]["status"] == "ingested" and results["fake.png"]["status"] == "failed"
    new_id = results["new-ad.png"]["id"]
    assert http.get("/health").json()["images"] == before + 1
    stored = http.get(f"/api/images/{new_id}").json()
    assert stored["paths"][0].startswith(str(api_library.upload_dir))
    again = http.post("/api/images?wait=true", files=[("files", ("same.png", buffer.getvalue()))])
    again = again.json()["results"][0]
    assert again["status"] == "unchanged" and again["id"] == new_id
    deleted = http.delete(f"/api/images/{new_id}").json()
    assert deleted["deleted"] and deleted["files_removed"] == stored["paths"][:1]
    assert http.get(f"/api/images/{new_id}").status_code == 404
    assert http.get("/health").json()["images"] == before


def test_delete_never_touches_files_outside_the_upload_folder(http, truth, sample_dir, api_library):
    ad = readable(truth)[3]
    image_id = id_of(http, ad)
    assert http.delete(f"/api/images/{image_id}").json()["files_removed"] == []
    assert (sample_dir / ad["file"]).exists()
    api_library.ingest([sample_dir / ad["file"]])  # put it back for the other tests
    assert http.get(f"/api/images/{image_id}").status_code == 200


def test_upload_limits(http, api_library):
    settings = api_library.settings
    too_many = [("files", (f"{i}.png", b"x")) for i in range(settings.max_upload_files + 1)]
    assert http.post("/api/images", files=too_many).status_code == 413
    huge = b"\0" * (settings.max_upload_bytes + 1)
    assert http.post("/api/images", files=[("files", ("big.png", huge))]).status_code == 413


def test_write_endpoints_need_the_api_key_when_configured(http, api_library):
    api_library.settings = api_library.settings.with_overrides(api_key="s3cret")
    try:
        missing = "00000000-0000-0000-0000-000000000000"
        assert http.delete(f"/api/images/{missing}").status_code == 401
        assert http.delete(f"/api/images/{missing}", headers={"X-API-Key": "wrong"}).status_code == 401
        assert http.delete(f"/api/images/{missing}", headers={"X-API-Key": "s3cret"}).status_code == 404
        assert http.get("/api/search", params={"q": "car"}).status_code == 200  # reads stay open
    finally:
        api_library.settings = api_library.settings.with_overrides(api_key="")


def test_the_image_page_and_image_search_find_other_copies_of_a_creative(http, truth, sample_dir):
    ad = readable(truth)[2]
    original_id = id_of(http, ad)
    image = Image.open(sample_dir / ad["file"]).convert("RGB")
    copy = image.resize((int(image.width * 0.9), int(image.height * 0.9)))
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=60)
    job = http.post("/api/images?wait=true", files=[("files", ("copy.jpg", buffer.getvalue()))]).json()
    copy_id = job["results"][0]["id"]
    try:
        page = http.get(f"/images/{original_id}").text
        copies_section = page.split("Other copies of this ad", 1)[1].split("More like this", 1)[0]
        assert f"/images/{copy_id}" in copies_section
        found = http.post(
            "/api/search/image", files={"file": ("q.jpg", buffer.getvalue())}, data={"mode": "duplicate"}
        ).json()
        assert {original_id, copy_id} <= {h["id"] for h in found["hits"]}
        assert found["channels"] == ["creative"]
    finally:
        http.delete(f"/api/images/{copy_id}")
