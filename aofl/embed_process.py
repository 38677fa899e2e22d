"""UMAP in a child process: `embed_in_subprocess` and `warm_up_in_subprocess` (the parent's side),
`main` (the child's, ``python -m aofl.embed_process DIR``).

Why the app embeds with UMAP this way: umap-learn imports numba, llvmlite and pynndescent, and its
compiled code stays in the process: a server that ran one UMAP (or warmed it up at start, as it used
to) held ~480 MB more for good (402 -> 882 MB before any page). In a child the server never imports
them; the child gives its memory back when it exits. The price is the child's start-up (its imports,
3-5 s; numba's compiled code comes from the on-disk cache that `warm_up_in_subprocess` fills), paid
once per embedding: the app keeps every result in its memory and disk caches (`aofl.embed`).

The request is JSON on stdin; the features go in as ``X<i>.npy`` (and ``init.npy``), the coordinates
come back as ``Y<i>.npy`` in a private temporary folder, all read with allow_pickle=False."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .io.child_process import answer, child_slot, run_child

__all__ = ["embed_in_subprocess", "main", "warm_up_in_background", "warm_up_in_subprocess"]

WHAT = "the UMAP embedding"


def main(argv: list[str] | None = None) -> int:
    from . import embed as E
    from .device import configure_threads

    configure_threads()

    def work(request: dict, folder: Path) -> dict:
        start = time.perf_counter()
        if request.get("job") == "warm_up":
            E.warm_up_umap(background=False)
            if E.warm_up_error():
                raise RuntimeError(E.warm_up_error())
        else:
            init = np.load(folder / "init.npy", allow_pickle=False) if request["has_init"] else None
            for i in range(int(request["count"])):
                X = np.load(folder / f"X{i}.npy", allow_pickle=False)
                settings = (request["method"], int(request["n_components"]), int(request["seed"]), init)
                Y = E.embed(X, *settings, **request["params"])
                np.save(folder / f"Y{i}.npy", Y, allow_pickle=False)
        return {"seconds": round(time.perf_counter() - start, 3)}

    return answer(work, argv)


def embed_in_subprocess(
    Xs: list,
    method: str = "umap",
    n_components: int = 2,
    seed: int = 0,
    init: np.ndarray | None = None,
    params: dict | None = None,
    timeout_s: float = 900.0,
    on_wait=None,
) -> list[np.ndarray]:
    """`[aofl.embed.embed(X, method, n_components, seed, init, **params) for X in Xs]`, computed in one
    fresh child process (within one of the server's child slots)."""
    with child_slot(on_wait), tempfile.TemporaryDirectory(prefix="aofl-embed-") as tmp:
        tmp = Path(tmp)
        for i, X in enumerate(Xs):
            np.save(tmp / f"X{i}.npy", np.ascontiguousarray(X, dtype=np.float32), allow_pickle=False)
        if init is not None:
            np.save(tmp / "init.npy", np.asarray(init, dtype=np.float64), allow_pickle=False)
        request = {
            "job": "embed",
            "method": method,
            "n_components": int(n_components),
            "seed": int(seed),
            "count": len(Xs),
            "has_init": init is not None,
            "params": dict(params or {}),
        }
        run_child("aofl.embed_process", [str(tmp)], request, what=WHAT, timeout_s=timeout_s)
        return [np.load(tmp / f"Y{i}.npy", allow_pickle=False) for i in range(len(Xs))]


def warm_up_in_subprocess(timeout_s: float = 900.0, env: dict | None = None) -> dict:
    """Compile umap's numba code in a child (environment `env`, default this process's), into the
    on-disk cache later children load it from (`aofl.embed.warm_up_umap` there); {"seconds": the
    child's compile time}."""
    with child_slot(), tempfile.TemporaryDirectory(prefix="aofl-embed-") as tmp:
        request = {"job": "warm_up"}
        return run_child(
            "aofl.embed_process", [tmp], request, what="UMAP's warm-up", timeout_s=timeout_s, env=env
        )


_warm: dict = {"thread": None, "result": None}
_warm_lock = threading.Lock()


def warm_up_in_background():
    """`warm_up_in_subprocess` in a daemon thread, once per process (later calls return the same
    thread). Its outcome (or the reason it failed) lands in `_warm["result"]`; it never raises."""

    def work():
        try:
            _warm["result"] = warm_up_in_subprocess()
        except Exception as e:  # a broken umap install must not take the app down
            _warm["result"] = {"error": f"{type(e).__name__}: {e}"}

    with _warm_lock:
        if _warm["thread"] is None:
            _warm["thread"] = threading.Thread(target=work, name="aofl-umap-warmup-child", daemon=True)
            _warm["thread"].start()
        return _warm["thread"]


if __name__ == "__main__":
    raise SystemExit(main())
