"""The sentence tasks' scores: accuracy and macro-F1 (scikit-learn) for labels, Pearson and
Spearman (SciPy) and the MSE for scores.

Example:

>>> score([1, 0, 1, 1], [1, 0, 0, 1], regression=False)["accuracy"]
0.75
"""

from __future__ import annotations

import numpy as np

__all__ = ["score"]


def score(predictions, targets, regression: bool) -> dict:
    """The eval metrics: accuracy and macro-F1 (scikit-learn) for class ids, Pearson and
    Spearman (SciPy) and the MSE for scores."""
    if regression:
        from scipy.stats import pearsonr, spearmanr

        predictions, targets = np.asarray(predictions, float), np.asarray(targets, float)
        return {
            "pearson": float(pearsonr(predictions, targets).statistic),
            "spearman": float(spearmanr(predictions, targets).statistic),
            "mse": float(np.mean((predictions - targets) ** 2)),
        }
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(targets, predictions)),
        "macro_f1": float(f1_score(targets, predictions, average="macro")),
    }
