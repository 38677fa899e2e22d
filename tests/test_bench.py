"""`python -m aofl bench` / `embed` commands: structure of the outputs (never timings)."""

import json

import numpy as np
import pytest
import torch

from aofl.cli import main


@pytest.mark.app  # runs the benchmarks (trains and times models)
def test_bench_cli_quick_json(capsys):
    rc = main(["bench", "--json", "--quick", "--only", "inference,train"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("inference_gemm_fraction", "train_epoch_ratio", "threads", "seconds"):
        assert key in out
    assert out["inference_gemm_fraction"] > 0 and out["train_epoch_ratio"] > 0
    assert set(out["threads"]) == {"inference", "train"} and set(out["threads"]["train"]) == {"1", "2"}


def test_bench_rejects_unknown_section(capsys):
    assert main(["bench", "--only", "nope"]) == 2


def test_model_flops_counts_scale_with_length():
    from aofl.bench.inference import iemocap_like_test_split, model_flops
    from aofl.train import model_config_for

    ds = iemocap_like_test_split(n_utterances=100, n_dialogues=5, dims={"audio": 8, "text": 8, "visual": 8})
    assert ds.num_utterances("test") == 100 and len(ds.split("test")) == 5
    cfg = model_config_for(ds, "full")
    one, two = model_flops(cfg, [10] * 5), model_flops(cfg, [10] * 10)
    assert two == pytest.approx(2 * one)
    assert model_flops(model_config_for(ds, "baseline"), [10] * 5) < one
    # the input projections alone: 2 * sum(d_m) * width per utterance
    assert one > 50 * 2 * 24 * cfg.width


@pytest.mark.app  # runs the benchmarks (trains and times models)
def test_scale_and_embed_sections_quick():
    from aofl.bench import scale as bench_scale

    row = bench_scale.one_size(600)
    assert row["utterances"] > 0 and row["peak_rss_mb"] > 0 and row["umap_s"] >= 0


def test_gpu_check_exits_cleanly_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from aofl.bench import gpu_check

    assert gpu_check.main([]) == 0
    assert "no CUDA" in capsys.readouterr().out


def test_embed_cli_writes_coordinates(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AOFL_CACHE_DIR", str(tmp_path / "cache"))
    from aofl.data import load_dataset
    from aofl.model import AOFL
    from aofl.store.run_record import run_metadata, save_run
    from aofl.train import model_config_for

    ds = load_dataset("synthetic", seed=0)
    torch.manual_seed(0)
    model = AOFL(model_config_for(ds, "full", width=16))
    ckpt = save_run(tmp_path / "ckpt", model, run_metadata(ds, "full"))
    out = tmp_path / "coords.csv"
    rc = main(
        [
            "embed",
            str(ckpt),
            "--method",
            "pca",
            "--kinds",
            "shared,specific",
            "--max-points",
            "300",
            "--out",
            str(out),
            "--json",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["subsampled"] and info["n_shown"] == 300 and info["rows"] == 600
    import pandas as pd

    df = pd.read_csv(out)
    assert {"utterance_id", "x", "y", "kind", "modality"} <= set(df.columns)
    assert np.isfinite(df[["x", "y"]].to_numpy()).all()
    # a baseline has no shared/specific features: a clear error, exit status 2
    base = AOFL(model_config_for(ds, "baseline", width=16))
    bckpt = save_run(tmp_path / "base", base, run_metadata(ds, "baseline"))
    assert (
        main(["embed", str(bckpt), "--method", "pca", "--out", str(tmp_path / "b.csv"), "--device", "cpu"])
        == 2
    )
    assert "context" in capsys.readouterr().err
