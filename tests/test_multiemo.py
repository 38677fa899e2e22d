"""MultiEMO / DialogueRNN pickles: files with the exact layout, built from real ids, speakers, labels."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
from _real_data import require_real

from aofl.data import DataError, loaders, real
from aofl.data.multiemo import load_dialoguernn, load_multiemo, multiemo_available, multiemo_dir

DIMS = {"text": 768, "audio": 512, "visual": 1000}
FILES = {"text": "TextFeatures.pkl", "audio": "AudioFeatures.pkl", "visual": "VisualFeatures.pkl"}


def _dump(obj, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def _iemocap_subset(root):
    """6 train + all 12 COSMIC valid + 3 test dialogues of the real pickle (MultiEMO has train+valid in trainVid)."""
    spk, lab, sent, train, test, valid = pickle.load(
        open(root / "iemocap" / "iemocap.pkl", "rb"), encoding="latin1"
    )
    train_vid, test_vid = list(train[:6]) + list(valid), list(test[:3])
    vids = train_vid + test_vid
    return spk, lab, sent, train_vid, test_vid, vids


def _build_multiemo_iemocap(src, out, rng, n_valid=None):
    spk, lab, sent, train_vid, test_vid, vids = _iemocap_subset(src)
    ids = {v: [f"{v}_{i:03d}" for i in range(len(lab[v]))] for v in vids}
    small = {v: np.zeros((len(lab[v]), 100), np.float32) for v in vids}  # DialogueRNN's own 100-d features
    tup = (
        ids,
        {v: spk[v] for v in vids},
        {v: lab[v] for v in vids},
        small,
        small,
        {v: np.zeros((len(lab[v]), 512), np.float32) for v in vids},
        {v: sent[v] for v in vids},
        set(train_vid),
        set(test_vid),
    )
    _dump(tup, out / "Speakers.pkl")
    feats = {
        m: {v: rng.standard_normal((len(lab[v]), d)).astype(np.float32) for v in vids}
        for m, d in DIMS.items()
    }
    for m, fname in FILES.items():
        _dump(feats[m], out / fname)
    return feats, lab, train_vid, test_vid


@pytest.mark.real_data
def test_multiemo_iemocap_layout(tmp_path):
    src = require_real("iemocap")
    out = tmp_path / "multiemo" / "IEMOCAP"
    feats, lab, train_vid, test_vid = _build_multiemo_iemocap(src, out, np.random.default_rng(0))
    cs = load_multiemo("iemocap", out, data_dir=src)
    assert cs.modalities == ["text", "audio", "visual"] and cs.modality_dims == DIMS
    assert cs.label_names == real.IEMOCAP_LABELS
    cosmic = real.load_transcripts("iemocap", src)
    # valid = the COSMIC validation dialogues, carved out of trainVid
    assert [d.dialogue_id for d in cs.splits["valid"]] == sorted(
        d.dialogue_id for d in cosmic.splits["valid"]
    )
    assert len(cs.splits["train"]) == 6 and len(cs.splits["test"]) == 3
    assert cs.meta["valid_split"] == "cosmic"
    for d in (d for ds in cs.splits.values() for d in ds):
        assert np.array_equal(d.labels, lab[d.dialogue_id])
        for m in DIMS:
            assert np.array_equal(d.features[m], feats[m][d.dialogue_id])
        assert set(d.speakers) <= {"M", "F"} and d.text and len(d.text) == len(d)
    ids = [u for ds in cs.splits.values() for d in ds for u in d.utterance_ids]
    assert len(ids) == len(set(ids))
    # without the COSMIC metadata: a seeded fraction of trainVid
    cs2 = load_multiemo("iemocap", out, data_dir=False, valid_fraction=0.25, seed=1)
    assert len(cs2.splits["valid"]) == round(0.25 * len(train_vid)) and cs2.meta["valid_split"].startswith(
        "random"
    )
    cs3 = load_multiemo("iemocap", out, data_dir=False, valid_ids=[train_vid[0]])
    assert [d.dialogue_id for d in cs3.splits["valid"]] == [train_vid[0]]


@pytest.mark.real_data
def test_real_load_hook(tmp_path):
    src = require_real("iemocap")
    data = tmp_path / "data"
    (data / "iemocap").mkdir(parents=True)
    shutil.copy(src / "iemocap" / "iemocap.pkl", data / "iemocap" / "iemocap.pkl")
    assert not multiemo_available("iemocap", data)
    with pytest.raises(DataError, match="iemocap-multiemo"):
        loaders.load("iemocap", features="multiemo", data_dir=data)
    _build_multiemo_iemocap(src, multiemo_dir("iemocap", data), np.random.default_rng(1))
    assert multiemo_available("iemocap", data)
    cs = loaders.load("iemocap", features="multiemo", data_dir=data)
    assert cs.modality_dims == DIMS and len(cs.splits["valid"]) == 12


@pytest.mark.real_data
def test_multiemo_meld_layout(tmp_path):
    src = require_real("meld")
    spk, emo, _sentiment, sent, train, test, dev = pickle.load(
        open(src / "meld" / "meld.pkl", "rb"), encoding="latin1"
    )
    train_vid, test_vid = sorted(train)[:5] + sorted(dev)[:2], sorted(test)[:3]
    vids = train_vid + test_vid
    rng = np.random.default_rng(0)
    tup = (
        {v: list(range(len(emo[v]))) for v in vids},
        {v: spk[v] for v in vids},
        {v: emo[v] for v in vids},
        {},
        {},
        {},
        {v: sent[v] for v in vids},
        train_vid,
        test_vid,
        None,
    )
    out = tmp_path / "MELD"
    _dump(tup, out / "Speakers.pkl")
    for m, fname in FILES.items():
        _dump({v: rng.standard_normal((len(emo[v]), DIMS[m])).astype(np.float32) for v in vids}, out / fname)
    cs = load_multiemo("meld", out, data_dir=src, valid_ids=sorted(dev)[:2])
    assert cs.label_names == real.MELD_LABELS and cs.modality_dims == DIMS
    assert [d.dialogue_id for d in cs.splits["valid"]] == [str(v) for v in sorted(dev)[:2]]
    first = cs.splits["train"][0]
    assert first.dialogue_id == "0" and first.speakers[:2] == [
        "Chandler",
        "The Interviewer",
    ]  # names from the CSV
    assert "\x92" not in "".join(first.text)
    # without the metadata: slot names and the pickle's own text
    cs2 = load_multiemo("meld", out, data_dir=False, valid_ids=sorted(dev)[:2])
    assert cs2.splits["train"][0].speakers[:2] == ["speaker0", "speaker1"]


@pytest.mark.real_data
def test_dialoguernn_layout(tmp_path):
    src = require_real("iemocap")
    spk, lab, sent, train_vid, test_vid, vids = _iemocap_subset(src)
    rng = np.random.default_rng(0)
    dims = {"text": 100, "audio": 100, "visual": 512}
    f = {
        m: {v: rng.standard_normal((len(lab[v]), d)).astype(np.float32) for v in vids}
        for m, d in dims.items()
    }
    tup = (
        {v: list(range(len(lab[v]))) for v in vids},
        {v: spk[v] for v in vids},
        {v: lab[v] for v in vids},
        f["text"],
        f["audio"],
        f["visual"],
        {v: sent[v] for v in vids},
        train_vid,
        test_vid,
    )
    path = tmp_path / "IEMOCAP_features_raw.pkl"
    _dump(tup, path)
    cs = load_dialoguernn(path, data_dir=src)
    assert cs.modality_dims == dims and len(cs.splits["valid"]) == 12
    d = cs.splits["test"][0]
    assert np.array_equal(d.features["visual"], f["visual"][d.dialogue_id])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_and_malformed_pickles(tmp_path):
    out = tmp_path / "IEMOCAP"
    marker = tmp_path / "pwned"
    _dump(_Evil(marker), out / "Speakers.pkl")
    for fname in FILES.values():
        _dump({"a": np.zeros((1, 2), np.float32)}, out / fname)
    with pytest.raises(DataError, match="refus") as e:
        load_multiemo("iemocap", out, data_dir=False)
    assert not marker.exists() and "system" in str(e.value)
    _dump((1, 2, 3), out / "Speakers.pkl")
    with pytest.raises(DataError, match="9- or 10-tuple"):
        load_multiemo("iemocap", out, data_dir=False)
    with pytest.raises(DataError, match="not found"):
        load_multiemo("meld", tmp_path / "nothing", data_dir=False)
    with pytest.raises(DataError, match="unknown MultiEMO dataset"):
        load_multiemo("cmu-mosei", out)


def test_data_list_shows_multiemo_features_without_the_transcripts(tmp_path, capsys):
    """Only MultiEMO's pickles in the data directory: `--data iemocap-multiemo` trains, so `data list`
    names it (with its counts), while `iemocap` itself stays "not available"."""
    import json

    from aofl.cli import main

    rng = np.random.default_rng(0)
    vids = [f"Ses01F_d{i}" for i in range(6)]
    labels = {v: [int(x) for x in rng.integers(0, 6, 4)] for v in vids}
    speakers = {v: ["M", "F", "M", "F"] for v in vids}
    out = multiemo_dir("iemocap", tmp_path)
    _dump((vids, speakers, labels, None, None, None, None, set(vids[:5]), {vids[5]}), out / "Speakers.pkl")
    for m, fname in FILES.items():
        _dump({v: rng.standard_normal((4, DIMS[m])).astype(np.float32) for v in vids}, out / fname)

    assert main(["data", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert list(infos) == ["synthetic", "iemocap", "meld", "iemocap-multiemo"]
    assert not infos["iemocap"]["available"]
    listed = infos["iemocap-multiemo"]
    assert listed["available"] and listed["modalities"] == DIMS
    assert sum(s["dialogues"] for s in listed["splits"].values()) == 6
    assert listed["splits"]["test"] == {"dialogues": 1, "utterances": 4}
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    assert "iemocap-multiemo: available" in capsys.readouterr().out
