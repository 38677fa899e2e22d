"""The project's own error types: every problem a user can fix derives from `AOFLError`.

The CLI prints these as one line (exit status 2) and the app as `st.error`; anything else that
escapes is a bug. Subclasses keep their historical second base (ValueError, UnpicklingError) so
existing `except` clauses still catch them.
"""

from __future__ import annotations

__all__ = ["AOFLError", "CorruptFileError", "CheckpointError"]


class AOFLError(Exception):
    """A bad input, file or setting, described in one line: which file, what was expected, what was found."""


class CorruptFileError(AOFLError, ValueError):
    """A file that is empty, truncated or malformed (declared sizes beyond its end, garbage bytes)."""


class CheckpointError(AOFLError, ValueError):
    """A checkpoint that is missing, corrupt, foreign or unsafe (here, not in aofl.store.checkpoint:
    the config-vs-data check, aofl.compatibility, raises it below the store)."""
