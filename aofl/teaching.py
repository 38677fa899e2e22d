"""The few sentences the app, the CLI and the README share about what the angles mean.

Kept in one place so the Angles page, the Playground and the guide cannot drift apart.
"""

from __future__ import annotations

__all__ = ["OPR_NOTE", "OPR_NOTE_LATEX", "THETA_PHI_NOTE", "SETTING_LABELS", "setting_label"]

OPR_NOTE = (
    "OPR: the classifier sees h̃ = h − proj_g(h), which is orthogonal to g whatever θ is; θ only sets "
    "its length, ‖h̃‖ = ‖h‖·sin θ. The angle losses shape the raw pair (g, h) before the projection, so "
    "a small θ means the raw h still carries much of g, not that the classifier sees g twice."
)
OPR_NOTE_LATEX = r"\tilde h = h - \frac{\langle h, g\rangle}{\lVert g\rVert^2}\, g \;\perp\; g,\qquad \lVert \tilde h\rVert = \lVert h\rVert \sin\theta"
THETA_PHI_NOTE = (
    "θ > φ is not by itself L_CSR's work: in the variants without L_CSR (no_are, orthogonal) L_CEN "
    "pulls φ down while θ stays near 90°, so the share of θ > φ is larger there; in full, L_AAC pulls θ "
    "toward alpha and θ settles where the CSR hinge (δ) bites. Compare variants, not one model's scatter."
)

# how an arm's, checkpoint's or row's setting was chosen (aofl.runs.SETTINGS)
SETTING_LABELS = {
    "cv": "CV-chosen",
    "defaults": "defaults",
    "test-informed": "test-informed",
}


def setting_label(setting: str | None) -> str:
    """The words shown for a setting; unknown ones say so."""
    return SETTING_LABELS.get(setting or "", "setting not recorded")
