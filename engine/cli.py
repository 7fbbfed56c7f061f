"""`adsearch`: ingest | search | ocr | stats. A thin face over the engine's functions."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from engine.config import PRECISIONS, QUANT_MIN_AGREEMENT, QUANT_MIN_COSINE, Settings, parse_readers
from engine.errors import AdsearchError, UsageError
from engine.schema import MODES
from engine.terminal import PrintableFormatter, printable, printable_lines
from ocr_text.settings import DEFAULT_READERS

log = logging.getLogger("adsearch")

EPILOG = """examples:
  adsearch ingest ./my-ads                       # OCR + embed every image below ./my-ads
  adsearch search "cheap burger deal"            # hybrid search (all channels, RRF fusion)
  adsearch search "Audi A7" --mode keyword -k 5  # BM25 over the OCR text only
  adsearch search --image query.jpg              # query by image
  adsearch ocr ad.jpg                            # what each OCR reader reads in one image
  adsearch stats                                 # what the collection holds
  adsearch serve                                 # web UI + JSON API on http://127.0.0.1:8000
  adsearch evaluate --queries q.tsv --qrels q.qrels   # MRR, Recall, nDCG, MAP per mode
  adsearch tune --queries q.tsv --qrels q.qrels --save   # fusion settings fitted to your judgments
  adsearch migrate --from adsearch-data --to http://qdrant:6333   # embedded -> server, no re-OCR

Every option can also be set in the environment as ADSEARCH_<OPTION> (e.g. ADSEARCH_DB=/data/ads)."""


def say(text: str, **options) -> None:
    """Print one line that names files, URLs or values read from them, control characters escaped
    (engine.terminal): what the CLI prints about files goes through `printable`, here or at the call."""
    print(printable(text), **options)


def store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("store")
    group.add_argument("--db", type=Path, help="embedded store folder (default ./adsearch-data)")
    group.add_argument("--collection", help="collection name (default ads)")
    group.add_argument(
        "--qdrant-url", help="use a Qdrant server, e.g. http://localhost:6333, instead of --db"
    )
    _server_options(group)


def _server_options(group) -> None:
    """Options for a Qdrant server: its key, and the layout of a collection created there."""
    group.add_argument("--qdrant-api-key", help="API key for the Qdrant server")
    group.add_argument(
        "--shard-number", type=int, help="shards of a new collection on a Qdrant server/cluster"
    )
    group.add_argument(
        "--replication-factor", type=int, help="copies of each shard of a new collection on a Qdrant cluster"
    )


def model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument(
        "--clip-model",
        help="image-text model (CLIP or SigLIP, chosen by its config): Hugging Face id or local folder "
        "(default openai/clip-vit-base-patch32)",
    )
    group.add_argument(
        "--text-model", help="dense text model: HF id or local folder (default all-MiniLM-L6-v2)"
    )
    group.add_argument(
        "--require-visual",
        action="store_true",
        default=None,
        help="fail instead of running text-only when the CLIP weights cannot be loaded",
    )
    group.add_argument(
        "--clip-precision",
        choices=PRECISIONS,
        help="CLIP weights (default int8: several times faster on CPU than fp32)",
    )
    group.add_argument(
        "--text-precision",
        choices=PRECISIONS,
        help="dense text model weights (default fp32: int8 measurably lowers quality). Changing either "
        "precision re-encodes the collection on the next ingest; the OCR is kept",
    )


def ocr_options(parser: argparse.ArgumentParser, flag: str = "--ocr-readers") -> None:
    group = parser.add_argument_group("OCR")
    group.add_argument(
        flag,
        dest="ocr_readers",
        metavar="READERS",
        help="OCR readers whose words are merged, comma-separated: tesseract, ppocr (default "
        f"{','.join(DEFAULT_READERS)}; env ADSEARCH_OCR_READERS). A reader that cannot load is left out "
        "with one warning line. Changing them re-OCRs the collection on the next ingest",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adsearch",
        description="Hybrid OCR + visual search for image ads: OCR text (PP-OCR, Tesseract), CLIP, dense "
        "and BM25 vectors in Qdrant, fused with reciprocal rank fusion.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ingest",
        help="add a folder of images to the collection",
        description="Read images (JPEG, PNG, BMP, WEBP, GIF first frame, TIFF) recursively, OCR them "
        "in parallel, embed and store one point per distinct image. Unchanged files are skipped; "
        "identical bytes under several paths become one point. Bad files are reported and skipped. "
        "Every image gets the fields folder, format, width, height, bytes, has_text, ocr_confidence, "
        "ingested_at and file_date; --metadata adds your own. "
        "Exit status: 0 all good, 1 some files or metadata rows failed, 2 nothing could run.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="SOURCE",
        help="image files or folders, or fsspec URLs: s3://bucket/prefix, gs://..., file:///..., "
        "https://host/list.txt (a .txt/.lst URL lists image URLs, one per line; s3/gs/http need "
        "the s3fs/gcsfs/aiohttp packages: pip install 'adsearch[s3]')",
    )
    p.add_argument("--workers", type=int, help="OCR worker processes (default: one per core)")
    p.add_argument("--batch-size", type=int, help="images per encoding/upsert batch (default 16)")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="decode, OCR and encode on a Dask cluster: its scheduler (tcp://host:8786; workers need "
        "adsearch installed and the files and models at the same paths), or local[:N] for N worker "
        "processes here. This machine writes the points to the store (--db or --qdrant-url)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--metadata",
        type=Path,
        metavar="FILE",
        help="per-image fields (advertiser, brand, date, topics, ...) from a CSV or JSON Lines file with a "
        "`path` column (relative to the folder given) or a `sha256` column; filter with search --where. "
        "Run again with a changed file to update the fields without re-OCR. Bad rows: one line each, skipped",
    )
    p.add_argument(
        "--schema",
        type=Path,
        metavar="FILE",
        help='field types for --metadata: JSON {"field": "type"}, types keyword, keywords (list; CSV cells '
        "split on ';'), integer, float, datetime, bool (stored as keyword true/false). Default: inferred",
    )
    store_options(p)
    model_options(p)
    ocr_options(p)

    p = sub.add_parser(
        "search",
        help="search the collection by text or image",
        description="Embed the query once per channel and let Qdrant fuse the channels (RRF). Modes: "
        "hybrid (image + text + keywords), visual (CLIP), text (dense OCR text), keyword (BM25 OCR text).",
    )
    p.add_argument("query", nargs="?", default="", help="text query (none: browse the filtered images)")
    p.add_argument("--image", type=Path, help="query by this image (its OCR text feeds the text channels)")
    p.add_argument(
        "--mode",
        default="hybrid",
        choices=list(MODES),
        help="duplicate: other copies of the --image ad (resized, recompressed, cropped, restickered), "
        "by perceptual fingerprint, no model; only same-creative hits",
    )
    p.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    p.add_argument("--offset", type=int, default=0, help="skip this many hits (paging)")
    p.add_argument("--weights", help="RRF weights per channel, e.g. image=1,text=2,keywords=1")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="CLAUSE",
        help="only images where CLAUSE holds (repeatable, all must hold): brand=Audi, year>=2014, "
        "date<2015-01-01, 'topic in [cars,travel]', has_text=true, format!=GIF",
    )
    p.add_argument("--sort", default="ingested_at", help="browse order without a query (default ingested_at)")
    p.add_argument("--asc", action="store_true", help="browse in ascending order (default: descending)")
    p.add_argument(
        "--diverse", action="store_true", help="no near-copies: re-rank by maximal marginal relevance"
    )
    p.add_argument("--positive", action="append", default=[], metavar="ID", help="more like this image")
    p.add_argument("--negative", action="append", default=[], metavar="ID", help="unlike this image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    store_options(p)
    model_options(p)
    ocr_options(p)

    p = sub.add_parser(
        "evaluate",
        help="measure retrieval quality on labelled queries",
        description="Run every query in every mode against the current collection and report MRR@k, "
        "Recall@1/5/k, P@k, nDCG@k and MAP@100 per mode (ir-measures). Writes OUT (markdown), one TREC "
        "run file per mode, a per-query TSV and a PNG chart beside it. Image keys in the qrels are the "
        "stored paths relative to --root (default: the folder that holds every stored image).",
    )
    p.add_argument("--queries", type=Path, required=True, help="query file: query_id<TAB>text per line")
    p.add_argument("--qrels", type=Path, required=True, help="TREC qrels: query_id 0 image_key grade")
    p.add_argument(
        "--modes", default="hybrid,visual,text,keyword", help="comma-separated (default: all four)"
    )
    p.add_argument("-k", type=int, default=10, help="metric cutoff (default 10)")
    p.add_argument("--root", type=Path, help="folder the image keys are relative to")
    p.add_argument("--out", type=Path, default=Path("evaluation/report.md"), help="report path (.md)")
    store_options(p)
    model_options(p)

    p = sub.add_parser(
        "tune",
        help="choose fusion settings (RRF k, weights, prefetch) on labelled queries",
        description="Grid-search the hybrid fusion settings (RRF k, each channel's weight, prefetch "
        "depth) on labelled queries against the current collection, scored as `evaluate` scores them. "
        "Prints the current settings' figure, the best cell's (in-sample) and a k-fold cross-validated "
        "figure (each fold's queries scored with the setting chosen on the other folds: what to expect "
        "on new queries), then the top cells. --save stores the best in the collection, where search "
        "(CLI, API, web UI) uses it as its default; ADSEARCH_RRF_K / _WEIGHTS / _PREFETCH_LIMIT in the "
        "environment still win. A running server picks it up when restarted.",
    )
    p.add_argument("--queries", type=Path, help="query file: query_id<TAB>text per line")
    p.add_argument("--qrels", type=Path, help="TREC qrels: query_id 0 image_key grade")
    p.add_argument("--metric", default="ndcg@10", help="what to maximise: ndcg@10 (default), mrr@10, "
                   "recall@10, p@10, recall@1, recall@5")  # fmt: skip
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds over queries (default 5)")
    p.add_argument("--save", action="store_true", help="store the best settings as this collection's default")
    p.add_argument("--forget", action="store_true", help="drop saved settings: back to the built-in defaults")
    p.add_argument("--grid", type=Path, help="write every cell and its figure to this TSV file")
    p.add_argument("--root", type=Path, help="folder the image keys are relative to")
    store_options(p)
    model_options(p)

    p = sub.add_parser(
        "ocr",
        help="show what OCR reads in one image",
        description="Run the OCR step on one image: each reader's words (text, confidence, box), then "
        "the merged result that ingest stores (overlapping words: the more confident reading wins).",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    ocr_options(p, "--readers")

    p = sub.add_parser(
        "migrate",
        help="copy a collection to a Qdrant server (or another folder) without re-running OCR",
        description="Copy every point (all vectors, payload, same ids) and the collection metadata "
        "from one store to another: an embedded folder to a Qdrant server or cluster when one machine "
        "is no longer enough, or back. No OCR, no encoding. Interrupted? Rerun: copied points are "
        "overwritten, the rest added; nothing in the target is deleted.",
    )
    p.add_argument("--from", dest="source", required=True, help="embedded store folder, or a Qdrant URL")
    p.add_argument("--to", dest="target", required=True, help="Qdrant URL (http://host:6333), or a folder")
    p.add_argument("--collection", help="collection to copy (default ads)")
    p.add_argument("--to-collection", help="name in the target (default: the same)")
    _server_options(p)
    p.add_argument("--batch-size", type=int, default=256, help="points per request (default 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "facets",
        help="count the images per value of a field",
        description="How many images have each value of FIELD (a keyword, list or integer field: built-in "
        "ones such as format, folder, width, or metadata given at ingest), among those matching --where.",
    )
    p.add_argument("field", help="the field to count, e.g. brand, topic, format, folder")
    p.add_argument("--where", action="append", default=[], metavar="CLAUSE", help="as in `search`")
    p.add_argument("--limit", type=int, default=20, help="at most this many values (default 20, max 200)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    store_options(p)

    p = sub.add_parser(
        "doctor",
        help="what this installation will do, and why",
        description="One screen: Tesseract and its languages, the OCR readers that load, each model (where "
        "it loads from, precision, runtime, vector size), the store (where, reachable, collection, "
        "images, which pipeline made them) and what is off. Never uses the network. Exit status 0 when "
        "everything the configuration asks for works, 1 otherwise.",
    )
    store_options(p)
    model_options(p)
    ocr_options(p)

    p = sub.add_parser(
        "stats", help="what the collection holds", description="Collection size, text coverage, models."
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    store_options(p)

    p = sub.add_parser(
        "models",
        help="download the model weights for a machine without network, or check such a folder",
        description="`models download` fetches the CLIP weights from the Hugging Face hub (or copies a "
        "local model folder) into DIR/clip with DIR/manifest.json (model ids, revisions, file hashes); "
        "the dense text model, BM25 and PP-OCR ship inside installed packages and are only recorded. "
        "`models check DIR` verifies such a folder without network. Then use --clip-model DIR/clip "
        "(or ADSEARCH_CLIP_MODEL=DIR/clip) on the offline machine.",
    )
    models_sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    m = models_sub.add_parser(
        "download",
        help="fetch the CLIP weights into a folder, with a manifest",
        description="Fetch CLIP's config, tokenizer, image processor and weights (safetensors when the "
        "repository has them) with huggingface_hub into DIR/clip and write DIR/manifest.json.",
    )
    m.add_argument(
        "--clip",
        default=None,
        metavar="MODEL_ID",
        help="Hugging Face id or local model folder (default openai/clip-vit-base-patch32)",
    )
    m.add_argument("--revision", help="branch, tag or commit of the hub repository (default main)")
    m.add_argument("--to", type=Path, required=True, metavar="DIR", help="folder to write")
    m = models_sub.add_parser(
        "check",
        help="verify a downloaded folder offline (hashes, loads, vector sizes)",
        description="Recompute every file hash against DIR/manifest.json, load DIR/clip with no network, "
        "encode one image and one text and compare the vector size with the width the model declares. "
        "Exit status: 0 all checks pass, 1 some failed, 2 usage error.",
    )
    m.add_argument("folder", type=Path, metavar="DIR", help="a folder written by `models download`")
    for command in added_commands().values():
        command.add_parser(sub)
        if command.after:
            _list_after(sub, command.name, command.after)
    return parser


def _list_after(sub: argparse._SubParsersAction, name: str, after: str) -> None:
    """Move an added command next to the built-in one it belongs after, in `--help` and in choices."""
    choices = list(sub.choices.items())
    moved = next(item for item in choices if item[0] == name)
    choices.remove(moved)
    at = next(i for i, (n, _) in enumerate(choices) if n == after) + 1
    sub.choices.clear()
    sub.choices.update([*choices[:at], moved, *choices[at:]])
    helps = sub._choices_actions  # argparse keeps the help lines in a list of its own
    line = next(a for a in helps if a.dest == name)
    helps.remove(line)
    helps.insert(next(i for i, a in enumerate(helps) if a.dest == after) + 1, line)


@dataclass(frozen=True)
class Command:
    """A command another package adds to `adsearch` (entry point group COMMAND_GROUP, e.g. `serve`
    from api/, so the engine never imports its faces): its name, how it adds its sub-parser (given
    the sub-parsers; store_options / model_options add the common flags), and what it runs (the
    parsed arguments -> exit status)."""

    name: str
    add_parser: Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]
    after: str | None = None  # the built-in command it is listed after in `--help` (default: last)


COMMAND_GROUP = "adsearch.commands"


@cache
def added_commands() -> dict[str, Command]:
    """The commands installed packages register under COMMAND_GROUP, by name."""
    from importlib.metadata import entry_points

    found = {}
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        command = entry.load()
        if command.name in COMMANDS or command.name in found:
            raise UsageError(f"command '{command.name}' ({entry.value}) is registered twice")
        found[command.name] = command
    return found


def settings_of(args: argparse.Namespace) -> Settings:
    fields = [
        "db", "collection", "qdrant_url", "qdrant_api_key", "shard_number", "replication_factor",
        "clip_model", "text_model", "require_visual", "clip_precision", "text_precision", "workers",
        "batch_size", "host", "port", "allowed_hosts", "max_concurrent_requests", "cluster",
    ]  # fmt: skip
    overrides = {f: getattr(args, f, None) for f in fields}
    if getattr(args, "ocr_readers", None) is not None:
        try:
            overrides["ocr_readers"] = parse_readers(args.ocr_readers)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return Settings().with_overrides(**overrides)


def _quiet_libraries(verbose: bool) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module="transformers")
    handler = logging.StreamHandler()  # log messages name files: no control characters reach the terminal
    handler.setFormatter(PrintableFormatter("adsearch: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def open_library(settings: Settings, need_collection: bool = False, load_models: bool = True):
    """Open the collection (its errors come before the slow model loading), then the encoders."""
    from engine.library import Library

    library = Library(settings)
    try:
        if need_collection and not library.exists():
            where = settings.qdrant_url or settings.db
            raise UsageError(
                f"collection '{settings.collection}' does not exist in {where}: run `adsearch ingest` first"
            )
        if load_models:
            library.encoders  # noqa: B018 (load now: a CLIP failure is reported before any work)
    except BaseException:
        library.close()
        raise
    return library


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.ingest.metadata import load_metadata
    from engine.media.sources import is_url

    settings = settings_of(args)
    if args.schema and not args.metadata:
        raise UsageError("--schema gives the types of a --metadata file: give that file too")

    def on_error(path: str, reason: str) -> None:
        tqdm.write(f"error: {printable(path)}: {printable(reason)}", file=sys.stderr)

    with open_library(settings, load_models=False) as library:
        extra = {}
        if args.metadata:  # read and checked before the models load: a bad file fails fast
            recorded = library.store.metadata().get("fields") or {}
            extra["metadata"] = load_metadata(args.metadata, args.schema, known=recorded)
            print(printable(extra["metadata"].describe()))
        library.encoders  # noqa: B018 (load now: a CLIP failure is reported before any work)
        sources = [p if is_url(p) else Path(p) for p in args.paths]
        report = library.ingest(sources, on_error, progress=not args.no_progress, **extra)
        total = library.store.count()
    print(printable(report.summary()))
    print(f"collection '{printable(settings.collection)}' now holds {total} images")
    return 1 if report.failed or report.metadata_skipped else 0


def cmd_search(args: argparse.Namespace) -> int:
    from engine.media.originals import query_image
    from engine.search import IMAGE_OFF_NOTE, parse_weights

    # every check on the arguments comes before the store is opened and the models are loaded
    if not 1 <= args.k <= 1000:
        raise UsageError(f"-k must be between 1 and 1000, not {args.k}")
    if not 0 <= args.offset <= 10_000:
        raise UsageError(f"--offset must be between 0 and 10000, not {args.offset}")
    weights = parse_weights(args.weights)
    settings = settings_of(args)
    image = query_image(args.image.read_bytes(), settings) if args.image else None
    with open_library(settings, need_collection=True) as library:
        response = library.search(
            args.query, image=image, where=args.where, mode=args.mode, k=args.k, offset=args.offset,
            weights=weights, sort=args.sort, descending=not args.asc, diverse=args.diverse,
            positive=args.positive, negative=args.negative,
        )  # fmt: skip
    if args.json:
        print(json.dumps(response.to_dict(), indent=2))
        return 0
    for note in response.notes:
        if note != IMAGE_OFF_NOTE:  # the model loader has said so in its one line
            print(f"note: {printable(note)}")
    label = args.query or (str(args.image) if args.image else "everything")
    about = "" if response.total_exact else "about "
    total = f" of {about}{response.total} matching" if response.total is not None else ""
    print(f"{len(response.hits)} hits{total} for '{printable(label)}' ({response.mode}: "
          f"{', '.join(response.channels)})")  # fmt: skip
    for hit in response.hits:
        channels = " ".join(f"{c}#{m.rank}" for c, m in hit.channels.items()) or "-"
        path = hit.paths[0] if hit.paths else hit.id
        print(f"{hit.rank:>3}. {hit.score:.4f}  {printable(path)}  [{channels}]")
        if hit.snippet:
            print(f"       “{printable(hit.snippet)}”")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.admin.doctor import diagnose

    os.environ["HF_HUB_OFFLINE"] = "1"  # doctor says what works here, without the network
    report = diagnose(settings_of(args))
    print("\n".join(printable(line) for line in report.lines()))
    print("everything asked for works" if report.ok else "something asked for does not work (see fail lines)")
    return 0 if report.ok else 1


def cmd_facets(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 200:
        raise UsageError("--limit must be between 1 and 200")
    settings = settings_of(args)
    with open_library(settings, load_models=False, need_collection=True) as library:
        counts = library.facets(args.field, args.where, args.limit)
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    print(f"{printable(args.field)} ({counts['type']}):")
    for row in counts["values"]:
        print(f"  {row['count']:>7}  {printable(row['value'])}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.quality.evaluate import evaluate, read_qrels, read_queries, report_markdown, write_report

    modes = list(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))  # each once
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise UsageError(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(MODES)}")
    if not modes:
        raise UsageError(f"--modes names no mode: use one or more of {', '.join(MODES)}")
    if not 1 <= args.k <= 100:
        raise UsageError(f"-k must be between 1 and 100, not {args.k}")
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    settings = settings_of(args)
    with open_library(settings, need_collection=True) as library:
        result = evaluate(library, queries, qrels, modes, k=args.k, root=args.root)
    title = f"Evaluation: {args.queries.name}"
    files = write_report(result, args.out, title=title)
    print(printable_lines(report_markdown(result, title)))
    print("wrote " + ", ".join(printable(f) for f in files))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from engine.quality.evaluate import read_qrels, read_queries
    from engine.quality.tune import forget, grid_tsv, report_lines, save, tune

    if args.forget:
        with open_library(settings_of(args), need_collection=True, load_models=False) as library:
            forget(library)
        print("saved fusion settings dropped: search uses the built-in defaults (or the environment's)")
        return 0
    if not (args.queries and args.qrels):
        raise UsageError("give --queries and --qrels (or --forget)")
    if not 2 <= args.folds <= 20:
        raise UsageError(f"--folds must be between 2 and 20, not {args.folds}")
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    with open_library(settings_of(args), need_collection=True) as library:

        def progress(done: int, total: int) -> None:
            if done == total or done % 25 == 0:
                print(f"\rranking queries: {done}/{total}", end="\n" if done == total else "", flush=True)

        result = tune(library, queries, qrels, args.metric, args.folds, root=args.root, progress=progress)
        print("\n".join(printable(line) for line in report_lines(result)))
        if args.grid:
            args.grid.write_text(grid_tsv(result))
            print(f"wrote {len(result.cells)} cells to {printable(args.grid)}")
        if args.save:
            record = save(library, result, source=f"{args.queries.name} / {args.qrels.name}")
            figures = f"{record['metric']} {record['in_sample']:.4f}, cv {record['cross_validated']:.4f}"
            print(f"saved as this collection's search default: {printable(result.best.label())} ({figures})")
    return 0


def cmd_ocr(args: argparse.Namespace) -> int:
    from engine.ingest.ocr import usable_ocr
    from engine.media.images import decode_image
    from ocr_text import combine, min_confidence, read_each

    settings = settings_of(args)
    decoded = decode_image(args.file.read_bytes(), settings.max_image_pixels)
    ocr = usable_ocr(settings.ocr_settings())
    readings, errors = read_each(decoded.image, ocr)
    result = combine(readings, ocr, errors)
    if args.json:
        out = {"text": result.text, "raw_text": result.raw_text, "confidence": result.confidence}
        by_reader = {name: [asdict(w) for w in words] for name, words in readings.items()}
        out |= {"readers": by_reader, "errors": errors, "words": result.words_as_dicts()}
        print(json.dumps(out, indent=2))
        return 0
    print(f"{printable(args.file)} ({decoded.width}x{decoded.height} {decoded.format})")
    for name, words in readings.items():
        cut = min_confidence(ocr, name)
        print(f"=== {name}: {len(words)} words read (kept at confidence >= {cut:g}) " + "=" * 16)
        _print_words(words)
    for name, reason in errors.items():
        print(f"=== {name}: failed: {printable(reason)}")
    print(f"=== merged ({' + '.join(result.readers)}) " + "=" * 30)
    print(printable_lines(result.text) if result.text else "(no text found)")
    counts = ", ".join(f"{n} {c}" for n, c in result.words_by_reader().items())
    print(f"--- {len(result.words)} words kept ({counts}), mean confidence {result.confidence:.1f}")
    _print_words(result.words, reader=len(result.readers) > 1)
    return 0


def _print_words(words, reader: bool = False) -> None:
    for w in words:
        who = f"{w.reader:<10}" if reader else ""
        text = printable(w.text)
        print(f"{w.confidence:6.1f}  {who}{text:<24} at x={w.left} y={w.top} w={w.width} h={w.height}")


def _store_at(location: str, settings: Settings):
    """The store a --from/--to value names: a Qdrant URL, or an embedded store folder."""
    from engine.store import open_store

    if location.startswith(("http://", "https://")):
        return open_store(settings.with_overrides(qdrant_url=location))
    return open_store(settings.model_copy(update={"qdrant_url": None, "db": Path(location)}))


def cmd_migrate(args: argparse.Namespace) -> int:
    from engine.admin.migrate import copy_collection

    if not 1 <= args.batch_size <= 1024:  # a bigger request can pass a Qdrant server's 32 MB limit
        raise UsageError(f"--batch-size must be between 1 and 1024, not {args.batch_size}")
    if os.path.abspath(args.source) == os.path.abspath(args.target) and not args.to_collection:
        raise UsageError("--from and --to are the same store")
    base = settings_of(args)
    with _store_at(args.source, base) as source:
        target_settings = base.with_overrides(collection=args.to_collection)
        with _store_at(args.target, target_settings) as target:
            report = copy_collection(source, target, args.batch_size, progress=not args.no_progress)
    say(
        f"copied {report.copied} of {report.source_count} points from {args.source} to {args.target} "
        f"(collection '{target_settings.collection}' there now holds {report.target_count})"
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with open_library(settings, load_models=False) as library:
        stats = library.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    where = printable(settings.qdrant_url or settings.db)
    print(f"collection {printable(stats['collection'])} ({stats['backend']}: {where})")
    print(f"  images:            {stats['images']}")
    print(f"  with OCR text:     {stats['with_text']} ({stats['ocr_coverage']:.0%})")
    print(f"  without OCR text:  {stats['without_text']}")
    print(f"  with CLIP vector:  {stats['with_image_vector']}")
    dup = stats["duplicates"]
    print(f"  with fingerprint:  {stats['with_creative_vector']}")
    if dup.get("skipped"):
        print(f"  duplicate groups:  {dup['skipped']}")
    else:
        print(f"  duplicate groups:  {dup['groups']} ({dup['images_in_groups']} images; same creative at "
              f"fingerprint cosine >= {dup['threshold']})")  # fmt: skip
    for group in dup["largest"][:5]:
        print(f"    {group['size']} copies, e.g. {printable(group['example'])}")
    print(f"  formats:           {', '.join(f'{k} {v}' for k, v in stats['formats'].items()) or '-'}")
    for channel, model in (stats["models"] or {}).items():
        print(f"  model {channel:<9}   {printable(model or 'none (CLIP weights unavailable)')}")
    for tower, check in ((stats.get("pipeline") or {}).get("quantisation") or {}).items():
        print(f"  int8 {tower:<10}   {_quantisation_line(check)}")
    print(f"  fusion:            {printable(_fusion_line(stats['fusion']))}")
    return 0


def _fusion_line(fusion: dict) -> str:
    """The fusion settings search uses, and where they came from."""
    weights = ", ".join(f"{c} {w:g}" for c, w in fusion["weights"].items())
    line = f"RRF k {fusion['rrf_k']}, weights {weights}, prefetch {fusion['prefetch_limit']}"
    tuned = fusion["tuned"]
    if not tuned:
        return line + " (built-in defaults)"
    figures = f"{tuned['metric']} {tuned['in_sample']:.4f}, cross-validated {tuned['cross_validated']:.4f}"
    return line + f" (tuned on {tuned['source']}: {figures})"


def _quantisation_line(check: dict) -> str:
    """One tower's int8 check as `adsearch stats` prints it."""
    if not check.get("checked", True) or "cosine" not in check:
        return f"{check.get('precision', '?')}, unchecked (PyTorch path)"
    from engine.models.onnx_towers import compared

    cosine = compared("cosine", check["cosine"], check.get("min_cosine", QUANT_MIN_COSINE))
    agreement = compared("agreement", check["agreement"], check.get("min_agreement", QUANT_MIN_AGREEMENT))
    return f"{check.get('precision', '?')}: {cosine}, top-10 {agreement} with fp32 on the probe set"


def cmd_models(args: argparse.Namespace) -> int:
    from engine.config import DEFAULT_CLIP_MODEL
    from engine.models import download as models

    if args.models_command == "download":
        clip = args.clip or DEFAULT_CLIP_MODEL
        at = f" @ {args.revision}" if args.revision else ""
        say(f"fetching CLIP {clip}{at} into {args.to}", flush=True)
        path = models.download(clip, args.to, args.revision)
        manifest = json.loads(path.read_text())
        entry = manifest["models"]["clip"]
        folder = args.to / entry["folder"]
        for name in entry["files"]:
            say(f"  {entry['folder']}/{name}  {(folder / name).stat().st_size:,} bytes")
        say(f"clip: {entry['source']} @ {entry['revision'] or 'local copy'}")
        for name, other in manifest["models"].items():
            if other.get("bundled"):
                say(f"{name}: {other['source']} (bundled in {other['package']} {other['version']})")
        say(f"manifest: {path}")
        say(f"check it with `adsearch models check {args.to}`; use it with --clip-model {folder}")
        return 0
    if not args.folder.is_dir():
        raise UsageError(f"{args.folder} is not a folder")
    report = models.check(args.folder)
    for line in report.lines:
        print(printable(line))
    if not report.ok:
        print(f"{printable(args.folder)}: checks failed")
        return 1
    clip_dir = args.folder / models.CLIP_FOLDER
    say(f"all checks passed: use it with --clip-model {clip_dir} (or ADSEARCH_CLIP_MODEL={clip_dir})")
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "search": cmd_search,
    "evaluate": cmd_evaluate,
    "tune": cmd_tune,
    "ocr": cmd_ocr,
    "migrate": cmd_migrate,
    "stats": cmd_stats,
    "facets": cmd_facets,
    "doctor": cmd_doctor,
    "models": cmd_models,
}


def _option_for(parser: argparse.ArgumentParser, command: str, field: str) -> str | None:
    """The option of `command` that sets the Settings field `field` (e.g. --batch-size), if any."""
    if field == "weights":  # `search --weights` weighs one query; it never reaches Settings.weights
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            for option in action.choices[command]._actions:
                if option.dest == field and option.option_strings:
                    return max(option.option_strings, key=len)
    return None


def _bad_value(error: dict, parser: argparse.ArgumentParser, command: str) -> str:
    """One line for one pydantic error: which option / environment variable, and why."""
    reason = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return f"bad settings: {reason}"
    field, *inside = error["loc"]
    name = f"ADSEARCH_{str(field).upper()}" + "".join(f"[{part}]" for part in inside)
    option = _option_for(parser, command, str(field))
    return f"bad value for {option} / {name}: {reason}" if option else f"bad setting {name}: {reason}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `adsearch` console script."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ocr_text import TesseractMissingError

    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries(args.verbose)
    try:
        run = COMMANDS.get(args.command) or added_commands()[args.command].run
        return run(args)
    except (AdsearchError, TesseractMissingError) as exc:
        print(f"adsearch: error: {printable(exc)}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"adsearch: error: {printable(exc.filename)}: no such file", file=sys.stderr)
        return 2
    except IsADirectoryError as exc:
        folder = printable(exc.filename)
        print(f"adsearch: error: {folder}: is a folder; give one image file", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a bad ADSEARCH_* environment variable or a bad option value
        for error in exc.errors():
            print(f"adsearch: error: {printable(_bad_value(error, parser, args.command))}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # an ADSEARCH_* variable that is not even parseable (e.g. not JSON)
        reason = printable(exc)
        print(f"adsearch: error: bad setting: {reason} (lists are JSON, e.g. '[700, 1600]')", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adsearch: interrupted; what was stored so far is kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
