"""A class on one server: N headless-Chromium sessions open the same page of one `streamlit run app.py`.

Section `class` of `python -m aofl bench` (`--only class --sessions N`). It starts the app on a free
port of 127.0.0.1 (headless, a fresh $AOFL_CACHE_DIR, $AOFL_NO_WARMUP=1, the synthetic dataset and
checkpoint it opens with) and drives Debian's /usr/bin/chromium through Python playwright: one
browser, one fresh context (a new Streamlit session, no cookies or storage) per user.

Per page (Angles, Embeddings, Conversations), in this order:
* cold: one session opens the page first on this server (its own caches empty; the dataset, model
  and inference were loaded by an untimed Overview visit before);
* single: one new session opens it again, alone (what one user waits on a warm server);
* all: N new sessions open it at the same moment.
A session's *first paint* is its page title drawn; it has *settled* when the script is no longer
running, Streamlit's status widget says so too, and a plotly chart is drawn (or an exception is
shown). Then one session alone presses Train on the Playground with its default sliders
(`playground_train_s`: the click until the result is drawn). The server's peak RSS is its VmHWM
(/proc), or the largest RSS psutil sampled where /proc has none; its CPU seconds per phase are
extras that the machine's load does not inflate the way it does wall time.

The JSON: {"sessions", "playground_train_s", "server_peak_rss_mb", "pages": {page: {"single_settled_s",
"all_settled_s", "slowest_first_paint_s", "exceptions", ...}}} plus ratios and details. Every wait is
bounded by `timeout_s`; a session that times out counts as an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..io.child_env import importable_env
from .common import ROOT, r

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "serve_app",
    "PAGES",
    "BrowserUnavailable",
    "check_browser",
    "Visit",
    "page_summary",
    "summarise",
    "run",
]

CHROMIUM = "/usr/bin/chromium"
# the browser tests' flags, plus no QUIC; playwright's launch() gives every browser a fresh
# temporary user-data-dir (it refuses --user-data-dir among the args)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGES = ("angles", "embeddings", "conversations")
HOST = "127.0.0.1"  # the bench never talks to anything else
POLL_MS = 100  # how often a browser re-checks a wait condition (not every animation frame: N pages, 2 cores)

# the page's title is drawn
FIRST_PAINT_JS = "() => !!document.querySelector('[data-testid=\"stMain\"] h1')"
# the script finished, the status widget agrees, and a chart is drawn (or an exception is shown)
SETTLED_JS = """(needPlot) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const w = document.querySelector('[data-testid="stStatusWidget"]');
  if (w && /Running/i.test(w.innerText)) return false;
  if (!document.querySelector('[data-testid="stMain"] h1')) return false;
  if (document.querySelector('[data-testid="stException"]')) return true;
  return !needPlot || !!document.querySelector('.js-plotly-plot .main-svg');
}"""
# the Playground's result is drawn (its subheader "Result: <variant> (<s> s)") and the script finished
TRAINED_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stException"]')) return true;
  return [...document.querySelectorAll('h3')].some(h => /^Result:/.test(h.innerText))
      && !!document.querySelector('.js-plotly-plot .main-svg');
}"""


class BrowserUnavailable(RuntimeError):
    """Chromium or Python playwright is missing: the class bench cannot run here."""


def check_browser(chromium: str | None = None) -> None:
    """Raise BrowserUnavailable, saying what to install, unless chromium (default `CHROMIUM`) and
    playwright are here."""
    chromium = chromium or CHROMIUM
    missing = []
    if not Path(chromium).exists():
        missing.append(f"{chromium} is absent (Debian: apt-get install -y chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append(
            "Python playwright is not installed (pip install playwright; its own browser download is not needed)"
        )
    if missing:
        raise BrowserUnavailable(
            "the class bench drives headless Chromium through playwright: "
            + "; ".join(missing)
            + ". Leave it out with --only (the other sections need no browser)."
        )


# ----------------------------------------------------------------------------------- pure summaries


@dataclass
class Visit:
    """One session's visit of a page, in seconds from the moment the visits started (None: never)."""

    first_paint_s: float | None
    settled_s: float | None
    exceptions: int = 0
    error: str | None = None  # a timeout or a navigation failure
    received_bytes: int = 0  # what the server sent over the session's websocket (the page's weight)

    @property
    def failed(self) -> bool:
        return self.settled_s is None or self.exceptions > 0 or self.error is not None


def _worst(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) or not values else max(values)


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den <= 0 else r(num / den, 3)


def page_summary(cold: Visit, single: Visit, everyone: list[Visit]) -> dict:
    """One page's figures: the single session's settle time, every session's (the slowest), the
    slowest first paint, the sessions that showed an exception or did not settle, and the ratios
    to the single session. A session that never settled makes its figure None (JSON null)."""
    all_settled = _worst(v.settled_s for v in everyone)
    slowest_paint = _worst(v.first_paint_s for v in everyone)
    return {
        "single_settled_s": None if single.settled_s is None else r(single.settled_s),
        "all_settled_s": None if all_settled is None else r(all_settled),
        "slowest_first_paint_s": None if slowest_paint is None else r(slowest_paint),
        "exceptions": sum(v.failed for v in everyone) + int(single.failed) + int(cold.failed),
        "all_over_single": _ratio(all_settled, single.settled_s),
        "single_cold_s": None if cold.settled_s is None else r(cold.settled_s),
        "single_first_paint_s": None if single.first_paint_s is None else r(single.first_paint_s),
        "errors": sorted({v.error for v in [cold, single, *everyone] if v.error}),
        "single_received_kb": r(single.received_bytes / 1024, 1),
    }


def machine_bound(page: dict, phase: dict, sessions: int, cpu_count: int | None) -> dict:
    """What of a page's N-session time the server controls, from the phase's CPU seconds.

    ``browser_floor_s``: the browsers' CPU seconds over the machine's cores, the least wall time N
    sessions can take when they run on the server's machine (as here) even with a server that costs
    nothing. ``two_x_reachable_here``: whether that floor leaves room for 2x one session's time.
    ``server_cpu_per_session_over_single``: the server's CPU per session with N at once, over its CPU for
    one session alone: at or below 1, shared work is computed once and no session costs more in company."""
    browsers, all_cpu, one_cpu = (
        phase.get("all_browser_cpu_s"),
        phase.get("all_server_cpu_s"),
        phase.get("single_server_cpu_s"),
    )
    floor = None if browsers is None or not cpu_count else r(browsers / cpu_count, 2)
    single = page.get("single_settled_s")
    return {
        "browser_floor_s": floor,
        "two_x_reachable_here": None if floor is None or single is None else bool(floor <= 2 * single),
        "server_cpu_per_session_over_single": _ratio(
            None if all_cpu is None else all_cpu / max(1, sessions), one_cpu
        ),
    }


def summarise(
    sessions: int, pages: dict[str, dict], playground_train_s: float | None, peak_rss_mb: float, details: dict
) -> dict:
    """The section's JSON: the issue's keys first, then the worst ratio and the details."""
    ratios = [p["all_over_single"] for p in pages.values() if p.get("all_over_single") is not None]
    return {
        "sessions": int(sessions),
        "playground_train_s": None if playground_train_s is None else r(playground_train_s),
        "server_peak_rss_mb": r(peak_rss_mb, 1),
        "pages": pages,
        "class_worst_all_over_single": max(ratios) if ratios else None,
        "class_details": details,
    }


# ------------------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _proc_status(pid: int, field: str) -> float | None:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM), in MiB; None where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _descendants(root: int) -> dict[int, list[str]]:
    """The live processes below `root`, each with its /proc/<pid>/stat fields after the name."""
    parent, stat = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parent[int(d.name)], stat[int(d.name)] = int(fields[1]), fields
    below, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in below}
        below |= frontier
    return {p: stat[p] for p in below}


def _descendants_cpu_seconds(root: int | None = None, exclude: int | None = None) -> float:
    """CPU seconds of the live processes below `root` (default: this one; the browser's processes
    hang below playwright's driver), leaving out `exclude` and the processes below it (the server,
    which this process started too). Taken while a phase's tabs are still open, so their renderers count."""
    below = _descendants(os.getpid() if root is None else root)
    if exclude is not None:
        for pid in [exclude, *_descendants(exclude)]:
            below.pop(pid, None)
    tick = os.sysconf("SC_CLK_TCK")
    return sum((int(f[11]) + int(f[12])) / tick for f in below.values())


def _descendants_rss_mb(root: int) -> float:
    """The summed RSS of the processes below `root` now (the Playground's training child), in MiB."""
    return sum(_proc_status(p, "VmRSS") or 0.0 for p in _descendants(root))


class _RssSampler:
    """The server's largest RSS: sampled every 0.2 s (psutil where installed, else /proc), and at
    the end its VmHWM (the kernel's own peak) where /proc has it."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0.0
        self.children_peak = self.together_peak = 0.0
        self._stop = threading.Event()
        try:
            import psutil

            self._proc = psutil.Process(pid)
        except Exception:  # psutil absent, or the process gone
            self._proc = None
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self) -> float | None:
        if self._proc is not None:
            try:
                return self._proc.memory_info().rss / 2**20
            except Exception:
                return None
        return _proc_status(self.pid, "VmRSS")

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            mb = self._sample()
            if mb is not None:
                self.peak = max(self.peak, mb)
                # the server's children (the Playground trains in one): memory the machine needs too
                children = _descendants_rss_mb(self.pid)
                self.children_peak = max(self.children_peak, children)
                self.together_peak = max(self.together_peak, mb + children)

    def finish(self) -> float:
        hwm = _proc_status(self.pid, "VmHWM")
        self._stop.set()
        self._thread.join(timeout=2)
        return max(self.peak, hwm or 0.0)


@contextlib.contextmanager
def serve_app(env: dict, log_path: Path, timeout_s: float = 90.0):
    """`streamlit run app.py` from the repository on a free port of 127.0.0.1 with `env`, its output in
    `log_path`; yields (url, process) once /_stcore/health answers, stops it afterwards. A server that
    exits or is not healthy within `timeout_s` is a RuntimeError quoting the log's tail. The browser
    tests start their servers with it too."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            HOST,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = Path(log_path).read_text()[-2000:]
                raise RuntimeError(f"streamlit did not start (exit {proc.poll()}; log {log_path}): {tail}")
            time.sleep(0.5)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@contextlib.contextmanager
def _server(tmp: Path, timeout_s: float):
    """The bench's server: a fresh cache, no warm-up, the bench's checkpoints; yields (url, process)."""
    from .pages import _checkpoint_dir

    env = importable_env(
        {
            **os.environ,
            "AOFL_CACHE_DIR": str(tmp / "cache"),
            "AOFL_NO_WARMUP": "1",  # no background numba compile competing with the sessions
            "AOFL_CHECKPOINT_DIR": str(_checkpoint_dir(tmp)),
        }
    )
    with serve_app(env, tmp / "streamlit.log", timeout_s) as served:
        yield served


# ----------------------------------------------------------------------------------------- browser


def _count_received(page) -> list[int]:
    """A running total of the bytes the page's websockets receive (Streamlit's deltas)."""
    total = [0]

    def on_ws(ws):
        ws.on("framereceived", lambda payload: total.__setitem__(0, total[0] + len(payload)))

    page.on("websocket", on_ws)
    return total


async def _visit(page, url: str, t0: float, timeout_ms: int, plot: bool = True) -> Visit:
    paint = settled = None
    received = _count_received(page)
    try:
        await page.goto(url, wait_until="commit", timeout=timeout_ms)
        await page.wait_for_function(FIRST_PAINT_JS, polling=POLL_MS, timeout=timeout_ms)
        paint = time.perf_counter() - t0
        await page.wait_for_function(SETTLED_JS, arg=plot, polling=POLL_MS, timeout=timeout_ms)
        settled = time.perf_counter() - t0
        shown = await page.locator('[data-testid="stException"]').count()
        return Visit(paint, settled, shown, received_bytes=received[0])
    except Exception as e:  # a timeout or a closed page: this session failed, the others go on
        error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        return Visit(paint, settled, 0, error, received[0])


async def _sessions(browser, n: int):
    contexts = [await browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(n)]
    return contexts, [await c.new_page() for c in contexts]


async def _together(
    browser,
    url: str,
    n: int,
    timeout_ms: int,
    plot: bool = True,
    cpu: dict | None = None,
    server: int | None = None,
) -> list[Visit]:
    """n fresh sessions open url at the same moment (contexts and tabs made beforehand).
    cpu, when given, gets the browser's CPU seconds over the visits ("browser_cpu_s"), the process
    `server` and its children left out."""
    contexts, pages = await _sessions(browser, n)
    try:
        before = _descendants_cpu_seconds(exclude=server)
        t0 = time.perf_counter()
        visits = list(await asyncio.gather(*(_visit(p, url, t0, timeout_ms, plot) for p in pages)))
        if cpu is not None:
            cpu["browser_cpu_s"] = r(_descendants_cpu_seconds(exclude=server) - before, 2)
        return visits
    finally:
        for c in contexts:
            await c.close()


async def _train_playground(browser, url: str, timeout_ms: int) -> tuple[float | None, str | None]:
    """One session: open the Playground, press Train, wait for the result. (seconds, error)."""
    contexts, (page,) = await _sessions(browser, 1)
    try:
        opened = await _visit(page, f"{url}/playground", time.perf_counter(), timeout_ms, plot=False)
        if opened.failed:
            return None, opened.error or "the Playground showed an exception"
        t0 = time.perf_counter()
        await page.get_by_role("button", name="Train").click(timeout=timeout_ms)
        await page.wait_for_function(TRAINED_JS, polling=POLL_MS, timeout=timeout_ms)
        seconds = time.perf_counter() - t0
        if await page.locator('[data-testid="stException"]').count():
            return None, "the Playground showed an exception while training"
        return seconds, None
    except Exception as e:
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    finally:
        for c in contexts:
            await c.close()


async def _drive(url: str, pid: int, sessions: int, timeout_s: float, log) -> tuple[dict, dict]:
    from playwright.async_api import async_playwright

    timeout_ms = int(timeout_s * 1000)
    pages, details = {}, {"phases": {}}

    def cpu_since(before):
        now = _cpu_seconds(pid)
        return None if now is None or before is None else r(now - before, 2)

    def memory(phase: dict) -> None:
        phase["server_rss_mb"] = _proc_status(pid, "VmRSS")
        phase["server_hwm_mb"] = _proc_status(pid, "VmHWM")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS))
        try:
            cpu = _cpu_seconds(pid)
            (first,) = await _together(browser, url, 1, timeout_ms)
            details["overview_first_s"] = first.settled_s and r(first.settled_s)
            details["phases"]["overview_first"] = {"server_cpu_s": cpu_since(cpu)}
            memory(details["phases"]["overview_first"])
            for name in PAGES:
                page_url, phase = f"{url}/{name}", {}
                cpu = _cpu_seconds(pid)
                (cold,) = await _together(browser, page_url, 1, timeout_ms)
                phase["cold_server_cpu_s"], cpu = cpu_since(cpu), _cpu_seconds(pid)
                browser_cpu: dict = {}
                (single,) = await _together(browser, page_url, 1, timeout_ms, cpu=browser_cpu, server=pid)
                phase["single_server_cpu_s"], cpu = cpu_since(cpu), _cpu_seconds(pid)
                phase["single_browser_cpu_s"] = browser_cpu.get("browser_cpu_s")
                everyone = await _together(
                    browser, page_url, sessions, timeout_ms, cpu=browser_cpu, server=pid
                )
                phase["all_server_cpu_s"] = cpu_since(cpu)
                phase["all_browser_cpu_s"] = browser_cpu.get("browser_cpu_s")
                memory(phase)
                pages[name] = page_summary(cold, single, everyone)
                details["phases"][name] = phase
                log(
                    f"class: {name} cold {cold.settled_s or float('nan'):.2f} s, one {single.settled_s or float('nan'):.2f} s, "
                    f"{sessions} together {pages[name]['all_settled_s']} s "
                    f"(slowest first paint {pages[name]['slowest_first_paint_s']} s, "
                    f"{pages[name]['exceptions']} failed)"
                )
            cpu = _cpu_seconds(pid)
            train_s, train_error = await _train_playground(browser, url, timeout_ms)
            details["phases"]["playground"] = {"server_cpu_s": cpu_since(cpu)}
            memory(details["phases"]["playground"])
            details["playground_error"] = train_error
            log(f"class: Playground train {train_s if train_s is None else round(train_s, 2)} s")
        finally:
            await browser.close()
    return {"pages": pages, "playground_train_s": train_s}, details


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def run(quick: bool = False, log=print, sessions: int | None = None, timeout_s: float = 180.0) -> dict:
    """The class bench (see the module docstring); `quick`: 2 sessions unless `sessions` is given."""
    if not (ROOT / "app.py").is_file():
        raise FileNotFoundError(
            f"the class bench drives app.py, which is not next to the package ({ROOT}): "
            f"run it from a source checkout, or leave it out with --only"
        )
    check_browser()
    sessions = int(sessions or (2 if quick else 8))
    if sessions < 1:
        raise ValueError(f"--sessions must be at least 1, got {sessions}")
    tmp = Path(tempfile.mkdtemp(prefix="aofl-bench-class-"))
    load_before = _load_average()
    details: dict = {}
    try:
        with _server(tmp, timeout_s) as (url, proc):
            sampler = _RssSampler(proc.pid)
            try:
                found, driven = asyncio.run(_drive(url, proc.pid, sessions, timeout_s, log))
                details.update(driven)
            finally:
                peak = sampler.finish()
                details["server_children_peak_rss_mb"] = r(sampler.children_peak, 1)
                details["server_and_children_peak_rss_mb"] = r(sampler.together_peak, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    details.update(
        {
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            "cpu_count": os.cpu_count(),
            "timeout_s": timeout_s,
            "method": (
                "one `streamlit run app.py` on 127.0.0.1 (fresh AOFL_CACHE_DIR, AOFL_NO_WARMUP=1, synthetic data, "
                "its first checkpoint), headless /usr/bin/chromium via playwright, one fresh context per session. "
                "An untimed Overview visit loads dataset, model and inference; then per page: one session opens it "
                "first (single_cold_s), one more alone (single_settled_s), then N together (all_settled_s: the last to "
                "settle; slowest_first_paint_s: the last title drawn). Settled: script not running, status widget "
                "idle, a plotly chart drawn. exceptions: sessions that showed st.exception or did not settle within "
                "timeout_s. playground_train_s: one session alone, the Train click until the result is drawn "
                "(default sliders). server_peak_rss_mb: VmHWM of the server process (or psutil's largest sample); "
                "server_children_peak_rss_mb: the largest summed RSS of its child processes (the Playground trains "
                "in one), and server_and_children_peak_rss_mb the largest sum of both, sampled every 0.2 s. "
                "server_cpu_s per phase: the server's user+system CPU seconds"
            ),
        }
    )
    for name, page in found["pages"].items():
        page.update(machine_bound(page, details["phases"].get(name, {}), sessions, os.cpu_count()))
    return summarise(sessions, found["pages"], found["playground_train_s"], peak, details)
