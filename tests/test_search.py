"""aofl.search: the rules of the app's utterance search, on small hand-made tables."""

import numpy as np
import pandas as pd
import pytest

from aofl import search


def _table():
    return pd.DataFrame(
        {
            "utterance_id": ["d1#0", "d1#1", "d1#10", "d2#0", "d2#1", "x.y#0"],
            "dialogue": ["d1", "d1", "d1", "d2", "d2", "x.y"],
            "position": [0, 1, 10, 0, 1, 0],
            "speaker": ["Ross", "Rachel", "Ross", "MONICA", "Chandler", "Joey"],
            "text": [
                "Hello there!",
                "How are you (really)?",
                None,
                "oh. my. GOD",
                np.nan,
                "Could I BE any more...",
            ],
            "label": ["joy", "neutral", "sad", "surprise", "neutral", "joy"],
            "prediction": ["joy", "sad", "sad", "surprise", "joy", "joy"],
            "correct": [True, False, True, True, False, True],
        }
    )


def ids(frame):
    return frame["utterance_id"].tolist()


def test_case_insensitive_substring_in_table_order():
    t = _table()
    assert ids(search.search_utterances(t, "HELLO")) == ["d1#0"]
    assert ids(search.search_utterances(t, "god", "text")) == ["d2#0"]
    assert ids(search.search_utterances(t, "ross", "speaker")) == ["d1#0", "d1#10"]
    assert ids(search.search_utterances(t, "monica", "speaker")) == ["d2#0"]
    # any field: "ra" is only in the speaker Rachel (the hit row, once)
    assert ids(search.search_utterances(t, "ra")) == ["d1#1"]


def test_regex_characters_are_literal():
    t = _table()
    assert ids(search.search_utterances(t, "(really)?")) == ["d1#1"]
    assert ids(search.search_utterances(t, "oh. my.")) == ["d2#0"]
    assert search.search_utterances(t, "h.llo").empty  # '.' is not a wildcard
    assert ids(search.search_utterances(t, "x.y", "id")) == ["x.y#0"]
    assert search.search_utterances(t, "x*", "id").empty
    assert ids(search.search_utterances(t, "...")) == ["x.y#0"]  # literal dots in the text
    assert search.search_utterances(t, "[").empty  # an invalid regex is just a character


def test_field_restriction():
    t = _table()
    # "d1" is in ids only; "ross" in speakers only; "how" in text only
    assert ids(search.search_utterances(t, "d1", "text")) == []
    assert ids(search.search_utterances(t, "d1", "speaker")) == []
    assert ids(search.search_utterances(t, "d1", "id")) == ["d1#0", "d1#1", "d1#10"]
    assert ids(search.search_utterances(t, "d1", "any")) == ["d1#0", "d1#1", "d1#10"]
    assert search.search_utterances(t, "how", "speaker").empty
    assert ids(search.search_utterances(t, "how", "text")) == ["d1#1"]
    # a word both in a speaker and in a text: "any" finds each row once
    both = _table()
    both.loc[4, "text"] = "Joey says hi"
    assert ids(search.search_utterances(both, "joey")) == ["d2#1", "x.y#0"]
    assert ids(search.search_utterances(both, "joey", "speaker")) == ["x.y#0"]
    with pytest.raises(ValueError, match="unknown search field"):
        search.search_utterances(t, "x", "label")


def test_id_is_a_substring_match():
    t = _table()
    assert ids(search.search_utterances(t, "d1#1", "id")) == ["d1#1", "d1#10"]
    assert ids(search.search_utterances(t, "D1#10", "id")) == ["d1#10"]
    assert ids(search.search_utterances(t, "#0", "id")) == ["d1#0", "d2#0", "x.y#0"]


def test_empty_query_gives_an_empty_frame_with_the_columns():
    t = _table()
    for q in ("", "   ", None, "\t\n"):
        out = search.search_utterances(t, q)
        assert out.empty and list(out.columns) == list(t.columns)
        assert search.matching_ids(t, q) == set()
        assert not search.match_mask(t, q).any()


def test_whitespace_is_trimmed_not_inner():
    t = _table()
    assert ids(search.search_utterances(t, "  hello  ")) == ["d1#0"]
    assert ids(search.search_utterances(t, "oh. my")) == ["d2#0"]
    assert search.search_utterances(t, "oh.  my").empty  # inner whitespace is part of the query


def test_missing_text_never_matches():
    t = _table()
    assert search.search_utterances(t, "nan", "text").empty
    assert search.search_utterances(t, "none", "text").empty
    # the rows with missing text are still found by id and speaker
    assert ids(search.search_utterances(t, "chandler")) == ["d2#1"]
    no_text = t.drop(columns="text")
    assert search.search_utterances(no_text, "hello", "text").empty
    assert ids(search.search_utterances(no_text, "ross")) == ["d1#0", "d1#10"]


def test_limit_and_index_kept():
    t = _table().set_index(pd.Index([10, 11, 12, 13, 14, 15]))
    out = search.search_utterances(t, "d", "id", limit=2)
    assert ids(out) == ["d1#0", "d1#1"] and list(out.index) == [10, 11]
    assert search.search_utterances(t, "d", "id", limit=0).empty
    with pytest.raises(ValueError):
        search.search_utterances(t, "d", limit=-1)


def test_matching_ids_and_mask():
    t = _table()
    assert search.matching_ids(t, "ROSS") == {"d1#0", "d1#10"}
    assert search.matching_ids(t, "zzz") == set()
    assert search.match_mask(t, "joy").tolist() == [
        False,
        False,
        False,
        False,
        False,
        False,
    ]  # labels: not searched
    assert search.match_mask(t, "joey").tolist() == [False, False, False, False, False, True]
    assert search.matching_ids(t.drop(columns="utterance_id"), "ross") == set()


def test_non_string_columns():
    t = pd.DataFrame({"utterance_id": ["a#0", "a#1"], "speaker": [7, None], "text": ["x", 3.5]})
    assert search.matching_ids(t, "7", "speaker") == {"a#0"}
    assert search.matching_ids(t, "3.5", "text") == {"a#1"}
