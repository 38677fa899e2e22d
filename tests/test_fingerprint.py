"""The data fingerprint means "the same data": ids, speakers, labels, transcripts and each view's
recipe, not the last bits of the feature floats (which differ between machines)."""

import copy

import numpy as np
import pytest
from _real_data import REPO_ROOT, require_real

from aofl.data import ConversationSet, Dialogue, make_synthetic
from aofl.data.conversation import FINGERPRINT_DECIMALS


def _set(recipes=True, seed=0) -> ConversationSet:
    rng = np.random.default_rng(seed)
    splits = {
        s: [
            Dialogue(
                f"{s}{i}",
                ["A", "B", "A"],
                [0, 1, 0],
                {"t": rng.normal(size=(3, 4)), "l": rng.normal(size=(3, 2))},
                text=["hi", "no way", "ok"],
            )
            for i in range(2)
        ]
        for s in ("train", "valid", "test")
    }
    meta = {"view_recipes": {"t": "sentence/v1", "l": "lexicon/v1"}} if recipes else {}
    return ConversationSet("toy", ["joy", "anger"], ["t", "l"], splits, meta=meta)


def _with_float_noise(ds: ConversationSet) -> ConversationSet:
    """The same set whose features differ in the last bits (another machine's BLAS)."""
    noisy = copy.deepcopy(ds)
    for ds_split in noisy.splits.values():
        for d in ds_split:
            for m, x in d.features.items():
                d.features[m] = np.nextafter(x, np.float32(np.inf)).astype(np.float32)
    return noisy


@pytest.mark.parametrize("recipes", [True, False])
def test_float_noise_keeps_the_fingerprint(recipes):
    ds = _set(recipes)
    noisy = _with_float_noise(ds)
    assert not np.array_equal(noisy.splits["train"][0].features["t"], ds.splits["train"][0].features["t"])
    assert noisy.fingerprint() == ds.fingerprint()


@pytest.mark.parametrize("recipes", [True, False])
def test_a_changed_label_or_transcript_flips_it(recipes):
    ds = _set(recipes)
    label = copy.deepcopy(ds)
    label.splits["test"][1].labels[2] = 1
    text = copy.deepcopy(ds)
    text.splits["valid"][0].text[1] = "no way!"
    speaker = copy.deepcopy(ds)
    speaker.splits["train"][0].speakers[0] = "C"
    prints = {ds.fingerprint(), label.fingerprint(), text.fingerprint(), speaker.fingerprint()}
    assert len(prints) == 4


def test_a_changed_recipe_flips_it_and_features_without_one_count_beyond_the_tolerance():
    ds = _set()
    other_view = copy.deepcopy(ds)
    other_view.meta["view_recipes"]["t"] = "sentence/v2"
    assert other_view.fingerprint() != ds.fingerprint()
    plain = _set(recipes=False)
    moved = copy.deepcopy(plain)
    moved.splits["train"][0].features["l"][0, 0] += 10.0 ** (1 - FINGERPRINT_DECIMALS)
    assert moved.fingerprint() != plain.fingerprint()


def test_synthetic_fingerprint_is_its_generator_arguments():
    a = make_synthetic(n_dialogues=6, dims={"a": 3, "b": 4})
    assert a.fingerprint() == make_synthetic(n_dialogues=6, dims={"a": 3, "b": 4}).fingerprint()
    assert a.fingerprint() != make_synthetic(n_dialogues=6, dims={"a": 3, "b": 4}, noise=0.5).fingerprint()


@pytest.mark.real_data
def test_shipped_meld_checkpoints_match_the_data_here():
    """The issue's false alarm: the shipped MELD checkpoints' fingerprint is this machine's."""
    from aofl.data import load_dataset
    from aofl.store.checkpoint import read_metadata

    root = require_real("meld")
    pytest.importorskip("sentence_transformers")
    ds = load_dataset("meld", data_dir=root, progress=False)
    for path in sorted((REPO_ROOT / "checkpoints" / "meld").glob("*/model.safetensors")):
        assert read_metadata(path)["data"]["fingerprint"] == ds.fingerprint(), path


@pytest.mark.real_data
def test_text_views_off_in_the_last_bits_still_match_the_shipped_checkpoint(monkeypatch):
    """Another machine's text views (the same recipe, floats off by one ulp) are the same data."""
    from aofl.compatibility import check_compatible
    from aofl.data import loaders, textviews
    from aofl.store.checkpoint import read_metadata

    root = require_real("meld")
    pytest.importorskip("sentence_transformers")
    real_load_views = textviews.load_views

    def noisy(*args, **kwargs):
        views = real_load_views(*args, **kwargs)
        return {v: np.nextafter(x, np.float32(np.inf)).astype(np.float32) for v, x in views.items()}

    monkeypatch.setattr(loaders.textviews, "load_views", noisy)
    ds = loaders.load("meld", data_dir=root, progress=False)
    meta = read_metadata(REPO_ROOT / "checkpoints" / "meld" / "baseline" / "model.safetensors")
    assert meta["data"]["fingerprint"] == ds.fingerprint()
    assert not any("fingerprint" in w for w in check_compatible(meta, ds, source="baseline"))
    changed = copy.deepcopy(ds)
    changed.splits["test"][0].labels[0] = (changed.splits["test"][0].labels[0] + 1) % 7
    assert changed.fingerprint() != ds.fingerprint()
