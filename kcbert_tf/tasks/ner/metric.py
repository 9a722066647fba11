"""NER's score: entity-level precision, recall and F1 (seqeval, conlleval's rules).

Example:

>>> scores = entity_scores([["B-PS", "I-PS", "O"]], [["B-PS", "I-PS", "O"]])
>>> scores["f1"], scores["per_type"]["PS"]["support"]
(1.0, 1)
"""

from __future__ import annotations

__all__ = ["entity_scores"]


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1 (seqeval, conlleval's rules), micro over all types,
    and per type."""
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report["micro avg"]
    per_type = {
        name: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]), "support": int(v["support"])}
        for name, v in report.items() if not name.endswith(" avg")
    }
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"]), "per_type": per_type}
