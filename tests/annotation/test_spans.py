import pytest

from annotation.spans import Span, SpanError, validate_spans
from annotation.tags import SCHEMES, TagError, detect_scheme, spans_to_tags, tags_to_spans


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tags_round_trip_every_scheme(scheme):
    spans = [Span(0, 2, "PER"), Span(2, 3, "X"), Span(3, 5, "LOC")]
    tags = spans_to_tags(5, spans, scheme)
    assert tags_to_spans(tags, scheme) == spans


def test_tags_detect_scheme():
    assert detect_scheme(["B-PER", "M-PER", "E-PER"]) == "bmes"
    assert detect_scheme(["S-PER", "O"]) == "bioes"
    assert detect_scheme(["B-PER", "I-PER"]) == "bio"


def test_tags_orphan_inside_tag_is_an_error_when_strict():
    with pytest.raises(TagError) as info:
        tags_to_spans(["O", "I-PER"], "bio")
    assert info.value.index == 1
    assert tags_to_spans(["O", "I-PER"], "bio", strict=False) == [Span(1, 2, "PER")]


@pytest.mark.parametrize(
    ("spans", "problem"),
    [
        ([(0, 0, "PER")], "empty"),
        ([(3, 9, "PER")], "outside"),
        ([(0, 2, "NOPE")], "not in the schema"),
        ([(0, 2, "PER"), (1, 3, "LOC")], "overlap"),
        ([("0", 2, "PER")], "integers"),
    ],
)
def test_spans_validation_names_the_problem(spans, problem):
    with pytest.raises(SpanError, match=problem):
        validate_spans("张三在北京", spans, labels={"PER", "LOC"})


def test_spans_validation_sorts_valid_spans():
    assert validate_spans("张三在北京", [(3, 5, "LOC"), (0, 2, "PER")]) == [
        Span(0, 2, "PER"),
        Span(3, 5, "LOC"),
    ]
