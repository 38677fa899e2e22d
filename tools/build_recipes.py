"""Write the recipes `python -m aofl train` uses by default (aofl/recipes/<data>-<variant>.json)
from the cross-validation studies' best trials in results/studies/*.json.

    python tools/build_recipes.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aofl.recipes import RECIPE_DIR, recipe_from_study  # noqa: E402


def main() -> int:
    for path in sorted((ROOT / "results" / "studies").glob("*.json")):
        study = json.loads(path.read_text())
        if not study.get("best") or study.get("variant") not in ("full", "baseline"):
            continue
        recipe = recipe_from_study(study, str(path.relative_to(ROOT)))
        out = RECIPE_DIR / f"{study['study']}.json"
        out.write_text(json.dumps(recipe, indent=1) + "\n")
        print(
            f"{out.relative_to(ROOT)}: trial {recipe['trial']}, CV {recipe['cv_mean']:.4f}, {recipe['epochs']} epochs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
