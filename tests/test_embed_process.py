"""aofl.embed_process: UMAP in a child process gives what the process itself computes, and a process
that embeds this way never imports umap or numba (why the app does it)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aofl import embed as E
from aofl import embed_process

# the child imports umap and compiles numba code (tens of CPU-seconds cold)
pytestmark = [pytest.mark.app, pytest.mark.usefixtures("fresh_embedding_cache")]


def _blobs(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(3, d))
    return (centers[rng.integers(0, 3, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_umap_in_a_child_equals_umap_here_and_the_parent_never_imports_numba(tmp_path):
    Xs = [_blobs(seed=0), _blobs(seed=1)]
    for i, X in enumerate(Xs):
        np.save(tmp_path / f"X{i}.npy", X)
    probe = (
        "import sys, numpy as np; from aofl import embed as E, embed_process; "
        "E.set_umap_runner(embed_process.embed_in_subprocess); "
        f"Xs = [np.load(r'{tmp_path}/X%d.npy' % i) for i in range(2)]; "
        "Ys = E.embed_cached_many(Xs, 'umap', n_epochs=30); "
        f"[np.save(r'{tmp_path}/Y%d.npy' % i, Y) for i, Y in enumerate(Ys)]; "
        "print(__import__('json').dumps([m in sys.modules for m in ('umap', 'numba', 'llvmlite')]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False, False]
    for i, X in enumerate(Xs):
        here = E.embed(X, "umap", n_epochs=30)
        there = np.load(tmp_path / f"Y{i}.npy")
        assert there.shape == (len(X), 2) and there.dtype == np.float32
        np.testing.assert_allclose(there, here, atol=1e-4)  # seeded UMAP runs single-threaded


def test_a_failing_umap_child_raises_with_its_reason():
    with pytest.raises(RuntimeError, match="UMAP embedding failed.*no_such_option"):
        embed_process.embed_in_subprocess([_blobs()], params={"no_such_option": 1})


def test_the_cache_serves_a_second_request_without_a_child():
    X = _blobs()
    E.set_umap_runner(embed_process.embed_in_subprocess)
    try:
        first = E.embed_cached_many([X], "umap", n_epochs=20)[0]
        E.clear_memory_cache()  # from disk now
        E.set_umap_runner(lambda *a: pytest.fail("recomputed"))
        np.testing.assert_array_equal(E.embed_cached_many([X], "umap", n_epochs=20)[0], first)
    finally:
        E.set_umap_runner(None)
