"""Load and overload: where GET /api/search of `adsearch serve` saturates, and how it behaves past that.

One `adsearch serve` process on the ads377 collection built by bench/ingest.py (CLIP ViT-B/32
architecture, random weights), driven from this process on the same machine over localhost:

1. "clients16", closed loop: `--clients` clients each send a known-item statement, wait for the
   answer, send the next, for `--seconds`. The served (200) rate is the saturation rate.
2. "overload", open loop: requests launched on a fixed schedule at `--overload-factor` x that rate
   for `--seconds`, whatever the answers; served (200), shed (503, with Retry-After) and errors
   (timeout 10 s) are counted apart. Meanwhile a prober sends GET /health every 200 ms.
3. Memory: the server's RSS before phase 1, before and right after the burst, and after 10 s of rest.
4. "slow_bodies": the same closed loop with as many clients as the admission limit, for
   `--slow-seconds`, first alone, then beside twice that many raw sockets that send `POST /api/search`
   headers with `Content-Length: 1000` and then one byte every few seconds (issue 21: they used to
   hold every admission slot). Served rates side by side, what the slow sockets were answered, and
   /health/ready probes.

    .venv/bin/python -m bench.load [--clients 16] [--seconds 60] [--overload-factor 2]
                                   [--rate R] [--max-concurrent-requests N]

`--rate R` skips phase 1 and offers R requests/s in phase 2 (after one warm-up pass over the
queries); `--max-concurrent-requests N` sets the server's admission limit (ADSEARCH_MAX_CONCURRENT_REQUESTS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

from api.settings import ServeSettings
from bench.api import free_port, rss_mib, start_server
from bench.common import known_item_queries, percentiles, write_results
from bench.ingest import DB

QUERIES = 265  # the known-item statements, cycled; the searcher caches their embeddings after one pass
REQUEST_TIMEOUT_S = 10.0
HEALTH_INTERVAL_S = 0.2
REST_S = 10.0
LATE_MS = 50.0  # a request launched later than this after its scheduled time was not sent on time
TARGET_P99_MS = 1000.0
RSS_TOLERANCE_MIB = 20.0  # RSS after the rest may exceed RSS before the burst by this much (noise)


@dataclass
class Tally:
    """Outcomes of search requests: served (200 with hits) and shed (503) latencies, errors by kind."""

    served_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    shed_without_retry_after: int = 0
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, ms: float, kind: str) -> None:
        """Record one request that took `ms` and ended as `kind` (see `outcome`; else an error)."""
        with self.lock:
            if kind == "served":
                self.served_ms.append(ms)
            elif kind.startswith("shed"):
                self.shed_ms.append(ms)
                self.shed_without_retry_after += kind != "shed"
            else:
                self.errors[kind] += 1

    def summary(self, seconds: float) -> dict:
        """Counts, served rate and latency percentiles over a phase of `seconds`."""
        served, shed, errors = len(self.served_ms), len(self.shed_ms), sum(self.errors.values())
        return {
            "requests": served + shed + errors,
            "served": served,
            "shed": shed,
            "errors": errors,
            "error_kinds": dict(self.errors),
            "shed_without_retry_after": self.shed_without_retry_after,
            "served_rps": round(served / seconds, 1),
            "served_ms": stats(self.served_ms),
            "shed_ms": stats(self.shed_ms),
        }


def stats(values_ms: list[float]) -> dict:
    """Percentiles of a list of milliseconds, or None for each when it is empty."""
    if values_ms:
        return percentiles(values_ms)
    return {"p50": None, "p95": None, "p99": None, "mean": None, "n": 0}


def outcome(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """'served' (200 with hits), 'shed' (503 with Retry-After), 'shed without Retry-After' or 'status N'."""
    if status == 503:
        return "shed" if "retry-after" in headers else "shed without Retry-After"
    try:
        if status == 200 and json.loads(body).get("hits"):
            return "served"
    except ValueError:
        return "status 200, not JSON"
    return f"status {status}"


def problem_of(exc: Exception) -> str:
    return "timeout" if isinstance(exc, httpx.TimeoutException | TimeoutError) else type(exc).__name__


def retry_after_s(headers: Mapping[str, str]) -> float:
    """Seconds a 503 asks to wait (1 when it does not say, or says it as a date)."""
    try:
        return max(0.0, float(headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


class CpuClock:
    """CPU used by the server process and by this one since creation, as % of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        return time.perf_counter(), server, time.process_time()

    def percent(self) -> dict[str, float]:
        wall, server, client = (b - a for a, b in zip(self.start, self._now(), strict=True))
        return {"server_cpu_pct": round(100 * server / wall), "client_cpu_pct": round(100 * client / wall)}


# -- phase 1: closed loop ---------------------------------------------------------------------


def closed_loop(base_url: str, queries: list[str], clients: int, seconds: float) -> Tally:
    """`clients` threads, each sending one search after another until `seconds` have passed.
    A shed request (503) makes its client wait as Retry-After asks, as a well-behaved client does."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as http:
            for n in range(index, 100_000, clients):
                if time.perf_counter() >= deadline:
                    return
                start = time.perf_counter()
                try:
                    r = http.get("/api/search", params={"q": queries[n % len(queries)], "k": 10})
                except httpx.HTTPError as exc:
                    tally.add((time.perf_counter() - start) * 1000, problem_of(exc))
                    continue
                tally.add((time.perf_counter() - start) * 1000, outcome(r.status_code, r.headers, r.content))
                if r.status_code == 503:
                    time.sleep(min(retry_after_s(r.headers), max(0.0, deadline - time.perf_counter())))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def clients_phase(server_pid: int, base_url: str, queries: list[str], args: argparse.Namespace) -> dict:
    """Phase 1: the closed loop's summary, with `requests_per_s` (served) and `latency_ms` (served)."""
    clock = CpuClock(server_pid)
    summary = closed_loop(base_url, queries, args.clients, args.seconds).summary(args.seconds)
    served = {"requests_per_s": summary.pop("served_rps"), "latency_ms": summary.pop("served_ms")}
    return {"clients": args.clients, "seconds": args.seconds, **summary, **served, **clock.percent()}


def warm_up(base_url: str, queries: list[str]) -> None:
    """One sequential pass over the distinct queries, so that their embeddings are cached as after phase 1."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as http:
        for q in dict.fromkeys(queries):
            http.get("/api/search", params={"q": q, "k": 10})


# -- phase 2: open loop -----------------------------------------------------------------------


class HealthProber(threading.Thread):
    """GET /health every HEALTH_INTERVAL_S (on a fixed schedule) until stopped; keeps latencies and failures."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.ms: list[float] = []
        self.failures: Counter = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as http:
            next_at = time.perf_counter()
            while not self.done.is_set():
                start = time.perf_counter()
                try:
                    status = http.get("/health").status_code
                    self.ms.append((time.perf_counter() - start) * 1000)
                    if status != 200:
                        self.failures[f"status {status}"] += 1
                except httpx.HTTPError as exc:
                    self.failures[problem_of(exc)] += 1
                next_at += HEALTH_INTERVAL_S
                self.done.wait(max(0.0, next_at - time.perf_counter()))

    def stop(self) -> dict:
        """Stop probing; the probes' latency percentiles and failures."""
        self.done.set()
        self.join()
        return {"probes": len(self.ms) + self.failures.total(), "ms": stats(self.ms),
                "failures": self.failures.total(), "failure_kinds": dict(self.failures)}  # fmt: skip


class RawHttp:
    """A minimal HTTP/1.1 GET client over asyncio streams, with kept-alive connections. It spends about
    a tenth of httpx.AsyncClient's CPU per request (0.2-0.6 ms against 4-7 ms on the 2-core bench
    machine): sharing the cores with the server, the generator must take little of what it measures."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of GET `target`. A kept-alive connection that
        the server closed meanwhile is dropped and the request sent again on another."""
        while self.idle:
            connection = self.idle.pop()  # the most recently used: the least likely to be closed
            try:
                return await self._exchange(target, *connection)
            except (ConnectionError, asyncio.IncompleteReadError):
                continue
        return await self._exchange(target, *await asyncio.open_connection(self.host, self.port))

    async def _exchange(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            lines = (line.partition(":") for line in head[1:] if line)
            headers = {name.strip().lower(): value.strip() for name, _, value in lines}
            if "chunked" in headers.get("transfer-encoding", ""):
                raise ValueError("chunked answers are not supported")
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return int(head[0].split()[1]), headers, body

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def send(http: RawHttp, query: str, due: float, tally: Tally, lags_ms: list[float]) -> None:
    """One search due at `due` (perf_counter), bounded by REQUEST_TIMEOUT_S in all, recorded in
    `tally`; how late it started goes to `lags_ms`."""
    start = time.perf_counter()
    lags_ms.append((start - due) * 1000)
    target = "/api/search?" + urlencode({"q": query, "k": 10})
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            kind = outcome(*await http.get(target))
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        kind = problem_of(exc)
    tally.add((time.perf_counter() - start) * 1000, kind)


async def open_loop(port: int, queries: list[str], rate: float, seconds: float) -> tuple[Tally, dict]:
    """Launch searches at `rate`/s on a fixed schedule for `seconds`, never waiting for answers, then
    wait for the last answers. Returns the tally and how well the generator kept to its schedule."""
    tally, lags_ms, http = Tally(), [], RawHttp("127.0.0.1", port)
    scheduled, tasks = int(rate * seconds), []
    t0 = time.perf_counter()
    for i in range(scheduled):
        due = t0 + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        elif time.perf_counter() >= t0 + seconds:
            break  # fell so far behind that the phase is over: the rest was not sent
        tasks.append(asyncio.create_task(send(http, queries[i % len(queries)], due, tally, lags_ms)))
    sending_s = max(time.perf_counter() - t0, seconds)
    await asyncio.gather(*tasks)
    http.close()
    schedule = {
        "scheduled": scheduled,
        "sent": len(tasks),
        "sent_on_time": sum(lag <= LATE_MS for lag in lags_ms),
        "achieved_rps": round(len(tasks) / sending_s, 1),
        "send_lag_ms": stats(lags_ms),
    }
    return tally, schedule


def overload_phase(server_pid: int, port: int, queries: list[str], rate: float, seconds: float) -> dict:
    """Phase 2: the open loop at `rate` with the health prober alongside."""
    clock = CpuClock(server_pid)
    prober = HealthProber(f"http://127.0.0.1:{port}")
    prober.start()
    try:
        tally, schedule = asyncio.run(open_loop(port, queries, rate, seconds))
    finally:
        health = prober.stop()
    summary = tally.summary(seconds)
    return {
        "rate_rps": round(rate, 1),
        "seconds": seconds,
        **schedule,
        "served": summary["served"],
        "shed": summary["shed"],
        "errors": summary["errors"],
        "served_p99_ms": summary["served_ms"]["p99"],
        "shed_p99_ms": summary["shed_ms"]["p99"],
        "health_p99_ms": health["ms"]["p99"],
        "health_failures": health["failures"],
        **{k: v for k, v in summary.items() if k not in ("requests", "served", "shed", "errors")},
        "health": health,
        **clock.percent(),
    }


# -- phase 4: slow request bodies -------------------------------------------------------------

SLOW_BYTE_INTERVAL_S = 5.0  # a slow client sends one byte of its body this often
SLOW_BODY_LENGTH = 1000


def slow_body(port: int, stop: threading.Event, out: list) -> None:
    """One client that trickles a search body; records what the server answered and when."""
    start = time.perf_counter()
    head = (f"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {SLOW_BODY_LENGTH}\r\n\r\n").encode()  # fmt: skip
    result = {"answer": "none before the phase ended", "seconds": None}
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(head)
            while not stop.is_set():
                readable, _, _ = select.select([sock], [], [], SLOW_BYTE_INTERVAL_S)
                if readable:
                    data = sock.recv(200)
                    status = data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "closed"
                    result = {"answer": status, "seconds": round(time.perf_counter() - start, 1)}
                    break
                sock.sendall(b" ")
    except OSError as exc:
        result = {"answer": f"{type(exc).__name__}", "seconds": round(time.perf_counter() - start, 1)}
    out.append(result)


def ready_probes(base_url: str, stop: threading.Event, out: Counter) -> None:
    """GET /health/ready once a second: how often the server said it could take more work."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as http:
        while not stop.wait(1.0):
            try:
                out[http.get("/health/ready").status_code] += 1
            except httpx.HTTPError as exc:
                out[problem_of(exc)] += 1


def slow_bodies_phase(base_url: str, port: int, queries: list[str], limit: int, seconds: float) -> dict:
    """Searches by `limit` closed-loop clients alone, then beside 2 x `limit` slow-body sockets."""
    alone = closed_loop(base_url, queries, limit, seconds).summary(seconds)
    stop, answers, ready = threading.Event(), [], Counter()
    threads = [threading.Thread(target=slow_body, args=(port, stop, answers)) for _ in range(2 * limit)]
    threads.append(threading.Thread(target=ready_probes, args=(base_url, stop, ready)))
    for t in threads:
        t.start()
    time.sleep(1.0)  # the slow sockets have sent their headers
    beside = closed_loop(base_url, queries, limit, seconds).summary(seconds)
    stop.set()
    for t in threads:
        t.join()
    return {"clients": limit, "slow_clients": 2 * limit, "seconds": seconds,
            "byte_interval_s": SLOW_BYTE_INTERVAL_S, "alone": alone, "beside_slow": beside,
            "served_ratio": round(beside["served_rps"] / max(alone["served_rps"], 1e-9), 3),
            "slow_answers": dict(Counter(a["answer"] for a in answers)),
            "slow_answer_seconds": sorted(a["seconds"] for a in answers if a["seconds"] is not None),
            "ready_probes": {str(k): v for k, v in ready.items()}}  # fmt: skip


# -- report -----------------------------------------------------------------------------------


def num(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def verdicts(data: dict) -> tuple[list[str], list[str]]:
    """Each target as a sentence, and the names of those not met."""
    over, memory = data["overload"], data["memory_mib"]
    p99, health_p99 = over["served_p99_ms"], over["health_p99_ms"]
    checks = {
        "served p99": (p99 is not None and p99 <= TARGET_P99_MS,
                       f"served searches p99 {num(p99)} ms (target ≤ {TARGET_P99_MS:.0f} ms)"),
        "health": (over["health_failures"] == 0 and health_p99 is not None and health_p99 <= TARGET_P99_MS,
                   f"/health answered {over['health']['probes'] - over['health_failures']} of "
                   f"{over['health']['probes']} probes, p99 {num(health_p99)} ms (target: all, p99 ≤ "
                   f"{TARGET_P99_MS:.0f} ms)"),
        "memory": (memory["growth_after_burst"] <= RSS_TOLERANCE_MIB,
                   f"server RSS {memory['before_clients16']} MiB at start, {memory['before_overload']} before the burst, {memory['after_overload']} "
                   f"right after, {memory['after_rest']} after {REST_S:.0f} s of rest: "
                   f"{memory['growth_after_burst']:+.1f} MiB (target ≤ {RSS_TOLERANCE_MIB:.0f} MiB)"),
    }  # fmt: skip
    lines = [f"- {text}: **{'met' if ok else 'not met'}**." for ok, text in checks.values()]
    return lines, [name for name, (ok, _) in checks.items() if not ok]


def notes(data: dict) -> list[str]:
    """Facts that qualify the overload figures: generator lag, shedding, errors."""
    over, out = data["overload"], []
    if over["sent_on_time"] < 0.99 * over["scheduled"]:
        out.append(f"The generator fell behind its schedule ({over['sent_on_time']} of {over['scheduled']} "
                   f"requests sent within {LATE_MS:.0f} ms): the server was offered less than intended.")  # fmt: skip
    if over["shed"] == 0:
        out.append("Nothing was shed: either the server has no admission limit or it never had more "
                   "requests in flight than its limit, so the excess queued.")  # fmt: skip
    elif over["shed_without_retry_after"]:
        out.append(f"{over['shed_without_retry_after']} of the 503 answers had no Retry-After header.")
    if over["errors"]:
        kinds = ", ".join(f"{n} {kind}" for kind, n in over["error_kinds"].items())
        out.append(f"{over['errors']} requests failed otherwise ({kinds}).")
    return out


def cache_line(cache: dict | None) -> str:
    if not cache:
        return "not measured"
    return f"{cache['hits']:,} hits, {cache['misses']:,} misses, hit rate {100 * cache['hit_rate']:.2f} %"


def report(data: dict) -> str:
    """The markdown: the two phases' tables and what they mean."""
    c, o, s = data["clients16"], data["overload"], data["settings"]
    n = s["max_concurrent_requests"]
    limit = f"admission limit {n} (`--max-concurrent-requests`)"
    if c is None:
        closed = f"| skipped (`--rate {o['rate_rps']}` given) | | | | | | | |"
    else:
        lat = c["latency_ms"]
        closed = (f"| {c['requests']} | {c['requests_per_s']} | {c['errors']} | {c['shed']} | {num(lat['p50'])} | "
                  f"{num(lat['p95'])} | {num(lat['p99'])} | {c['server_cpu_pct']} % |")  # fmt: skip
    sm, hm = o["served_ms"], o["health"]["ms"]
    lines, failed = verdicts(data)
    share = 100 * o["served"] / max(1, o["sent"])
    origin = "set by `--rate`" if s["rate_given"] else f"{s['overload_factor']}x saturation"
    verdict = ["All targets met." if not failed else f"Not met: {', '.join(failed)}.", *notes(data)]
    md = f"""# Load and overload on GET /api/search ({s["cores"]} cores)

One `adsearch serve` process on the ads377 collection (hybrid, k=10, CLIP ViT-B/32 architecture with
random weights), {limit}; clients on the same machine over localhost. Queries: the
{QUERIES} known-item statements cycled, so after the first pass their embeddings come from the
query cache: this measures the server under contention, not encoding. Query cache over the whole
run (from /metrics): {cache_line(data.get("query_cache"))}.

## Closed loop: {s["clients"]} clients for {s["seconds"]:.0f} s (saturation)

| requests | served/s | errors | shed (503) | p50 ms | p95 ms | p99 ms | server CPU |
|---|---|---|---|---|---|---|---|
{closed}

## Open loop at {o["rate_rps"]} requests/s for {s["seconds"]:.0f} s ({origin}), /health every {HEALTH_INTERVAL_S * 1000:.0f} ms

| offered/s | sent/s | sent on time | served | served/s | shed (503) | errors | served p50 / p95 / p99 ms | 503 p99 ms | /health p50 / p99 ms | /health failures |
|---|---|---|---|---|---|---|---|---|---|---|
| {o["rate_rps"]} | {o["achieved_rps"]} | {o["sent_on_time"]} / {o["scheduled"]} | {o["served"]} | {o["served_rps"]} | {o["shed"]} | {o["errors"]} | {num(sm["p50"])} / {num(sm["p95"])} / {num(sm["p99"])} | {num(o["shed_p99_ms"])} | {num(hm["p50"])} / {num(hm["p99"])} | {o["health_failures"]} |

The closed loop never offers more than {s["clients"]} requests at once, so its served rate is what
the server sustains. The open loop sends on a fixed schedule whatever the answers, as independent
users do: above saturation the excess must either queue (every latency grows towards the
{REQUEST_TIMEOUT_S:.0f} s timeout) or be refused at once with 503 and Retry-After. Here
{share:.0f} % of the sent requests were served ({o["served_rps"]} /s) and {o["shed"]} were shed;
latencies are from each request's launch to its answer (sent on time = launched within {LATE_MS:.0f} ms
of schedule; server CPU {o["server_cpu_pct"]} %, generator CPU {o["client_cpu_pct"]} % of one core).

{chr(10).join(lines)}

{" ".join(verdict)}

{slow_report(data["slow_bodies"])}"""
    return md


def slow_report(slow: dict) -> str:
    """Phase 4's table and verdict."""
    a, b = slow["alone"], slow["beside_slow"]
    answers = ", ".join(f"{n} x {answer}" for answer, n in slow["slow_answers"].items())
    times = slow["slow_answer_seconds"]
    when = f" after {times[0]}-{times[-1]} s" if times else ""
    ready = ", ".join(f"{n} x {code}" for code, n in slow["ready_probes"].items()) or "none"
    ok = slow["served_ratio"] >= 0.8 and b["shed"] <= a["shed"] + 0.05 * max(1, b["requests"])
    return f"""## Slow request bodies: {slow["slow_clients"]} trickling sockets beside {slow["clients"]} searching clients

Each slow socket sends `POST /api/search` headers with `Content-Length: {SLOW_BODY_LENGTH}`, then one
byte every {slow["byte_interval_s"]:.0f} s; the {slow["clients"]} clients search in a closed loop, {slow["seconds"]:.0f} s alone,
then {slow["seconds"]:.0f} s beside them (side by side in one run).

| | requests | served/s | shed (503) | errors | served p50 / p99 ms |
|---|---|---|---|---|---|
| alone | {a["requests"]} | {a["served_rps"]} | {a["shed"]} | {a["errors"]} | {num(a["served_ms"]["p50"])} / {num(a["served_ms"]["p99"])} |
| beside the slow sockets | {b["requests"]} | {b["served_rps"]} | {b["shed"]} | {b["errors"]} | {num(b["served_ms"]["p50"])} / {num(b["served_ms"]["p99"])} |

Served ratio beside / alone: **{slow["served_ratio"]}** (target: searches keep being served, ≥ 0.8, no
more shedding than alone): **{"met" if ok else "not met"}**. The slow sockets were answered: {answers}{when}.
/health/ready during the second half: {ready}.
"""


# -- run --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="closed-loop clients (phase 1)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--overload-factor", type=float, default=2.0, help="phase 2 rate / saturation rate")
    parser.add_argument("--rate", type=float, help="skip phase 1 and offer this many requests/s in phase 2")
    parser.add_argument("--max-concurrent-requests", type=int, help="the server's admission limit")
    parser.add_argument("--slow-seconds", type=float, default=30.0, help="length of each half of phase 4")
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    # the server's own default
    limit = args.max_concurrent_requests or ServeSettings().max_concurrent_requests
    return {
        "clients": args.clients,
        "seconds": args.seconds,
        "overload_factor": args.overload_factor,
        "rate_given": args.rate,
        "max_concurrent_requests": int(limit),
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "health_interval_s": HEALTH_INTERVAL_S,
        "rest_s": REST_S,
        "late_ms": LATE_MS,
        "rss_tolerance_mib": RSS_TOLERANCE_MIB,
        "queries": QUERIES,
        "cores": os.cpu_count(),
        "slow_seconds": args.slow_seconds,
    }


def run(server_pid: int, port: int, queries: list[str], args: argparse.Namespace) -> dict:
    """Both phases and the memory readings around them, against the server running on `port`."""
    base_url = f"http://127.0.0.1:{port}"
    memory = {"before_clients16": rss_mib(server_pid)["rss"]}
    if args.rate:
        clients16 = None
        warm_up(base_url, queries)
        rate = args.rate
    else:
        clients16 = clients_phase(server_pid, base_url, queries, args)
        rate = args.overload_factor * clients16["requests_per_s"]
        if rate <= 0:
            raise SystemExit(f"phase 1 served nothing: {clients16['error_kinds']}")
    memory["before_overload"] = rss_mib(server_pid)["rss"]
    overload = overload_phase(server_pid, port, queries, rate, args.seconds)
    memory["after_overload"] = rss_mib(server_pid)["rss"]
    time.sleep(REST_S)
    end = rss_mib(server_pid)
    memory |= {"after_rest": end["rss"], "peak": end["peak"],
               "growth_after_burst": round(end["rss"] - memory["before_overload"], 1),
               "growth_over_run": round(end["rss"] - memory["before_clients16"], 1)}  # fmt: skip
    limit = settings(args)["max_concurrent_requests"]
    slow = slow_bodies_phase(base_url, port, queries, limit, args.slow_seconds)
    return {"clients16": clients16, "overload": overload, "memory_mib": memory, "slow_bodies": slow,
            "query_cache": query_cache(base_url)}  # fmt: skip


def query_cache(base_url: str) -> dict:
    """The server's query cache over the whole run, from its /metrics (read from loopback)."""
    from prometheus_client.parser import text_string_to_metric_families

    with httpx.Client(base_url=base_url, timeout=10) as http:
        text = http.get("/metrics").text
    found = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    hits, misses = found["adsearch_query_cache_hits_total"], found["adsearch_query_cache_misses_total"]
    return {"hits": int(hits), "misses": int(misses), "hit_rate": round(hits / max(1.0, hits + misses), 4)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not DB.exists():
        raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
    if args.max_concurrent_requests:  # start_server passes this process's environment on
        os.environ["ADSEARCH_MAX_CONCURRENT_REQUESTS"] = str(args.max_concurrent_requests)
    queries = known_item_queries(QUERIES)
    port = free_port()
    server, _ = start_server(port, queries[0])
    try:
        data = run(server.pid, port, queries, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    data["settings"] = settings(args)
    md = report(data)
    write_results("load", data, md)
    print(md)


if __name__ == "__main__":
    main()
