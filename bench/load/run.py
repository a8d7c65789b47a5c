"""Load test: the API as deployed (`carsearch serve --workers N`), loaded by wrk from a
second process over loopback. One command:

    .venv/bin/python bench/load/run.py [--listings 10000] [--workers 2] [--cache on|off]

Steps: a kept seeded database and its index (bench/scratch.py), the API started on them,
a file of varied request paths (searches of every kind, facets, detail, history), then
wrk runs of --seconds each: the mix; each kind alone (per-endpoint figures); and
/healthz, the framework's ceiling on this machine. Prints one table; docs/PERFORMANCE.md
records it. Needs wrk (Debian: `apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from carsearch.search.indexer import rebuild_index  # noqa: E402
from carsearch.search.schemas import FACET_FIELDS  # noqa: E402
from carsearch.search.store import IndexStore  # noqa: E402
from scratch import kept_database  # noqa: E402
from search_bench import search_mix  # noqa: E402

# Shares of the mix, by kind of request.
MIX = {"search": 50, "search+facets": 10, "facets": 10, "detail": 20, "history": 10}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request_paths(base: str, dsn: str, count: int) -> dict[str, list[str]]:
    rng = random.Random(11)
    options = httpx.get(f"{base}/api/v1/filters", timeout=30).json()["data"]
    makes = [(m["name"], [x["name"] for x in m["models"]]) for m in options["makes"]]
    searches = search_mix(makes, rng, count)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT vin FROM listings ORDER BY random() LIMIT %s", (count,))
        vins = [row[0] for row in rows.fetchall()]
    all_facets = ",".join(FACET_FIELDS)
    paging = ("sort", "page")
    return {
        "search": [f"/api/v1/listings?{urlencode(s, doseq=True)}" for s in searches],
        "search+facets": [
            f"/api/v1/listings?{urlencode({**s, 'facets': all_facets}, doseq=True)}"
            for s in searches
        ],
        "facets": [
            "/api/v1/facets?" + urlencode({k: v for k, v in s.items() if k not in paging})
            for s in searches
        ],
        "detail": [f"/api/v1/listings/{vin}" for vin in vins],
        "history": [f"/api/v1/listings/{vin}/history" for vin in vins],
    }


def mixed(paths: dict[str, list[str]], count: int) -> list[str]:
    rng = random.Random(13)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    return [rng.choice(paths[kind]) for kind in kinds]


def wrk(base: str, paths: list[str], seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
        file.write("\n".join(paths))
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(HERE / "requests.lua"),
                base,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PATHS_FILE": file.name},
            check=True,
        )
    finally:
        os.unlink(file.name)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


def start_api(
    dsn: str, index_dir: Path, workers: int, cache: bool
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "CARSEARCH_SEARCH_INDEX_DIR": str(index_dir),
        "CARSEARCH_LOG_LEVEL": "warning",
        "CARSEARCH_SEARCH_CACHE_TTL_SECONDS": "60" if cache else "0",
        # One client address sends everything: rate limits would answer most requests.
        "CARSEARCH_RATE_LIMIT_ENABLED": "false",
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "carsearch.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.terminate()
    raise SystemExit("the API did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--cache", choices=["on", "off"], default="on")
    parser.add_argument("--seconds", type=int, default=20, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    dsn = kept_database(args.listings)
    store = IndexStore(Path("var") / f"bench-index-{args.listings}")
    if not store.exists():
        rebuild_index(store, dsn)
    process, base = start_api(dsn, store.root, args.workers, args.cache == "on")
    try:
        paths = request_paths(base, dsn, 2_000)
        wrk(base, mixed(paths, 5_000), 5, args.connections)  # warm-up, not reported
        runs = {"mixed": wrk(base, mixed(paths, 20_000), args.seconds, args.connections)}
        for kind, kind_paths in paths.items():
            runs[kind] = wrk(base, kind_paths, max(5, args.seconds // 2), args.connections)
        runs["healthz (ceiling)"] = wrk(base, ["/healthz"], args.seconds, args.connections)
    finally:
        process.terminate()
        process.wait(timeout=30)

    ceiling = runs["healthz (ceiling)"]["rps"]
    print(
        f"{args.listings:,} listings, {args.workers} API workers, cache {args.cache}, "
        f"wrk -t2 -c{args.connections}, {os.cpu_count()} cores shared with the server"
    )
    columns = ("req/s", "p50 ms", "p95 ms", "p99 ms")
    header = "".join(f"{c:>9}" for c in columns)
    print(f"{'run':<20}{header}{'of ceiling':>12}{'non-200':>9}")
    for name, figures in runs.items():
        print(
            f"{name:<20}{figures['rps']:>9.0f}{figures['p50_ms']:>9.1f}{figures['p95_ms']:>9.1f}"
            f"{figures['p99_ms']:>9.1f}{figures['rps'] / ceiling:>12.0%}"
            f"{int(figures['non_2xx'] + figures['socket_errors']):>9}"
        )


if __name__ == "__main__":
    main()
