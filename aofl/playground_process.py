"""The Playground's training as a child process: `train_in_subprocess` (the parent's side) and `main`
(the child's, ``python -m aofl.playground_process OUT``).

Why the app trains this way: torch.optim's step imports torch._dynamo (and sympy) on first use, about
66 MB that a server would keep for good, and training allocates another ~45 MB. In a child, the
server's memory stays as the pages left it, and its Python threads (every other session's script run)
do not wait on the training for the GIL. The price is the child's start-up (its imports: about 2 s
idle, 4 s under load). If the caller stops (Streamlit stops a script run), the child is killed. A
server runs at most one training per core at once (`$AOFL_PLAYGROUND_SLOTS`).

The child reads a `PlaygroundSpec` as JSON on stdin and prints one line per epoch and one at the end,
each ``AOFL <json>``; the outcome's two tables travel as Parquet files in OUT (a private temporary
folder). Nothing is unpickled: the parent reads JSON and Parquet only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from .io.child_env import importable_env

__all__ = ["main", "train_in_subprocess"]

PREFIX = "AOFL "
FRAMES = ("table", "embedding")  # the outcome's DataFrames (embedding may be None)


def _slot_count() -> int:
    """How many Playground trainings a server runs at once: $AOFL_PLAYGROUND_SLOTS, else one per core."""
    return max(1, int(os.environ.get("AOFL_PLAYGROUND_SLOTS", "0") or 0) or (os.cpu_count() or 1))


# A child holds ~400-530 MB (its own torch, pandas, scikit-learn and the training) for its ~10 s: a
# class that presses Train at once queues here instead of starting 24 of them on a 2-core server.
_SLOTS = threading.BoundedSemaphore(_slot_count())


def _say(kind: str, payload) -> None:
    print(PREFIX + json.dumps({kind: payload}), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0])
    from .device import configure_threads
    from .playground import PlaygroundSpec, train_and_evaluate

    configure_threads()
    try:
        spec = PlaygroundSpec(**json.loads(sys.stdin.read()))
        device = os.environ.get("AOFL_PLAYGROUND_DEVICE", "cpu")
        outcome = train_and_evaluate(spec, device, on_epoch=lambda info: _say("epoch", info))
        for name in FRAMES:
            frame = outcome.pop(name)
            if frame is not None:
                frame.to_parquet(out / f"{name}.parquet")
        _say("done", outcome)
    except Exception as e:  # the parent raises it with this message
        _say("error", f"{type(e).__name__}: {e}")
        return 1
    return 0


def train_in_subprocess(
    spec, device: str = "cpu", on_epoch=None, timeout_s: float = 900.0, on_wait=None
) -> dict:
    """`aofl.playground.train_and_evaluate(spec, device, on_epoch)` in a fresh child process: the same
    outcome, `on_epoch(info)` called here as the child reports each epoch. While every training slot of
    this server is taken, `on_wait(seconds_waited)` is called about twice a second."""
    waited = time.monotonic()
    while not _SLOTS.acquire(timeout=0.5):
        if on_wait is not None:
            on_wait(time.monotonic() - waited)  # (in the app, also where a stopped script run stops)
    try:
        return _run_child(spec, device, on_epoch, timeout_s)
    finally:
        _SLOTS.release()


def _run_child(spec, device: str, on_epoch, timeout_s: float) -> dict:
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="aofl-playground-") as tmp:
        tmp = Path(tmp)
        with open(tmp / "stderr.txt", "w+") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "aofl.playground_process", str(tmp)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=importable_env({**os.environ, "AOFL_PLAYGROUND_DEVICE": str(device)}),
            )
            # a child that hangs without printing would block the read below: a timer kills it instead
            fired = threading.Event()
            watchdog = threading.Timer(timeout_s, lambda: (fired.set(), child.kill()))
            watchdog.daemon = True
            watchdog.start()
            try:
                child.stdin.write(json.dumps(asdict(spec)))
                child.stdin.close()
                outcome, failure = None, None
                for line in child.stdout:  # one line per epoch: the training's pace
                    if not line.startswith(PREFIX):
                        continue  # anything else a library printed
                    ((kind, payload),) = json.loads(line[len(PREFIX) :]).items()
                    if kind == "epoch" and on_epoch is not None:
                        on_epoch(payload)
                    elif kind == "done":
                        outcome = payload
                    elif kind == "error":
                        failure = payload
                code = child.wait(timeout=30)
            finally:
                watchdog.cancel()
                if child.poll() is None:  # the caller stopped, or something above raised
                    child.kill()
                    child.wait(timeout=10)
            if fired.is_set():
                raise TimeoutError(
                    f"the Playground's training took longer than {timeout_s:.0f} s; it was stopped"
                )
            if failure is not None:
                raise RuntimeError(f"the Playground's training failed: {failure}")
            if outcome is None:
                err.seek(0)
                tail = err.read()[-1500:]
                raise RuntimeError(
                    f"the Playground's training process exited with code {code} without a result:\n{tail}"
                )
        for name in FRAMES:
            path = tmp / f"{name}.parquet"
            outcome[name] = pd.read_parquet(path) if path.exists() else None
    return outcome


if __name__ == "__main__":
    raise SystemExit(main())
