"""The API's JSON parser: refuses strings that cannot be stored.

JSON allows the escapes ``\\ud800`` (half of a surrogate pair, alone) and ``\\u0000``. Python
reads both into ``str``, but neither can be written as UTF-8 nor stored by PostgreSQL (in a
text or a jsonb column), so a body holding one anywhere (a value or a key, however deep) is
refused before any view sees it, instead of failing half-way through a write or on a later
read.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def unstorable(value, where: str = "") -> str | None:
    """Where ``value`` (parsed JSON) holds a string that cannot be stored, and why; else None."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            problem = string_problem(item)
            if problem:
                return f"{path or 'the body'}: {problem}"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = string_problem(key) if isinstance(key, str) else None
                if problem:
                    return f"a key of {path or 'the body'}: {problem}"
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL or an unpaired surrogate), or None."""
    if "\x00" in text:
        return "contains a NUL character (U+0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate code point"
    return None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # json's decoder gives up on very deep nesting
            raise ParseError("JSON parse error - nested too deeply") from None
        problem = unstorable(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
