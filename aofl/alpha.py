"""alpha as it behaves: where L_AAC's target angle started, where it ended, and whether it moved.

alpha_m = pi * sigmoid(w_m) starts at the config's `alpha_init_deg` (the searched initial value).
Its only gradient is L_AAC's, and Adam moves its logit by about lr per step, so in a whole run it
moves a degree or two (IEMOCAP 36.1 -> 37.7 deg): call it "learned" only where it moved more than
`ALPHA_LEARNED_TOL_DEG`; otherwise it is a hyper-parameter that stayed where it was put. Pure pandas.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = [
    "ALPHA_LEARNED_TOL_DEG",
    "alpha_learned",
    "alpha_start_deg",
    "alpha_table",
    "alpha_caption",
    "with_alpha_start",
]

ALPHA_LEARNED_TOL_DEG = 2.0  # alpha "learned" only where |end - start| exceeds this many degrees


def alpha_learned(start_deg: float, end_deg: float, tol: float = ALPHA_LEARNED_TOL_DEG) -> bool:
    """Whether alpha moved more than `tol` degrees (NaN on either side: False)."""
    if start_deg is None or end_deg is None or math.isnan(start_deg) or math.isnan(end_deg):
        return False
    return abs(end_deg - start_deg) > tol


def alpha_start_deg(config: dict, modalities) -> dict[str, float]:
    """alpha's starting value per modality from a checkpoint's config: `alpha_init_deg` where L_AAC
    has a target, 90 for `orthogonal` (fixed), nothing for variants without L_AAC."""
    from .model import variant_switches

    switches = variant_switches(config.get("variant", "full"))
    if switches["orthogonal"]:
        return {m: 90.0 for m in modalities}
    if not switches["aac"]:
        return {}
    return {m: float(config.get("alpha_init_deg", 45.0)) for m in modalities}


def alpha_table(start: dict, end: dict, tol: float = ALPHA_LEARNED_TOL_DEG) -> pd.DataFrame:
    """modality, alpha_start_deg, alpha_end_deg, moved_deg, learned (moved more than `tol`)."""
    rows = []
    for m in start:
        s, e = float(start[m]), float(end.get(m, math.nan))
        rows.append(
            {
                "modality": m,
                "alpha_start_deg": s,
                "alpha_end_deg": e,
                "moved_deg": e - s,
                "learned": alpha_learned(s, e, tol),
            }
        )
    return pd.DataFrame(
        rows, columns=["modality", "alpha_start_deg", "alpha_end_deg", "moved_deg", "learned"]
    )


def alpha_caption(table: pd.DataFrame, tol: float = ALPHA_LEARNED_TOL_DEG) -> str:
    """One sentence on what alpha did, with the word "learned" only where it moved more than `tol`."""
    if table.empty:
        return "This variant has no L_AAC target angle: alpha plays no part."
    moves = ", ".join(
        f"{r.modality} {r.alpha_start_deg:.1f}° → {r.alpha_end_deg:.1f}°" for r in table.itertuples()
    )
    learned = table["learned"]
    if learned.all():
        verdict = f"alpha was learned: it moved more than {tol:g}° in every modality"
    elif learned.any():
        names = ", ".join(table.loc[learned, "modality"])
        verdict = (
            f"alpha was learned only in {names} (moved more than {tol:g}°); elsewhere it stayed at its start"
        )
    else:
        verdict = (
            f"alpha stayed within {tol:g}° of its start: it is the searched initial value (a "
            f"hyper-parameter), not a learned angle"
        )
    return f"alpha start → end: {moves}. {verdict}."


def with_alpha_start(frame: pd.DataFrame, config: dict, tol: float = ALPHA_LEARNED_TOL_DEG) -> pd.DataFrame:
    """`frame` (modality, alpha_deg, ...: alpha at the end) with alpha_start_deg and learned added from a
    checkpoint's config; unchanged when the variant has no L_AAC target."""
    if frame.empty or "alpha_deg" not in frame:
        return frame
    start = alpha_start_deg(config, list(frame["modality"]))
    if not start:
        return frame
    moved = alpha_table(start, dict(zip(frame["modality"], frame["alpha_deg"])), tol)
    return frame.merge(moved[["modality", "alpha_start_deg", "learned"]], on="modality", how="left")
