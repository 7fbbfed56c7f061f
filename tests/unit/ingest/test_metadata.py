"""Per-image metadata (engine.ingest.metadata + ingest): typing, bad rows, reserved names, updates without
re-OCR, built-in fields, the recorded field schema; and the metadata files the datasets write."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import AdsearchError
from engine.filters import BUILTIN_FIELDS
from engine.ingest.ingestor import ingest
from engine.ingest.metadata import INGEST_PAYLOAD_KEYS, load_metadata
from engine.schema import INGEST_FIELDS
from engine.store import EdgeStore, PointData, point_id

SHA_A = "a" * 64
ADS377 = Path(__file__).resolve().parents[4] / "shared" / "data" / "ads377"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def adsearch(*args: str, env_extra: dict) -> subprocess.CompletedProcess:
    # two OCR workers whatever the machine (the default is one per core: 64 PP-OCR processes on 64 cores)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ADSEARCH_WORKERS": "2", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


# ---------------------------------------------------------------------- loading and typing


def test_csv_columns_get_the_narrowest_type_every_cell_fits(tmp_path):
    table = load_metadata(
        write(
            tmp_path / "m.csv",
            "path,brand,year,price,launched,zip,mixed,topics\n"
            "a.png,Audi,2014,1.5,2014-03-01,02134,12,cars;travel\n"
            "b.png,BMW,2015,2,2015-01-01T10:00:00+02:00,10001,x,cars\n"
            "c.png,,,,,,,\n",
        )
    )
    assert table.fields == {
        "brand": "keyword", "year": "integer", "price": "float", "launched": "datetime",
        "zip": "keyword", "mixed": "keyword", "topics": "keyword",
    }  # fmt: skip
    a = table.for_file("a.png", SHA_A)
    assert a == {
        "brand": "Audi", "year": 2014, "price": 1.5, "launched": "2014-03-01T00:00:00+00:00",
        "zip": "02134", "mixed": "12", "topics": "cars;travel",
    }  # fmt: skip
    assert type(a["year"]) is int and type(a["price"]) is float
    assert table.for_file("b.png", SHA_A)["launched"] == "2015-01-01T10:00:00+02:00"
    assert table.for_file("c.png", SHA_A) == {}  # empty cells: no value, not ""
    assert not table.problems and table.rows == 3


def test_a_schema_fixes_types_splits_lists_and_normalises_booleans(tmp_path):
    csv = write(
        tmp_path / "m.csv",
        "path,year,topics,psa,code\na.png,2014,cars; travel ;;cars,yes,7\nb.png,2015,food,0,8\n",
    )
    schema = write(tmp_path / "s.json", json.dumps({"topics": "keywords", "psa": "bool", "code": "keyword"}))
    table = load_metadata(csv, schema)
    assert table.fields == {"year": "integer", "topics": "keywords", "psa": "keyword", "code": "keyword"}
    assert table.for_file("a.png", SHA_A) == {
        "year": 2014, "topics": ["cars", "travel"], "psa": "true", "code": "7"
    }  # fmt: skip
    assert table.for_file("b.png", SHA_A)["psa"] == "false"
    # types the collection already records come before inference, after the schema
    known = load_metadata(csv, known={"year": "float", "code": "integer"})
    assert known.fields["year"] == "float" and known.for_file("a.png", SHA_A)["year"] == 2014.0
    assert known.fields["code"] == "integer" and known.for_file("b.png", SHA_A)["code"] == 8


def test_json_lines_keep_their_json_types(tmp_path):
    rows = [
        {"path": "a.png", "year": 2014, "score": 1, "tags": ["x", "y"], "new": True, "seen": "2020-05-01"},
        {"path": "b.png", "year": 2015, "score": 2.5, "tags": "z", "new": False, "seen": "2021-01-01"},
        {"sha256": SHA_A.upper(), "year": "2016"},
    ]
    path = write(tmp_path / "m.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    table = load_metadata(path)
    assert table.fields == {
        "year": "integer", "score": "float", "tags": "keywords", "new": "keyword", "seen": "datetime"
    }  # fmt: skip
    assert table.for_file("a.png", "0" * 64) == {
        "year": 2014, "score": 1.0, "tags": ["x", "y"], "new": "true", "seen": "2020-05-01T00:00:00+00:00"
    }  # fmt: skip
    assert table.for_file("b.png", "0" * 64)["tags"] == ["z"]
    assert table.for_file("elsewhere.png", SHA_A) == {"year": 2016}  # keyed by sha256 (any case)
    assert not table.problems


def test_bad_rows_are_one_line_each_and_the_rest_applies(tmp_path):
    csv = write(
        tmp_path / "meta.csv",
        "path,year,brand\n"
        "a.png,2014,Audi\n"  # line 2
        "b.png,2015,BMW\n"
        "c.png,abc,VW\n"  # line 4: not an integer
        ",2016,Seat\n"  # line 5: no key
        "a.png,2017,Dup\n"  # line 6: duplicate
        "../up.png,2018,Up\n"  # line 7: escapes the folder
        "d.png,2019,Opel,extra\n"  # line 8: too many cells
        "e.png,2020,Kia\n",
    )
    table = load_metadata(csv, {"year": "integer"})
    assert [where for where, _ in table.problems] == [f"meta.csv line {n}" for n in (4, 5, 6, 7, 8)]
    reasons = dict(table.problems)
    assert reasons["meta.csv line 4"] == "'abc' is not a valid integer value for field year"
    assert "no path or sha256" in reasons["meta.csv line 5"]
    assert "meta.csv line 2" in reasons["meta.csv line 6"]
    assert sorted(table.by_path) == ["a.png", "b.png", "e.png"]
    assert table.for_file("a.png", SHA_A) == {
        "year": 2014,
        "brand": "Audi",
    }  # the first row, not the duplicate
    jsonl = write(
        tmp_path / "meta.jsonl",
        '{"path": "a.png", "year": 1}\nnot json\n[1, 2]\n{"path": "b.png", "year": "zz"}\n'
        '{"path": "c.png", "year": {"y": 1}}\n{"path": "d.png", "year": 4}\n',
    )
    table = load_metadata(jsonl)
    assert table.fields == {"year": "integer"}
    assert [w for w, _ in table.problems] == [f"meta.jsonl line {n}" for n in (2, 3, 4, 5)]
    assert dict(table.problems)["meta.jsonl line 4"] == "'zz' is not a valid integer value for field year"
    assert sorted(table.by_path) == ["a.png", "d.png"]


DEEP = "[" * 100_000  # deeper than Python's JSON parser can recurse


def test_a_deeply_nested_json_row_is_one_skipped_row_and_the_others_apply(tmp_path):
    rows = [
        '{"path": "a.png", "brand": "Audi"}',
        DEEP,  # line 2: a RecursionError in json.loads today
        f'{{"path": "b.png", "brand": {DEEP}"BMW"{"]" * 100_000}}}',  # line 3: deep but valid JSON
        '{"path": "c.png", "brand": "Cupra", "note": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
    ]
    table = load_metadata(write(tmp_path / "m.jsonl", "\n".join(rows) + "\n"))
    assert sorted(table.by_path) == ["a.png", "c.png"]  # brackets inside a string are text
    assert table.for_file("c.png", SHA_A)["note"].startswith("[[[")
    reasons = dict(table.problems)
    assert list(reasons) == ["m.jsonl line 2", "m.jsonl line 3"]
    for reason in reasons.values():
        assert reason.startswith("not valid JSON (") and "nested 100,00" in reason and "at most 16" in reason
    # the same row first in the file (a JSON Lines file starting with "[") is still one row
    first = load_metadata(write(tmp_path / "first.ndjson", DEEP + "\n" + rows[0] + "\n"))
    assert sorted(first.by_path) == ["a.png"] and [w for w, _ in first.problems] == ["first.ndjson line 1"]
    # one JSON document (an array) cannot skip a part of itself: the file is refused with the reason
    with pytest.raises(AdsearchError, match="m.json is not valid JSON: .*nested 100,00.* deep"):
        load_metadata(write(tmp_path / "m.json", "[" + DEEP))
    with pytest.raises(AdsearchError, match="schema file .* is not valid JSON: .*nested"):
        load_metadata(tmp_path / "m.jsonl", write(tmp_path / "s.json", DEEP))


def test_nesting_up_to_the_limit_is_parsed_as_json(tmp_path):
    from engine.ingest.metadata import MAX_JSON_DEPTH, json_depth

    assert json_depth('{"a": ["[{", {"b": [1]}], "c": "\\"]"}') == 4
    deep_ok = f'{{"path": "a.png", "x": {"[" * (MAX_JSON_DEPTH - 1)}1{"]" * (MAX_JSON_DEPTH - 1)}}}'
    too_deep = f'{{"path": "b.png", "x": {"[" * MAX_JSON_DEPTH}1{"]" * MAX_JSON_DEPTH}}}'
    table = load_metadata(write(tmp_path / "m.jsonl", f"{deep_ok}\n{too_deep}\n"))
    reasons = dict(table.problems)
    assert "is not a valid" in reasons["m.jsonl line 1"]  # parsed, then refused as a value (a list of lists)
    assert f"nested {MAX_JSON_DEPTH + 1} arrays/objects deep" in reasons["m.jsonl line 2"]
    from engine.ingest.metadata import _parse_json

    with pytest.raises(ValueError, match="nested too deep to parse"):  # should the depth check let it through
        _parse_json(DEEP, 10**9)


@pytest.mark.parametrize(
    "column", ["width", "folder", "has_text", "file_date", "paths", "ocr_text", "sha256x"]
)
def test_a_column_named_like_a_built_in_refuses_the_whole_file(tmp_path, column):
    path = write(tmp_path / "m.csv", f"path,brand,{column}\na.png,Audi,1\n")
    if column == "sha256x":  # not reserved: accepted
        assert load_metadata(path).fields == {"brand": "keyword", "sha256x": "integer"}
        return
    with pytest.raises(AdsearchError, match=f"'{column}'"):
        load_metadata(path)


def test_files_that_cannot_be_used_are_one_clear_error(tmp_path):
    cases = {
        "nokey.csv": ("brand,year\nAudi,2014\n", "no 'path' or 'sha256' column"),
        "space.csv": ("path,my brand\na.png,x\n", "cannot be filtered on"),
        "dupe.csv": ("path,brand,brand\na.png,x,y\n", "more than once"),
        "reserved.jsonl": ('{"path": "a.png", "pipeline": "x"}\n', "'pipeline'"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(AdsearchError, match=message):
            load_metadata(write(tmp_path / name, text))
    with pytest.raises(AdsearchError, match="cannot read metadata file"):
        load_metadata(tmp_path / "missing.csv")
    ok = write(tmp_path / "ok.csv", "path,year\na.png,1\n")
    with pytest.raises(AdsearchError, match="use one of"):
        load_metadata(ok, {"year": "number"})
    with pytest.raises(AdsearchError, match="'width'"):
        load_metadata(ok, {"width": "integer"})


def test_every_key_ingest_writes_is_reserved(ingested):
    store, _ = ingested
    (payload,) = [p for _, p in store.scroll(batch=1)][:1]
    assert set(payload) <= INGEST_PAYLOAD_KEYS | set(BUILTIN_FIELDS)
    assert set(INGEST_FIELDS) <= set(
        payload
    )  # every built-in field ingest writes is there, folder and file_date too


# ---------------------------------------------------------------------- ingest


@pytest.fixture
def three_ads(tmp_path, sample_dir, truth) -> tuple[Path, list[str]]:
    """Three sample ads with text: two at the top of a folder, one in a subfolder."""
    folder = tmp_path / "ads"
    (folder / "sub").mkdir(parents=True)
    ads = [a for a in truth if a["text"] and not a["rotated"] and not a["low_contrast"]][:3]
    names = ["a.png", "b.png", "sub/c.png"]
    for ad, name in zip(ads, names, strict=True):
        shutil.copy(sample_dir / ad["file"], folder / name)
    return folder, names


def by_name(store) -> dict[str, dict]:
    return {Path(p["paths"][0]).name: p for _, p in store.scroll()}


def test_ingest_writes_metadata_and_built_ins_and_records_the_fields(tmp_path, settings, encoders, three_ads):
    folder, _ = three_ads
    meta = write(
        tmp_path / "meta.csv",
        "path,brand,year,launched\n"
        "a.png,Audi,2014,2014-03-01\n"
        "sub/c.png,Cupra,2016,2016-06-01\n"
        "b.png,BMW,abc,2015-01-01\n"  # line 4: bad year, skipped: b gets no metadata
        "nowhere.png,Nobody,2000,2000-01-01\n",  # line 5: no such file
    )
    table = load_metadata(meta, {"year": "integer"})
    errors = []
    with EdgeStore(tmp_path / "db", "ads") as store:
        report = ingest(
            [folder], settings, encoders, store, lambda w, r: errors.append((w, r)), False, metadata=table
        )
        points = by_name(store)
        recorded = store.metadata()
    assert report.ingested == 3 and not report.failed
    assert errors == report.metadata_skipped and [w for w, _ in errors] == [
        "meta.csv line 4",
        "meta.csv line 5",
    ]
    assert "'abc' is not a valid integer value for field year" in errors[0][1]
    assert "nowhere.png" in errors[1][1]
    assert points["a.png"]["brand"] == "Audi" and points["a.png"]["year"] == 2014
    assert points["a.png"]["launched"] == "2014-03-01T00:00:00+00:00"
    assert points["c.png"]["brand"] == "Cupra"
    assert "brand" not in points["b.png"] and "year" not in points["b.png"]
    assert recorded["fields"] == {"brand": "keyword", "year": "integer", "launched": "datetime"}
    assert {n: p["folder"] for n, p in points.items()} == {"a.png": ".", "b.png": ".", "c.png": "sub"}
    mtime = (folder / "sub" / "c.png").stat().st_mtime
    from datetime import UTC, datetime

    assert datetime.fromisoformat(points["c.png"]["file_date"]) == datetime.fromtimestamp(int(mtime), UTC)
    for payload in points.values():
        assert set(INGEST_FIELDS) <= set(payload)
    assert "2 metadata rows skipped" in report.summary()


def test_a_changed_file_updates_payloads_without_re_ocr(tmp_path, settings, encoders, three_ads):
    folder, _ = three_ads
    first = write(tmp_path / "v1.jsonl", '{"path": "a.png", "brand": "Audi", "year": 2014}\n'
                  '{"path": "b.png", "brand": "BMW", "year": 2015}\n')  # fmt: skip
    second = write(tmp_path / "v2.jsonl", '{"path": "a.png", "brand": "Audi AG"}\n'
                   '{"path": "b.png", "brand": "BMW", "year": 2015, "topics": ["cars"]}\n'
                   '{"path": "sub/c.png", "year": 2020}\n')  # fmt: skip
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False, metadata=load_metadata(first))
        before = by_name(store)
        report = ingest([folder], settings, encoders, store, progress=False, metadata=load_metadata(second))
        after = by_name(store)
        again = ingest([folder], settings, encoders, store, progress=False, metadata=load_metadata(second))
        fields = store.metadata()["fields"]
        assert by_name(store) == after
    assert report.ingested == 0 and report.ocr_seconds == 0 and report.encode_seconds == 0
    assert report.unchanged == 3 and report.metadata_updated == 3 and not report.metadata_skipped
    assert "fields updated on 3 stored images" in report.summary()
    assert after["a.png"]["brand"] == "Audi AG" and after["a.png"]["year"] == 2014  # kept: not in v2
    assert after["b.png"]["topics"] == ["cars"] and after["c.png"]["year"] == 2020
    for name in before:  # the OCR, vectors' provenance and time of ingest are untouched
        for key in (
            "ocr_text",
            "ocr_words",
            "pipeline",
            "ingested_at",
            "paths",
            "sha256",
            "folder",
            "file_date",
        ):
            assert after[name][key] == before[name][key], (name, key)
    assert again.metadata_updated == 0 and again.unchanged == 3  # the same file again: nothing to write
    assert fields == {"brand": "keyword", "year": "integer", "topics": "keywords"}


def test_a_field_changing_type_is_refused_before_any_write(tmp_path, settings, encoders, three_ads):
    folder, _ = three_ads
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False,
               metadata=load_metadata(write(tmp_path / "v1.csv", "path,year\na.png,2014\n")))  # fmt: skip
        before = dict(store.scroll())
        as_dates = load_metadata(write(tmp_path / "v2.csv", "path,year\na.png,2014-01-01\n"))
        with pytest.raises(AdsearchError, match="'year' is datetime .* holds it as integer"):
            ingest([folder], settings, encoders, store, progress=False, metadata=as_dates)
        assert dict(store.scroll()) == before and store.metadata()["fields"] == {"year": "integer"}
        # loaded with the recorded types (as the CLI does), the same file is typed as the collection says
        recorded = load_metadata(tmp_path / "v2.csv", known=store.metadata()["fields"])
        assert recorded.fields == {"year": "integer"} and recorded.problems[0][0] == "v2.csv line 2"


def test_points_stored_without_built_ins_get_them_without_re_ocr(tmp_path, settings, encoders, three_ads):
    folder, _ = three_ads
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False)
        pid, payload = next((i, p) for i, p in store.scroll() if p["folder"] == "sub")
        old = {
            k: v for k, v in payload.items() if k not in ("folder", "file_date")
        }  # as an older version wrote
        store.upsert([PointData(pid, store.vectors(pid), old)])
        report = ingest([folder], settings, encoders, store, progress=False)
        backfilled = store.retrieve([pid])[pid]
    assert report.ingested == 0 and report.metadata_updated == 1 and report.unchanged == 3
    assert backfilled == payload


def test_reprocessing_a_point_keeps_its_metadata(tmp_path, settings, encoders, three_ads):
    folder, _ = three_ads
    one = folder / "a.png"
    sha = hashlib.sha256(one.read_bytes()).hexdigest()
    meta = load_metadata(write(tmp_path / "m.jsonl", json.dumps({"sha256": sha, "brand": "Audi"}) + "\n"))
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([one], settings, encoders, store, progress=False, metadata=meta)
        changed = settings.with_overrides(ocr_min_confidence=70.0, ocr_ppocr_min_confidence=70.0)
        report = ingest([one], changed, encoders, store, progress=False)  # OCR again, no metadata file
        payload = store.retrieve([point_id(sha)])[point_id(sha)]
    assert report.ingested == 1
    assert payload["brand"] == "Audi" and payload["folder"] == "."  # a single file given: its folder is "."


def test_payload_indexes_are_asked_for_builtins_and_metadata_fields(tmp_path, settings, encoders, three_ads):
    folder, _ = three_ads
    asked = []

    class Recording(EdgeStore):
        def ensure_indexes(self, fields):
            asked.append(dict(fields))
            super().ensure_indexes(fields)

    meta = load_metadata(write(tmp_path / "m.csv", "path,brand,year\na.png,Audi,2014\n"))
    with Recording(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False, metadata=meta)
    builtins = {k: v for k, v in BUILTIN_FIELDS.items() if k != "has_text"}
    assert asked == [{**builtins, "brand": "keyword", "year": "integer"}]


# ---------------------------------------------------------------------- the command line


def test_cli_refuses_bad_metadata_files_in_one_line(tmp_path, tiny_clip_dir):
    env = {"ADSEARCH_DB": str(tmp_path / "db"), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
    (tmp_path / "ads").mkdir()
    bad = write(tmp_path / "m.csv", "path,width\na.png,1\n")
    result = adsearch("ingest", str(tmp_path / "ads"), "--metadata", str(bad), "--no-progress", env_extra=env)
    assert result.returncode == 2 and "'width'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    alone = adsearch("ingest", str(tmp_path / "ads"), "--schema", str(bad), env_extra=env)
    assert alone.returncode == 2 and "--metadata" in alone.stderr


@pytest.mark.skipif(
    "metadata" not in inspect.signature(__import__("engine.library").library.Library.ingest).parameters,
    reason="Library.ingest does not pass `metadata` through yet",
)
def test_cli_ingest_with_metadata(tmp_path, tiny_clip_dir, three_ads):
    folder, _ = three_ads
    env = {"ADSEARCH_DB": str(tmp_path / "db"), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
    meta = write(tmp_path / "m.csv", "path,brand,year\na.png,Audi,2014\nb.png,BMW,x\n")
    schema = write(tmp_path / "s.json", '{"year": "integer"}')
    args = ("ingest", str(folder), "--metadata", str(meta), "--schema", str(schema), "--no-progress")
    result = adsearch(*args, env_extra=env)
    assert result.returncode == 1, result.stderr  # one row skipped
    assert "m.csv: 1 rows; fields brand (keyword), year (integer)" in result.stdout
    assert "error: m.csv line 3: 'x' is not a valid integer value for field year" in result.stderr
    write(meta, "path,brand,year\na.png,Audi,2014\nb.png,BMW,2015\n")
    again = adsearch(*args, env_extra=env)
    assert again.returncode == 0 and "ingested 0," in again.stdout
    assert "fields updated on 1 stored images" in again.stdout


def test_cli_ingest_skips_a_deeply_nested_row_in_one_line(tmp_path, tiny_clip_dir, three_ads):
    folder, _ = three_ads
    env = {"ADSEARCH_DB": str(tmp_path / "db"), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
    rows = ['{"path": "a.png", "brand": "Audi"}', DEEP, '{"path": "b.png", "brand": "BMW"}']
    meta = write(tmp_path / "m.jsonl", "\n".join(rows) + "\n")
    result = adsearch("ingest", str(folder), "--metadata", str(meta), "--no-progress", env_extra=env)
    assert result.returncode == 1, result.stderr  # one row skipped, the rest ingested
    assert "Traceback" not in result.stderr and "m.jsonl: 2 rows" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: m.jsonl line 2: not valid JSON (nested"), errors
    with EdgeStore(tmp_path / "db", "ads") as store:
        points = by_name(store)
    assert points["a.png"]["brand"] == "Audi" and points["b.png"]["brand"] == "BMW" and len(points) == 3


# ---------------------------------------------------------------------- dataset metadata files


def test_the_synthetic_sample_has_a_metadata_file_of_every_type(sample_dir, truth):
    table = load_metadata(sample_dir / "metadata.csv", sample_dir / "metadata.schema.json")
    assert not table.problems and table.rows == len(truth)
    assert {"keyword", "keywords", "integer", "float", "datetime"} <= set(table.fields.values())
    for ad in truth:
        values = table.for_file(ad["file"].removeprefix("images/"), SHA_A)
        assert values.get("brand") == (ad["brand"] or None)
        assert isinstance(values["budget"], int) and isinstance(values["channels"], list)
    assert not table.unmatched()


def test_pitt_majority_votes_and_label_lists(tmp_path):
    from dataset.pitt import annotation_fields, majority, read_label_list, write_metadata

    assert majority(["9", "9", "12", "free text"]) == ("9", 2)
    assert majority(["17", "35", "35", "17", "4"]) == ("17", 2)  # a tie goes to the lower id
    assert majority(["only free text"]) is None
    notes = tmp_path / "notes"
    (notes / "saidhiraj_Ad_Classification").mkdir(parents=True)
    (notes / "midas-research_persuasion-advertisements").mkdir()
    topic_list = (
        '9\t"Cars, automobiles" (ABBREVIATION: "cars")\r\n39\t"Unclear"\r\n40\tAnnotator filled in\r\n'
    )
    (notes / "saidhiraj_Ad_Classification" / "Topics_List.txt").write_bytes(topic_list.encode("utf-16"))
    sentiments = notes / "midas-research_persuasion-advertisements"
    sentiment_list = (
        '1. "Active\xa0(energetic)" (ABBREVIATION: "active")\n21. "Inspired" (ABBREVIATION: "inspired")\n'
    )
    (sentiments / "sentiments_list.txt").write_bytes(sentiment_list.encode("latin-1"))
    assert read_label_list(notes / "saidhiraj_Ad_Classification" / "Topics_List.txt") == {
        "9": "cars", "39": "unclear"
    }  # fmt: skip
    (notes / "saidhiraj_Ad_Classification" / "Topics.json").write_text(
        json.dumps({"0/1.jpg": ["9", "9", "39", "own words", "39"], "0/2.jpg": ["free"], "5/9.png": ["9"]})
    )
    (sentiments / "Sentiments_train.json").write_text(
        json.dumps({"0/1.jpg": [["21", "1"], ["21"], ["1", "1"]]})
    )
    (sentiments / "Sentiments_test.json").write_text("{}")
    out = tmp_path / "pitt-ads"
    (out / "0").mkdir(parents=True)
    for name in ("1.jpg", "2.jpg", "3.jpg", "notes.txt"):
        (out / "0" / name).write_bytes(b"x")
    assert write_metadata(out, notes) == (1, 3)  # 2.jpg: free text only, 3.jpg: not annotated
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert rows == [{"path": "0/1.jpg", "topic": "cars", "topic_agreement": 0.4, "sentiment": "active",
                     "sentiment_agreement": 0.67}]  # fmt: skip
    table = load_metadata(out / "metadata.jsonl")
    assert table.fields == {
        "topic": "keyword", "topic_agreement": "float", "sentiment": "keyword", "sentiment_agreement": "float"
    }  # fmt: skip
    assert annotation_fields(None, None, {}, {}) == {}


@pytest.mark.skipif(
    not (ADS377 / "annotations.json").is_file(), reason="ads377 is not beside this repository"
)
def test_ads377_metadata_agrees_with_its_annotations(tmp_path):
    from dataset.ads377_metadata import main

    out = tmp_path / "ads377.jsonl"
    assert main(["--out", str(out)]) == 0
    annotations = json.loads((ADS377 / "annotations.json").read_text())["images"]
    table = load_metadata(out)
    assert table.rows == len(annotations) == 377 and not table.problems
    for key, image in annotations.items():
        assert (ADS377 / "images" / key).is_file()
        values = table.for_file(key, SHA_A)
        majority = image["topics"]["majority"]
        assert values["topic"] == majority["abbreviation"]
        assert values["topic_agreement"] == round(majority["votes"] / majority["of"], 2)
    topics = [table.for_file(key, SHA_A)["topic"] for key in annotations]
    assert topics.count("cars") == 73 and topics.count("beauty") == 64
