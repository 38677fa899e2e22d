"""Dataset names that carry their text views: `iemocap+sentence+lexicon+tfidf+tuned`.

The name helpers and the checks of `load_dataset` need no files; loading and listing the real
data skip cleanly when the files (or their prepared views) are not here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _real_data import require_real

import aofl.data
from aofl.data import (
    TUNED_VIEWS,
    DataError,
    available_datasets,
    dataset_name,
    load_dataset,
    loaders,
    real,
    split_dataset_name,
    textviews,
)
from aofl.data.real import DEFAULT_VIEWS

TUNED_NAME = "iemocap+sentence+lexicon+tfidf+tuned"
VALID_VIEWS = "valid views: sentence, lexicon, tfidf, tuned"


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AOFL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ----------------------------------------------------------------------------- the pure helpers


@pytest.mark.parametrize("name", ["synthetic", "iemocap", "meld", "iemocap-multiemo"])
def test_a_name_without_views_splits_to_itself(name):
    assert split_dataset_name(name) == (name, None)
    assert dataset_name(name) == name


def test_a_name_with_views_splits_into_the_base_and_its_views_in_order():
    assert split_dataset_name(TUNED_NAME) == ("iemocap", ("sentence", "lexicon", "tfidf", "tuned"))
    assert split_dataset_name("meld+tuned+sentence") == ("meld", ("tuned", "sentence"))


@pytest.mark.parametrize("base", ["iemocap", "meld"])
@pytest.mark.parametrize("views", [("tuned",), ("tfidf", "sentence"), TUNED_VIEWS, ("lexicon", "tuned")])
def test_names_round_trip(base, views):
    name = dataset_name(base, views)
    assert name == "+".join((base, *views))
    assert split_dataset_name(name) == (base, views)


def test_the_default_views_give_the_plain_name():
    assert dataset_name("iemocap", DEFAULT_VIEWS) == "iemocap"
    assert dataset_name("meld", list(DEFAULT_VIEWS)) == "meld"
    assert dataset_name("iemocap", TUNED_VIEWS) == TUNED_NAME


@pytest.mark.parametrize(
    "name, problem",
    [
        ("iemocap+", "no text view"),
        ("iemocap+foo", "unknown text view"),
        ("iemocap++tuned", "unknown text view"),
        ("iemocap+tuned+sentence+tuned", "named twice"),
        ("synthetic+tuned", "iemocap and meld only"),
        ("iemocap-multiemo+tuned", "iemocap and meld only"),
    ],
)
def test_bad_views_in_a_name_list_the_valid_views(name, problem):
    with pytest.raises(DataError, match=problem) as e:
        split_dataset_name(name)
    assert VALID_VIEWS in str(e.value)
    with pytest.raises(DataError, match=VALID_VIEWS):
        load_dataset(name)


@pytest.mark.parametrize("base, views", [("iemocap", ()), ("iemocap", ("x",)), ("synthetic", ("tuned",))])
def test_dataset_name_refuses_views_that_cannot_be_loaded(base, views):
    with pytest.raises(DataError, match=VALID_VIEWS):
        dataset_name(base, views)


def test_a_study_is_named_by_the_same_helper():
    from aofl.tune import TuneSpec

    def tag(data, views=()):
        return TuneSpec(data=data, variant="full", trials=1, folds=2, out=Path("x"), views=views).data_tag

    assert tag("iemocap") == tag("iemocap", DEFAULT_VIEWS) == "iemocap"
    assert tag("synthetic") == "synthetic"
    assert tag("iemocap", TUNED_VIEWS) == TUNED_NAME == dataset_name("iemocap", TUNED_VIEWS)
    assert tag("meld", ("sentence", "tuned")) == "meld+sentence+tuned"


# ----------------------------------------------------------------------------- DatasetName, the one parser


@pytest.mark.parametrize(
    "text, base, source, views",
    [
        ("synthetic", "synthetic", None, ()),
        ("iemocap", "iemocap", None, ()),
        ("meld-multiemo", "meld", "multiemo", ()),
        (TUNED_NAME, "iemocap", None, TUNED_VIEWS),
        ("meld+tuned+sentence", "meld", None, ("tuned", "sentence")),
    ],
)
def test_one_type_parses_and_prints_every_name(text, base, source, views):
    from aofl.data import DatasetName

    name = DatasetName.parse(text)
    assert (name.base, name.source, name.views) == (base, source, views)
    assert str(name) == text and DatasetName.parse(str(name)) == name
    assert split_dataset_name(text) == (name.plain, views or None)


def test_each_separator_has_one_meaning():
    from aofl.data import DatasetName

    assert DatasetName.parse("iemocap-multiemo").plain == "iemocap-multiemo"  # `-`: a feature source
    assert (
        str(DatasetName("iemocap", views=DEFAULT_VIEWS)) == "iemocap"
    )  # `+`: views; the default print plain
    assert str(DatasetName.parse("iemocap").with_views(TUNED_VIEWS)) == TUNED_NAME
    with pytest.raises(DataError, match="iemocap and meld only, not 'meld-multiemo'"):
        DatasetName.parse("meld-multiemo").with_views(["tuned"])


def test_a_name_given_whole_as_the_plain_part_keeps_its_views():
    """`dataset_name`, checkpoints and study exports give the name without views; one that has
    views already prints as given and cannot take more (as before DatasetName)."""
    from aofl.data import DatasetName

    assert dataset_name("iemocap+tuned") == "iemocap+tuned" == str(DatasetName.from_parts("iemocap+tuned"))
    assert str(DatasetName.from_parts("iemocap-multiemo")) == "iemocap-multiemo"
    with pytest.raises(DataError, match="not 'iemocap\\+tuned'"):
        dataset_name("iemocap+tuned", ("sentence",))


def test_study_names_put_the_arm_after_the_dataset_and_read_back():
    from aofl.data import DatasetName
    from aofl.data.names import parse_study_name, study_name

    for data in ["iemocap", "iemocap-multiemo", TUNED_NAME]:
        for arm in ["full", "no_aao", "baseline"]:
            for curve in (False, True):
                name = study_name(DatasetName.parse(data), arm, curve)
                assert parse_study_name(name) == (data, arm, curve)
    assert study_name("iemocap", "full", curve=True) == "iemocap-full-curve"
    assert parse_study_name("orphan") == ("orphan", None, False)


# ----------------------------------------------------------------------------- load_dataset, no files


@pytest.fixture
def load_calls(monkeypatch) -> list:
    """What `loaders.load` is asked for (nothing is read)."""
    calls = []
    monkeypatch.setattr(loaders, "load", lambda name, **kwargs: calls.append((name, kwargs)) or "loaded")
    return calls


def test_a_tagged_name_loads_the_real_dataset_with_exactly_its_views(load_calls):
    assert load_dataset("meld+tuned+sentence", progress=False) == "loaded"
    assert load_calls == [("meld", {"views": ("tuned", "sentence"), "progress": False})]


def test_views_may_repeat_the_name_but_not_contradict_it(load_calls):
    load_dataset(TUNED_NAME, views=list(TUNED_VIEWS))
    assert load_calls == [("iemocap", {"views": TUNED_VIEWS})]
    with pytest.raises(DataError, match="names the views"):
        load_dataset(TUNED_NAME, views=("sentence",))
    with pytest.raises(DataError, match="features"):
        load_dataset(TUNED_NAME, features="multiemo")
    assert len(load_calls) == 1


def test_an_unknown_name_mentions_names_with_views():
    with pytest.raises(DataError, match=r"iemocap\+sentence\+lexicon\+tfidf\+tuned") as e:
        load_dataset("iemocap_tuned")
    assert "sentence, lexicon, tfidf, tuned" in str(e.value)


# ----------------------------------------------------------------------------- the CLI's --data


def _parse(*argv):
    from aofl.cli import build_parser

    return build_parser().parse_args(["train", "--out", "x", *argv])


def test_the_cli_loads_a_tagged_name_and_refuses_views_that_disagree(monkeypatch, capsys):
    from aofl.cli import main
    from aofl.cli.common import UserError, load_data

    calls = []
    monkeypatch.setattr(aofl.data, "load_dataset", lambda name, **kw: calls.append((name, kw)) or "loaded")
    assert load_data(_parse("--data", TUNED_NAME)) == "loaded"
    assert load_data(_parse("--data", TUNED_NAME, "--views", *TUNED_VIEWS)) == "loaded"
    assert calls == [(TUNED_NAME, {}), (TUNED_NAME, {"views": TUNED_VIEWS})]
    with pytest.raises(UserError, match="--data iemocap --views sentence tuned"):
        load_data(_parse("--data", TUNED_NAME, "--views", "sentence", "tuned"))
    assert main(["train", "--out", "x", "--data", TUNED_NAME, "--views", "tuned"]) == 2
    assert "names the views sentence lexicon tfidf tuned" in capsys.readouterr().err


# ----------------------------------------------------------------------------- available_datasets


def _fake_iemocap(root: Path) -> Path:
    """An iemocap file that is there (its content is not read by `available_datasets`)."""
    path = root / "iemocap" / "iemocap.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parsed")
    return path


def _touch_view(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=np.zeros((1, 4), np.float32))


def test_the_tuned_name_is_listed_once_its_view_is_prepared(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("AOFL_DATA_DIR", str(tmp_path / "data"))
    assert available_datasets() == ["synthetic"]
    pkl = _fake_iemocap(tmp_path / "data")
    assert available_datasets() == ["synthetic", "iemocap"]
    stand_in = real.Transcripts("iemocap", [], {}, [pkl])
    paths = textviews.cache_paths(stand_in)
    for view in DEFAULT_VIEWS:  # other views prepared: still only the plain name
        _touch_view(paths[view])
    assert available_datasets() == ["synthetic", "iemocap"]
    _touch_view(paths["tuned"])
    assert available_datasets() == ["synthetic", "iemocap", TUNED_NAME]
    pkl.write_bytes(b"other files: the prepared view is not theirs")
    assert available_datasets() == ["synthetic", "iemocap"]


# ----------------------------------------------------------------------------- the real data


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["iemocap", "meld"])
def test_the_listing_checks_the_cache_file_data_list_checks(name, monkeypatch):
    """`available_datasets` keys the cache by the files alone; the key is the one of the parsed transcripts."""
    root = require_real(name)
    monkeypatch.setenv("AOFL_DATA_DIR", str(root))
    parsed = textviews.cache_paths(real.load_transcripts(name, root), ("tuned",))
    stand_in = real.Transcripts(name, [], {}, real.required_files(name))
    assert textviews.cache_paths(stand_in, ("tuned",)) == parsed


@pytest.mark.real_data
def test_data_list_and_the_app_show_the_name_where_tuned_is_prepared(tmp_cache, monkeypatch, capsys):
    from aofl.cli import main

    root = require_real("iemocap")
    monkeypatch.setenv("AOFL_DATA_DIR", str(root))
    assert main(["data", "list"]) == 0
    assert "load as:" not in capsys.readouterr().out
    assert TUNED_NAME not in available_datasets()
    _touch_view(textviews.cache_paths(real.load_transcripts("iemocap", root), ("tuned",))["tuned"])
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert f"load as: {TUNED_NAME}" in out
    assert "meld+" not in out  # meld's tuned view is not in this cache
    assert TUNED_NAME in available_datasets()


def test_data_info_on_a_tagged_name_says_which_views_are_ready(tmp_cache, monkeypatch, capsys):
    import json

    from aofl.cli import main

    root = require_real("iemocap")
    monkeypatch.setenv("AOFL_DATA_DIR", str(root))
    assert main(["data", "info", "iemocap+sentence+tuned", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "iemocap" and info["views"] == ["sentence", "tuned"]
    assert info["views_missing"] == ["sentence", "tuned"]  # an empty cache
    _touch_view(textviews.cache_paths(real.load_transcripts("iemocap", root), ("tuned",))["tuned"])
    assert main(["data", "info", "iemocap+sentence+tuned"]) == 0
    assert "not prepared: sentence" in capsys.readouterr().out
    assert main(["data", "info", "iemocap+bogus"]) != 0
    assert "valid views" in capsys.readouterr().err


@pytest.mark.real_data
def test_a_tagged_name_loads_what_views_load(monkeypatch):
    """On the real data, with all four views prepared in the user's cache."""
    root = require_real("iemocap")
    monkeypatch.setenv("AOFL_DATA_DIR", str(root))
    paths = textviews.cache_paths(real.load_transcripts("iemocap", root), TUNED_VIEWS)
    missing = [v for v, p in paths.items() if not p.is_file()]
    if missing:
        pytest.skip(f"iemocap views {missing} not prepared (python -m aofl data prepare iemocap --views ...)")
    tagged = load_dataset(TUNED_NAME, progress=False)
    plain = load_dataset("iemocap", views=TUNED_VIEWS, progress=False)
    assert tagged.name == "iemocap"  # what checkpoints record and aofl.compatibility compares
    assert tagged.modalities == list(TUNED_VIEWS)
    assert tagged.fingerprint() == plain.fingerprint()
    for split in plain.splits:
        for a, b in zip(tagged.splits[split], plain.splits[split], strict=True):
            assert a.dialogue_id == b.dialogue_id
            for view in TUNED_VIEWS:
                np.testing.assert_array_equal(a.features[view], b.features[view])
    reordered = load_dataset("iemocap+tuned+sentence", progress=False)
    assert reordered.modalities == ["tuned", "sentence"]


def test_a_scanned_checkpoint_is_listed_under_its_views_name():
    """Without a manifest, the registry names a checkpoint's dataset as the app does."""
    from aofl.store.registry import checkpoint_dataset

    tuned = {"data": {"name": "iemocap", "views": ["sentence", "lexicon", "tfidf", "tuned"]}}
    assert checkpoint_dataset(tuned) == "iemocap+sentence+lexicon+tfidf+tuned"
    assert (
        checkpoint_dataset({"data": {"name": "iemocap", "views": ["sentence", "lexicon", "tfidf"]}})
        == "iemocap"
    )
    assert (
        checkpoint_dataset({"data": {"name": "synthetic", "views": ["audio", "text", "visual"]}})
        == "synthetic"
    )
    assert checkpoint_dataset({"data": {"name": "meld"}}) == "meld" and checkpoint_dataset({}) == "?"
