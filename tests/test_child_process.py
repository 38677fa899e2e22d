"""aofl.io.child_process: the protocol, a child's failure, its time limit and the server's slots."""

import os
import threading

import pytest

from aofl.io import child_process


def _module(tmp_path, name: str, body: str) -> dict:
    (tmp_path / f"{name}.py").write_text(body)
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_a_child_returns_its_done_payload_and_reports_progress(tmp_path):
    env = _module(
        tmp_path,
        "echo_child",
        "import json, sys\nfrom aofl.io.child_process import say\n"
        "req = json.loads(sys.stdin.read())\nprint('a library talking')\n"
        "for i in range(req['n']):\n    say('step', i)\nsay('done', {'twice': 2 * req['n']})\n",
    )
    steps = []
    out = child_process.run_child(
        "echo_child",
        [],
        {"n": 3},
        what="the echo",
        timeout_s=60,
        on_message=lambda k, p: steps.append((k, p)),
        env=env,
    )
    assert out == {"twice": 6} and steps == [("step", 0), ("step", 1), ("step", 2)]


def test_a_child_that_dies_without_a_result_raises_with_its_stderr(tmp_path):
    env = _module(tmp_path, "dying_child", "import sys\nsys.stderr.write('it broke here')\nsys.exit(3)\n")
    with pytest.raises(RuntimeError, match="(?s)the work's process exited with code 3.*it broke here"):
        child_process.run_child("dying_child", [], {}, what="the work", timeout_s=60, env=env)


def test_a_child_that_reports_an_error_raises_it(tmp_path):
    env = _module(
        tmp_path, "erring_child", "from aofl.io.child_process import say\nsay('error', 'bad input')\n"
    )
    with pytest.raises(RuntimeError, match="the work failed: bad input"):
        child_process.run_child("erring_child", [], {}, what="the work", timeout_s=60, env=env)


def test_a_child_past_its_time_limit_is_killed(tmp_path):
    env = _module(tmp_path, "hanging_child", "import time\ntime.sleep(120)\n")
    with pytest.raises(TimeoutError, match="the work took longer than 1 s"):
        child_process.run_child("hanging_child", [], {}, what="the work", timeout_s=1.0, env=env)


def test_slots_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("AOFL_PLAYGROUND_SLOTS", raising=False)
    monkeypatch.setenv("AOFL_CHILD_SLOTS", "3")
    assert child_process.slot_count() == 3
    monkeypatch.delenv("AOFL_CHILD_SLOTS")
    monkeypatch.setenv("AOFL_PLAYGROUND_SLOTS", "2")  # the older name still counts
    assert child_process.slot_count() == 2
    monkeypatch.delenv("AOFL_PLAYGROUND_SLOTS")
    assert child_process.slot_count() == (os.cpu_count() or 1)


def test_a_held_slot_makes_the_next_caller_wait(monkeypatch):
    monkeypatch.setattr(child_process, "_SLOTS", threading.BoundedSemaphore(1))
    waits = []
    with child_process.child_slot():
        t = threading.Thread(target=lambda: child_process.child_slot(waits.append).__enter__())
        t.start()
        t.join(1.3)
        assert t.is_alive() and waits  # still waiting, told so about twice a second
    t.join(5)
    assert not t.is_alive()
