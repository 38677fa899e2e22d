"""The shipped checkpoints: listed, hashed, reproducible, and (synthetic `full`) disentangled."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _real_data import require_real

from aofl.io.hashing import file_sha256
from aofl.store.checkpoint import read_metadata
from aofl.store.registry import checkpoint_dataset

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "checkpoints" / "MANIFEST.json"
VARIANTS = {"full", "no_aao", "no_cen", "no_are", "no_opr", "orthogonal", "baseline"}


def entries():
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else []


def test_manifest_lists_every_synthetic_variant_with_hashes():
    es = entries()
    assert es, "checkpoints/MANIFEST.json is missing or empty"
    keys = {"name", "dataset", "variant", "seed", "file", "sha256", "metrics", "command"}
    for e in es:
        assert keys <= set(e), e
        path = ROOT / "checkpoints" / e["file"]
        assert file_sha256(path) == e["sha256"], f"{e['file']} changed since the manifest was written"
        assert set(e["metrics"]) >= {"weighted_f1", "accuracy"}
        assert e["command"].startswith("python -m aofl train")
        meta = read_metadata(path)
        assert (meta["variant"], meta["seed"], checkpoint_dataset(meta)) == (
            e["variant"],
            e["seed"],
            e["dataset"],
        )
    assert {e["variant"] for e in es if e["dataset"] == "synthetic"} == VARIANTS
    total = sum(p.stat().st_size for p in (ROOT / "checkpoints").rglob("*") if p.is_file())
    assert total < 40e6


def _evaluate(e, env=None):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aofl",
            "evaluate",
            str(ROOT / "checkpoints" / e["file"]),
            "--data",
            e["dataset"],
            "--split",
            "test",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.app  # evaluate in a subprocess
@pytest.mark.parametrize("variant", ["full", "baseline"])
def test_synthetic_evaluate_reproduces_manifest(variant):
    e = next(x for x in entries() if x["dataset"] == "synthetic" and x["variant"] == variant)
    res = _evaluate(e)
    assert res["weighted_f1"] == pytest.approx(e["metrics"]["weighted_f1"], abs=1e-3)
    assert res["accuracy"] == pytest.approx(e["metrics"]["accuracy"], abs=1e-3)
    if variant == "full":
        d = res["disentanglement"]
        assert d["shared_recovers_shared"] > d["specific_recovers_shared"]
        assert d["specific_recovers_specific"] > d["shared_recovers_specific"]


@pytest.mark.real_data
@pytest.mark.parametrize("dataset", ["iemocap", "meld", "iemocap+sentence+lexicon+tfidf+tuned"])
def test_real_checkpoints_reproduce_manifest(dataset, monkeypatch):
    from aofl.data import available_datasets, split_dataset_name

    data = require_real(split_dataset_name(dataset)[0])
    es = [e for e in entries() if e["dataset"] == dataset]
    if not es:
        pytest.skip(f"no {dataset} checkpoints in the manifest")
    monkeypatch.setenv("AOFL_DATA_DIR", str(data))
    if dataset not in available_datasets():
        pytest.skip(
            f"{dataset}: its tuned view is not prepared (python -m aofl data prepare ... --views tuned)"
        )
    env = {**os.environ, "AOFL_DATA_DIR": str(data)}
    for e in es:
        res = _evaluate(e, env)
        assert res["weighted_f1"] == pytest.approx(e["metrics"]["weighted_f1"], abs=1e-3), e["name"]
