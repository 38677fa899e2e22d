"""The Playground's pipeline in the library (aofl.playground), without Streamlit."""

import pytest

from aofl.playground import PlaygroundSpec, train_and_evaluate

pytestmark = pytest.mark.app  # trains a model (a few seconds)


def test_train_and_evaluate_returns_what_the_page_draws():
    epochs = []
    out = train_and_evaluate(
        PlaygroundSpec(n_dialogues=16, epochs=2, alpha_init_deg=60.0),
        on_epoch=lambda info: epochs.append(info["epoch"]),
    )
    assert epochs == [1, 2] and len(out["history"]) == 2
    assert 0.0 <= out["metrics"]["weighted_f1"] <= 1.0 and len(out["table"]) > 0
    assert out["alpha_start"] == pytest.approx({m: 60.0 for m in out["modalities"]})
    assert set(out["alpha"]) == set(out["modalities"]) and out["embedding"] is not None
    base = train_and_evaluate(PlaygroundSpec(variant="baseline", n_dialogues=16, epochs=1))
    assert not base["has_split"] and base["embedding"] is None


def test_training_in_a_child_process_gives_the_same_outcome_and_keeps_the_parent_small():
    import subprocess
    import sys

    import pandas as pd

    from aofl.playground_process import train_in_subprocess

    spec = PlaygroundSpec(n_dialogues=16, epochs=2, alpha_init_deg=60.0)
    here = train_and_evaluate(spec)
    epochs = []
    there = train_in_subprocess(spec, on_epoch=lambda info: epochs.append(info["epoch"]))
    assert epochs == [1, 2]
    for key in ("alpha", "alpha_start", "best_epoch", "modalities", "has_split", "variant"):
        assert there[key] == here[key], key
    assert there["metrics"]["weighted_f1"] == here["metrics"]["weighted_f1"]
    assert [h["loss_total"] for h in there["history"]] == [h["loss_total"] for h in here["history"]]
    # the child runs one torch thread, this process may run more: float sums may differ in the last bits
    for key in ("table", "embedding"):
        pd.testing.assert_frame_equal(
            there[key], here[key].reset_index(drop=True), check_like=True, atol=1e-3
        )
    # the reason it exists: a process that only asks a child to train never imports torch.optim's dynamo
    probe = (
        "import sys; from aofl.playground import PlaygroundSpec; "
        "from aofl.playground_process import train_in_subprocess; "
        "train_in_subprocess(PlaygroundSpec(n_dialogues=16, epochs=1)); print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_failing_child_training_raises_with_its_reason():
    from aofl.playground_process import train_in_subprocess

    spec = PlaygroundSpec(n_dialogues=16, epochs=1)
    object.__setattr__(spec, "variant", "no_such_variant")  # past the parent's check: the child refuses it
    with pytest.raises(RuntimeError, match="training failed.*variant"):
        train_in_subprocess(spec)


def test_trainings_beyond_the_servers_slots_wait_for_one(monkeypatch):
    """A class pressing Train at once: at most AOFL_CHILD_SLOTS children, the rest wait."""
    import threading

    from aofl import playground_process
    from aofl.io import child_process

    monkeypatch.setattr(child_process, "_SLOTS", threading.BoundedSemaphore(1))
    running, peak, waits = [0], [0], []
    lock = threading.Lock()

    def fake_child(spec, device, on_epoch, timeout_s):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(1.2)
        with lock:
            running[0] -= 1
        return {"spec": spec}

    monkeypatch.setattr(playground_process, "_run_child", fake_child)
    threads = [
        threading.Thread(
            target=playground_process.train_in_subprocess, args=(i,), kwargs={"on_wait": waits.append}
        )
        for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert peak[0] == 1 and waits and max(waits) > 0.4


def test_a_child_training_past_its_time_limit_is_stopped():
    from aofl.playground_process import train_in_subprocess

    with pytest.raises(TimeoutError, match="longer than 1 s"):
        train_in_subprocess(PlaygroundSpec(n_dialogues=16, epochs=20), timeout_s=1.0)
