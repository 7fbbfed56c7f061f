"""docker/: Docker cannot run on these machines, so the files are checked statically against the code
they configure: every ADSEARCH_* variable is a real setting, the commands parse, the cluster wiring
is complete, the image runs as a non-root user."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from api.settings import ServeSettings
from engine.cli import build_parser
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in COMPOSE["services"][service].get("environment", {}).items()}


def test_dockerfile_is_slim_non_root_and_serves_the_api():
    steps = _instructions()
    kinds = [k for k, _ in steps]
    assert steps[0][0] == "FROM" and "slim" in steps[0][1]
    user = [v for k, v in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert kinds.index("USER") > max(
        i for i, k in enumerate(kinds) if k == "RUN"
    )  # nothing runs as root after
    assert "tesseract-ocr" in DOCKERFILE and "download.pytorch.org/whl/cpu" in DOCKERFILE
    for _, args in (s for s in steps if s[0] == "COPY"):
        for source in shlex.split(args)[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} is missing"
    env = dict((part.split("=", 1)) for k, v in steps if k == "ENV" for part in shlex.split(v) if "=" in part)
    settings_env = {k for k in env if k.startswith("ADSEARCH_")}
    assert settings_env and all(
        k.removeprefix("ADSEARCH_").lower() in ServeSettings.model_fields for k in settings_env
    )
    expose = next(v for k, v in steps if k == "EXPOSE")
    assert int(expose) == int(env["ADSEARCH_PORT"])
    entry = [v for k, v in steps if k == "ENTRYPOINT"][0]
    cmd = [v for k, v in steps if k == "CMD"][0]
    assert yaml.safe_load(entry) == ["adsearch"]
    build_parser().parse_args(yaml.safe_load(cmd))  # a real adsearch command
    health = next(v for k, v in steps if k == "HEALTHCHECK")
    assert "/health" in health


def test_dockerignore_keeps_data_and_venv_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "adsearch-data", "bench"} <= set(ignored)


@pytest.mark.parametrize("service", ["api", "api-cluster"])
def test_compose_api_settings_are_real_settings(service):
    env = _env(service)
    for key in env:
        assert key.startswith("ADSEARCH_")
        assert key.removeprefix("ADSEARCH_").lower() in ServeSettings.model_fields, key
    assert env["ADSEARCH_HOST"] == "0.0.0.0"
    host = env["ADSEARCH_QDRANT_URL"].split("//")[1].split(":")[0]
    assert host in COMPOSE["services"] and host in COMPOSE["services"][service]["depends_on"]
    ports = COMPOSE["services"][service]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in ports)  # not exposed beyond the host by default


def test_cluster_profile_has_three_bootstrapped_nodes_and_sharding():
    services = COMPOSE["services"]
    nodes = [n for n, s in services.items() if "cluster" in s.get("profiles", []) and n.startswith("qdrant")]
    assert len(nodes) == 3
    for name in nodes:
        node = services[name]
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        command = node["command"]
        assert command[command.index("--uri") + 1] == f"http://{name}:6335"
        if name != nodes[0]:
            assert command[command.index("--bootstrap") + 1] == f"http://{nodes[0]}:6335"
    env = _env("api-cluster")
    shards = re.fullmatch(r"\$\{ADSEARCH_SHARD_NUMBER:-(\d+)\}", env["ADSEARCH_SHARD_NUMBER"])
    replicas = re.fullmatch(r"\$\{ADSEARCH_REPLICATION_FACTOR:-(\d+)\}", env["ADSEARCH_REPLICATION_FACTOR"])
    assert shards and replicas and 1 < int(replicas.group(1)) <= len(nodes)
    settings = Settings(shard_number=shards.group(1), replication_factor=replicas.group(1))
    assert (settings.shard_number, settings.replication_factor) == (3, 2)
    assert {s for s in services if "single" in services[s].get("profiles", [])} == {"qdrant", "api"}


def test_qdrant_server_version_matches_the_client():
    from importlib.metadata import version

    image = COMPOSE["services"]["qdrant"]["image"]
    server = re.search(r"v(\d+)\.(\d+)\.\d+", image)
    client = version("qdrant-client").split(".")
    assert server and server.group(1) == client[0]
    assert abs(int(server.group(2)) - int(client[1])) <= 1  # qdrant-client's supported skew


def test_cluster_profile_runs_ingest_on_a_dask_scheduler_and_scalable_workers():
    services = COMPOSE["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert "cluster" in scheduler["profiles"] and "cluster" in worker["profiles"]
    assert scheduler["entrypoint"][:2] == ["dask", "scheduler"] and "8786" in scheduler["entrypoint"]
    assert worker["entrypoint"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert "container_name" not in worker  # `--scale dask-worker=N` needs distinct names
    # workers see the files and models at the driver's paths
    assert set(worker["volumes"]) == set(services["api-cluster"]["volumes"])
    assert "dask-scheduler" in services["api-cluster"]["depends_on"]
    assert Settings(cluster="tcp://dask-scheduler:8786").cluster == "tcp://dask-scheduler:8786"
    assert shutil.which("dask", path=str(Path(sys.executable).parent))  # the CLI the services run


def test_remote_workers_get_the_worker_settings_local_clusters_get():
    """The dask-worker service points DASK_CONFIG at the file engine/ingest/executors/dask.py applies to
    `local` workers; a process reading it spawns workers without MALLOC_TRIM_THRESHOLD_."""
    import subprocess

    from engine.ingest.executors.dask import WORKER_CONFIG_FILE

    env = COMPOSE["services"]["dask-worker"]["environment"]
    assert env["DASK_CONFIG"] == "/app/" + WORKER_CONFIG_FILE.relative_to(ROOT).as_posix()
    assert env["ADSEARCH_CLIP_MODEL"]  # the shared settings are kept, not replaced
    probe = (
        "import dask, distributed; from distributed.nanny import _get_env_variables; "
        "print(sorted(_get_env_variables('distributed.nanny.pre-spawn-environ')), "
        "dask.config.get('distributed.worker.profile.enabled'))"
    )
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**clean, "DASK_CONFIG": str(WORKER_CONFIG_FILE)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "MALLOC_TRIM_THRESHOLD_" not in out and "OMP_NUM_THREADS" in out and out.strip().endswith("False")


def test_monitoring_profile_scrapes_every_api_service_with_its_key(tmp_path):
    """The `monitoring` profile (issue 24): Prometheus with docker/prometheus.yml scrapes /metrics of
    each API service, by a name that service's Host guard answers, on the port the image serves,
    sending the API key (from another container /metrics needs it: api/routes/metrics.py)."""
    from api import create_app

    services = COMPOSE["services"]
    assert {s for s, d in services.items() if "monitoring" in d.get("profiles", [])} == {"prometheus"}
    prometheus = services["prometheus"]
    assert re.search(r"prom/prometheus:v3\.\d+\.\d+", prometheus["image"])
    assert all(p.startswith("127.0.0.1:") for p in prometheus["ports"])  # its UI stays on this host
    mounts = dict(v.split(":")[:2][::-1] for v in prometheus["volumes"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config_file = ROOT / "docker" / mounts["/etc/prometheus/prometheus.yml"]  # relative to compose.yaml
    config = yaml.safe_load(config_file.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "adsearch"]

    app = create_app(settings=ServeSettings(db=tmp_path / "db"))
    try:
        served = {getattr(route, "path", None) for route in app.routes}
    finally:
        app.state.library.close()
    assert job.get("metrics_path", "/metrics") == "/metrics" and "/metrics" in served

    port = next(v for k, v in _instructions() if k == "EXPOSE")
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    serving = [name for name, s in services.items() if s.get("image") == "adsearch:latest"]
    apis = {name for name in serving if "entrypoint" not in services[name]}  # the image's own `serve`
    assert {t.split(":")[0] for t in targets} == apis == {"api", "api-cluster"}  # every API, nothing else
    for target in targets:
        host, target_port = target.split(":")
        assert target_port == port == "8000"
        answered = ServeSettings(host="0.0.0.0", allowed_hosts=_env(host)["ADSEARCH_ALLOWED_HOSTS"])
        assert host in answered.served_hosts(), f"{host} would get 400 from the Host guard"

    credentials = job["authorization"]["credentials_file"]
    secret = credentials.removeprefix("/run/secrets/")
    assert job["authorization"].get("type", "Bearer") == "Bearer" and credentials != secret
    assert secret in prometheus["secrets"] and COMPOSE["secrets"][secret]["environment"] == "ADSEARCH_API_KEY"
    assert all(_env(api)["ADSEARCH_API_KEY"] == "${ADSEARCH_API_KEY:-}" for api in apis)  # the same key
    assert "prometheus-data" in COMPOSE["volumes"]
