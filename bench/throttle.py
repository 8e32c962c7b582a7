"""Adaptive concurrency: a run configured above the account's limit against one at it.

Not a test. The simulator (its own process, fixed latency) answers 429/20429 to every
request beyond `--limit` in flight. smslink sends the same N messages twice per round:
once configured at exactly the limit (it never meets a 429) and once configured far above
it (`--concurrency`), where the adaptive window must find the limit by itself. Reported per
run: wall time (spawn to exit: ingest, send, track to final, results), the send phase, the
requests answered 429 and their share of all requests; and the ratio of the two times.
Runs alternate within each round so drift on this noisy machine hits both alike.

    python bench/throttle.py --n 5000 --limit 20 --concurrency 100 --latency-ms 50 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from send_throughput import Result, Simulator, audience, run_smslink
from send_throughput import parse_args as throughput_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=20, help="the simulator's concurrency limit")
    parser.add_argument("--concurrency", type=int, default=100, help="the over-configured run")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--poll-interval-ms", type=int, default=1000)
    return parser.parse_args(argv)


def share_429(result: Result) -> float:
    stats = result.stats
    total = stats["posts"] + stats["gets"]
    return stats["throttled"] / total if total else 0.0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="throttle-bench-"))
    print(
        f"N {args.n:,}, simulator limit {args.limit}, latency {args.latency_ms:g} ms, "
        f"nproc {os.cpu_count()}, python {sys.version.split()[0]}"
    )
    at_limit: list[Result] = []
    above: list[Result] = []
    try:
        csv_path = audience(workdir, args.n)
        extra = ("--concurrency-limit", str(args.limit))
        with Simulator(args.latency_ms, extra=extra) as sim:
            for round_ in range(1, args.repeat + 1):
                for concurrency, results in ((args.limit, at_limit), (args.concurrency, above)):
                    run_args = throughput_args([
                        "--n", str(args.n), "--concurrency", str(concurrency),
                        "--poll-interval-ms", str(args.poll_interval_ms),
                        "--workdir", str(workdir),
                    ])  # fmt: skip
                    run_args.timeout_s = 120 + args.n * 0.02
                    result = run_smslink(sim, csv_path, args.n, run_args)
                    results.append(result)
                    stats = result.stats
                    print(
                        f"round {round_} concurrency {concurrency:>4}: wall {result.wall_s:6.2f} s"
                        f"  send {result.send_phase_s or 0:6.2f} s  429s {stats['throttled']:>5}"
                        f" of {stats['posts'] + stats['gets']:>6} requests"
                        f" ({share_429(result):.2%})  peak in flight {stats['peak_concurrency']}"
                        f"  statuses {dict(result.statuses)}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    wall_ratio = statistics.median(
        b.wall_s / a.wall_s for a, b in zip(at_limit, above, strict=True)
    )
    send_ratio = statistics.median(
        (b.send_phase_s or 0) / (a.send_phase_s or 1) for a, b in zip(at_limit, above, strict=True)
    )
    worst_share = max(share_429(r) for r in above)
    print()
    print(
        f"configured {args.concurrency} vs {args.limit} against a limit of {args.limit}: "
        f"time ratio (median of {args.repeat}) wall {wall_ratio:.2f}x, send phase "
        f"{send_ratio:.2f}x; 429 share worst {worst_share:.2%}, median "
        f"{statistics.median(share_429(r) for r in above):.2%}"
    )


if __name__ == "__main__":
    main()
