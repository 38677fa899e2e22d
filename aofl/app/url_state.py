"""The app's view in its URL: which query parameter holds what, read back with checks.

Pure functions (no Streamlit) so the rules are testable: a link names the dataset, split,
checkpoint(s), dialogue, utterance, embedding method and colour; `aofl.app.link` reads it at a
session's first run and writes it back on every run. A value that does not exist here (a
renamed checkpoint, a dataset not prepared on this machine) gives a message and the default,
never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

__all__ = ["PARAMS", "PAGE_PARAMS", "parse_query", "resolve", "resolve_many", "query_for", "share_url"]

# query parameter -> what it names (shown in messages); the order is the order in a link
PARAMS = {
    "data": "dataset",
    "split": "split",
    "ckpt": "checkpoint",
    "ckpts": "checkpoints",
    "dlg": "dialogue",
    "utt": "utterance",
    "emb": "embedding method",
    "color": "colour",
}
# the parameters only one page reads; the others belong to every page (the sidebar)
PAGE_PARAMS = {"conversations": ("dlg", "utt"), "embeddings": ("emb", "color"), "ablations": ("ckpts",)}
_LIST_SEP = ","


def parse_query(query: Mapping[str, object]) -> tuple[dict[str, str | list[str]], list[str]]:
    """({param: value}, unknown parameter names) from a query mapping (values str or lists of str,
    as `st.query_params.to_dict()` or urllib give them). A repeated parameter keeps its last value;
    `ckpts` is a comma-separated list."""
    out: dict[str, str | list[str]] = {}
    unknown = []
    for name, value in query.items():
        if name not in PARAMS:
            unknown.append(name)
            continue
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        value = str(value).strip()
        if not value:
            continue
        out[name] = [v.strip() for v in value.split(_LIST_SEP) if v.strip()] if name == "ckpts" else value
    return out, unknown


def _shown(options: list[str], limit: int = 6) -> str:
    head = ", ".join(options[:limit])
    return head + (f", ... ({len(options)} in all)" if len(options) > limit else "")


def resolve(param: str, value: str | None, options: Iterable[str]) -> tuple[str | None, str | None]:
    """(value, None) when the link's value is one of the options; (None, message) otherwise;
    (None, None) when the link has no value."""
    if value is None:
        return None, None
    options = [str(o) for o in options]
    if value in options:
        return value, None
    what = PARAMS.get(param, param)
    have = f"available: {_shown(options)}" if options else "none is available"
    return None, f"The link's {what} `{value}` is not available here ({have}); showing the default instead."


def resolve_many(
    param: str, values: list[str] | None, options: Iterable[str]
) -> tuple[list[str], str | None]:
    """The listed values that exist (in the link's order), and a message naming those that do not."""
    if not values:
        return [], None
    options = [str(o) for o in options]
    kept = [v for v in dict.fromkeys(values) if v in options]
    missing = [v for v in values if v not in options]
    if not missing:
        return kept, None
    what = PARAMS.get(param, param)
    return kept, (
        f"The link's {what} {', '.join(f'`{v}`' for v in missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not available here; "
        + ("showing the others." if kept else "showing the default instead.")
    )


def query_for(state: Mapping[str, object], page: str | None = None) -> dict[str, str]:
    """The query parameters of a view: the sidebar's always, a page's own only on that page.
    Empty values are left out."""
    own = set(PAGE_PARAMS.get(page or "", ()))
    page_only = {p for ps in PAGE_PARAMS.values() for p in ps}
    out = {}
    for name in PARAMS:
        if name in page_only and name not in own:
            continue
        value = state.get(name)
        if value is None or value == "" or value == []:
            continue
        out[name] = _LIST_SEP.join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return out


def share_url(page_url: str | None, query: Mapping[str, str]) -> str:
    """The link to paste: the page's URL (scheme, host, path; None when unknown, e.g. in tests)
    and the query. Without a page URL, the path-less query ('?data=...') is still a working link
    relative to the page."""
    base = (page_url or "").split("?", 1)[0].split("#", 1)[0]
    return f"{base}?{urlencode(query)}" if query else (base or "?")
