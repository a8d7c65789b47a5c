"""`make bench`: the benchmarks that finish in a few minutes. The 1,000,000-listing runs
are separate (`bench/seed_bench.py --large`, `bench/index_bench.py --listings 1000000`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

for script, arguments in (
    ("seed_bench.py", []),
    ("index_bench.py", ["--listings", "100000", "--runs", "3"]),
):
    print(f"== {script} {' '.join(arguments)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *arguments], check=True)
