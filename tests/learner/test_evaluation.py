import random

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOBES

from annotation.formats import read_file
from annotation.spans import Span
from annotation.tags import spans_to_tags
from learner.evaluation import evaluate


def test_evaluation_exact_match_counts():
    gold = [[Span(0, 2, "PER"), Span(3, 5, "LOC")], [Span(1, 3, "ORG")]]
    predicted = [[Span(0, 2, "PER"), Span(3, 4, "LOC")], [Span(1, 3, "PER")]]
    scores = evaluate(gold, predicted)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3)
    assert scores["support"] == 3
    assert scores["per_type"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    assert scores["per_type"]["ORG"]["f1"] == 0.0
    assert scores["per_type"]["ORG"]["support"] == 1


def test_evaluation_empty_inputs_are_zero_not_errors():
    assert evaluate([[]], [[]])["f1"] == 0.0
    assert evaluate([], [])["per_type"] == {}


def test_evaluation_rejects_misaligned_lists():
    with pytest.raises(ValueError):
        evaluate([[]], [])


def _perturb(spans: list[Span], text_len: int, rng: random.Random, labels: list[str]):
    """A plausible tagger's errors: missed, shifted, relabelled and invented entities."""
    out = []
    for span in spans:
        roll = rng.random()
        if roll < 0.1:
            continue
        if roll < 0.2 and span.end - span.start > 1:
            out.append(Span(span.start + 1, span.end, span.label))
        elif roll < 0.3:
            out.append(Span(span.start, span.end, rng.choice(labels)))
        else:
            out.append(span)
    if text_len > 2 and rng.random() < 0.2:
        start = rng.randrange(text_len - 1)
        candidate = Span(start, start + 1, rng.choice(labels))
        if all(candidate.end <= s.start or candidate.start >= s.end for s in out):
            out.append(candidate)
    return sorted(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluation_matches_seqeval_on_resume_dev(datasets_dir, seed):
    examples = read_file(datasets_dir / "resume" / "dev.char.bmes", strict=False)
    labels = sorted({s.label for ex in examples for s in ex.spans})
    rng = random.Random(seed)
    gold = [ex.spans for ex in examples]
    predicted = [_perturb(ex.spans, len(ex.text), rng, labels) for ex in examples]
    ours = evaluate(gold, predicted)
    y_true = [spans_to_tags(len(ex.text), ex.spans, "bioes") for ex in examples]
    y_pred = [
        spans_to_tags(len(ex.text), p, "bioes") for ex, p in zip(examples, predicted, strict=True)
    ]
    kwargs = {"mode": "strict", "scheme": IOBES}
    assert ours["f1"] == pytest.approx(f1_score(y_true, y_pred, **kwargs))
    assert ours["precision"] == pytest.approx(precision_score(y_true, y_pred, **kwargs))
    assert ours["recall"] == pytest.approx(recall_score(y_true, y_pred, **kwargs))
    assert 0.5 < ours["f1"] < 0.95  # the perturbation really changed things
    report = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    for label, row in ours["per_type"].items():
        assert row["f1"] == pytest.approx(report[label]["f1-score"])
        assert row["support"] == report[label]["support"]


def test_evaluation_matches_seqeval_bio_default_mode(datasets_dir):
    examples = read_file(datasets_dir / "msra" / "dev.bio")[:500]
    rng = random.Random(7)
    labels = ["LOC", "ORG", "PER"]
    predicted = [_perturb(ex.spans, len(ex.text), rng, labels) for ex in examples]
    y_true = [spans_to_tags(len(ex.text), ex.spans, "bio") for ex in examples]
    y_pred = [
        spans_to_tags(len(ex.text), p, "bio") for ex, p in zip(examples, predicted, strict=True)
    ]
    ours = evaluate([ex.spans for ex in examples], predicted)
    assert ours["f1"] == pytest.approx(f1_score(y_true, y_pred))
