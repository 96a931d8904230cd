"""Benchmark: the database rate counter (the security gate's hot path) against a floor.

Run: .venv/bin/python bench/rate_limits.py [--n 2000] [--processes 2]

Prints, for a fresh embedded (SQLite) database in a temporary directory, or for
DATABASE_URL when it is set:
- floor: one minimal committed write per call (ORM update of one row in a transaction);
- rate_limit_hit: the counter as the gate calls it (update-or-insert, then read, in one
  transaction);
- the same counter hit from several processes at once (cross-process correctness and
  throughput under contention).
Figures are medians and p99 of per-call latency, calls per second, and the ratio to the floor
measured in the same run. Nothing is asserted: these machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import setup_django


def timed(calls: int, fn: object) -> list[float]:
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def describe(name: str, samples: list[float], floor_p50: float | None = None) -> str:
    p50 = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100)[98]
    rate = len(samples) / (sum(samples) / 1000)
    ratio = f"  ratio to floor (p50) {p50 / floor_p50:.2f}" if floor_p50 else ""
    return f"{name:<28} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  {rate:8.0f}/s{ratio}"


def worker(key: str, calls: int) -> None:
    from aisystem.services.rate_limits import rate_limit_hit

    allowed = sum(
        rate_limit_hit(key=key, limit=calls, window_seconds=3600).allowed for _ in range(calls)
    )
    print(allowed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        setup_django(os.environ["AISYSTEM_DATA_DIR"], keep_services=True)
        worker(args.worker[0], int(args.worker[1]))
        return

    setup_django(keep_services=True)
    from django.db import connection, transaction

    from aisystem.models import RateCounter
    from aisystem.services.rate_limits import rate_limit_hit

    print(f"database: {connection.vendor}, {args.n} calls each")
    row = RateCounter.objects.create(
        key="floor", window_start="2000-01-01T00:00:00Z", expires_at="2100-01-01T00:00:00Z"
    )

    def floor(_: int) -> None:
        with transaction.atomic():
            RateCounter.objects.filter(pk=row.pk).update(count=1)

    floor_samples = timed(args.n, floor)
    floor_p50 = statistics.median(floor_samples)
    print(describe("floor (one committed write)", floor_samples))
    hit_samples = timed(
        args.n, lambda i: rate_limit_hit(key="bench", limit=10**9, window_seconds=60)
    )
    print(describe("rate_limit_hit", hit_samples, floor_p50))

    start = time.perf_counter()
    runs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", "contended", str(args.n)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for _ in range(args.processes)
    ]
    # the limit is args.n for the key, shared by all processes: exactly that many pass
    outputs = [run.communicate()[0] for run in runs]
    elapsed = time.perf_counter() - start
    allowed = sum(int(out.strip().splitlines()[-1]) for out in outputs)
    total = args.n * args.processes
    print(
        f"{args.processes} processes x {args.n} hits on one key: {total / elapsed:8.0f}/s "
        f"(including interpreter start-up), allowed {allowed} of limit {args.n} "
        f"({'correct' if allowed == args.n else 'WRONG'})"
    )


if __name__ == "__main__":
    main()
