"""Helpers shared by the benchmarks: data location, timing, memory."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / ".cache"


def need_shared() -> Path:
    if not SHARED.is_dir():
        sys.exit(f"benchmark data not found at {SHARED} (the ../shared/data folder of the project)")
    return SHARED


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def corpus_arguments(parser) -> None:
    """--queries, --corpus and --laws: the policy questions and the documents they are asked of (../shared/data)."""
    parser.add_argument("--queries", type=Path, default=SHARED / "policy_qa_dev.jsonl")
    parser.add_argument("--corpus", type=Path, default=SHARED / "policy_corpus.jsonl")
    parser.add_argument("--laws", type=Path, default=SHARED / "laws")


def loose(text: str) -> str:
    """Text without whitespace: a gold answer spanning two paragraphs holds a space where a file breaks the line."""
    return "".join(text.split())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class OtherCpu:
    """CPU the rest of the machine used while a measurement ran, in cores (0.0 = nothing else ran).

    A latency figure taken beside another busy process says little about the service (on
    2 cores a test run beside the chat load triples its p95), so the load benches print this.
    """

    def __init__(self, *pids: int):
        import os

        self.pids = [*pids, os.getpid()]

    def _used(self) -> tuple[float, float]:
        import time

        import psutil

        total = psutil.cpu_times()
        # guest time is already inside user, and steal is another machine's: neither counts
        busy = sum(getattr(total, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
        mine = 0.0
        for pid in self.pids:
            try:
                t = psutil.Process(pid).cpu_times()
                mine += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return time.monotonic(), busy - mine

    def __enter__(self) -> "OtherCpu":
        self._start = self._used()
        return self

    def __exit__(self, *exc) -> None:
        end = self._used()
        self.cores = round(max(0.0, (end[1] - self._start[1]) / max(end[0] - self._start[0], 1e-9)), 2)
