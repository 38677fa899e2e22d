"""The rules of the app's links (aofl.app.url_state): parse, check against what exists, write back."""

from urllib.parse import parse_qs, urlsplit

from aofl.app import url_state


def test_parse_keeps_known_parameters_and_names_the_others():
    values, unknown = url_state.parse_query(
        {
            "data": "meld",
            "split": ["valid", "test"],
            "ckpts": "a, b,,c",
            "utt": "  d1#3 ",
            "dlg": "",
            "zoom": "2",
        }
    )
    # a repeated parameter keeps its last value; a list is comma-separated; blanks are dropped
    assert values == {"data": "meld", "split": "test", "ckpts": ["a", "b", "c"], "utt": "d1#3"}
    assert unknown == ["zoom"]


def test_resolve_accepts_an_option_and_explains_the_rest():
    assert url_state.resolve("ckpt", "m-full", ["m-full", "m-no_cen"]) == ("m-full", None)
    assert url_state.resolve("ckpt", None, ["m-full"]) == (None, None)
    value, message = url_state.resolve("ckpt", "old-name", ["m-full", "m-no_cen"])
    assert value is None and "checkpoint `old-name`" in message and "m-full, m-no_cen" in message
    value, message = url_state.resolve("data", "iemocap", [])
    assert value is None and "none is available" in message
    many = [f"c{i}" for i in range(10)]
    assert "(10 in all)" in url_state.resolve("ckpt", "x", many)[1]


def test_resolve_many_keeps_order_and_drops_unknown():
    assert url_state.resolve_many("ckpts", ["b", "a", "b"], ["a", "b"]) == (["b", "a"], None)
    kept, message = url_state.resolve_many("ckpts", ["b", "zz"], ["a", "b"])
    assert kept == ["b"] and "`zz` is not available" in message and "others" in message
    kept, message = url_state.resolve_many("ckpts", ["y", "zz"], ["a"])
    assert kept == [] and "are not available" in message and "default" in message
    assert url_state.resolve_many("ckpts", None, ["a"]) == ([], None)


def test_query_for_keeps_page_parameters_on_their_page_only():
    state = {
        "data": "meld",
        "split": "test",
        "ckpt": "m-full",
        "dlg": "d7",
        "utt": "d7#2",
        "emb": "umap",
        "color": "label",
        "ckpts": None,
    }
    assert url_state.query_for(state, "conversations") == {
        "data": "meld",
        "split": "test",
        "ckpt": "m-full",
        "dlg": "d7",
        "utt": "d7#2",
    }
    assert url_state.query_for(state, "embeddings") == {
        "data": "meld",
        "split": "test",
        "ckpt": "m-full",
        "emb": "umap",
        "color": "label",
    }
    assert url_state.query_for({**state, "ckpt": None, "ckpts": ["a", "b"]}, "ablations") == {
        "data": "meld",
        "split": "test",
        "ckpts": "a,b",
    }
    assert url_state.query_for(state, None) == {"data": "meld", "split": "test", "ckpt": "m-full"}


def test_share_url_round_trips_through_the_parser():
    query = url_state.query_for({"data": "meld", "dlg": "dia 12", "utt": "dia 12#4"}, "conversations")
    url = url_state.share_url("http://host:8501/conversations?old=1#frag", query)
    parts = urlsplit(url)
    assert parts.path == "/conversations" and "old" not in parts.query and not parts.fragment
    values, unknown = url_state.parse_query(parse_qs(parts.query))
    assert values == {"data": "meld", "dlg": "dia 12", "utt": "dia 12#4"} and not unknown  # '#' survives
    assert url_state.share_url(None, {"data": "x"}) == "?data=x"
