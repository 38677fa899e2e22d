"""`python -m aofl inspect FILE`: what each kind of checkpoint and data file is, and one-line refusals.

Good files are described in-process (`cli.main`, fast); bad and hostile ones also through a real
subprocess, because the promise is about what a user sees: a non-zero exit and exactly one line
on stderr, never a traceback, and nothing in the file run.
"""

import json
import os
import pickle
import subprocess
import sys

import _tiny
import numpy as np
import pytest
import torch

from aofl.cli import main
from aofl.store.checkpoint import save_checkpoint


class _Payload:
    """Unpickling this runs os.system (the classic hostile pickle)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def describe(path, capsys) -> dict:
    assert main(["inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = _tiny.tiny_dataset()
    meta = {
        "variant": "full",
        "seed": 3,
        "label_names": list(data.label_names),
        "data": {"name": "synthetic", "fingerprint": "abc"},
        "metrics": {"test": {"weighted_f1": 0.5, "accuracy": 0.6}, "valid": {"weighted_f1": 0.4}},
    }
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "run", _tiny.tiny_model(data), meta)


def test_aofl_checkpoint_file_and_directory(checkpoint, capsys):
    info = describe(checkpoint, capsys)
    assert info["kind"] == "aofl-checkpoint" and info["variant"] == "full" and info["seed"] == 3
    assert info["dataset"] == "synthetic" and info["modalities"] == _tiny.TINY_DIMS
    assert info["label_names"] == _tiny.tiny_dataset().label_names
    assert info["metrics"]["test"] == {"weighted_f1": 0.5, "accuracy": 0.6}
    assert info["tensors"] > 10 and info["parameters"] > 1000 and len(info["sha256"]) == 64
    assert describe(checkpoint.parent, capsys)["sha256"] == info["sha256"]  # the training output directory
    assert main(["inspect", str(checkpoint)]) == 0  # the text form
    out = capsys.readouterr().out
    assert "kind: aofl-checkpoint" in out and "variant: full" in out


def test_foreign_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    layer = torch.nn.Linear(4, 3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in layer.state_dict().items()}}, tmp_path / "w.pt")
    info = describe(tmp_path / "w.pt", capsys)
    assert info["kind"] == "foreign-state-dict" and info["tensors"] == 2 and info["parameters"] == 15
    # the wrapper dict unwrapped, names as loading sees them (DDP's `module.` stripped)
    assert info["shapes"]["weight"] == [3, 4] and info["prefixes_stripped"] == ["module."]
    save_file({"encoder.w": torch.zeros(2, 5)}, tmp_path / "w.safetensors", metadata={"format": "pt"})
    info = describe(tmp_path / "w.safetensors", capsys)
    assert info["kind"] == "foreign-safetensors" and info["header_metadata_keys"] == ["format"]
    assert info["top_level_modules"] == ["encoder"]


def _dump(obj, path):
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def test_multiemo_layout_pickles(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lengths = {"d1": 3, "d2": 4, "d3": 2}
    labels = {v: rng.integers(0, 6, n).tolist() for v, n in lengths.items()}
    feats = {v: rng.standard_normal((n, 8)).astype(np.float32) for v, n in lengths.items()}
    tup = (
        {v: [f"{v}_{i}" for i in range(n)] for v, n in lengths.items()},
        {v: ["M", "F"] * n for v, n in lengths.items()},
        labels,
        feats,
        feats,
        {v: np.zeros((n, 5), np.float32) for v, n in lengths.items()},
        {v: ["hi"] * n for v, n in lengths.items()},
        {"d1", "d2"},
        {"d3"},
    )
    info = describe(_dump(tup, tmp_path / "Speakers.pkl"), capsys)
    assert info["kind"] == "dialogue-tuple-pickle" and info["dataset_guess"] == "iemocap"
    assert info["modalities"] == {"text": 8, "audio": 8, "visual": 5}
    assert info["splits"]["test"] == {"dialogues": 1, "utterances": 2}
    assert info["splits"]["train (incl. valid)"] == {"dialogues": 2, "utterances": 7}
    assert info["label_names"][0] == "happy"
    info = describe(_dump(feats, tmp_path / "TextFeatures.pkl"), capsys)
    assert info == {
        **info,
        "kind": "feature-pickle",
        "modality": "text",
        "dim": 8,
        "dialogues": 3,
        "utterances": 9,
    }
    cosmic = [
        tup[1],
        labels,
        tup[6],
        ["d1"],
        ["d3"],
        ["d2"],
    ]  # speakers, labels, sentences, train, test, valid
    info = describe(_dump(cosmic, tmp_path / "iemocap.pkl"), capsys)
    assert info["kind"] == "cosmic-iemocap-pickle"
    assert info["splits"] == {
        "train": {"dialogues": 1, "utterances": 3},
        "valid": {"dialogues": 1, "utterances": 4},
        "test": {"dialogues": 1, "utterances": 2},
    }
    assert describe(_dump({"a": [1, 2]}, tmp_path / "other.pkl"), capsys)["kind"] == "pickle"


def test_tables_and_arrays(tmp_path, capsys):
    csv = tmp_path / "dev_sent_emo.csv"
    csv.write_text(
        "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
        "1,Hi,Ross,joy,positive,0,0\n2,What?,Rachel,surprise,negative,0,1\n3,No.,Ross,Anger,negative,1,0\n"
    )
    info = describe(csv, capsys)
    assert info["kind"] == "meld-csv" and info["split_guess"] == "dev"
    assert (info["dialogues"], info["utterances"], info["speakers"]) == (2, 3, 2)
    assert info["label_counts"] == {"joy": 1, "surprise": 1, "anger": 1} and info["unknown_labels"] == []
    table = tmp_path / "table.csv"
    table.write_text(
        "utterance_id,dialogue,label,prediction,correct,theta_text,theta_audio\n"
        "a#0,a,sad,sad,True,10,20\na#1,a,sad,happy,False,11,21\n"
    )
    info = describe(table, capsys)
    assert (
        info["kind"] == "inference-table"
        and info["modalities"] == ["audio", "text"]
        and info["accuracy"] == 0.5
    )
    from aofl.data.textviews import VIEW_VERSIONS

    np.savez(
        tmp_path / "view.npz",
        X=np.zeros((5, 7), np.float32),
        utterance_ids=np.array([f"d#{i}" for i in range(5)]),
        version=np.array(VIEW_VERSIONS["tfidf"]),
        dataset=np.array("meld"),
    )
    info = describe(tmp_path / "view.npz", capsys)
    assert info["kind"] == "textview-cache" and (info["dataset"], info["view"], info["dim"]) == (
        "meld",
        "tfidf",
        7,
    )
    assert info["current_version"] and info["ids_match_rows"]
    np.savez(tmp_path / "misc.npz", a=np.zeros((2, 3), np.int16))
    assert describe(tmp_path / "misc.npz", capsys)["shapes"] == {"a": {"shape": [2, 3], "dtype": "int16"}}


def test_manifest(checkpoint, capsys):
    (checkpoint.parent.parent / "MANIFEST.json").write_text(
        json.dumps(
            [{"name": "tiny", "dataset": "synthetic", "variant": "full", "file": "run/model.safetensors"}]
        )
    )
    info = describe(checkpoint.parent.parent / "MANIFEST.json", capsys)
    assert info["kind"] == "manifest" and info["names"] == ["tiny"] and info["missing_files"] == []


def test_dialogue_view_when_a_dialogue_option_is_given(checkpoint, capsys):
    """The per-utterance view (the command's original form) runs as soon as one of its options is
    given: the tiny checkpoint then meets the synthetic data and is refused for its dimensions."""
    assert main(["inspect", str(checkpoint), "--split", "test"]) == 2
    assert "dimensions differ" in capsys.readouterr().err


def _bad_files(tmp_path, checkpoint):
    marker = tmp_path / "PWNED"
    data = checkpoint.read_bytes()
    files = {
        "hostile.pkl": pickle.dumps({"x": _Payload(marker)}),
        "hostile.pt": pickle.dumps({"x": _Payload(marker)}),
        "disguised.safetensors": pickle.dumps({"x": _Payload(marker)}),
        "empty.safetensors": b"",
        "truncated.safetensors": data[: len(data) // 2],
        "random.pt": b"\x00junk" + np.random.default_rng(0).bytes(2000),
        "objects.npz": None,
        "broken.csv": b'a,b\n"1,2\n',
        "broken.json": b"{not json",
        "unknown.xyz": b"hello",
    }
    for name, content in files.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    torch.save(torch.nn.Linear(3, 4), tmp_path / "module.pt")
    np.savez(tmp_path / "objects.npz", a=np.array([{"a": 1}], dtype=object))
    return [tmp_path / n for n in [*files, "module.pt", "missing.safetensors"]], marker


BAD_REASONS = {
    "hostile.pkl": "posix.system",
    "hostile.pt": "posix.system",
    "disguised.safetensors": "pickle",
    "empty.safetensors": "empty",
    "truncated.safetensors": "truncated",
    "random.pt": "not a PyTorch",
    "objects.npz": "allow_pickle",
    "broken.csv": "ParserError",
    "broken.json": "JSON",
    "unknown.xyz": "unknown file type",
    "module.pt": "torch.nn.modules.linear.Linear",
    "missing.safetensors": "no file",
}


@pytest.mark.parametrize("opt_in", [False, True], ids=["default", "unsafe-load-opted-in"])
def test_bad_files_in_process(tmp_path, checkpoint, capsys, monkeypatch, opt_in):
    """Describing never loads without restrictions, not even when unsafe loading is opted in."""
    paths, marker = _bad_files(tmp_path, checkpoint)
    if opt_in:
        monkeypatch.setenv("AOFL_ALLOW_UNSAFE_LOAD", "1")
    for path in paths:
        assert main(["inspect", str(path), "--json", *(["--allow-unsafe-load"] if opt_in else [])]) == 2, (
            path.name
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), (path.name, err)
        assert BAD_REASONS[path.name] in err, (path.name, err)
    assert not marker.exists()


@pytest.mark.app  # a subprocess per file
def test_bad_files_subprocess(tmp_path, checkpoint):
    """What a user sees in a shell: exit 2 and one line on stderr, no traceback (run side by side)."""
    paths, marker = _bad_files(tmp_path, checkpoint)
    chosen = [p for p in paths if p.name in ("hostile.pkl", "module.pt", "truncated.safetensors")]
    env = dict(os.environ, AOFL_THREADS="1")
    env.pop("AOFL_ALLOW_UNSAFE_LOAD", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aofl", "inspect", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in chosen
    ]
    for path, proc in zip(chosen, procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2 and out == "", (path.name, out, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (path.name, err)
        assert BAD_REASONS[path.name] in err, (path.name, err)
    assert not marker.exists()
