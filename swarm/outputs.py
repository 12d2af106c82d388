"""Output files: one JSONL file per (run, category folder, worker process), appended line by
line and flushed after each; the final stats file; export that merges and de-duplicates."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from swarm.catalog import BY_NAME, TaskType

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.S)


def parse_answer(text: str, task: TaskType) -> dict[str, Any] | None:
    """The answer's JSON object when it parses and carries every field the type asks for."""
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(body[start : end + 1])
    except ValueError:
        return None
    if not isinstance(obj, dict) or any(f not in obj for f in task.fields):
        return None
    return obj


class OutputWriter:
    """Thread-safe appender; each line is written whole and flushed before the task settles."""

    def __init__(self, output_dir: Path) -> None:
        self.dir = Path(output_dir)
        self.tag = f"{socket.gethostname()}-{os.getpid()}"
        self._files: dict[tuple[str, str], IO[str]] = {}
        self._lock = threading.Lock()

    def path(self, run_id: str, folder: str) -> Path:
        return self.dir / folder / f"{run_id}.{self.tag}.jsonl"

    def write(self, run_id: str, folder: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            f = self._files.get((run_id, folder))
            if f is None:
                path = self.path(run_id, folder)
                path.parent.mkdir(parents=True, exist_ok=True)
                f = self._files[(run_id, folder)] = path.open("a", encoding="utf-8")
            f.write(line)
            f.flush()

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()


def run_files(output_dir: Path, run_id: str) -> Iterator[Path]:
    folders = sorted({t.folder for t in BY_NAME.values()})
    for folder in folders:
        yield from sorted((Path(output_dir) / folder).glob(f"{run_id}.*.jsonl"))


def read_records(output_dir: Path, run_id: str) -> Iterator[dict[str, Any]]:
    for path in run_files(output_dir, run_id):
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


CSV_FIELDS = ["task_id", "run_id", "index", "category", "model", "prompt_tokens",
              "completion_tokens", "cost_usd", "latency_ms", "attempts", "finished_at", "parsed",
              "raw"]


def _last_lines(paths: list[Path]) -> tuple[array[int], array[int]]:
    """Where each task's last written line is, by index: file number (-1: none) and byte
    offset. Two compact arrays instead of the records: a 500K run's export stays small.
    A line that does not parse (blank, or cut off by a kill) is passed over: its task never
    settled, so it was done again and written whole."""
    files, offsets = array("i"), array("q")
    for number, path in enumerate(paths):
        with path.open("rb") as f:
            offset = 0
            for line in f:
                try:
                    index = int(json.loads(line)["index"])
                except (ValueError, KeyError, TypeError):
                    index = -1
                if index >= len(files):
                    grow = index + 1 - len(files)
                    files.extend([-1] * grow)
                    offsets.extend([0] * grow)
                if index >= 0:
                    files[index], offsets[index] = number, offset
                offset += len(line)
    return files, offsets


class _OpenFiles:
    """Read handles by file number, at most ``limit`` open at once (least recently used
    closed first)."""

    def __init__(self, paths: list[Path], limit: int = 64) -> None:
        self.paths, self.limit = paths, limit
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()

    def line(self, number: int, offset: int) -> bytes:
        f = self._open.pop(number, None) or self.paths[number].open("rb")
        self._open[number] = f
        if len(self._open) > self.limit:
            self._open.popitem(last=False)[1].close()
        f.seek(offset)
        return f.readline()

    def close(self) -> None:
        for f in self._open.values():
            f.close()


def export(output_dir: Path, run_id: str, fmt: str, dest: Path) -> int:
    """Merge a run's outputs into one file in index order, one record per task (the last
    written wins). Reads the files twice, holding only where each task's line is."""
    paths = list(run_files(output_dir, run_id))
    files, offsets = _last_lines(paths)
    reader = _OpenFiles(paths)
    count = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with dest.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            if fmt == "csv":
                w.writeheader()
            for index, number in enumerate(files):
                if number < 0:
                    continue
                line = reader.line(number, offsets[index]).decode("utf-8").rstrip("\n")
                if fmt == "csv":
                    rec = json.loads(line)
                    w.writerow({**rec, "parsed": json.dumps(rec.get("parsed"),
                                                            ensure_ascii=False)})
                else:
                    f.write(line + "\n")
                count += 1
    finally:
        reader.close()
    return count


def write_stats_file(output_dir: Path, run_id: str, stats: dict[str, Any]) -> Path:
    path = Path(output_dir) / f"stats_{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path
