"""Import and export formats, registered under stable names (a project stores only the name).

Every reader yields ``annotation.spans.Example`` (character offsets, end exclusive) and every
writer takes them, so nothing outside this module sees CLUENER's inclusive ends or tag schemes.
Readers take lines and writers produce text chunks, so an upload or an HTTP export streams
instead of holding a whole project in memory. Problems raise ``FormatError`` naming the file,
the 1-based line and what is wrong, because an importer's user has to find and fix the line.

Django-free: learner and bench code read the benchmark datasets with it too.

Decisions worth knowing:

- ``conll`` writes one character per line and escapes characters that a line-based reader would
  lose or misread (whitespace such as a space, tab, newline or U+3000, control characters, a
  BOM) as ``\\uXXXX`` (``\\UXXXXXXXX`` beyond the BMP). A first column of one character is
  always literal; a longer one must be such an escape. So ``\\u0020 O`` is a space tagged O,
  while ``  O`` is refused as ambiguous. A tab-separated line may also carry a literal space.
- ``conll`` reads tags strictly by default (an ``I-`` with no open entity is an error); with
  ``strict=False`` ill-formed sequences are repaired the way a decoder does. The scheme is
  detected from the first sentence that has an entity (on a well-formed file that is the same
  as looking at the whole file, and it keeps an upload streaming).
- ``cluener`` files may nest one entity inside another (CLUENER2020 train has a company inside a
  book title). Spans here are flat, so the outer span is kept and each inner one is set aside in
  ``meta["nested_spans"]`` as ``[start, end_exclusive, label]``; the CLUENER writer puts them
  back. Crossing (partly overlapping) spans, or one extent under two types, are still an
  error; a position listed twice for the same mention counts once.
- Writers refuse examples whose spans break ``validate_spans``. ``meta`` keys that clash with a
  format's own fields (``text``, ``label``, ``entities``) are not written; the API refuses
  them in a document's meta (``RESERVED_META_KEYS``). JSON writers escape U+2028, U+2029 and
  U+0085, which ``str.splitlines()`` takes for line breaks.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from .spans import Example, Span, SpanError, validate_spans
from .tags import SCHEMES, TagError, detect_scheme, spans_to_tags, split_tag, tags_to_spans

NESTED_KEY = "nested_spans"
# meta a nerloop export adds to every record (annotation.exporting): the document's split, and
# where its spans come from: "human" (validated), "draft", "model <version>" or "none"
SOURCE_KEY = "nerloop_source"
SPLIT_KEY = "nerloop_split"
# keys the JSON formats write themselves: meta under these names would be lost on export, so
# the API refuses them in a document's meta
RESERVED_META_KEYS = ("text", "label", "entities", SOURCE_KEY, SPLIT_KEY)
TOO_DEEP = "invalid JSON: nested too deeply"

NumberedLines = Iterable[tuple[int, str]]
_LINE_END = re.compile(r"\r\n|\r|\n")


class FormatError(ValueError):
    """A file (or an example being written) that a format cannot take; says where and why.
    ``repairable``: an ill-formed CoNLL tag sequence that reading with ``strict=False`` would
    repair; each way in says how to ask for that (the upload's strict=false, --repair)."""

    def __init__(self, source: str | None, line: int | None, message: str, repairable=False):
        self.source = source
        self.line = line
        self.message = message
        self.repairable = repairable
        super().__init__(self._render())

    def _render(self) -> str:
        if self.source and self.line is not None:
            return f"{self.source} line {self.line}: {self.message}"
        if self.source:
            return f"{self.source}: {self.message}"
        return self.message

    def __str__(self) -> str:
        return self._render()


class Format:
    """One file format. ``example`` is a small file in it, read by the tests as a fixture."""

    name: ClassVar[str]
    description: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]]
    example: ClassVar[str]

    def read(
        self, lines: NumberedLines, source: str, scheme: str | None, strict: bool
    ) -> Iterator[Example]:
        raise NotImplementedError

    def write(self, examples: Iterable[Example], scheme: str | None) -> Iterator[str]:
        raise NotImplementedError


# --- shared helpers ----------------------------------------------------------------------------


def _numbered(lines: Iterable[str], source: str) -> Iterator[tuple[int, str]]:
    """Number lines from 1, whatever the caller's newline handling: a chunk may end in "\\n",
    "\\r\\n", "\\r" or nothing, and a chunk holding several lines is split on any of those
    (a file from an old Mac ends its lines in a lone CR). Nothing else splits a line, so a
    U+2028 inside a JSON string stays put; a raw CR cannot be inside one (JSON escapes it), and
    CoNLL writes it as \\u000d. A leading BOM is dropped."""
    number = 0
    iterator = iter(lines)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise FormatError(source, number + 1, f"not UTF-8 text ({exc.reason})") from None
        if not isinstance(chunk, str):
            raise FormatError(
                source, number + 1, f"expected text lines, got {type(chunk).__name__}"
            )
        pieces = _LINE_END.split(chunk)
        if len(pieces) > 1 and not pieces[-1]:
            pieces.pop()
        for piece in pieces:
            number += 1
            if number == 1 and piece.startswith("\ufeff"):
                piece = piece[1:]
            yield number, piece


def _json_record(line: str, source: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(source, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise FormatError(source, number, TOO_DEEP) from None
    if not isinstance(record, dict):
        raise FormatError(source, number, f"expected a JSON object, got {type(record).__name__}")
    return record


def _text_of(record: dict[str, Any], source: str, number: int, where: str = "text") -> str:
    if where not in record:
        raise FormatError(source, number, f"record has no {where!r}")
    text = record[where]
    if not isinstance(text, str):
        raise FormatError(source, number, f"{where!r} must be a string, got {type(text).__name__}")
    return text


def _validated(text: str, spans: Iterable, source: str, number: int) -> list[Span]:
    try:
        return validate_spans(text, spans)
    except SpanError as exc:
        raise FormatError(source, number, str(exc)) from None


def _checked_example(example: Example, index: int) -> list[Span]:
    """Writers refuse what no reader could take back, naming the example (1-based)."""
    if not isinstance(example.text, str):
        raise FormatError(f"example {index}", None, "text must be a string")
    try:
        return validate_spans(example.text, example.spans)
    except SpanError as exc:
        raise FormatError(f"example {index}", None, str(exc)) from None


_OTHER_SPANS = (
    "this record keeps its spans in '{0}', which is how the {1} format writes them; "
    "upload the file with format={1}"
)
_DOCCANO = (
    "'label' is a list (doccano's [[start, end, label]]?); nerloop's JSON lines keep spans in "
    '\'entities\': [{"start", "end", "label"}]'
)

_SPANS_KEY = (
    "this record has 'spans' (the key of the JSON body of POST documents); in a JSON lines file "
    'spans go in \'entities\': [{"start", "end", "label"}]: rename the key'
)

_SPANS_KEY_CLUENER = (
    "this record has 'spans' (the key of the JSON body of POST documents); a CLUENER record "
    "keeps its mentions in 'label': {type: {mention: [[start, end_inclusive]]}}, and JSON lines "
    '(format=jsonl) take \'entities\': [{"start", "end", "label"}]'
)


def _dumps(record: Any) -> str:
    # U+2028/U+2029/U+0085 are legal inside JSON strings, but splitlines() and some JSON-lines
    # readers break a line at them: escaped, a record stays on one line
    text = json.dumps(record, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")


def _is_offset(value: Any) -> bool:
    return type(value) is int


# --- CLUENER -----------------------------------------------------------------------------------


class Cluener(Format):
    name = "cluener"
    description = 'CLUENER JSON lines: {"text", "label": {type: {mention: [[start, end_incl]]}}}'
    extensions = (".json", ".jsonl")
    example = (
        '{"text": "浙商银行企业信贷部叶老桂博士", "label": {"company": {"浙商银行": [[0, 3]]}, '
        '"name": {"叶老桂": [[9, 11]]}}}\n'
        '{"id": 0, "text": "尼日利亚海军发言人"}\n'
    )

    def read(self, lines, source, scheme, strict):
        for number, line in lines:
            if not line.strip():
                continue
            record = _json_record(line, source, number)
            text = _text_of(record, source, number)
            if "entities" in record and "label" not in record:
                raise FormatError(source, number, _OTHER_SPANS.format("entities", "jsonl"))
            if "spans" in record and "label" not in record:
                raise FormatError(source, number, _SPANS_KEY_CLUENER)
            meta = {k: v for k, v in record.items() if k not in ("text", "label")}
            label = record.get("label")
            if label is None:
                yield Example(text, [], meta)
                continue
            raw = self._spans(text, label, source, number)
            spans, nested = self._flatten(raw, source, number)
            if nested:
                meta[NESTED_KEY] = [list(span) for span in nested]
            yield Example(text, _validated(text, spans, source, number), meta)

    @staticmethod
    def _spans(text: str, label: Any, source: str, number: int) -> set[Span]:
        shape = "'label' must be {type: {mention: [[start, end], ...]}}"
        if not isinstance(label, dict):
            raise FormatError(source, number, shape)
        spans: set[Span] = set()
        for kind, mentions in label.items():
            if not isinstance(mentions, dict) or not kind:
                raise FormatError(source, number, shape)
            for mention, positions in mentions.items():
                if not isinstance(positions, list):
                    raise FormatError(source, number, shape)
                for position in positions:
                    if (
                        not isinstance(position, list)
                        or len(position) != 2
                        or not all(_is_offset(v) for v in position)
                    ):
                        raise FormatError(
                            source, number, f"mention {mention!r}: {position!r} is not [start, end]"
                        )
                    start, last = position
                    if start < 0 or last < start:
                        raise FormatError(
                            source, number, f"mention {mention!r} has bad offsets [{start}, {last}]"
                        )
                    if last >= len(text):
                        raise FormatError(
                            source,
                            number,
                            f"mention {mention!r} at [{start}, {last}] runs past the end of the "
                            f"text ({len(text)} characters)",
                        )
                    found = text[start : last + 1]
                    if found != mention:
                        raise FormatError(
                            source,
                            number,
                            f"mention {mention!r} does not match text[{start}:{last + 1}] {found!r}",
                        )
                    spans.add(Span(start, last + 1, kind))
        return spans

    @staticmethod
    def _flatten(spans: set[Span], source: str, number: int) -> tuple[list[Span], list[Span]]:
        """Keep outer spans, set strictly nested ones aside; crossing spans are an error."""
        kept: list[Span] = []
        nested: list[Span] = []
        for span in sorted(spans, key=lambda s: (s.start, -s.end, s.label)):
            if kept and span.start < kept[-1].end:
                outer = kept[-1]
                if span.end <= outer.end and (span.start, span.end) != (outer.start, outer.end):
                    nested.append(span)
                    continue
                raise FormatError(
                    source, number, f"spans {tuple(outer)!r} and {tuple(span)!r} overlap"
                )
            kept.append(span)
        nested.sort()
        return kept, nested

    def write(self, examples, scheme):
        for index, example in enumerate(examples, 1):
            spans = _checked_example(example, index)
            extra = _nested_spans(example)
            label: dict[str, dict[str, list[list[int]]]] = {}
            for start, end, kind in sorted(spans + extra):
                mention = example.text[start:end]
                label.setdefault(kind, {}).setdefault(mention, []).append([start, end - 1])
            record = {
                k: v for k, v in example.meta.items() if k not in ("text", "label", NESTED_KEY)
            }
            record["text"] = example.text
            record["label"] = label
            yield _dumps(record) + "\n"


def _nested_spans(example: Example) -> list[Span]:
    """The well-formed ``[start, end_exclusive, label]`` items of ``meta["nested_spans"]`` that
    are still nested: strictly inside one of the example's spans.

    ``meta`` may come from anywhere (an API client writes what it likes), and an annotator may
    have changed the spans since the import (the workspace does not show nested ones): items
    that do not fit the text, or no longer lie inside an outer span, are left out rather than
    written as mentions that cross the annotation or that the annotator removed."""
    items = example.meta.get(NESTED_KEY)
    found = []
    for item in items if isinstance(items, list) else ():
        if not (isinstance(item, list | tuple) and len(item) == 3):
            continue
        start, end, label = item
        if (
            type(start) is int
            and type(end) is int
            and 0 <= start < end <= len(example.text)
            and isinstance(label, str)
            and label.strip()
            and any(
                outer.start <= start
                and end <= outer.end
                and (outer.start, outer.end) != (start, end)
                for outer in example.spans
            )
        ):
            found.append(Span(start, end, label))
    return found


# --- JSON lines with explicit entities ---------------------------------------------------------


class Jsonl(Format):
    name = "jsonl"
    description = 'JSON lines: {"text", "entities": [{"start", "end", "label"}]}, end exclusive'
    extensions = (".jsonl", ".json")
    example = (
        '{"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"}, '
        '{"start": 3, "end": 5, "label": "LOC"}], "source": "demo"}\n'
        '{"text": "今天天气很好。"}\n'
    )

    def read(self, lines, source, scheme, strict):
        for number, line in lines:
            if not line.strip():
                continue
            record = _json_record(line, source, number)
            text = _text_of(record, source, number)
            if "entities" not in record and isinstance(record.get("label"), dict):
                raise FormatError(source, number, _OTHER_SPANS.format("label", "cluener"))
            if "entities" not in record and isinstance(record.get("label"), list):
                raise FormatError(source, number, _DOCCANO)
            if "entities" not in record and "spans" in record:
                raise FormatError(source, number, _SPANS_KEY)
            entities = record.get("entities", [])
            if not isinstance(entities, list):
                raise FormatError(source, number, "'entities' must be a list")
            spans = []
            for entity in entities:
                if not isinstance(entity, dict) or not {"start", "end", "label"} <= entity.keys():
                    raise FormatError(
                        source, number, f"entity {entity!r} needs 'start', 'end' and 'label'"
                    )
                spans.append((entity["start"], entity["end"], entity["label"]))
            meta = {k: v for k, v in record.items() if k not in ("text", "entities")}
            yield Example(text, _validated(text, spans, source, number), meta)

    def write(self, examples, scheme):
        for index, example in enumerate(examples, 1):
            spans = _checked_example(example, index)
            record: dict[str, Any] = {
                "text": example.text,
                "entities": [{"start": s, "end": e, "label": label} for s, e, label in spans],
            }
            for key, value in example.meta.items():
                record.setdefault(key, value)
            yield _dumps(record) + "\n"


# --- character CoNLL ---------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}")


def _escape(char: str) -> str:
    if char.isspace() or char == "\ufeff" or unicodedata.category(char) in ("Cc", "Cs"):
        code = ord(char)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char


class Conll(Format):
    name = "conll"
    description = "character CoNLL: one 'char tag' per line, blank line between sentences"
    extensions = (".conll", ".bio", ".bmes", ".bioes", ".txt")
    example = "张 B-PER\n三 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\n好\tO\n"

    def read(self, lines, source, scheme, strict):
        chars: list[str] = []
        tags: list[str] = []
        numbers: list[int] = []
        decided = scheme
        for number, line in lines:
            if not line.strip(" \t"):
                if chars:
                    example, decided = self._sentence(chars, tags, numbers, decided, source, strict)
                    yield example
                    chars, tags, numbers = [], [], []
                continue
            if line.startswith("-DOCSTART-"):
                continue
            char, tag = self._fields(line, source, number)
            chars.append(char)
            tags.append(tag)
            numbers.append(number)
        if chars:
            example, decided = self._sentence(chars, tags, numbers, decided, source, strict)
            yield example

    @staticmethod
    def _fields(line: str, source: str, number: int) -> tuple[str, str]:
        if "\t" in line:
            fields = line.split("\t")
            while fields and not fields[-1].strip():
                fields.pop()
        else:
            fields = [field for field in line.split(" ") if field]
        if len(fields) < 2:
            raise FormatError(
                source,
                number,
                f"expected '<character> <tag>', got {line!r} "
                "(a whitespace character is written \\u0020, \\u3000, ...)",
            )
        char, tag = fields[0], fields[-1].strip()
        if len(char) != 1:
            char = char.strip(" ")
        if len(char) != 1:
            if not _ESCAPE.fullmatch(char):
                raise FormatError(
                    source, number, f"expected one character in the first column, got {char!r}"
                )
            code = int(char[2:], 16)
            if code > 0x10FFFF:
                raise FormatError(source, number, f"{char} is not a Unicode character")
            char = chr(code)
        return char, tag

    @staticmethod
    def _sentence(
        chars: list[str],
        tags: list[str],
        numbers: list[int],
        scheme: str | None,
        source: str,
        strict: bool,
    ) -> tuple[Example, str | None]:
        text = "".join(chars)
        if scheme is None:
            if all(tag == "O" for tag in tags):
                return Example(text, [], {}), None
            scheme = detect_scheme(tags)
        try:
            spans = tags_to_spans(tags, scheme, strict=strict)
        except TagError as exc:
            line = numbers[min(max(exc.index, 0), len(numbers) - 1)]
            where = (
                f"{scheme.upper()} tags"
                if exc.repairable
                else "the last column of a line is its tag: B-, I-, M-, E- or S- and a label, or O"
            )
            raise FormatError(source, line, f"{exc} ({where})", exc.repairable) from None
        return Example(text, spans, {}), scheme

    def write(self, examples, scheme):
        scheme = scheme or "bio"
        for index, example in enumerate(examples, 1):
            spans = _checked_example(example, index)
            if not example.text:
                raise FormatError(f"example {index}", None, "CoNLL cannot hold an empty text")
            tags = spans_to_tags(len(example.text), spans, scheme)
            body = "".join(f"{_escape(c)} {t}\n" for c, t in zip(example.text, tags, strict=True))
            yield body + "\n"


# --- Label Studio ------------------------------------------------------------------------------


class LabelStudio(Format):
    name = "label_studio"
    description = "Label Studio JSON export: a list of tasks with data.text and annotations"
    extensions = (".json",)
    example = (
        '[{"data": {"text": "张三在北京"}, "annotations": [{"result": [{"value": {"start": 0, '
        '"end": 2, "text": "张三", "labels": ["PER"]}, "from_name": "label", "to_name": "text", '
        '"type": "labels"}]}]}]\n'
    )

    def read(self, lines, source, scheme, strict):
        # A JSON array has no line structure to stream on; hold the text, not the objects.
        buffer = "\n".join(line for _, line in lines)
        decoder = json.JSONDecoder()
        pos = self._skip(buffer, 0)
        if pos == len(buffer):
            return
        in_array = buffer[pos] == "["
        if in_array:
            pos = self._skip(buffer, pos + 1)
        line, counted = 1, 0
        while pos < len(buffer):
            if in_array and buffer[pos] == "]":
                pos = self._skip(buffer, pos + 1)
                if pos < len(buffer):
                    line += buffer.count("\n", counted, pos)
                    raise FormatError(source, line, "unexpected content after the task list")
                return
            line += buffer.count("\n", counted, pos)
            counted = pos
            try:
                task, pos = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                raise FormatError(
                    source, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            except RecursionError:
                raise FormatError(source, line, TOO_DEEP) from None
            yield self._example(task, source, line)
            pos = self._skip(buffer, pos)
            if in_array and pos < len(buffer) and buffer[pos] == ",":
                pos = self._skip(buffer, pos + 1)
            elif in_array and pos < len(buffer) and buffer[pos] != "]":
                at = line + buffer.count("\n", counted, pos)
                raise FormatError(source, at, "invalid JSON: expected ',' or ']' between tasks")
        if in_array:
            raise FormatError(source, line, "invalid JSON: the task list is never closed")

    @staticmethod
    def _skip(buffer: str, pos: int) -> int:
        while pos < len(buffer) and buffer[pos] in " \t\r\n":
            pos += 1
        return pos

    @staticmethod
    def _example(task: Any, source: str, line: int) -> Example:
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise FormatError(source, line, "a task must be an object with a 'data' object")
        data = task["data"]
        text = _text_of(data, source, line)
        meta = {k: v for k, v in data.items() if k != "text"}
        annotations = task.get("annotations", task.get("completions")) or []
        if not isinstance(annotations, list):
            raise FormatError(source, line, "'annotations' must be a list")
        chosen = next(
            (a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")), None
        )
        spans = []
        for region in (chosen or {}).get("result") or []:
            value = region.get("value") if isinstance(region, dict) else None
            if not isinstance(value, dict) or "labels" not in value:
                continue  # choices, relations, ratings: not entity spans
            start, end, labels = value.get("start"), value.get("end"), value["labels"]
            if not isinstance(labels, list):
                raise FormatError(source, line, f"region {value!r}: 'labels' must be a list")
            if (
                "text" in value
                and _is_offset(start)
                and _is_offset(end)
                and 0 <= start < end <= len(text)
                and text[start:end] != value["text"]
            ):
                raise FormatError(
                    source,
                    line,
                    f"region text {value['text']!r} does not match text[{start}:{end}] "
                    f"{text[start:end]!r}",
                )
            spans.extend((start, end, label) for label in labels)
        if chosen is not None:  # a human answered, maybe "no entity" (an empty result)
            meta.setdefault(SOURCE_KEY, "human")
        return Example(text, _validated(text, spans, source, line), meta)

    def write(self, examples, scheme):
        yield "["
        for index, example in enumerate(examples, 1):
            spans = _checked_example(example, index)
            data = {k: v for k, v in example.meta.items() if k != "text"}
            data["text"] = example.text
            result = [
                {
                    "value": {
                        "start": start,
                        "end": end,
                        "text": example.text[start:end],
                        "labels": [label],
                    },
                    "from_name": "label",
                    "to_name": "text",
                    "type": "labels",
                }
                for start, end, label in spans
            ]
            # where Label Studio keeps each kind of answer: a human's in annotations (a task
            # with one is "completed"), a model's in predictions, a draft in drafts; a task
            # nobody answered has none
            source = example.meta.get(SOURCE_KEY, "human")
            task: dict[str, Any] = {"data": data}
            if source == "human":
                task["annotations"] = [{"result": result}]
            elif source == "draft":
                task["drafts"] = [{"result": result}]
            elif isinstance(source, str) and source.startswith("model "):
                task["predictions"] = [{"model_version": source[6:], "result": result}]
            yield ("\n" if index == 1 else ",\n") + _dumps(task)
        yield "\n]\n"


# --- registry and entry points -----------------------------------------------------------------

FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (Cluener(), Conll(), Jsonl(), LabelStudio())}


class PlainText(Format):
    """Upload only (not in FORMATS: nothing is exported as bare text): a raw corpus, as
    Label Studio and Prodigy take one, for the unlabelled pool."""

    name = "text"
    description = "plain text: one document per non-blank line, no spans (upload only)"
    extensions = (".txt",)
    example = "张三在北京工作。\n\n李四去了上海。\n"

    def read(self, lines, source, scheme, strict):
        for _number, line in lines:
            text = line.strip()
            if text:
                yield Example(text, [])


PLAIN_TEXT = PlainText()
UPLOAD_FORMATS = sorted([*FORMATS, PLAIN_TEXT.name])


def _is_tag(field: str) -> bool:
    try:
        split_tag(field)
    except TagError:
        return False
    return True


def looks_like_conll(head: Iterable[str]) -> bool:
    """Whether most non-blank lines are a token and a tag the CoNLL reader takes (extra
    columns allowed)."""
    lines = [line.split() for line in head if line.strip()]
    if not lines:
        return True
    tagged = sum(len(fields) >= 2 and any(map(_is_tag, fields[1:])) for fields in lines)
    return tagged >= 0.8 * len(lines)


_CONLL_SUFFIXES = Conll.extensions
_JSON_SUFFIXES = (".json", ".jsonl")


def get_format(name: str | Format) -> Format:
    if isinstance(name, Format):
        return name
    if name == PLAIN_TEXT.name:
        return PLAIN_TEXT
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(FORMATS))
        raise FormatError(None, None, f"unknown format {name!r}; known formats: {known}") from None


def _scheme(scheme: str | None, source: str | None) -> str | None:
    if scheme is None:
        return None
    lowered = scheme.lower() if isinstance(scheme, str) else scheme
    if lowered not in SCHEMES:
        raise FormatError(
            source, None, f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
        )
    return lowered


GUESS_RECORDS = 200  # JSON records looked at to tell CLUENER from JSON lines


def guess_format(filename: str, head: Iterable[str]) -> str:
    """The format name for a file, from its extension and (for JSON) its first records.

    ``head``: the file's first lines. A JSON-lines file is ``jsonl`` when any of its first
    ``GUESS_RECORDS`` records has ``entities``, else ``cluener`` when one has a ``label``
    object: the first record alone may have no spans at all."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".txt" and not looks_like_conll(head):
        return PLAIN_TEXT.name
    if suffix in _CONLL_SUFFIXES:
        return "conll"
    if suffix not in _JSON_SUFFIXES:
        known = ", ".join(sorted(FORMATS))
        raise FormatError(
            Path(filename).name,
            None,
            f"cannot tell the format from the extension {suffix or '(none)'!r}; "
            f"name one of: {known}",
        )
    lines = [line.lstrip("\ufeff \t\r\n") for line in head]
    lines = [line for line in lines if line][:GUESS_RECORDS]
    if not lines:
        return "jsonl"
    if lines[0].startswith("[") or lines[0].rstrip() == "{":
        return "label_studio"
    cluener = False
    for line in lines:
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            break  # the reader reports the broken line
        if not isinstance(record, dict):
            break
        if "data" in record and line is lines[0]:
            return "label_studio"
        if "entities" in record:
            return "jsonl"
        cluener = cluener or isinstance(record.get("label"), dict)
    return "cluener" if cluener else "jsonl"


def head_lines(handle, limit: int = GUESS_RECORDS) -> list[str]:
    """Up to ``limit`` non-blank lines from the start of a binary or text file object, for
    ``guess_format``; bytes that are not UTF-8 are replaced (the reader reports them)."""
    found: list[str] = []
    for raw in handle:
        line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if line.strip("\ufeff \t\r\n"):
            found.append(line)
            if len(found) >= limit:
                break
    return found


def iter_examples(
    fmt: str | Format,
    lines: Iterable[str],
    source: str,
    scheme: str | None = None,
    *,
    strict: bool = True,
) -> Iterator[Example]:
    """Examples from ``lines`` (with or without their newlines), as they are read.

    ``scheme`` forces a CoNLL tag scheme (detected when None); ``strict=False`` repairs
    ill-formed tag sequences instead of raising. Format and scheme are checked at once; file
    problems raise FormatError while iterating.
    """
    located = iter_located(fmt, lines, source, scheme, strict=strict)
    return (example for _, example in located)


def iter_located(
    fmt: str | Format,
    lines: Iterable[str],
    source: str,
    scheme: str | None = None,
    *,
    strict: bool = True,
) -> Iterator[tuple[int | None, Example]]:
    """``iter_examples`` with the line each example starts on (its first non-blank line), so
    a problem found later (a label outside the schema) can name it too. None for the
    examples of a Label Studio list after the first, which are read from one buffer."""
    reader = get_format(fmt)  # checked now, not at the first next()
    checked = _scheme(scheme, source)
    return _located(reader, _numbered(lines, source), source, checked, strict)


def _located(
    reader: Format, lines: NumberedLines, source: str, scheme: str | None, strict: bool
) -> Iterator[tuple[int | None, Example]]:
    first: list[int | None] = [None]

    def noting_first():
        for number, line in lines:
            if first[0] is None and line.strip(" \t"):
                first[0] = number
            yield number, line

    for example in reader.read(noting_first(), source, scheme, strict):
        yield first[0], example
        first[0] = None


def iter_lines(
    fmt: str | Format, examples: Iterable[Example], scheme: str | None = None
) -> Iterator[str]:
    """Text chunks of the file for ``examples``, produced one example at a time."""
    writer = get_format(fmt)
    return writer.write(examples, _scheme(scheme, None))


def _file_lines(path: Path) -> list[str]:
    """The file's lines without newlines; a bad byte is reported on its own line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(path.name, line, f"not UTF-8 text ({exc.reason})") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def read_file(
    path: str | Path,
    fmt: str | Format | None = None,
    scheme: str | None = None,
    *,
    strict: bool = True,
) -> list[Example]:
    path = Path(path)
    if fmt is None:
        with path.open("rb") as handle:
            fmt = guess_format(path.name, head_lines(handle))
    return list(iter_examples(fmt, _file_lines(path), path.name, scheme, strict=strict))


def write_file(
    path: str | Path, examples: Iterable[Example], fmt: str | Format, scheme: str | None = None
) -> None:
    """Write through a ``.part`` file, so a refused example never leaves half a file behind."""
    path = Path(path)
    chunks = iter_lines(fmt, examples, scheme)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as handle:
            for chunk in chunks:
                handle.write(chunk)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
