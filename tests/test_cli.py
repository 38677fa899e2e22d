import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.app  # every test runs python -m aofl in a subprocess


def run(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "aofl", *args], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout + p.stderr)
    return p


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    run(
        "train",
        "--data",
        "synthetic",
        "--variant",
        "full",
        "--seed",
        "0",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--no-progress",
        "--width",
        "32",
    )
    return out


def test_train_then_evaluate_json(checkpoint):
    res = json.loads(
        run("evaluate", str(checkpoint), "--data", "synthetic", "--split", "test", "--json").stdout
    )
    for key in ("weighted_f1", "accuracy", "per_class_f1", "confusion", "disentanglement"):
        assert key in res
    assert len(res["confusion"]) == 6 and res["n"] == sum(map(sum, res["confusion"]))
    from aofl.store.checkpoint import read_metadata

    meta = read_metadata(checkpoint)
    assert meta["command"].startswith("python -m aofl train --data synthetic")
    assert meta["metrics"]["test"]["weighted_f1"] == pytest.approx(res["weighted_f1"], abs=1e-9)
    assert meta["data"]["fingerprint"] and meta["package_version"]
    # the training dynamics travel with evaluate --json (issue #13)
    row = res["training"]["history"][0]
    assert {"loss_class", "loss_cen", "clip_factor", "aux_scale", "lr"} <= set(row)
    assert set(row["dynamics"]["grad"]["heads"]) >= {"class", "cen", "aac", "csr"}
    assert set(row["dynamics"]["theta_deg"]) == {"audio", "text", "visual"}


def test_inspect_json_lists_a_dialogue(checkpoint):
    res = json.loads(
        run("inspect", str(checkpoint), "--data", "synthetic", "--json", "--drop", "audio=mean").stdout
    )
    assert res["utterances"] and "theta_text" in res["utterances"][0]


def test_bad_inputs_give_one_line_errors(checkpoint, tmp_path):
    p = run("evaluate", str(tmp_path / "nope"), "--json", check=False)
    assert p.returncode == 2 and "no checkpoint" in p.stderr and "Traceback" not in p.stderr
    p = run("evaluate", str(checkpoint), "--split", "bogus", check=False)
    assert p.returncode == 2 and "no split" in p.stderr
    p = run("evaluate", str(checkpoint), "--data", "nodata", check=False)
    assert p.returncode == 2 and "unknown dataset" in p.stderr


def test_compare_json(checkpoint, tmp_path):
    flips = tmp_path / "flips.csv"
    res = json.loads(
        run(
            "compare",
            str(checkpoint),
            str(checkpoint),
            "--data",
            "synthetic",
            "--n-boot",
            "50",
            "--json",
            "--flips",
            str(flips),
        ).stdout
    )
    assert [m["diff_vs_first"] for m in res["metrics"]] == [0.0, 0.0]
    assert res["n_flips"] == 0 and flips.exists()
    assert set(res["disentanglement"]) == {"full-seed0", "full-seed0-1"}


def test_closed_pipe_ends_quietly(monkeypatch, capsys):
    """`python -m aofl ... | head`: the reader leaves, the command stops with status 1 and no traceback."""
    import os

    from aofl import cli
    from aofl.cli import evaluate

    def raises(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(evaluate, "run", raises)  # build_parser binds func=evaluate.run when main() runs
    saved = os.dup(1)
    try:
        assert cli.main(["evaluate", "anything"]) == 1
    finally:
        os.dup2(saved, 1)  # main() pointed stdout at /dev/null for the exit-time flush
        os.close(saved)
    assert "Traceback" not in capsys.readouterr().err
