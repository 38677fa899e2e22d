"""The runtime policy: threads and glibc's allocator (aofl.device)."""

import os
import subprocess
import sys
import textwrap

import pytest

from aofl.device import configure_allocator, configure_runtime

# page faults of inference once warmed up (the fewest of runs 3-6), in a fresh process
_FAULTS = textwrap.dedent("""
    import resource, sys
    from aofl.device import configure_runtime
    print(configure_runtime(1)["allocator"])
    import torch
    from aofl.bench.inference import iemocap_like_test_split
    from aofl.inference import run_inference
    from aofl.model import AOFL
    from aofl.train import model_config_for
    ds = iemocap_like_test_split(n_utterances=800, n_dialogues=16)
    model = AOFL(model_config_for(ds, "full")).eval()
    faults = []
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        run_inference(model, ds, "test")
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(min(faults[2:]))
""")


def _faults(tuning: str) -> tuple[str, int]:
    env = {**os.environ, "AOFL_MALLOC_TUNING": tuning, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, timeout=300, check=True
    ).stdout.split()
    return out[-2], int(out[-1])


def test_runtime_policy_reports_threads_and_allocator(monkeypatch):
    monkeypatch.setenv("AOFL_MALLOC_TUNING", "0")
    assert configure_allocator() == "off"
    info = configure_runtime(1)
    assert info == {"threads": 1, "allocator": "off"}


@pytest.mark.app  # two Python subprocesses
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_tuned_allocator_reuses_memory_between_inferences():
    mode, tuned = _faults("1")
    if mode == "default":
        pytest.skip("not glibc: nothing to tune")
    assert mode == "tuned"
    off_mode, untuned = _faults("0")
    assert off_mode == "off"
    # glibc's defaults return the forward pass's large temporaries to the OS and fault them back in
    # (~5,000 faults a call; some runs only ~300, as glibc's dynamic mmap threshold happened to rise
    # early): the tuned policy stays near 0 either way
    assert tuned < max(untuned / 10, 100), (tuned, untuned)


def test_arena_cap_bounds_what_threads_keep():
    """In a fresh process with the cap, threads that each allocate and free a heap of small blocks keep
    less resident memory than without it (glibc: every contending thread gets an arena of its own)."""
    import subprocess
    import sys

    code = """
import sys, threading
from aofl.device import limit_malloc_arenas, release_free_memory
cap = sys.argv[1] == "cap"
if cap:
    assert limit_malloc_arenas(2)
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024
start = rss()
import numpy as np
THREADS = 8
start_together = threading.Barrier(THREADS)  # contending threads: without the cap, glibc gives each an arena
def work():
    start_together.wait()
    junk = [np.ones(1000) for _ in range(5000)]  # ~40 MB of 8 kB blocks (glibc malloc, not pymalloc)
    del junk
for _ in range(6):
    ts = [threading.Thread(target=work) for _ in range(THREADS)]
    [t.start() for t in ts]
    [t.join() for t in ts]
print(rss() - start, release_free_memory())
"""
    kept = {}
    for mode in ("cap", "nocap"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-1500:]
        grown, released = out.stdout.split()
        kept[mode] = int(grown)
        assert released in ("True", "False")
    # measured here: 150-240 MB kept with the cap, 300-310 MB without. With 4 threads started one by one
    # (before 2026-12-07) they often did not contend, both kept ~150 MB and the test failed 2 runs in 6
    assert kept["cap"] <= kept["nocap"] + 5, kept


def test_trims_after_releases_free_memory_after_the_call_even_when_it_raises(monkeypatch):
    from aofl import device

    calls = []
    monkeypatch.setattr(device, "release_free_memory", lambda: calls.append("trim") or True)

    @device.trims_after
    def compute(x):
        calls.append("compute")
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    assert compute(3) == 6 and calls == ["compute", "trim"]
    with pytest.raises(ValueError):
        compute(-1)
    assert calls == ["compute", "trim", "compute", "trim"] and compute.__name__ == "compute"
