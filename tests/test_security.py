"""Untrusted files: a hostile or broken corpus, built here in tmp_path, is refused with the project's
own error types, names what it asked for, and never runs (a sentinel file would prove it did).

Also: the opt-in (allow_unsafe / AOFL_ALLOW_UNSAFE_LOAD / --allow-unsafe-load) and the validation
messages of issue #6 (layouts, dims, labels, NaN, empty splits, other datasets, missing data dir).
"""

from __future__ import annotations

import argparse
import builtins
import datetime
import json
import os
import pickle
import struct
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from _tiny import tiny_dataset, tiny_model
from safetensors.torch import save_file

from aofl.compatibility import IncompatibleCheckpointError, check_compatible
from aofl.data import DataError, load_dataset, real
from aofl.data.conversation import ConversationSet, Dialogue
from aofl.data.multiemo import check_speakers_tuple, load_dialoguernn, load_multiemo
from aofl.data.validation import validate_dataset
from aofl.errors import AOFLError, CorruptFileError
from aofl.io.file_checks import load_npz
from aofl.io.safe_pickle import (
    ALLOW_UNSAFE_ENV,
    CorruptPickleError,
    UnsafeLoadWarning,
    UnsafePickleError,
    safe_load,
    safe_loads,
    unsafe_load_allowed,
)
from aofl.model import AOFLConfig, ConfigError
from aofl.store.checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_foreign_state_dict,
    read_metadata,
    save_checkpoint,
)


@pytest.fixture(autouse=True)
def _no_opt_in(monkeypatch):
    monkeypatch.delenv(ALLOW_UNSAFE_ENV, raising=False)


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


# ----------------------------------------------------------------------------- the hostile corpus


class _Payload:
    """Pickles as `func(*args)`: what runs at load time if anything unpickles it unrestricted."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(sentinel) -> dict[str, _Payload]:
    s = str(sentinel)
    return {
        "system": _Payload(os.system, f"touch {s}"),
        "Popen": _Payload(subprocess.Popen, ["touch", s]),
        "call": _Payload(subprocess.call, ["touch", s]),
        "eval": _Payload(builtins.eval, f"open({s!r}, 'w').close()"),
        "exec": _Payload(builtins.exec, f"open({s!r}, 'w').close()"),
        "open": _Payload(builtins.open, s, "w"),  # creates the file by merely being called
    }


def _hand_made(sentinel) -> dict[str, bytes]:
    """Payloads no pickler writes: protocol-0 GLOBAL text, and STACK_GLOBAL names reused via the memo."""
    cmd = f"touch {sentinel}".encode()
    proto0 = b"cos\nsystem\n(V" + cmd + b"\ntR."
    memo = (
        b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94h\x00h\x01\x93\x94\x8c"
        + bytes([len(cmd)])
        + cmd
        + b"\x85R."
    )
    return {"system": proto0, "memo-system": memo}


def _corpus(tmp_path):
    sentinel = tmp_path / "PAYLOAD_RAN"
    files = {}
    for name, obj in _payloads(sentinel).items():
        for proto in (2, 4):
            p = tmp_path / f"{name}-p{proto}.pkl"
            p.write_bytes(pickle.dumps({"features": [1.0, 2.0], "x": obj}, protocol=proto))
            files[p] = name
    for name, data in _hand_made(sentinel).items():
        p = tmp_path / f"{name}-hand.pkl"
        p.write_bytes(data)
        files[p] = "system"
    return sentinel, files


def test_corpus_is_live(tmp_path):
    """Every payload really runs under plain pickle: the refusals below are not vacuous."""
    sentinel, files = _corpus(tmp_path)
    for path in files:
        out = pickle.loads(path.read_bytes())
        result = out.get("x") if isinstance(out, dict) else out
        if hasattr(result, "wait"):  # Popen
            result.wait()
        if hasattr(result, "close"):  # open()
            result.close()
        assert sentinel.exists(), path.name
        sentinel.unlink()


def test_hostile_pickles_are_refused_naming_the_global(tmp_path):
    sentinel, files = _corpus(tmp_path)
    assert len(files) == 14
    for path, name in files.items():
        for numpy in (False, True):
            with pytest.raises(UnsafePickleError, match=name) as e:
                safe_load(path, allow_numpy=numpy)
            assert str(path) in str(e.value) and "AOFL_ALLOW_UNSAFE_LOAD" in str(e.value)
            assert isinstance(e.value, AOFLError) and isinstance(e.value, pickle.UnpicklingError)
    assert not sentinel.exists()


def test_dataset_loaders_refuse_hostile_pickles(tmp_path):
    sentinel = tmp_path / "PAYLOAD_RAN"
    evil = _payloads(sentinel)
    root = tmp_path / "data"
    (root / "iemocap").mkdir(parents=True)
    (root / "iemocap" / "iemocap.pkl").write_bytes(pickle.dumps([evil["Popen"]] * 6, protocol=2))
    with pytest.raises(DataError, match="Popen") as e:
        real.load_transcripts("iemocap", root)
    assert isinstance(e.value.__cause__, UnsafePickleError)
    me = tmp_path / "IEMOCAP"
    me.mkdir()
    for f in ("Speakers.pkl", "TextFeatures.pkl", "AudioFeatures.pkl", "VisualFeatures.pkl"):
        (me / f).write_bytes(pickle.dumps({"a": evil["eval"]}, protocol=2))
    with pytest.raises(DataError, match="eval"):
        load_multiemo("iemocap", me, data_dir=False)
    with pytest.raises(DataError, match="eval"):
        load_dialoguernn(me / "Speakers.pkl", data_dir=False)
    assert not sentinel.exists()


# ----------------------------------------------------------------------------- torch checkpoints


def _torch_corpus(tmp_path, ds):
    sentinel = tmp_path / "PAYLOAD_RAN"
    state = {"w": torch.zeros(2)}
    cases = {
        "module.pt": (tiny_model(ds), "aofl.model.AOFL"),
        "linear.pt": (torch.nn.Linear(2, 2), "torch.nn.modules.linear.Linear"),
        "namespace.pt": ({"state_dict": state, "args": argparse.Namespace(lr=0.1)}, "argparse.Namespace"),
        "system.pt": ({**state, "x": _payloads(sentinel)["system"]}, "system"),
        "exec.pt": ({**state, "x": _payloads(sentinel)["exec"]}, "exec"),
    }
    out = {}
    for name, (obj, needle) in cases.items():
        torch.save(obj, tmp_path / name)
        out[tmp_path / name] = needle
    torch.save(torch.nn.Linear(2, 2), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    out[tmp_path / "legacy.pt"] = "Linear"
    (tmp_path / "bare.pkl").write_bytes(pickle.dumps({"w": _payloads(sentinel)["call"]}))
    out[tmp_path / "bare.pkl"] = "call"
    return sentinel, out


def test_torch_files_with_code_are_refused_naming_globals(tmp_path, ds):
    sentinel, files = _torch_corpus(tmp_path, ds)
    for path, needle in files.items():
        with pytest.raises(UnsafeCheckpointError, match=needle) as e:
            load_foreign_state_dict(path)
        assert "--allow-unsafe-load" in str(e.value)
    assert not sentinel.exists()


def test_opt_in_loads_a_pickled_module_with_a_warning(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "linear.pt")
    with pytest.warns(UnsafeLoadWarning, match="linear.pt"):
        state = load_foreign_state_dict(tmp_path / "linear.pt", allow_unsafe=True)
    assert state["weight"].shape == (3, 2)
    torch.save({"w": torch.ones(2)}, tmp_path / "plain.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a safe file never warns, opted in or not
        assert torch.equal(
            load_foreign_state_dict(tmp_path / "plain.pt", allow_unsafe=True)["w"], torch.ones(2)
        )


def _patch_central_directory(data: bytes, entry: str, offset: int, value: int) -> bytes:
    """Set a 4-byte field of `entry`'s central-directory record (20: compressed, 24: uncompressed size)."""
    i = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack("<H", data[i + 28 : i + 30])[0]
        if data[i + 46 : i + 46 + name_len].decode() == entry:
            return data[: i + offset] + struct.pack("<I", value) + data[i + offset + 4 :]
        i = data.index(b"PK\x01\x02", i + 4)


def test_zip_entries_declaring_huge_sizes_are_refused(tmp_path):
    torch.save({"w": torch.zeros(4)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    name = next(n for n in zipfile.ZipFile(tmp_path / "ok.pt").namelist() if n.endswith("data.pkl"))
    for field, what in ((24, "uncompressed"), (20, "past the end")):
        (tmp_path / "bomb.pt").write_bytes(_patch_central_directory(data, name, field, 0xFFFFFFF0))
        with pytest.raises(CorruptCheckpointError, match=what) as e:
            load_foreign_state_dict(tmp_path / "bomb.pt")
        assert "data.pkl" in str(e.value)


def test_npz_declaring_a_huge_array_is_refused(tmp_path):
    np.savez(tmp_path / "ok.npz", X=np.zeros((3, 2), np.float32))
    assert load_npz(tmp_path / "ok.npz")["X"].shape == (3, 2)
    with zipfile.ZipFile(tmp_path / "ok.npz") as z:
        npy = z.read("X.npy")
    header_end = npy.index(b"\n") + 1
    header = npy[10:header_end].replace(b"(3, 2)", b"(100000000000, 2)")
    header = header[:-1].ljust(header_end - 10 - 1) + b"\n"
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as z:
        z.writestr("X.npy", npy[:10] + header + npy[header_end:])
    with pytest.raises(CorruptFileError, match="declares shape"):
        load_npz(tmp_path / "bomb.npz")
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="Python objects"):  # the caller picks the error class
        load_npz(tmp_path / "objects.npz", DataError)


# ----------------------------------------------------------------------------- safetensors


def _safetensors(header: dict, data: bytes = b"", length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def test_safetensors_with_absurd_declared_sizes(tmp_path):
    cases = {
        "header-length": (_safetensors({}, length=2**62), "header declares"),
        "offsets": (
            _safetensors({"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}),
            "ends at byte",
        ),
        "shape": (
            _safetensors({"w": {"dtype": "F32", "shape": [2**30, 2**30], "data_offsets": [0, 8]}}, b"\0" * 8),
            "needs",
        ),
        "not-json": (struct.pack("<Q", 4) + b"\xff\xfe{]", "not JSON"),
        "tiny": (b"\x01\x02\x03", "truncated"),
    }
    for name, (data, needle) in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(data)
        for load in (read_metadata, load_checkpoint, load_foreign_state_dict):
            with pytest.raises(CorruptCheckpointError, match=needle):
                load(p)


def test_hostile_config_is_refused_before_allocating(tmp_path, ds):
    good = save_checkpoint(tmp_path / "good.safetensors", tiny_model(ds))
    meta = read_metadata(good)
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for key, value, needle in (
        ("width", 10**5, "do not match"),
        ("width", 10**9, "cannot build"),
        ("variant", "bogus", "unknown variant"),
        ("num_classes", -3, "cannot build"),
    ):
        bad = dict(meta, config={**meta["config"], key: value})
        save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"aofl": json.dumps(bad)})
        with pytest.raises(CheckpointError, match=needle):
            load_checkpoint(tmp_path / "bad.safetensors")


# ----------------------------------------------------------------------------- truncated and empty files


def test_truncated_and_empty_files_of_every_kind(tmp_path, ds):
    ck = save_checkpoint(tmp_path / "ck.safetensors", tiny_model(ds))
    torch.save({"w": torch.zeros(64)}, tmp_path / "w.pt")
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"a": np.arange(50.0)}, protocol=4))
    np.savez(tmp_path / "a.npz", X=np.zeros((8, 8), np.float32))
    originals = {
        "ck.safetensors": ck.read_bytes(),
        "w.pt": (tmp_path / "w.pt").read_bytes(),
        "p.pkl": (tmp_path / "p.pkl").read_bytes(),
        "a.npz": (tmp_path / "a.npz").read_bytes(),
    }
    loaders = {
        "ck.safetensors": (load_checkpoint, CorruptCheckpointError),
        "w.pt": (load_foreign_state_dict, CorruptCheckpointError),
        "p.pkl": (lambda p: safe_load(p, allow_numpy=True), CorruptPickleError),
        "a.npz": (load_npz, CorruptFileError),
    }
    for name, data in originals.items():
        load, error = loaders[name]
        for cut in (0, 1, len(data) // 3, len(data) // 2, len(data) - 1):
            p = tmp_path / f"cut-{cut}-{name}"
            p.write_bytes(data[:cut])
            with pytest.raises(error) as e:
                load(p)
            assert str(p) in str(e.value), (name, cut, e.value)
            if cut == 0:
                assert "empty (0 bytes)" in str(e.value)


def test_truncated_and_empty_meld_csv(tmp_path):
    good = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n" + "".join(
        f"{i},hi {i},Joey,neutral,neutral,0,{i}\n" for i in range(5)
    )
    p = tmp_path / "train_sent_emo.csv"
    p.write_text(good)
    assert len(real._read_meld_csv(p)[0]) == 5
    p.write_text(good[:-4])  # the last row loses its Utterance_ID
    with pytest.raises(DataError, match="line 6") as e:
        real._read_meld_csv(p)
    assert str(p) in str(e.value)
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        real._read_meld_csv(p)
    p.write_text(good.replace("Dialogue_ID", "Dia"))
    with pytest.raises(DataError, match="missing columns"):
        real._read_meld_csv(p)


def test_corrupt_text_view_cache(tmp_path):
    from aofl.data import textviews

    p = tmp_path / "view.npz"
    np.savez(p, X=np.zeros((4, 3), np.float32))
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(DataError, match="view.npz.*data prepare meld"):
        textviews._read_cache(p, argparse.Namespace(name="meld"), "tfidf")


# ----------------------------------------------------------------------------- the opt-in


def test_opt_in_switch():
    assert not unsafe_load_allowed(None)
    assert unsafe_load_allowed(True) and not unsafe_load_allowed(False)


def test_benign_foreign_pickle_loads_only_when_opted_in(tmp_path, monkeypatch):
    data = pickle.dumps({"when": datetime.date(2020, 1, 2)})
    with pytest.raises(UnsafePickleError, match="datetime.date"):
        safe_loads(data)
    with pytest.warns(UnsafeLoadWarning, match="datetime.date"):
        assert safe_loads(data, allow_unsafe=True)["when"].year == 2020
    (tmp_path / "d.pkl").write_bytes(data)
    monkeypatch.setenv(ALLOW_UNSAFE_ENV, "1")
    with pytest.warns(UnsafeLoadWarning, match="d.pkl"):
        assert safe_load(tmp_path / "d.pkl")["when"].day == 2
    with pytest.raises(UnsafePickleError):  # the keyword wins over the environment
        safe_load(tmp_path / "d.pkl", allow_unsafe=False)


def test_cli_flag_sets_the_opt_in(monkeypatch, tmp_path, capsys):
    from aofl.cli import main

    monkeypatch.setenv(ALLOW_UNSAFE_ENV, "0")  # restored after the test
    assert main(["evaluate", str(tmp_path / "missing"), "--allow-unsafe-load"]) == 2
    assert os.environ[ALLOW_UNSAFE_ENV] == "1"
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.app  # a subprocess
def test_cli_prints_one_line_for_a_hostile_checkpoint(tmp_path):
    (tmp_path / "evil.safetensors").write_bytes(_safetensors({}, length=2**62))
    p = subprocess.run(
        [sys.executable, "-m", "aofl", "evaluate", str(tmp_path / "evil.safetensors")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    assert "header declares" in p.stderr


# ----------------------------------------------------------------------------- validation messages


def test_multiemo_layout_validation():
    ids = ["d1"]
    ok = ({"d1": ["u"]}, {"d1": ["M"]}, {"d1": [0]}, {}, {}, {}, {"d1": ["hi"]}, set(ids), set(ids))
    assert check_speakers_tuple(ok, "S.pkl") == ok
    bad = {
        "9- or 10-tuple": ok[:5],
        "videoLabels": ok[:2] + (["not", "a", "dict"],) + ok[3:],
        "trainVid": ok[:7] + (5, set(ids)),
        "no labels": ok[:7] + ({"d2"}, set(ids)),
        "non-empty list": ok[:2] + ({"d1": []},) + ok[3:],
        "speakers": (ok[0], {"d1": ["M", "F"]}) + ok[2:],
    }
    for needle, tup in bad.items():
        with pytest.raises(DataError, match=needle) as e:
            check_speakers_tuple(tup, "S.pkl")
        assert "S.pkl" in str(e.value)


def _set(dialogue_features, labels=(0, 1), split_sizes=None, name="x"):
    d = Dialogue("d0", ["A"] * len(labels), np.array(labels), dialogue_features)
    splits = {s: [d] for s in ("train", "valid", "test")}
    splits.update(split_sizes or {})
    return ConversationSet(name, ["a", "b"], list(dialogue_features), splits)


def test_dataset_validation_messages():
    x = np.zeros((2, 3), np.float32)
    validate_dataset(_set({"t": x, "v": x}), "f.pkl")
    nan = x.copy()
    nan[1, 2] = np.nan
    with pytest.raises(DataError, match=r"NaN or Inf.*\[1\]"):
        validate_dataset(_set({"t": x, "v": nan}), "f.pkl")
    with pytest.raises(DataError, match="Inf"):
        validate_dataset(_set({"t": x, "v": np.full((2, 3), np.inf, np.float32)}), "f.pkl")
    with pytest.raises(DataError, match="split 'valid' is empty"):
        validate_dataset(_set({"t": x}, split_sizes={"valid": []}), "f.pkl")
    with pytest.raises(DataError, match="label 7"):
        validate_dataset(_set({"t": x}, labels=(0, 7)), "f.pkl")
    empty = Dialogue("e", [], np.zeros(0), {"t": np.zeros((0, 3))})
    with pytest.raises(DataError, match="no utterances"):
        validate_dataset(_set({"t": x}, split_sizes={"test": [empty]}), "f.pkl")


def test_checkpoint_compatibility(ds):
    meta = {
        "config": tiny_model(ds).config.to_dict(),
        "label_names": list(ds.label_names),
        "data": {"name": ds.name, "fingerprint": ds.fingerprint()},
    }
    assert check_compatible(meta, ds, source="ck") == []
    with pytest.raises(IncompatibleCheckpointError, match="trained on 'iemocap'") as e:
        check_compatible({**meta, "data": {"name": "iemocap"}}, ds, source="ck")
    assert isinstance(e.value, CheckpointError) and isinstance(e.value, DataError)
    other_dims = tiny_dataset(dims={"audio": 5, "text": 16, "visual": 10})
    with pytest.raises(IncompatibleCheckpointError, match="dimensions differ.*audio"):
        check_compatible(meta, other_dims, source="ck")
    with pytest.raises(IncompatibleCheckpointError, match="labels"):
        check_compatible({**meta, "label_names": ["x"] * ds.num_classes}, ds, source="ck")
    assert (
        "different version"
        in check_compatible({**meta, "data": {"name": ds.name, "fingerprint": "0"}}, ds, source="ck")[0]
    )


def test_unknown_variant():
    with pytest.raises(ConfigError, match="unknown variant 'bogus'"):
        AOFLConfig(["a", "b"], {"a": 1, "b": 1}, 2, variant="bogus")
    from aofl.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--variant", "bogus", "--out", "x"])
    assert e.value.code == 2


def test_missing_data_dir_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-dir"
    monkeypatch.setenv("AOFL_DATA_DIR", str(missing))
    for name in ("iemocap", "meld", "iemocap-multiemo"):
        with pytest.raises(DataError, match="does not exist") as e:
            load_dataset(name)
        assert str(missing) in str(e.value) and "AOFL_DATA_DIR" in str(e.value)
