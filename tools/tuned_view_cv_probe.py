"""Is the tuned view as strong on the cross-validation folds as on the test split?

Logistic regression (C=1, fixed, nothing chosen) per view set, scored two ways on IEMOCAP:
* CV: leave one training session out (the folds `python -m aofl tune` uses). The held-out session's
  `tuned` vectors come from the fold model that never saw it, like every training row's.
* test: trained on the whole train split, scored on Session 5, whose `tuned` vectors come from the
  model fine-tuned on the whole train split.
A view that gains much more on test than on CV is one whose held-out vectors differ in kind between
the two, which biases a CV search on it. Writes results/tuned_cv_probe.json.

    AOFL_DATA_DIR=/work/shared/data python tools/tuned_view_cv_probe.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIEW_SETS = [
    ("sentence",),
    ("tuned",),
    ("sentence", "lexicon", "tfidf"),
    ("sentence", "lexicon", "tfidf", "tuned"),
]


def matrix(dialogues, views):
    x = np.concatenate([np.concatenate([d.features[v] for v in views], 1) for d in dialogues])
    return x, np.concatenate([d.labels for d in dialogues])


def main() -> int:
    from sklearn.linear_model import LogisticRegression

    from aofl.cv import grouped_folds
    from aofl.data import load_dataset
    from aofl.metrics import weighted_f1

    ds = load_dataset("iemocap", views=("sentence", "lexicon", "tfidf", "tuned"))
    train, test = ds.split("train"), ds.split("test")
    folds = grouped_folds(ds, 4, seed=0)
    out = {"protocol": __doc__.strip().split("\n\n")[1], "C": 1.0, "rows": {}}
    for views in VIEW_SETS:
        cv = []
        for fold in folds:
            held = set(fold)
            xa, ya = matrix([d for i, d in enumerate(train) if i not in held], views)
            xb, yb = matrix([train[i] for i in fold], views)
            cv.append(weighted_f1(yb, LogisticRegression(C=1.0, max_iter=2000).fit(xa, ya).predict(xb)))
        xa, ya = matrix(train, views)
        xb, yb = matrix(test, views)
        t = weighted_f1(yb, LogisticRegression(C=1.0, max_iter=2000).fit(xa, ya).predict(xb))
        row = {"cv_folds": [round(100 * c, 2) for c in cv], "cv_mean": round(100 * float(np.mean(cv)), 2)}
        row["test"] = round(100 * t, 2)
        out["rows"]["+".join(views)] = row
        print(
            f"{'+'.join(views):32s} CV {row['cv_mean']:5.1f} {row['cv_folds']}  test {row['test']:5.1f}",
            flush=True,
        )
    (ROOT / "results" / "tuned_cv_probe.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
