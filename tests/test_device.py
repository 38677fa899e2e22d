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
