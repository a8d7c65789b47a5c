"""`make bench`: the benchmarks that finish in a few minutes. The 1,000,000-listing runs
are separate (`bench/seed_bench.py --large`, `bench/search_bench.py --listings 1000000`,
the latter seeding a kept database of a million listings on its first run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

failed: list[str] = []
for script, arguments in (
    ("seed_bench.py", []),
    ("index_bench.py", ["--listings", "100000", "--runs", "3"]),
    ("search_bench.py", ["--listings", "10000"]),
    ("ingest_bench.py", []),
    ("appraisal_bench.py", ["--database"]),
    ("load/run.py", []),
):
    print(f"== {script} {' '.join(arguments)}", flush=True)
    finished = subprocess.run([sys.executable, str(HERE / script), *arguments], check=False)
    if finished.returncode != 0:
        failed.append(script)

if failed:
    sys.exit(f"benchmarks that did not finish: {', '.join(failed)}")
