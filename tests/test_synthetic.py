import numpy as np
import pytest

from aofl.data import ConversationSet, DataError, Dialogue, collate, make_synthetic
from aofl.data.synthetic import ONLY_IN, SYNTHETIC_LABELS


def test_default_size_close_to_iemocap():
    ds = make_synthetic(dims={"audio": 8, "text": 8, "visual": 8})
    n = sum(ds.num_utterances(s) for s in ds.splits)
    assert 140 <= sum(len(v) for v in ds.splits.values()) <= 160
    assert 5000 <= n <= 9000
    assert ds.num_classes == 6 and len(ds.modalities) == 3
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 108, "valid": 12, "test": 30}


def test_deterministic_and_seeded():
    a = make_synthetic(n_dialogues=10, dims={"a": 5, "b": 6})
    b = make_synthetic(n_dialogues=10, dims={"a": 5, "b": 6})
    c = make_synthetic(n_dialogues=10, dims={"a": 5, "b": 6}, seed=1)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert np.array_equal(a.split("train")[0].features["a"], b.split("train")[0].features["a"])


def test_planted_factors_present_and_paired_classes_share_shared_mean():
    ds = make_synthetic(n_dialogues=60, dims={"audio": 8, "text": 8, "visual": 8}, noise=0.0)
    d = ds.split("train")
    shared = np.concatenate([x.extras["factor:shared"] for x in d])
    labels = np.concatenate([x.labels for x in d])
    visual = np.concatenate([x.extras["factor:visual"] for x in d])
    means = {c: shared[labels == i].mean(0) for i, c in enumerate(SYNTHETIC_LABELS)}
    # sad and fearful share their shared-factor mean (differences only from drift)...
    assert np.linalg.norm(means["sad"] - means["fearful"]) < 0.5 * np.linalg.norm(
        means["sad"] - means["happy"]
    )
    # ...and differ in the visual specific factor
    v = {c: visual[labels == SYNTHETIC_LABELS.index(c)].mean(0) for c in ("sad", "fearful")}
    assert np.linalg.norm(v["sad"] - v["fearful"]) > 1.0
    assert ONLY_IN[("sad", "fearful")] == "visual"


def test_ids_unique_and_stable():
    ds = make_synthetic(n_dialogues=5, dims={"a": 3, "b": 3})
    ids = [u for s in ds.splits.values() for d in s for u in d.utterance_ids]
    assert len(ids) == len(set(ids)) and ids[0] == "syn000#0"


def test_dataset_validation_errors():
    with pytest.raises(DataError, match="speakers"):
        Dialogue("d", ["A"], np.array([0, 1]), {"a": np.zeros((2, 3))})
    d = Dialogue("d", ["A", "B"], np.array([0, 1]), {"a": np.zeros((2, 3))})
    with pytest.raises(DataError, match="missing modalities"):
        ConversationSet("x", ["p", "q"], ["a", "b"], {"train": [d]})
    ds = ConversationSet("x", ["p", "q"], ["a"], {"train": [d], "test": []})
    with pytest.raises(DataError, match="empty"):
        ds.split("test")
    with pytest.raises(DataError, match="no split"):
        ds.split("valid")
    with pytest.raises(DataError):
        collate([], ["a"])


def test_collate_pads_and_masks():
    ds = make_synthetic(n_dialogues=4, dims={"a": 3, "b": 2}, turns=(2, 6))
    ds_list = ds.split("train")
    b = collate(ds_list, ["a", "b"])
    lengths = [len(d) for d in ds_list]
    assert b.mask.sum().item() == sum(lengths)
    assert (b.labels[~b.mask] == -1).all()
    assert b.features["a"].shape == (len(ds_list), max(lengths), 3)
