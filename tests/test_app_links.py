"""Links that reopen a view (issue #16): the URL's query parameters set the sidebar and the pages,
a stale value gives a message and the default, and what is shown is written back to the URL."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import (
    APP,
    TIMEOUT,
    _navigation_like_the_server,  # noqa: F401  (the module-scoped fixture)
    assert_clean,
)

from aofl.data import load_dataset

pytestmark = pytest.mark.app  # AppTest drives the app: the full tier only


def open_link(page: str | None = None, **query) -> AppTest:
    """A new session (a pasted link or a reload) on `page` with `query`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    if page:
        at.switch_page(f"pages/{page}.py")
    at.run()
    assert_clean(at)
    return at


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def test_a_link_sets_the_sidebar_and_the_url_follows_the_view(app_env):
    names = [e.name for e in app_env["entries"]]
    at = open_link(split="valid", ckpt=names[1])
    assert at.sidebar.selectbox(key="split").value == "valid"
    assert at.sidebar.selectbox(key="checkpoint").value == names[1]
    assert not at.warning
    assert at.query_params == {"data": "synthetic", "split": "valid", "ckpt": names[1]}
    # a change in the sidebar is written back, so a reload would reopen it
    at.sidebar.selectbox(key="split").select("train").run()
    assert at.query_params["split"] == "train"
    # and the copy-link box shows the same view
    code = " ".join(c.value for c in at.sidebar.code)
    assert "split=train" in code and f"ckpt={names[1]}" in code


def test_stale_values_in_a_link_are_messages_not_errors(app_env):
    at = open_link(data="no-such-data", split="nope", ckpt="renamed-checkpoint", zoom="3")
    text = warnings(at)
    for part in ("dataset `no-such-data`", "split `nope`", "checkpoint `renamed-checkpoint`", "`zoom`"):
        assert part in text, text
    assert at.sidebar.selectbox(key="dataset").value == "synthetic"
    assert at.sidebar.selectbox(key="checkpoint").value == app_env["entries"][0].name
    # the messages stay while the view is the one the link opened (a page load can take two runs)...
    at.run()
    assert "checkpoint `renamed-checkpoint`" in warnings(at)
    # ...and go once the user changes it
    at.sidebar.selectbox(key="split").select("valid").run()
    assert not at.warning


def test_a_link_opens_a_dialogue_at_an_utterance(app_env):
    test = load_dataset("synthetic", seed=0).split("test")
    dialogue = test[2]
    uid = f"{dialogue.dialogue_id}#3"
    at = open_link("conversations", utt=uid)  # the utterance alone names its dialogue
    assert at.selectbox(key="conv_dialogue").value == dialogue.dialogue_id
    assert at.selectbox(key="conv_utterance").value == uid
    assert at.query_params["dlg"] == dialogue.dialogue_id and at.query_params["utt"] == uid
    at = open_link("conversations", dlg=test[1].dialogue_id, utt="nowhere#9")
    assert at.selectbox(key="conv_dialogue").value == test[1].dialogue_id
    assert "utterance `nowhere#9`" in warnings(at)


def test_a_link_sets_the_embedding_and_the_comparison(app_env):
    entry = next(e for e in app_env["entries"] if e.variant != "baseline")
    at = open_link("embeddings", ckpt=entry.name, emb="tsne", color="speaker")
    assert at.radio(key="emb_color").value == "speaker"
    assert "TSNE" in " ".join(c.value for c in at.caption)
    assert at.query_params["emb"] == "tsne" and at.query_params["color"] == "speaker"
    names = [e.name for e in app_env["entries"]][:2][::-1]
    at = open_link("ablations", ckpts=",".join(names))
    assert at.sidebar.multiselect(key="checkpoints").value == names
    assert at.query_params["ckpts"] == ",".join(names) and "ckpt" not in at.query_params


def test_the_pages_exist_under_the_names_the_links_use():
    root = Path(APP).parent / "pages"
    for page in ("overview", "angles", "conversations", "embeddings", "ablations", "playground"):
        assert (root / f"{page}.py").is_file()
