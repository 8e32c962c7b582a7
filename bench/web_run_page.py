"""The run page under load: a 100,000-record run in progress in `smslink serve` (SQLite).

Not a test. In one sitting, against `smslink simulator --latency-ms 50` in its own process:

1. cli: `smslink send` of N records (a child process), its send rate read off the
   simulator's POST counter (first to Nth POST);
2. web: the same N records uploaded to `smslink serve` (a child process, its own home) and
   sent from the preview page, with a real browser (Debian's chromium, headless, through
   Playwright; started and signed in before Send) keeping the run page open the whole time
   (live events, the table refreshed every 3 s). Once the whole audience is stored (the
   table then spans all N records) and while the run is still sending, the bench measures:
   * first paint of the run page: the browser's first-contentful-paint of a fresh load of
     `/runs/{id}` in a second tab, and the HTML's response end (navigation timing), several
     loads (the tab is emptied between loads so that only the watcher's tab stays live);
   * each table page: the wall time of `GET /runs/{id}/table?...` (what run.js fetches for
     a filter or a page) for pages across the whole run and for the filters by status and
     text, each three times, over loopback from this process;
   * live updates: the gaps between the events of `/api/runs/{id}/events` as an
     EventSource in the second tab receives them over 20 s (so a reconnection, every 15 s,
     is inside the window);
   and the send rate the same way as for cli, also split into the seconds while the probes
   ran and the rest (the probes are extra load the watcher alone does not make);
3. cli again (unless --no-cli-after), so that drift of the machine over the sitting shows.

The runs go one after the other, each against a freshly reset simulator, so they never
compete; the ratio of the web's send rate to the mean of the CLI's is the figure that
matters. For each run the report gives the simulator's CPU, its peak of requests in
progress, and how many of the machine's cores were busy (all processes: other jobs show).

    python bench/web_run_page.py --n 100000 --latency-ms 50 --concurrency 100
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from send_throughput import (  # noqa: E402  (bench/ is not a package)
    FROM_NUMBER,
    MESSAGE,
    SMSLINK,
    Simulator,
    account_sid,
    audience,
    base_env,
    free_port,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: Records on one page of the run page's table (`smslink.web.pages.runs.PER_PAGE`).
PER_PAGE = 50
#: The issue's targets.
PAINT_TARGET_MS = TABLE_TARGET_MS = 300.0
EVENT_GAP_TARGET_S = 1.0
RATE_TARGET = 0.9
USER, PASSWORD = "bench", "bench password 1"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Rate:
    """The send phase seen from the simulator: first to last POST."""

    first_s: float | None = None  # after the watch started: the first sample with a POST
    first_posts: int = 0  # POSTs seen by then
    last_s: float | None = None  # the first sample with all N
    posts: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)
    peak_in_flight: int = 0  # the simulator's peak of requests in progress
    sim_cpu_s: float = 0.0  # the simulator's CPU from the first to the last sample
    machine_busy: float = 0.0  # cores the whole machine kept busy meanwhile (of nproc)

    @property
    def per_s(self) -> float:
        if self.first_s is None or self.last_s is None or self.last_s <= self.first_s:
            return 0.0
        return (self.posts - self.first_posts) / (self.last_s - self.first_s)

    def between(self, start_s: float, end_s: float) -> float:
        """POSTs per second between two moments (the samples nearest inside them)."""
        inside = [(t, p) for t, p in self.samples if start_s <= t <= end_s]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def steady(self, n: int) -> float:
        """POSTs per second between 10% and 90% of N (no start-up, no tail)."""
        low = next((t for t, p in self.samples if p >= n * 0.1), None)
        high = next((t for t, p in self.samples if p >= n * 0.9), None)
        if low is None or high is None or high <= low:
            return 0.0
        pl = next(p for t, p in self.samples if t == low)
        ph = next(p for t, p in self.samples if t == high)
        return (ph - pl) / (high - low)


class PostWatch:
    """Samples the simulator's POST counter until N POSTs have arrived."""

    def __init__(self, sim: Simulator, n: int, every_s: float) -> None:
        self.sim, self.n, self.every_s = sim, n, every_s
        self.rate = Rate()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PostWatch:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait(self, timeout_s: float) -> None:
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        cpu_from, busy_from, started = self.sim.cpu_s(), busy_s(), time.monotonic()
        while not self._stop.is_set():
            stats = self.sim.stats()
            posts = int(stats.get("posts", 0))
            now = time.monotonic() - self.t0
            self.rate.samples.append((now, posts))
            if posts and self.rate.first_s is None:
                self.rate.first_s, self.rate.first_posts = now, posts
            if posts >= self.n:
                self.rate.last_s, self.rate.posts = now, posts
                self.rate.peak_in_flight = int(stats.get("peak_concurrency", 0))
                self.rate.sim_cpu_s = self.sim.cpu_s() - cpu_from
                elapsed = max(time.monotonic() - started, 1e-9)
                self.rate.machine_busy = (busy_s() - busy_from) / elapsed
                return
            self._stop.wait(self.every_s)


def busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    import psutil

    times = psutil.cpu_times()
    # guest time is counted in user time already
    not_busy = ("idle", "iowait", "guest", "guest_nice")
    return sum(times) - sum(getattr(times, name, 0.0) for name in not_busy)


def setup_home(home: Path, sim: Simulator, args: argparse.Namespace) -> dict[str, str]:
    env = base_env(home)
    env["SMSLINK_PASSWORD"] = PASSWORD
    for cmd in (
        [SMSLINK, "connection", "add", "bench", "--account-sid", account_sid(),
         "--from", FROM_NUMBER, "--base-url", sim.base_url,
         "--concurrency", str(args.concurrency), "--poll-interval-ms", "1000",
         "--poll-attempts", "60"],
        [SMSLINK, "touchpoint", "add", "bench", "--connection", "bench", "--message", MESSAGE,
         "--phone", "phone", "--map", "Name=name", "--map", "Code=code"],
        [SMSLINK, "user", "add", USER, "--role", "marketer"],
    ):  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {done.stdout}{done.stderr}")
    return env


def cli_run(
    sim: Simulator, csv_path: Path, n: int, args: argparse.Namespace, work: Path, name: str
) -> Rate:
    home = work / f"{name}-home"
    env = setup_home(home, sim, args)
    sim.reset()
    output = work / f"{name}.csv"
    cmd = [SMSLINK, "send", "bench", "--input", str(csv_path), "--output", str(output)]
    with PostWatch(sim, n, args.watch_s) as watch:
        started = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout_s)
        print(f"  cli: exit {done.returncode} after {time.monotonic() - started:.1f} s")
        watch.wait(30)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return watch.rate


@contextlib.contextmanager
def service(env: dict[str, str], work: Path) -> object:
    port = free_port()
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        [SMSLINK, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/signin", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the service did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def signed_in(url: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    token = _CSRF.search(s.get(url + "/signin").text)
    assert token
    answer = s.post(
        url + "/signin",
        data={"csrf": token.group(1), "name": USER, "password": PASSWORD, "next": "/runs"},
        allow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    token = _CSRF.search(s.get(url + "/runs/new").text)  # signing in issues a new one
    assert token
    return s, token.group(1)


def timed_get(s: requests.Session, url: str) -> float:
    started = time.perf_counter()
    answer = s.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (url, answer.status_code)
    return elapsed


def web_run(
    sim: Simulator, csv_path: Path, n: int, args: argparse.Namespace, work: Path
) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    home = work / "web-home"
    env = setup_home(home, sim, args)
    figures: dict[str, object] = {}
    with service(env, work) as url, sync_playwright() as playwright:
        url = str(url)
        s, csrf = signed_in(url)
        started = time.monotonic()
        with csv_path.open("rb") as file:
            uploaded = s.post(
                url + "/runs/new",
                data={"csrf": csrf, "touchpoint": "bench", "encoding": ""},
                files={"file": (csv_path.name, file, "text/csv")},
                allow_redirects=False,
            )
        assert uploaded.status_code == 303, uploaded.text[-2000:]
        preview = uploaded.headers["location"]
        figures["upload_and_preview_s"] = time.monotonic() - started
        # The browser is started and signed in before Send: its start-up is not the run's.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # One context for both tabs: browser.new_page() would make each its own context,
        # and the probe tab would not be signed in (every load a redirect to /signin).
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(url + "/signin")
        page.get_by_label("Name").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url + "/runs")
        page.goto(url + preview)
        probe = context.new_page()
        sim.reset()
        with PostWatch(sim, n, args.watch_s) as watch:
            sent = s.post(url + preview + "/send", data={"csrf": csrf}, allow_redirects=False)
            assert sent.status_code == 303, sent.text[-2000:]
            run_id = int(sent.headers["location"].rsplit("/", 1)[1])
            run_url = f"{url}/runs/{run_id}"
            page.goto(run_url)  # the watcher's tab: open all along
            assert page.url == run_url, f"{page.url} instead of the run page"
            figures["stored_after_s"] = stored(s, f"{url}/api/runs/{run_id}", n, args.timeout_s)
            figures["progress_before_probes"] = progress(s, f"{url}/api/runs/{run_id}")
            probes_from = time.monotonic() - watch.t0
            figures["paint"] = first_paints(probe, run_url, args.loads)
            figures["table"] = table_pages(s, run_url + "/table", n)
            events_url = f"{url}/api/runs/{run_id}/events"
            figures["events"] = event_gaps(probe, url, events_url, args.events_s)
            probes_to = time.monotonic() - watch.t0
            figures["probe_window_s"] = (probes_from, probes_to)
            figures["progress_after_probes"] = progress(s, f"{url}/api/runs/{run_id}")
            watch.wait(args.timeout_s)
        figures["rate"] = watch.rate
        deadline = time.monotonic() + args.timeout_s
        while s.get(f"{url}/api/runs/{run_id}").json()["state"] != "completed":
            assert time.monotonic() < deadline, "the web run did not complete"
            time.sleep(1)
        figures["state"] = "completed"
        browser.close()
    return figures


def progress(s: requests.Session, api_url: str) -> dict[str, object]:
    return dict(s.get(api_url).json()["progress"])


def stored(s: requests.Session, api_url: str, n: int, timeout_s: float) -> float:
    """Seconds until all N records of the run are stored (the table spans the audience)."""
    started = time.monotonic()
    while progress(s, api_url)["read"] < n:
        assert time.monotonic() - started < timeout_s, "the audience was never stored"
        time.sleep(0.2)
    return time.monotonic() - started


def first_paints(page: object, url: str, loads: int) -> list[dict[str, float]]:
    results = []
    for _ in range(loads):
        page.goto(url)  # type: ignore[attr-defined]
        page.wait_for_load_state("load")  # type: ignore[attr-defined]
        assert page.url == url, f"{page.url} instead of the run page"  # type: ignore[attr-defined]
        timing = page.evaluate(  # type: ignore[attr-defined]
            """() => new Promise((resolve) => {
                const nav = performance.getEntriesByType("navigation")[0];
                const done = (fcp) => resolve({response_end: nav.responseEnd, fcp});
                new PerformanceObserver((list) => {
                    const paint = list.getEntriesByName("first-contentful-paint")[0];
                    if (paint) done(paint.startTime);
                }).observe({type: "paint", buffered: true});
                setTimeout(() => done(-1), 5000);
            })"""
        )
        results.append(timing)
        page.goto("about:blank")  # type: ignore[attr-defined]  # only the watcher stays live
        time.sleep(0.5)
    return results


def table_pages(s: requests.Session, url: str, n: int) -> dict[str, list[float]]:
    last = max(1, -(-n // PER_PAGE))
    cases = {
        "page 1": "",
        "page 2": "?page=2",
        "page 100": "?page=100",
        f"page {last // 2:,} (middle)": f"?page={last // 2}",
        f"page {last:,} (last)": f"?page={last}",
        "status delivered": "?status=delivered",
        "status error, page 1": "?status=error",
        "status not final yet": "?status=unfinished",
        "problems": "?status=problems",
        "text 'Chlo' (many)": "?q=Chlo",
        "text '5559999' (rare)": "?q=5559999",
        "text, no match": "?q=nobody-has-this",
    }
    return {name: [timed_get(s, url + query) for _ in range(3)] for name, query in cases.items()}


def event_gaps(page: object, origin: str, url: str, seconds: float) -> dict[str, float]:
    """The gaps between the stream's events as a browser's EventSource receives them
    (reconnections included: a stream ends after 15 s and the browser opens the next one
    after the `retry` the service asks for), over `seconds`, in a tab of the same origin."""
    page.goto(origin + "/static/favicon.svg")  # type: ignore[attr-defined]  # same origin, idle
    seen = page.evaluate(  # type: ignore[attr-defined]
        """([url, seconds]) => new Promise((resolve) => {
            const moments = [];
            let opens = 0;
            const events = new EventSource(url);
            events.addEventListener("open", () => { opens += 1; });
            const mark = () => moments.push(performance.now() / 1000);
            events.addEventListener("progress", mark);
            const finish = () => { events.close(); resolve({moments, opens}); };
            events.addEventListener("end", () => { mark(); finish(); });
            setTimeout(finish, seconds * 1000);
        })""",
        [url, seconds],
    )
    page.goto("about:blank")  # type: ignore[attr-defined]
    moments = seen["moments"]
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    return {
        "events": len(moments),
        "connections": seen["opens"],
        "max_gap_s": max(gaps) if gaps else float("inf"),
        "mean_gap_s": statistics.fmean(gaps) if gaps else float("inf"),
        "over_1s": sum(g > EVENT_GAP_TARGET_S for g in gaps),
    }


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(n: int, clis: list[Rate], web: dict[str, object]) -> None:
    rate = web["rate"]
    assert isinstance(rate, Rate)
    print()
    print(f"upload + preview of {n:,} records: {web['upload_and_preview_s']:.1f} s")
    print(f"all {n:,} records stored {web['stored_after_s']:.1f} s after Send")
    print(f"progress when the probes started: {web['progress_before_probes']}")
    paints = web["paint"]
    assert isinstance(paints, list)
    print("run page, fresh loads while sending (ms):")
    print("  response end " + " ".join(f"{p['response_end']:6.0f}" for p in paints))
    print("  first paint  " + " ".join(f"{p['fcp']:6.0f}" for p in paints))
    print("table pages while sending (ms, 3 tries each):")
    table = web["table"]
    assert isinstance(table, dict)
    for name, times in table.items():
        print(f"  {name:28s} " + " ".join(f"{t:6.0f}" for t in times))
    events = web["events"]
    assert isinstance(events, dict)
    print(
        f"live events in the browser: {events['events']} over {events['connections']} "
        f"connection(s), gaps mean {events['mean_gap_s']:.2f} s, max {events['max_gap_s']:.2f} s"
        f", {events['over_1s']} over 1 s"
    )
    print(f"progress when the probes ended: {web['progress_after_probes']}")
    window = web["probe_window_s"]
    assert isinstance(window, tuple)
    print(f"probes ran {window[0]:.1f}-{window[1]:.1f} s after Send")
    print("send rate (POSTs/s, first to last POST; steady 10-90%; the simulator's CPU and")
    print("peak of requests in progress over the same time):")
    runs = [("cli", clis[0]), ("web", rate), *(("cli again", c) for c in clis[1:])]
    for name, r in runs:
        span = (r.last_s or 0) - (r.first_s or 0)
        print(
            f"  {name:9s} {r.per_s:6.0f}  steady {r.steady(n):6.0f}  ({span:.1f} s of sending; "
            f"simulator {r.sim_cpu_s:.1f} s CPU, peak {r.peak_in_flight} in flight, "
            f"machine {r.machine_busy:.2f} of {os.cpu_count()} cores busy)"
        )
    during = rate.between(*window)
    after = rate.between(window[1], rate.last_s or window[1])
    print(f"  web while probing {during:6.0f}, after the probes until the last POST {after:6.0f}")
    cli_rate = statistics.fmean(c.per_s for c in clis)
    cli_steady = statistics.fmean(c.steady(n) for c in clis)
    ratio = rate.per_s / cli_rate if cli_rate else 0.0
    print(
        f"  web / cli (mean of {len(clis)}): {ratio:.3f} "
        f"(steady {rate.steady(n) / max(cli_steady, 1e-9):.3f})"
    )
    worst_paint = max(p["fcp"] for p in paints)
    worst_response = max(p["response_end"] for p in paints)
    worst_table = max(max(times) for times in table.values())
    print()
    print("targets:")
    print(
        f"  first paint < {PAINT_TARGET_MS:.0f} ms: worst {worst_paint:.0f} ms "
        f"(HTML {worst_response:.0f} ms)  "
        f"{met(0 <= worst_paint < PAINT_TARGET_MS)}"
    )
    print(
        f"  table page < {TABLE_TARGET_MS:.0f} ms: worst {worst_table:.0f} ms  "
        f"{met(worst_table < TABLE_TARGET_MS)}"
    )
    print(
        f"  live updates at least once a second: worst gap {events['max_gap_s']:.2f} s  "
        f"{met(events['max_gap_s'] <= EVENT_GAP_TARGET_S)}"
    )
    print(f"  web send rate >= {RATE_TARGET:.0%} of cli: {ratio:.1%}  {met(ratio >= RATE_TARGET)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--watch-s", type=float, default=1.0)
    parser.add_argument("--events-s", type=float, default=20.0, help="how long to watch events")
    parser.add_argument("--timeout-s", type=float, default=900)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--cli-after",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send with the CLI once more after the web run (cli, web, cli: drift shows)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="web-bench-", dir=args.workdir))
    try:
        with Simulator(args.latency_ms) as sim:
            csv_path = audience(work, args.n)
            print(f"cli: smslink send, {args.n:,} records")
            clis = [cli_run(sim, csv_path, args.n, args, work, "cli")]
            print(f"web: smslink serve, {args.n:,} records, the run page open")
            web = web_run(sim, csv_path, args.n, args, work)
            if args.cli_after:
                print(f"cli again: smslink send, {args.n:,} records")
                clis.append(cli_run(sim, csv_path, args.n, args, work, "cli-after"))
        report(args.n, clis, web)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
