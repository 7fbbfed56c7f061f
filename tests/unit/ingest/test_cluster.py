"""Distributed ingest (engine/ingest/executors/dask.py) on a real local Dask cluster started by the tests:
two worker processes on loopback. The result must be the collection a local ingest makes, a worker
killed mid-run must lose nothing, and bad files and bad addresses get one line each."""

from __future__ import annotations

import os
import shutil
import signal
import threading

import numpy as np
import pytest

from engine.cli import main
from engine.ingest.executors.dask import ClusterError, DaskExecutor
from engine.ingest.ingestor import IngestHooks, ingest
from engine.library import Library
from engine.store import SparseVec, open_store

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def folder(tmp_path_factory, sample_dir):
    """Part of the sample, one corrupt file and one copy of an image under another name."""
    images = tmp_path_factory.mktemp("cluster-images")
    files = sorted((sample_dir / "images").iterdir())[:10]
    for path in files:
        shutil.copy(path, images / path.name)
    shutil.copy(files[0], images / f"copy-of-{files[0].name}")
    (images / "broken.png").write_bytes(files[1].read_bytes()[:300])
    return images


def collection(settings) -> dict:
    with open_store(settings) as store:
        return {p.id: p for p in store.points()}


def assert_same_points(local: dict, remote: dict) -> None:
    assert set(local) == set(remote) and local
    for pid, ours in local.items():
        theirs = remote[pid]
        strip = {"ingested_at"}
        assert {k: v for k, v in ours.payload.items() if k not in strip} == {
            k: v for k, v in theirs.payload.items() if k not in strip
        }
        assert set(ours.vectors) == set(theirs.vectors)
        for name, vector in ours.vectors.items():
            other = theirs.vectors[name]
            if isinstance(vector, SparseVec):
                assert sorted(vector.indices) == sorted(other.indices)
                assert np.allclose(sorted(vector.values), sorted(other.values), atol=1e-5)
            else:
                assert np.allclose(vector, other, atol=1e-4), name


def run(settings, encoders, folder, hooks=None):
    failures: dict[str, str] = {}
    with open_store(settings) as store:
        report = ingest([folder], settings, encoders, store, on_error=failures.__setitem__,
                        progress=False, hooks=hooks)  # fmt: skip
    return report, failures


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, settings, encoders, folder):
    local = settings.with_overrides(db=tmp_path_factory.mktemp("local-db"))
    report, failures = run(local, encoders, folder)
    return local, report, failures


def test_cluster_ingest_makes_the_collection_a_local_ingest_makes(
    tmp_path, settings, encoders, folder, cluster, local_run
):
    local, local_report, local_failures = local_run
    remote = settings.with_overrides(db=tmp_path / "db", cluster=cluster.scheduler_address)
    report, failures = run(remote, encoders, folder)
    assert (report.ingested, report.new_paths) == (local_report.ingested, local_report.new_paths) == (10, 1)
    assert list(failures) == list(local_failures) == [str(folder / "broken.png")]
    assert failures == local_failures  # the same one-line reason
    assert_same_points(collection(local), collection(remote))
    again, _ = run(remote, encoders, folder)  # a rerun on the cluster skips what is stored
    assert (again.ingested, again.unchanged) == (0, 11)  # both paths of the copy known


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, settings, encoders, folder, cluster, local_run):
    with distributed.Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed = threading.Event()

    def kill_one(done: int, found: int) -> None:
        if done >= 2 and not killed.is_set():
            killed.set()
            os.kill(pids[0], signal.SIGKILL)

    remote = settings.with_overrides(db=tmp_path / "db", cluster=cluster.scheduler_address)
    report, failures = run(remote, encoders, folder, IngestHooks(on_progress=kill_one))
    assert killed.is_set()
    assert report.ingested == 10 and list(failures) == [str(folder / "broken.png")]
    assert_same_points(collection(local_run[0]), collection(remote))
    with distributed.Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=60)  # the nanny restarted it
        assert pids[0] not in client.run(os.getpid).values()


def test_unreachable_scheduler_and_bad_addresses_are_one_line(tmp_path, settings, capsys):
    with pytest.raises(ClusterError, match="cannot use the Dask cluster at tcp://127.0.0.1:9"):
        DaskExecutor(settings.with_overrides(cluster="tcp://127.0.0.1:9"), connect_timeout=2)
    code = main(["ingest", str(tmp_path), "--db", str(tmp_path / "db"), "--cluster", "local:0"])
    assert code == 2
    assert "--cluster / ADSEARCH_CLUSTER" in capsys.readouterr().err


def test_cluster_workers_read_urls_through_fsspec(tmp_path, settings, encoders, folder, cluster, local_run):
    """A file:// URL source on the cluster: workers read through fsspec; same points, URL paths."""
    remote = settings.with_overrides(db=tmp_path / "db", cluster=cluster.scheduler_address)
    failures: dict[str, str] = {}
    with open_store(remote) as store:
        report = ingest(
            [f"file://{folder}"], remote, encoders, store, on_error=failures.__setitem__, progress=False
        )
    assert report.ingested == 10 and list(failures) == [f"file://{folder}/broken.png"]
    local, remote_points = collection(local_run[0]), collection(remote)
    assert set(local) == set(remote_points)
    for pid, point in remote_points.items():
        assert all(p.startswith(f"file://{folder}/") for p in point.payload["paths"])
        assert [p.removeprefix("file://") for p in point.payload["paths"]] == local[pid].payload["paths"]
        assert set(point.vectors) == set(local[pid].vectors)
        for name in ("image", "text"):
            if name in point.vectors:
                assert np.allclose(point.vectors[name], local[pid].vectors[name], atol=1e-4)


def test_the_driver_loads_no_models_and_records_the_workers(tmp_path, settings, folder, cluster, local_run):
    """With a cluster, the workers encode: the driver never loads the encoders, and the collection
    records the pipeline the workers report, the one a local ingest records."""
    remote = settings.with_overrides(db=tmp_path / "db", cluster=cluster.scheduler_address)
    with Library(remote) as library:
        report = library.ingest([folder])
        assert library._encoders is None
        recorded = library.store.metadata()
    assert report.ingested == 10
    with open_store(local_run[0]) as store:
        local = store.metadata()
    for key in ("pipeline", "models", "visual", "dims"):
        assert recorded[key] == local[key], key


def test_a_local_cluster_gets_our_worker_settings(settings, monkeypatch):
    """`local:N` workers run without Dask's MALLOC_TRIM_THRESHOLD_ (it makes OCR + encoding fault
    memory in on every file) and without the task profiler; the driver's environment is untouched.
    (The module's own LocalCluster, made with Dask's defaults, put the variable in this process's
    environment, which new workers would inherit: it is cleared first.)"""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with DaskExecutor(settings.with_overrides(cluster="local:1")) as executor:
        seen = executor.client.run(
            lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), __import__("dask").config.get(
                "distributed.worker.profile.enabled"))
        )  # fmt: skip
        assert executor.facts().pipeline["signature"] == executor.signature
    assert list(seen.values()) == [(None, False)]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
