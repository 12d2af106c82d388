"""`swarm export` at 500K scale: wall time and peak memory of merging a run's output files.

Writes N output lines (default 500,000, 1 % of them written twice, as a redelivery would)
through the project's own OutputWriter from two "worker processes", with the simulator's
answers, then exports them in a fresh process per format and prints its wall time and
peak RSS. Everything stays in a temporary folder.

    .venv/bin/python bench/export.py
    BENCH_N=100000 .venv/bin/python bench/export.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swarm.catalog import CATALOG, messages_for  # noqa: E402
from swarm.outputs import OutputWriter  # noqa: E402
from swarm.sim.answers import chat_answer  # noqa: E402

N = int(os.environ.get("BENCH_N", "500000"))
RUN = "bench-run"

CHILD = """
import resource, sys, time
from pathlib import Path
from swarm.outputs import export
t0 = time.perf_counter()
n = export(Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]))
wall = time.perf_counter() - t0
print(n, round(wall, 2), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def write_outputs(out: Path) -> int:
    rng = random.Random(5)
    writers = [OutputWriter(out) for _ in range(2)]
    for i, w in enumerate(writers):
        w.tag = f"bench-{i}"
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    lines = 0
    for index in range(N):
        task = CATALOG[index % len(CATALOG)]
        text = chat_answer(messages_for(task, 7, index), rng)
        record = {"task_id": f"{RUN}:{index}", "run_id": RUN, "index": index,
                  "category": task.name, "model": "moonshot-v1-8k", "prompt_tokens": 120,
                  "completion_tokens": len(text) // 4, "cost_usd": 0.0004, "latency_ms": 900,
                  "attempts": 1, "finish_reason": "stop", "parsed": None, "raw": text,
                  "finished_at": now}
        for _ in range(2 if index % 100 == 0 else 1):
            writers[rng.randrange(2)].write(RUN, task.folder, record)
            lines += 1
    for w in writers:
        w.close()
    return lines


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        lines = write_outputs(out)
        size = sum(p.stat().st_size for p in out.rglob("*.jsonl"))
        print(f"{lines:,} output lines for {N:,} tasks, {size / 2**20:.0f} MiB, "
              f"written in {time.perf_counter() - t0:.0f} s")
        for fmt in ("jsonl", "csv"):
            dest = Path(tmp) / f"export.{fmt}"
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(out), RUN, fmt, str(dest)],
                cwd=ROOT, capture_output=True, text=True, check=True)
            count, wall, rss = result.stdout.split()
            print(f"export --format {fmt}: {int(count):,} records in {float(wall):.1f} s, "
                  f"peak RSS {int(rss):,} MiB, {dest.stat().st_size / 2**20:.0f} MiB written")


if __name__ == "__main__":
    main()
