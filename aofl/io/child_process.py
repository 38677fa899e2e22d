"""Heavy work of the app in a short-lived child process: `run_child` (the parent's side), `say` (the
child's) and the server's `child_slot`s.

Why: the app's heavy libraries stay in a server for good once imported (torch.optim's dynamo for the
Playground, +66 MB; umap, numba and llvmlite for UMAP, +480 MB with their compiled code), while a
child gives all of its memory back when it exits. Its price is its start-up (its imports: 2-5 s).

The protocol: the parent writes a JSON request on the child's stdin; the child prints lines
``AOFL {"<kind>": payload}``: any number of progress messages, then one ``done`` (the result) or one
``error`` (a message). Bulk data travels as files in a private temporary folder that the parent owns
(Parquet, .npy without pickles). Nothing is unpickled. Torch-free."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

from .child_env import importable_env

__all__ = ["PREFIX", "answer", "child_slot", "run_child", "say", "slot_count"]

PREFIX = "AOFL "


def slot_count() -> int:
    """How many heavy children a server runs at once: $AOFL_CHILD_SLOTS (or the older
    $AOFL_PLAYGROUND_SLOTS), else one per core."""
    for name in ("AOFL_CHILD_SLOTS", "AOFL_PLAYGROUND_SLOTS"):
        value = int(os.environ.get(name, "0") or 0)
        if value > 0:
            return value
    return os.cpu_count() or 1


# A child holds 400-550 MB for its seconds of life: a class pressing Train or picking UMAP at once
# queues here instead of starting 24 of them on a 2-core server.
_SLOTS = threading.BoundedSemaphore(slot_count())


@contextlib.contextmanager
def child_slot(on_wait=None):
    """Hold one of the server's child slots; while all are taken, `on_wait(seconds_waited)` is called
    about twice a second (in the app, also where a stopped script run stops)."""
    waited = time.monotonic()
    while not _SLOTS.acquire(timeout=0.5):
        if on_wait is not None:
            on_wait(time.monotonic() - waited)
    try:
        yield
    finally:
        _SLOTS.release()


def say(kind: str, payload) -> None:
    """The child's side: one protocol line on stdout."""
    print(PREFIX + json.dumps({kind: payload}), flush=True)


def answer(work, argv: list[str] | None = None) -> int:
    """The child's side of one request: `work(request, folder)` with the JSON request from stdin and the
    parent's folder (argv[0]); its result is said as ``done``, an exception as ``error`` (exit code 1)."""
    from pathlib import Path

    argv = sys.argv[1:] if argv is None else argv
    try:
        say("done", work(json.loads(sys.stdin.read()), Path(argv[0])))
    except Exception as e:  # the parent raises it with this message
        say("error", f"{type(e).__name__}: {e}")
        return 1
    return 0


def run_child(
    module: str,
    args: list[str],
    request,
    *,
    what: str,
    timeout_s: float,
    on_message=None,
    env: dict | None = None,
):
    """Run ``python -m module *args`` with `request` (JSON) on its stdin and return its ``done`` payload.

    on_message(kind, payload) gets every other message as it comes. Raises RuntimeError with the
    child's ``error`` message (or its stderr's tail when it died without one) and TimeoutError when it
    ran past timeout_s (a watchdog kills it). If the caller stops (an exception here, e.g. Streamlit
    stopping a script run), the child is killed. `what` names the work in these messages."""
    import tempfile

    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=importable_env(env),
        )
        # a child that hangs without printing would block the read below: a timer kills it instead
        fired = threading.Event()
        watchdog = threading.Timer(timeout_s, lambda: (fired.set(), child.kill()))
        watchdog.daemon = True
        watchdog.start()
        result, failure, done = None, None, False
        try:
            child.stdin.write(json.dumps(request))
            child.stdin.close()
            for line in child.stdout:
                if not line.startswith(PREFIX):
                    continue  # anything else a library printed
                ((kind, payload),) = json.loads(line[len(PREFIX) :]).items()
                if kind == "done":
                    result, done = payload, True
                elif kind == "error":
                    failure = payload
                elif on_message is not None:
                    on_message(kind, payload)
            code = child.wait(timeout=30)
        finally:
            watchdog.cancel()
            if child.poll() is None:  # the caller stopped, or something above raised
                child.kill()
                child.wait(timeout=10)
        if fired.is_set():
            raise TimeoutError(f"{what} took longer than {timeout_s:.0f} s; it was stopped")
        if failure is not None:
            raise RuntimeError(f"{what} failed: {failure}")
        if not done:
            err.seek(0)
            raise RuntimeError(
                f"{what}'s process exited with code {code} without a result:\n{err.read()[-1500:]}"
            )
    return result
