"""Status callbacks against polling: Twilio API calls for tracking, wall time, correctness.

Not a test. Three processes, as in production: the simulator (`smslink simulator`, which
posts signed status callbacks, here losing `--drop-share` of them on the way), the service
(`smslink serve`, which receives them at /twilio/status/<connection>) and `smslink send`,
timed from spawn to exit. The same N records are sent twice over one store, through two
connections that differ only in the callback base URL: without it (polling only) and with
it (callbacks, polling as the fallback). The poll interval is longer than a message's life
in the simulator, so with callbacks a poll is spent only on a message whose final callback
was lost.

Reported per mode: wall time, the simulator's tracking requests (GETs: fetches and list
pages) and their number per message, callbacks delivered and dropped, and how many stored
statuses (and error codes) differ from the simulator's own (`GET /_messages`), which must
be none.

    python bench/callbacks.py --n 5000 --latency-ms 5 --drop-share 0.1 --poll-interval-ms 2000
    python bench/callbacks.py --n 5000 --mps 100   # a sender's pace the service keeps up with
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from send_throughput import (
    FROM_NUMBER,
    MESSAGE,
    SMSLINK,
    Simulator,
    account_sid,
    audience,
    base_env,
    free_port,
    run_child,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--drop-share", type=float, default=0.1)
    parser.add_argument("--poll-interval-ms", type=int, default=2000)
    parser.add_argument("--poll-attempts", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--undelivered-share", type=float, default=0.1)
    parser.add_argument("--failed-share", type=float, default=0.05)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--mps", type=float, default=None, help="the connections' --max-segments-per-second"
    )
    return parser.parse_args(argv)


def wait_for(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer in {timeout_s:.0f}s") from None
            time.sleep(0.1)


def smslink(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([SMSLINK, *args], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"smslink {' '.join(args[:2])} failed: {done.stdout}{done.stderr}")


def simulator_messages(sim: Simulator) -> dict[str, dict]:
    with urllib.request.urlopen(f"{sim.origin}/_messages", timeout=60) as answer:
        return {m["sid"]: m for m in json.load(answer)["messages"]}


def stored(home: Path, touchpoint: str) -> list[tuple[str, str, int | None]]:
    """(sid, Twilio status, error code) of every delivery of the touchpoint's last run."""
    with sqlite3.connect(home / "smslink.db") as db:
        (run_id,) = db.execute(
            "SELECT max(id) FROM runs WHERE touchpoint = ?", (touchpoint,)
        ).fetchone()
        return db.execute(
            "SELECT message_sid, twilio_status, error_code FROM deliveries WHERE run_id = ?",
            (run_id,),
        ).fetchall()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="callbacks-bench-"))
    home = workdir / "home"
    env = base_env(home)
    port = free_port()
    print(
        f"N {args.n:,}, latency {args.latency_ms:g} ms, callbacks dropped "
        f"{args.drop_share:.0%}, poll interval {args.poll_interval_ms} ms, "
        f"sending {f'at {args.mps:g}/s' if args.mps else 'unpaced'}, "
        f"nproc {os.cpu_count()}, python {sys.version.split()[0]}"
    )
    extra = (
        "--callback-drop-share", str(args.drop_share),
        "--undelivered-share", str(args.undelivered_share),
        "--failed-share", str(args.failed_share),
    )  # fmt: skip
    serve: subprocess.Popen[bytes] | None = None
    try:
        csv_path = audience(workdir, args.n)
        with Simulator(args.latency_ms, extra=extra) as sim:
            serve = subprocess.Popen(
                [SMSLINK, "serve", "--port", str(port)],
                env=env,
                stdout=(workdir / "serve.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            wait_for(f"http://127.0.0.1:{port}/signin")
            sid = account_sid()
            for name, callback in (("polling", None), ("callbacks", f"http://127.0.0.1:{port}")):
                smslink(
                    env, "connection", "add", name, "--account-sid", sid,
                    "--from", FROM_NUMBER, "--base-url", sim.base_url,
                    "--concurrency", str(args.concurrency),
                    "--poll-interval-ms", str(args.poll_interval_ms),
                    "--poll-attempts", str(args.poll_attempts),
                    *(("--callback-base-url", callback) if callback else ()),
                    *(("--max-segments-per-second", str(args.mps)) if args.mps else ()),
                )  # fmt: skip
                smslink(
                    env, "touchpoint", "add", name, "--connection", name, "--message", MESSAGE,
                    "--phone", "phone", "--map", "Name=name", "--map", "Code=code",
                )  # fmt: skip
            print(
                f"{'mode':<10} {'wall s':>7} {'tracking GETs':>14} {'per msg':>8} "
                f"{'callbacks sent':>15} {'dropped':>8} {'failed':>7} {'wrong':>6}"
            )
            for name in ("polling", "callbacks"):
                sim.reset()
                out = workdir / f"{name}.csv"
                cmd = [SMSLINK, "send", name, "--input", str(csv_path), "--output", str(out)]
                wall, _cpu, _rss, code = run_child(
                    cmd, env, args.timeout_s, workdir / f"{name}.log"
                )
                if code != 0:
                    raise RuntimeError(f"send {name} exited {code}; see {workdir}")
                time.sleep(1.0)  # callbacks still on their way do not count against polling
                stats = sim.stats()
                truth = simulator_messages(sim)
                wrong = sum(
                    1
                    for message_sid, status, error_code in stored(home, name)
                    if (truth.get(message_sid) or {}).get("status") != status
                    or truth[message_sid]["error_code"] != error_code
                )
                gets = stats["fetches"] + stats["lists"]
                print(
                    f"{name:<10} {wall:>7.1f} {gets:>14,} {gets / args.n:>8.4f} "
                    f"{stats['callbacks_sent']:>15,} {stats['callbacks_dropped']:>8,} "
                    f"{stats['callbacks_failed']:>7,} {wrong:>6,}"
                )
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
