"""The app's links (Streamlit side of `aofl.app.url_state`): read a link once per session, write the
view back to the URL on every run, and show the link to copy.

A session's first run keeps the link's values as "pending"; the sidebar and the pages take each
one when they know its options (`take`), so a value is checked against what exists here and a
stale one gives a message (in the sidebar, above the link, until the view changes) instead of a
traceback. What is shown is written back (`publish`): a reload, or the link pasted elsewhere,
reopens the same view.
"""

from __future__ import annotations

import streamlit as st

from . import url_state

__all__ = ["read_once", "take", "take_many", "publish", "set_page", "share_box"]

_PENDING = "_aofl_link_pending"
_MESSAGES = "_aofl_link_messages"
_VIEW = "_aofl_link_view"
_PAGE = "_aofl_link_page"
_LANDED = "_aofl_link_landed"


def read_once() -> None:
    """At a session's first run: the link's values become pending (later runs change nothing)."""
    if _PENDING in st.session_state:
        return
    values, unknown = url_state.parse_query(st.query_params.to_dict())
    st.session_state[_PENDING] = values
    st.session_state[_MESSAGES] = (
        [
            f"The link's parameter(s) {', '.join(f'`{u}`' for u in unknown)} "
            f"mean nothing here and were ignored."
        ]
        if unknown
        else []
    )


def _take(param: str, resolver, options, absent):
    """Pop the link's pending value of `param` and check it with `resolver`; its message, if any, is kept."""
    pending = st.session_state.get(_PENDING) or {}
    if param not in pending:
        return absent
    value, message = resolver(param, pending.pop(param), options)
    if message:
        st.session_state.setdefault(_MESSAGES, []).append(message)
    return value


def take(param: str, options) -> str | None:
    """The link's value of `param` if it is one of `options` (once; None afterwards)."""
    return _take(param, url_state.resolve, options, None)


def take_many(param: str, options) -> list[str]:
    """The link's listed values of `param` that are among `options`, in the link's order (once)."""
    return _take(param, url_state.resolve_many, options, [])


def set_page(url_path: str) -> None:
    st.session_state[_PAGE] = url_path or "overview"


def publish(**values) -> None:
    """Record what the view shows (None clears a value) and write it to the URL."""
    view = st.session_state.setdefault(_VIEW, {})
    view.update(values)
    query = url_state.query_for(view, st.session_state.get(_PAGE))
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def share_box(slot) -> None:
    """The link to this view, in `slot`, with Streamlit's copy button (st.code has one), and under it
    what was wrong with the link this session was opened with, until the view first changes."""
    query = url_state.query_for(st.session_state.get(_VIEW, {}), st.session_state.get(_PAGE))
    landed = st.session_state.setdefault(_LANDED, query)  # the view the link opened
    if query != landed:
        st.session_state[_MESSAGES] = []
    try:
        page_url = st.context.url
    except AttributeError:  # older Streamlit: a link relative to the page still works
        page_url = None
    with slot.container():
        for message in st.session_state.get(_MESSAGES, []):
            st.warning(message, icon=":material/link_off:")
        st.caption("Link to this view (copy with the icon at its right):")
        st.code(url_state.share_url(page_url, query), language=None, wrap_lines=True)
