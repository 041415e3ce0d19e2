import itertools
import json
from collections import Counter

import pytest

from annotation.formats import (
    FORMATS,
    SOURCE_KEY,
    FormatError,
    get_format,
    guess_format,
    iter_examples,
    iter_lines,
    iter_located,
    read_file,
    write_file,
)
from annotation.spans import Example, Span


def _span(text: str, mention: str, label: str, nth: int = 0) -> Span:
    start = -1
    for _ in range(nth + 1):
        start = text.index(mention, start + 1)
    return Span(start, start + len(mention), label)


T1 = "张三李四在北京，“华为”发布了Mate60 Pro手机！"
T2 = "𠮷野家😀在东京开了第3家店：吉"
T3 = "\u3000换行\n和tab\t都要保留。"
T4 = "北京和北京"
SAMPLES = [
    Example(
        T1,
        [
            _span(T1, "张三", "PER"),
            _span(T1, "李四", "PER"),  # adjacent, same label
            _span(T1, "北京", "LOC"),
            _span(T1, "华为", "ORG"),
            _span(T1, "Mate60 Pro", "PRODUCT"),  # a space inside an entity
        ],
    ),
    Example(
        T2,
        [
            _span(T2, "𠮷野家", "ORG"),  # starts outside the BMP
            _span(T2, "😀", "EMOJI"),  # adjacent, other label, single character
            _span(T2, "东京", "LOC"),
            _span(T2, "3", "NUM"),
            _span(T2, "吉", "X"),  # single character at the very end
        ],
    ),
    Example(T3, [_span(T3, "换行", "WS")]),
    Example(T4, [_span(T4, "北京", "LOC"), _span(T4, "北京", "LOC", nth=1)]),
    Example("没有实体的句子。", []),
]
KEEPS_META = {"cluener", "jsonl", "label_studio"}
WRITE_CASES = [
    ("cluener", None),
    ("jsonl", None),
    ("label_studio", None),
    ("conll", None),
    ("conll", "bio"),
    ("conll", "bioes"),
    ("conll", "bmes"),
]


def _samples(fmt: str) -> list[Example]:
    if fmt not in KEEPS_META:
        return [Example(e.text, list(e.spans), {}) for e in SAMPLES]
    meta = {"来源": "测试"}
    if fmt == "label_studio":  # read back from a task's annotations: a human answered
        meta[SOURCE_KEY] = "human"
    return [Example(e.text, list(e.spans), {"id": i, **meta}) for i, e in enumerate(SAMPLES)]


def _read(fmt: str, content: str, source: str = "in.txt", **kwargs) -> list[Example]:
    return list(iter_examples(fmt, content.splitlines(keepends=True), source, **kwargs))


def test_formats_registry_names():
    assert sorted(FORMATS) == ["cluener", "conll", "jsonl", "label_studio"]
    assert all(get_format(name).name == name for name in FORMATS)


def test_formats_unknown_format_lists_known_ones():
    with pytest.raises(FormatError, match="cluener, conll, jsonl, label_studio"):
        get_format("brat")


@pytest.mark.parametrize(("fmt", "scheme"), WRITE_CASES)
def test_formats_round_trip(fmt, scheme, tmp_path):
    examples = _samples(fmt)
    path = tmp_path / "out.data"
    write_file(path, examples, fmt, scheme=scheme)
    assert read_file(path, fmt) == examples
    assert read_file(path, fmt, scheme=scheme) == examples


@pytest.mark.parametrize(("fmt", "scheme"), WRITE_CASES)
def test_formats_round_trip_streaming(fmt, scheme):
    examples = _samples(fmt)
    content = "".join(iter_lines(fmt, examples, scheme))
    assert _read(fmt, content) == examples


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_formats_registered_example_reads_and_round_trips(name):
    fmt = FORMATS[name]
    examples = _read(name, fmt.example)
    assert examples and any(e.spans for e in examples)
    assert _read(name, "".join(iter_lines(name, examples))) == examples


@pytest.mark.parametrize("fmt", ["cluener", "jsonl", "conll"])
def test_formats_reading_is_lazy(fmt):
    one = "".join(iter_lines(fmt, [Example("张三来了", [Span(0, 2, "PER")])]))
    endless = itertools.cycle(one.splitlines(keepends=True))
    first = list(itertools.islice(iter_examples(fmt, endless, "stream"), 3))
    assert [e.text for e in first] == ["张三来了"] * 3


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_formats_writing_is_lazy(fmt):
    endless = itertools.repeat(Example("张三", [Span(0, 2, "PER")]))
    chunks = list(itertools.islice(iter_lines(fmt, endless), 3))
    assert len(chunks) == 3 and "张" in chunks[-1]


@pytest.mark.parametrize(
    "split",
    [
        lambda s: s.splitlines(keepends=True),
        lambda s: s.splitlines(),
        lambda s: s.replace("\n", "\r\n").splitlines(keepends=True),
        lambda s: [s],
        lambda s: ["\ufeff" + s],
    ],
    ids=["keepends", "stripped", "crlf", "one-chunk", "bom"],
)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_formats_reading_ignores_newline_handling(fmt, split):
    examples = _samples(fmt)
    content = "".join(iter_lines(fmt, examples))
    assert list(iter_examples(fmt, split(content), "up")) == examples


def test_formats_conll_escapes_whitespace():
    content = "".join(iter_lines("conll", [Example("A B\t\u3000\n", [Span(0, 3, "X")])]))
    assert content.splitlines() == [
        "A B-X",
        "\\u0020 I-X",
        "B I-X",
        "\\u0009 O",
        "\\u3000 O",
        "\\u000a O",
        "",
    ]


def test_formats_conll_reads_tabs_extra_columns_and_literal_space_after_tab():
    content = "张\tNR\tB-PER\n三\tNR\tI-PER\n \tPU\tO\n好 VA O\n\\u0020 O\n"
    [example] = _read("conll", content)
    assert example == Example("张三 好 ", [Span(0, 2, "PER")], {})


@pytest.mark.parametrize(
    ("content", "spans"),
    [
        ("北 B-LOC\n京 I-LOC\n人 B-PER\n", [Span(0, 2, "LOC"), Span(2, 3, "PER")]),
        ("北 B-LOC\n京 E-LOC\n人 S-PER\n", [Span(0, 2, "LOC"), Span(2, 3, "PER")]),
        ("北 B-LOC\n京 M-LOC\n市 E-LOC\n", [Span(0, 3, "LOC")]),
    ],
    ids=["bio", "bioes", "bmes"],
)
def test_formats_conll_detects_scheme(content, spans):
    assert _read("conll", "好 O\n\n" + content)[1].spans == spans


def test_formats_conll_forced_scheme_reads_strictly():
    content = "人 B-PER\n好 O\n"
    assert _read("conll", content, scheme="BIO")[0].spans == [Span(0, 1, "PER")]
    with pytest.raises(FormatError, match="never closed") as info:
        _read("conll", content, scheme="bioes")
    assert info.value.line == 2


def test_formats_conll_lenient_reading_repairs_tags():
    content = "张 O\n三 I-PER\n"
    assert _read("conll", content, strict=False)[0].spans == [Span(1, 2, "PER")]


def test_formats_label_studio_export_shape():
    text = "张三在北京"
    chunks = list(iter_lines("label_studio", [Example(text, [Span(0, 2, "PER")], {"id": 3})]))
    assert chunks[0] == "[" and chunks[-1].strip() == "]"
    assert json.loads("".join(chunks)) == [
        {
            "data": {"id": 3, "text": text},
            "annotations": [
                {
                    "result": [
                        {
                            "value": {"start": 0, "end": 2, "text": "张三", "labels": ["PER"]},
                            "from_name": "label",
                            "to_name": "text",
                            "type": "labels",
                        }
                    ]
                }
            ],
        }
    ]


def test_formats_label_studio_reads_first_kept_annotation_and_skips_other_regions():
    task = {
        "id": 9,
        "data": {"text": "张三在北京"},
        "annotations": [
            {"was_cancelled": True, "result": [{"value": {"start": 0, "end": 1, "labels": ["X"]}}]},
            {
                "result": [
                    {"value": {"choices": ["ok"]}, "type": "choices"},
                    {"value": {"start": 3, "end": 5, "text": "北京", "labels": ["LOC"]}},
                ]
            },
        ],
    }
    assert _read("label_studio", json.dumps([task], ensure_ascii=False, indent=2)) == [
        Example("张三在北京", [Span(3, 5, "LOC")], {SOURCE_KEY: "human"})
    ]


def test_formats_cluener_groups_a_mention_seen_twice():
    [line] = iter_lines("cluener", [SAMPLES[3]])
    assert json.loads(line) == {"text": T4, "label": {"LOC": {"北京": [[0, 1], [3, 4]]}}}


def test_formats_cluener_sets_nested_spans_aside_and_writes_them_back():
    line = json.dumps(
        {
            "text": "《招商银行报告》",
            "label": {"book": {"《招商银行报告》": [[0, 7]]}, "company": {"招商银行": [[1, 4]]}},
        },
        ensure_ascii=False,
    )
    [example] = _read("cluener", line)
    assert example.spans == [Span(0, 8, "book")]
    assert example.meta == {"nested_spans": [[1, 5, "company"]]}
    [written] = iter_lines("cluener", [example])
    assert json.loads(written) == json.loads(line)


@pytest.mark.parametrize(
    "nested",
    ["garbage", [[0, 99, "X"]], [[1, 1, "X"]], [[0, 1]], [["0", 1, "X"]], [[0, 1, ""]], [None]],
)
def test_formats_cluener_writer_leaves_out_nested_spans_that_do_not_fit(nested):
    """meta comes from API clients too: what they put under nested_spans is not trusted."""
    example = Example("李四在北京", [Span(3, 5, "LOC")], {"nested_spans": nested, "id": 7})
    [written] = iter_lines("cluener", [example])
    assert json.loads(written) == {
        "id": 7,
        "text": "李四在北京",
        "label": {"LOC": {"北京": [[3, 4]]}},
    }
    assert _read("cluener", written)[0].spans == [Span(3, 5, "LOC")]


def test_formats_jsonl_keeps_extra_keys_in_meta():
    line = '{"text": "张三", "entities": [], "doc_id": "a-1", "tags": ["x"]}'
    assert _read("jsonl", line)[0].meta == {"doc_id": "a-1", "tags": ["x"]}


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("train.json", '{"text": "a", "label": {"name": {"a": [[0, 0]]}}}', "cluener"),
        ("test.json", '{"id": 0, "text": "a"}', "jsonl"),
        ("x.jsonl", '{"text": "a", "entities": []}', "jsonl"),
        ("export.json", '[{"data": {"text": "a"}}]', "label_studio"),
        ("export.json", '{\n  "data": {"text": "a"}\n}', "label_studio"),
        ("task.json", '{"data": {"text": "a"}}', "label_studio"),
        ("dev.bio", "北\tB-LOC", "conll"),
        ("train.char.bmes", "北 B-LOC", "conll"),
        ("a.BIOES", "北 S-LOC", "conll"),
        ("a.conll", "北 B-LOC", "conll"),
        ("a.txt", "北 B-LOC", "conll"),
    ],
)
def test_formats_guess_format(filename, content, expected, tmp_path):
    assert guess_format(filename, content.split("\n")) == expected
    path = tmp_path / filename
    path.write_text(content + "\n", encoding="utf-8")
    assert read_file(path) == list(iter_examples(expected, [content], filename))


def test_formats_guess_format_refuses_unknown_extension(tmp_path):
    path = tmp_path / "data.xml"
    path.write_text("<a/>", encoding="utf-8")
    with pytest.raises(FormatError, match="data.xml: cannot tell the format"):
        read_file(path)


MALFORMED = [
    ("jsonl", '{"text": "a"}\n{"text": "b",}\n', 2, "invalid JSON"),
    ("cluener", '{"text": "a", "label": {}}\n\n{"text"\n', 3, "invalid JSON"),
    ("label_studio", '[\n{"data": {"text": "a"}},\n{"data": }\n]\n', 3, "invalid JSON"),
    ("label_studio", '[\n{"data": {"text": "a"}}\n', 2, "never closed"),
    ("jsonl", '{"text": "张三", "entities": [{"start": 0, "end": 3, "label": "P"}]}', 1, "outside"),
    ("cluener", '{"text": "张三", "label": {"name": {"张三": [[0, 2]]}}}', 1, "past the end"),
    ("cluener", '{"text": "张三", "label": {"name": {"张": [[1, 1]]}}}', 1, "does not match"),
    ("conll", "张 O\n三 I-PER\n", 2, "continues no open entity"),
    ("conll", "张 O\n\n张 B-PER\n三 M-PER\n\n", 4, "never closed"),
    ("conll", "张 B-PER\n三 X-PER\n", 2, "malformed tag"),
    ("conll", "张 B-PER\n三\n", 2, "expected '<character> <tag>'"),
    ("conll", "好 O\n  O\n", 2, "expected '<character> <tag>'"),
    ("conll", "好 O\n\n张三 B-PER\n", 3, "one character"),
    ("jsonl", '{"text": 5}', 1, "must be a string"),
    ("cluener", '{"text": ["a"], "label": {}}', 1, "must be a string"),
    ("label_studio", '[{"data": {"text": null}}]', 1, "must be a string"),
    ("jsonl", '{"text": "abc"}\n{"entities": []}', 2, "has no 'text'"),
    (
        "jsonl",
        '{"text": "张三丰", "entities": [{"start": 0, "end": 2, "label": "A"}, '
        '{"start": 1, "end": 3, "label": "B"}]}',
        1,
        "overlap",
    ),
    (
        "cluener",
        '{"text": "张三丰", "label": {"A": {"张三": [[0, 1]]}, "B": {"三丰": [[1, 2]]}}}',
        1,
        "overlap",
    ),
    (
        "cluener",
        '{"text": "张三", "label": {"A": {"张三": [[0, 1]]}, "B": {"张三": [[0, 1]]}}}',
        1,
        "overlap",
    ),
    (
        "label_studio",
        '[{"data": {"text": "张三"}, "annotations": [{"result": ['
        '{"value": {"start": 0, "end": 2, "labels": ["A"]}},'
        '{"value": {"start": 1, "end": 2, "labels": ["B"]}}]}]}]',
        1,
        "overlap",
    ),
    (
        "label_studio",
        '[{"data": {"text": "张三"}},\n{"data": {"text": "张三"}, "annotations": [{"result": ['
        '{"value": {"start": 0, "end": 1, "text": "三", "labels": ["A"]}}]}]}]',
        2,
        "does not match",
    ),
    ("jsonl", '{"text": "张三", "entities": [{"start": 0, "label": "P"}]}', 1, "needs 'start'"),
]


@pytest.mark.parametrize(("fmt", "content", "line", "problem"), MALFORMED)
def test_formats_malformed_input_names_file_line_and_problem(fmt, content, line, problem):
    with pytest.raises(FormatError) as info:
        _read(fmt, content, source="upload.txt")
    error = info.value
    assert (error.source, error.line) == ("upload.txt", line)
    assert problem in error.message
    assert str(error) == f"upload.txt line {line}: {error.message}"


def test_formats_mention_mismatch_message(tmp_path):
    good = '{"text": "浙商银行", "label": {"company": {"浙商银行": [[0, 3]]}}}\n'
    bad = '{"text": "浙商银行企业信贷部叶老X博士", "label": {"name": {"叶老桂": [[9, 11]]}}}\n'
    path = tmp_path / "train.json"
    path.write_text(good * 11 + bad, encoding="utf-8")
    with pytest.raises(FormatError) as info:
        read_file(path)
    assert (
        str(info.value) == "train.json line 12: mention '叶老桂' does not match text[9:12] '叶老X'"
    )


def test_formats_unknown_scheme_is_refused():
    with pytest.raises(FormatError, match="unknown tag scheme 'bilou'") as info:
        iter_examples("conll", ["张 O"], "dev.bio", scheme="bilou")
    assert info.value.source == "dev.bio"
    with pytest.raises(FormatError, match="unknown tag scheme"):
        iter_lines("conll", [], scheme="iob2")


def test_formats_read_file_refuses_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "dev.bio"
    path.write_bytes("好\tO\n".encode() + b"\xff\xfe\tO\n")
    with pytest.raises(FormatError, match="not UTF-8") as info:
        read_file(path)
    assert info.value.line == 2


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_formats_writers_refuse_invalid_spans(fmt, tmp_path):
    bad = [Example("好", []), Example("张三", [Span(0, 2, "A"), Span(1, 2, "B")])]
    with pytest.raises(FormatError, match="example 2: .*overlap"):
        "".join(iter_lines(fmt, bad))
    with pytest.raises(FormatError, match="example 2"):
        write_file(tmp_path / "out", bad, fmt)
    assert list(tmp_path.iterdir()) == []


# --- the shared benchmark datasets (counts from their README) ----------------------------------

CLUENER_TRAIN_TYPES = {
    "name": 3755,
    "organization": 3210,
    "position": 3141,
    "company": 2980,
    "address": 2891,
    "game": 2376,
    "government": 1835,
    "scene": 1521,
    "book": 1139,
    "movie": 1123,
}


def _entity_counts(examples: list[Example]) -> Counter:
    """Counted as the README does: flat spans plus any nested ones set aside in meta."""
    counts = Counter(span.label for e in examples for span in e.spans)
    counts.update(label for e in examples for _, _, label in e.meta.get("nested_spans", ()))
    return counts


def test_formats_dataset_cluener_train(datasets_dir):
    examples = read_file(datasets_dir / "cluener2020" / "train.json")
    assert len(examples) == 10_748
    counts = _entity_counts(examples)
    assert sum(counts.values()) == 23_971
    assert dict(counts) == CLUENER_TRAIN_TYPES
    # One sentence nests two companies inside a book title; they are kept aside, not lost.
    nested = [(e.text, e.meta["nested_spans"]) for e in examples if "nested_spans" in e.meta]
    assert len(nested) == 1 and nested[0][1] == [[16, 20, "company"], [23, 27, "company"]]


@pytest.mark.parametrize(("name", "sentences"), [("dev.json", 1_343), ("test.json", 1_345)])
def test_formats_dataset_cluener_dev_and_test(datasets_dir, name, sentences):
    examples = read_file(datasets_dir / "cluener2020" / name)
    assert len(examples) == sentences
    if name == "test.json":
        assert not any(e.spans for e in examples)
        assert [e.meta["id"] for e in examples[:2]] == [0, 1]
    else:
        assert all(e.spans for e in examples[:50])


@pytest.mark.parametrize(
    ("folder", "name", "sentences", "entities"),
    [
        ("resume", "dev.char.bmes", 463, None),
        ("resume", "test.char.bmes", 477, None),
        ("msra", "dev.bio", 3_000, 5_011),
        ("msra", "test.bio", 3_442, 6_190),
    ],
)
def test_formats_dataset_conll_files(datasets_dir, folder, name, sentences, entities):
    examples = read_file(datasets_dir / folder / name)
    assert len(examples) == sentences
    if entities is not None:
        assert sum(len(e.spans) for e in examples) == entities


def test_formats_dataset_resume_train_splits_two_entities_across_sentences(datasets_dir):
    path = datasets_dir / "resume" / "train.char.bmes"
    # '俄罗斯圣。|彼得堡工程科学院' is cut at '。' by the corpus' sentence splitter: the first
    # half ends in M-ORG, so a strict read stops there.
    with pytest.raises(FormatError, match="never closed with E-") as info:
        read_file(path)
    assert info.value.line == 62_390
    examples = read_file(path, strict=False)
    assert len(examples) == 3_821
    counts = _entity_counts(examples)
    assert sum(counts.values()) == 13_440
    assert (counts["TITLE"], counts["ORG"]) == (6_308, 4_613)


# --- what a data walk found -------------------------------------------------------------------


def test_formats_conll_escape_beyond_unicode_is_a_line_error():
    with pytest.raises(FormatError, match=r"a.conll line 2: \\U00110000 is not a Unicode"):
        list(iter_examples("conll", ["张 B-PER", "\\U00110000 O"], "a.conll"))


def test_formats_conll_with_lone_cr_line_ends_keeps_every_sentence():
    content = "张 B-PER\r三 I-PER\r在 O\r北 B-LOC\r京 I-LOC\r\r好 O\r"
    examples = list(iter_examples("conll", [content], "mac.conll"))
    assert [e.text for e in examples] == ["张三在北京", "好"]
    assert [tuple(s) for s in examples[0].spans] == [(0, 2, "PER"), (3, 5, "LOC")]


def test_formats_cluener_writes_nested_spans_only_inside_a_current_span():
    text = "《北京大学学报》出版"
    nested = {"nested_spans": [[1, 5, "organization"]]}
    kept = Example(text, [Span(0, 8, "book")], nested)
    moved = Example(text, [Span(3, 7, "PER")], nested)  # an annotator changed the spans
    emptied = Example(text, [], nested)  # ... or answered "no entity"
    records = [json.loads(line) for line in iter_lines("cluener", [kept, moved, emptied])]
    assert records[0]["label"]["organization"] == {"北京大学": [[1, 4]]}
    assert "organization" not in records[1]["label"] and records[2]["label"] == {}
    again = list(iter_examples("cluener", iter_lines("cluener", [moved]), "again"))
    assert [tuple(s) for s in again[0].spans] == [(3, 7, "PER")]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # the first record has no spans: the later ones say which format it is
        (
            ['{"text": "没有标签"}', '{"text": "张三", "label": {"PER": {"张三": [[0, 1]]}}}'],
            "cluener",
        ),
        # a jsonl export whose meta holds a "label" object: entities decide
        (['{"text": "张三", "entities": [], "label": {}}'], "jsonl"),
        (['{"text": "a"}', '{"text": "b", "entities": []}', '{"label": {}}'], "jsonl"),
    ],
)
def test_formats_guess_format_reads_past_the_first_record(lines, expected):
    assert guess_format("data.json", lines) == expected


@pytest.mark.parametrize(
    ("fmt", "line", "match"),
    [
        (
            "cluener",
            '{"text": "张三", "entities": [{"start": 0, "end": 2, "label": "P"}]}',
            "format=jsonl",
        ),
        ("jsonl", '{"text": "张三", "label": {"P": {"张三": [[0, 1]]}}}', "format=cluener"),
        ("jsonl", '{"text": "张三", "label": [[0, 2, "PER"]]}', "doccano"),
        (
            "jsonl",
            '{"text": "张三", "spans": [{"start": 0, "end": 2, "label": "PER"}]}',
            "spans go in 'entities'",
        ),
        (
            "cluener",
            '{"text": "张三", "spans": [{"start": 0, "end": 2, "label": "PER"}]}',
            "keeps its mentions in 'label'",
        ),
    ],
)
def test_formats_a_reader_refuses_the_other_formats_spans(fmt, line, match):
    with pytest.raises(FormatError, match=match) as refused:
        list(iter_examples(fmt, [line], "x.json"))
    assert "{{" not in str(refused.value)  # the shape shown is JSON as written


@pytest.mark.parametrize("fmt", ["jsonl", "cluener"])
def test_formats_json_lines_escape_the_unicode_line_separators(fmt):
    """U+2028, U+2029 and U+0085 are legal in a JSON string, but str.splitlines() (and some
    JSON lines readers) break a line there: written escaped, a record stays one line."""
    text = "张三\u2028李四\u2029王五\x85赵六"
    example = Example(text, [Span(0, 2, "PER")], {"note": "a\u2028b"})
    written = "".join(get_format(fmt).write([example], None))
    assert len(written.splitlines()) == 1
    assert _read(fmt, written)[0] == example


def test_formats_iter_located_names_each_documents_first_line():
    conll = ["张 B-PER", "三 I-PER", "", "", "北 B-LOC", "京 I-LOC"]
    assert [line for line, _ in iter_located("conll", conll, "a.conll")] == [1, 5]
    jsonl = ['{"text": "a"}', "", "", '{"text": "b"}']
    assert [line for line, _ in iter_located("jsonl", jsonl, "a.jsonl")] == [1, 4]


def test_formats_say_which_tag_errors_a_lenient_reading_repairs():
    with pytest.raises(FormatError) as orphan:
        list(iter_examples("conll", ["去 O", "北 I-LOC", "京 E-LOC"], "a.bioes"))
    assert orphan.value.repairable and "continues no open entity" in str(orphan.value)
    # a third column is no tag: reading leniently would not help, so nothing suggests it
    with pytest.raises(FormatError) as column:
        list(iter_examples("conll", ["张 B-PER extra", "三 E-PER"], "a.bioes"))
    assert not column.value.repairable
    assert "malformed tag 'extra'" in str(column.value)
    assert "the last column of a line is its tag" in str(column.value)
    assert "strict" not in str(column.value)
