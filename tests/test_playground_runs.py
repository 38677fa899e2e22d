"""aofl.playground_runs: a session's Playground runs grouped by setting, and what their seeds show."""

from dataclasses import asdict

import pytest

from aofl import playground_runs as R
from aofl.playground import PlaygroundSpec


def _run(wf1, seed=0, **settings):
    spec = asdict(PlaygroundSpec(seed=seed, **settings))
    return R.record(spec, {"metrics": {"weighted_f1": wf1 / 100, "accuracy": wf1 / 100 - 0.01}})


def test_labels_name_only_the_settings_that_differ():
    frame = R.runs_frame([_run(70.0), _run(72.0, seed=1), _run(75.0, lambda_csr=0.5)])
    assert frame["run"].tolist() == [1, 2, 3]
    assert frame["setting"].tolist() == ["λ_csr 1", "λ_csr 1", "λ_csr 0.5"]
    assert frame["test_acc"].tolist() == [69.0, 71.0, 74.0]
    same = R.runs_frame([_run(70.0), _run(71.0, seed=3)])
    assert set(same["setting"]) == {"same settings"}
    two = R.runs_frame([_run(70.0), _run(71.0, variant="baseline", epochs=4)])
    assert two["setting"].tolist() == ["full, epochs 8", "baseline, epochs 4"]


def test_spread_by_hand():
    frame = R.runs_frame([_run(70.0), _run(73.5, seed=1), _run(71.0, seed=2), _run(74.0, lambda_aac=0.0)])
    s = R.spread_summary(frame).set_index("setting")
    assert s.loc["λ_aac 1", ["runs", "seeds", "min", "max"]].tolist() == [3, 3, 70.0, 73.5]
    assert s.loc["λ_aac 1", "mean"] == pytest.approx(71.5) and s.loc["λ_aac 1", "spread"] == 3.5
    assert s.loc["λ_aac 0", "spread"] == 0.0


def test_the_reading_says_what_the_runs_can_show():
    assert R.reading(R.runs_frame([])) == "No run yet."
    one_seed = R.runs_frame([_run(70.0), _run(74.0, lambda_aac=0.0)])
    assert "another seed" in R.reading(one_seed)
    # seeds spread 3.5 points; the settings' means differ by 2.5: not told apart
    tie = R.runs_frame([_run(70.0), _run(73.5, seed=1), _run(74.2, lambda_aac=0.0)])
    text = R.reading(tie)
    assert "up to 3.5 points" in text and "differ by 2.5" in text and "do not tell the settings apart" in text
    # a gap wider than the seeds' spread is worth more seeds, not a verdict
    apart = R.runs_frame([_run(70.0), _run(70.5, seed=1), _run(76.0, lambda_aac=0.0)])
    assert "more seeds per setting" in R.reading(apart)


def test_the_cli_trains_the_playground_per_seed_and_reads_the_spread(capsys):
    import json

    from aofl.cli import main

    argv = ["playground", "--seeds", "0-1", "--epochs", "1", "--n-dialogues", "16", "--lambda-csr", "0.5"]
    assert main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in report["runs"]] == [0, 1]
    assert {r["lambda_csr"] for r in report["runs"]} == {0.5} and report["runs"][0]["epochs"] == 1
    (spread,) = report["spread"]
    assert (spread["runs"], spread["seeds"]) == (2, 2)
    wf1 = [r["test_wf1"] for r in report["runs"]]
    assert spread["spread"] == pytest.approx(max(wf1) - min(wf1), abs=0.01)
    assert report["reading"].startswith("Seeds alone moved")


def test_settings_outside_the_playgrounds_ranges_are_refused(capsys):
    from aofl.cli import main
    from aofl.playground import RANGES

    with pytest.raises(ValueError, match=r"epochs = 0 is outside the Playground's range \[1, 20\]"):
        PlaygroundSpec(epochs=0)
    with pytest.raises(ValueError, match="unknown variant"):
        PlaygroundSpec(variant="nope")
    low, high = RANGES["noise"]
    PlaygroundSpec(noise=low), PlaygroundSpec(noise=high)  # the ends are in
    assert main(["playground", "--lambda-csr", "5"]) == 2  # the CLI says why, without a traceback
    assert "lambda_csr = 5.0 is outside" in capsys.readouterr().err
