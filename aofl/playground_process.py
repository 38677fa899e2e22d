"""The Playground's training as a child process: `train_in_subprocess` (the parent's side) and `main`
(the child's, ``python -m aofl.playground_process OUT``).

Why the app trains this way: torch.optim's step imports torch._dynamo (and sympy) on first use, about
66 MB that a server would keep for good, and training allocates another ~45 MB. In a child, the
server's memory stays as the pages left it, and its Python threads (every other session's script run)
do not wait on the training for the GIL. The price is the child's start-up (its imports: about 2 s
idle, 4 s under load). If the caller stops (Streamlit stops a script run), the child is killed. A
server runs at most one heavy child per core at once (`aofl.io.child_process`, `$AOFL_CHILD_SLOTS`).

The child reads a `PlaygroundSpec` as JSON on stdin and prints one line per epoch and one at the end,
each ``AOFL <json>``; the outcome's two tables travel as Parquet files in OUT (a private temporary
folder). Nothing is unpickled: the parent reads JSON and Parquet only."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from .io.child_process import answer, child_slot, run_child, say

__all__ = ["main", "train_in_subprocess"]

FRAMES = ("table", "embedding")  # the outcome's DataFrames (embedding may be None)
WHAT = "the Playground's training"


def main(argv: list[str] | None = None) -> int:
    from .device import configure_threads
    from .playground import PlaygroundSpec, train_and_evaluate

    configure_threads()

    def work(request: dict, out: Path) -> dict:
        spec = PlaygroundSpec(**request)
        device = os.environ.get("AOFL_PLAYGROUND_DEVICE", "cpu")
        outcome = train_and_evaluate(spec, device, on_epoch=lambda info: say("epoch", info))
        for name in FRAMES:
            frame = outcome.pop(name)
            if frame is not None:
                frame.to_parquet(out / f"{name}.parquet")
        return outcome

    return answer(work, argv)


def train_in_subprocess(
    spec, device: str = "cpu", on_epoch=None, timeout_s: float = 900.0, on_wait=None
) -> dict:
    """`aofl.playground.train_and_evaluate(spec, device, on_epoch)` in a fresh child process: the same
    outcome, `on_epoch(info)` called here as the child reports each epoch. While every child slot of
    this server is taken (`aofl.io.child_process.child_slot`), `on_wait(seconds_waited)` is called
    about twice a second."""
    with child_slot(on_wait):
        return _run_child(spec, device, on_epoch, timeout_s)


def _run_child(spec, device: str, on_epoch, timeout_s: float) -> dict:
    import pandas as pd

    def on_message(kind, payload):
        if kind == "epoch" and on_epoch is not None:
            on_epoch(payload)

    with tempfile.TemporaryDirectory(prefix="aofl-playground-") as tmp:
        tmp = Path(tmp)
        outcome = run_child(
            "aofl.playground_process",
            [str(tmp)],
            asdict(spec),
            what=WHAT,
            timeout_s=timeout_s,
            on_message=on_message,
            env={**os.environ, "AOFL_PLAYGROUND_DEVICE": str(device)},
        )
        for name in FRAMES:
            path = tmp / f"{name}.parquet"
            outcome[name] = pd.read_parquet(path) if path.exists() else None
    return outcome


if __name__ == "__main__":
    raise SystemExit(main())
