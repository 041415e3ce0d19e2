"""Entity-level exact-match precision, recall and F1, micro-averaged and per type.

A predicted span counts only when start, end and label all equal a gold span's (the CoNLL /
seqeval convention). No torch: the platform scores stored predictions with it too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


def _prf(correct: int, predicted: int, gold: int) -> dict:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold}


def evaluate(gold: Sequence[Iterable], predicted: Sequence[Iterable]) -> dict:
    """``gold[i]`` and ``predicted[i]`` are the spans ``(start, end, label)`` of sentence i.

    Returns ``{"precision", "recall", "f1", "support", "predicted", "per_type": {label:
    {"precision", "recall", "f1", "support"}}}`` with fractions in [0, 1].
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct: Counter[str] = Counter()
    gold_count: Counter[str] = Counter()
    pred_count: Counter[str] = Counter()
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set = {(int(s), int(e), str(label)) for s, e, label in gold_spans}
        pred_set = {(int(s), int(e), str(label)) for s, e, label in pred_spans}
        for _, _, label in gold_set:
            gold_count[label] += 1
        for span in pred_set:
            pred_count[span[2]] += 1
            if span in gold_set:
                correct[span[2]] += 1
    total = _prf(sum(correct.values()), sum(pred_count.values()), sum(gold_count.values()))
    total["predicted"] = sum(pred_count.values())
    total["per_type"] = {
        label: _prf(correct[label], pred_count[label], gold_count[label])
        for label in sorted(set(gold_count) | set(pred_count))
    }
    return total
