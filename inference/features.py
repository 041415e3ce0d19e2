"""Model inputs from raw text: character ids, character-bigram ids and lexicon flags.

Training and serving both call ``Featurizer.encode``, so the two can never disagree about
what a model sees. numpy only: serving must not import torch. Everything works on whole
batches at once (one flat code-point array per batch), because per-character Python loops
would cost more than the model itself.

Tokens are the text's Unicode code points, one per character, so row ``i`` of every array is
character ``i`` of the text (whitespace, emoji and characters outside the BMP included).
Invisible format characters (``INVISIBLE``: a BOM, zero-width spaces and joiners) are taken
out before a text gets here, in training and serving alike (``visible``): they mean nothing
to a mention, yet a model that never saw one is thrown by it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numba
import numpy as np

PAD, UNK = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
BIGRAM_END = "</s>"  # the bigram of a text's last character is that character + this marker
END_CODEPOINT = 0x110000  # one past the last Unicode code point, stands for BIGRAM_END
CODEPOINT_BITS = 21

# jieba's part-of-speech tags folded into the gazetteer's types.
LEXICON_TYPES = ("nr", "ns", "nt", "nz", "other")
_JIEBA_TYPE = {"nr": "nr", "nrt": "nr", "nrfg": "nr", "ns": "ns", "nt": "nt", "nz": "nz"}
PREFIX_BIT = np.uint64(1 << 63)  # in a lexicon table's value: some longer word starts with this one
WORD_COLUMNS = "BMES"  # flag columns per type: first, middle, last character, single-char word

# Fixed odd multipliers of the polynomial window hash (any odd 64-bit constants would do;
# they only have to be the same in training and serving, so they are part of the format).
_MULTIPLIERS = np.array(
    [
        0x9E3779B97F4A7C15,
        0xBF58476D1CE4E5B9,
        0x94D049BB133111EB,
        0xD6E8FEB86659FD93,
        0xA0761D6478BD642F,
        0xE7037ED1A0B428DB,
        0x8EBC6AF09C88C6E3,
        0x589965CC75374CC3,
        0x1D8E4E27C47D124F,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0x85EBCA77C2B2AE63,
        0x27D4EB2F165667C5,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x9FB21C651E98DF25,
    ],
    dtype=np.uint64,
)
MAX_WORD_LEN = len(_MULTIPLIERS)  # 16: long enough for most organisation names
# Added to a window's hash by its length, so all lengths share one lookup table.
_SALTS = (np.arange(1, MAX_WORD_LEN + 1, dtype=np.uint64) * np.uint64(0xD1342543DE82EF95)) ^ (
    np.uint64(0x5851F42D4C957F2D)
)


# Characters that show nothing: the soft hyphen, the Mongolian vowel separator, zero-width
# space, non-joiner and joiner, the bidirectional marks, embeddings and isolates, the word
# joiner and invisible operators, and the BOM (a zero-width no-break space mid-text). A BOM
# at the start of pasted text or a zero-width space inside a name ("张\u200b伟") cut the name
# short before the model was spared them.
INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


def visible(text: str) -> tuple[str, np.ndarray | None]:
    """``text`` without INVISIBLE characters and, when any was removed, the index in ``text``
    of each character kept (None when there was nothing to remove: the common case)."""
    if INVISIBLE.search(text) is None:
        return text, None
    kept = [i for i, char in enumerate(text) if INVISIBLE.match(char) is None]
    return INVISIBLE.sub("", text), np.array(kept, dtype=np.int64)


def restored_span(kept: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Offsets ``[start, end)`` among a text's visible characters, in the text itself
    (``kept`` from ``visible``): a span keeps an invisible character it surrounds, not one at
    its edges."""
    return int(kept[start]), int(kept[end - 1]) + 1


def codepoints(text: str) -> np.ndarray:
    """The text's code points as uint32 (lone surrogates kept, as Python indexes them)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def normalize(cps: np.ndarray) -> np.ndarray:
    """Fold full-width ASCII to half-width and Latin capitals to lower case, one code point
    to one, so offsets never move. Chinese text mixes both spellings freely."""
    out = cps.astype(np.int64, copy=True)
    wide = (out >= 0xFF01) & (out <= 0xFF5E)
    out[wide] -= 0xFEE0
    out[out == 0x3000] = 0x20
    upper = (out >= 0x41) & (out <= 0x5A)
    out[upper] += 0x20
    return out


def normalize_text(text: str) -> str:
    return (
        normalize(codepoints(text)).astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    )


def jieba_dictionary_path() -> Path:
    """The dictionary that ships inside the installed jieba package (no network, no jieba
    import: the file is all we need)."""
    import importlib.util

    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("jieba is not installed; its dict.txt is the default lexicon")
    return Path(spec.origin).parent / "dict.txt"


# Lexicons built from bundle files, by (sha256 of the file, typed, types); read-only once built.
_LEXICON_CACHE: dict[tuple[str, bool, tuple[str, ...]], Lexicon] = {}
_LEXICON_CACHE_SIZE = 4
_LEXICON_LOCK = threading.Lock()


class Lexicon:
    """A typed gazetteer matched by hashing text windows and looking the hashes up in one
    open-addressing table (compiled, no per-character Python)."""

    def __init__(
        self,
        entries: Iterable[tuple[str, str]],
        typed: bool = True,
        types: Sequence[str] | None = None,
    ):
        """``types`` are the flag groups in column order (LEXICON_TYPES by default); a word of
        another kind counts as ``other`` where that type exists and is dropped otherwise. A
        word may have several types (a gazetteer of entity mentions: one name, two labels).
        Untyped, every word is in one group."""
        self.typed = typed
        self.types: tuple[str, ...] = (
            (tuple(types) if types else LEXICON_TYPES) if typed else ("word",)
        )
        if len(self.types) > 63:  # bit 63 of a table value marks a word's prefix
            raise ValueError("a lexicon has at most 63 types")
        type_index = {name: i for i, name in enumerate(self.types)}
        pairs = [(w, k) for w, k in entries if w and "\n" not in w and "\t" not in w]
        # one normalisation call for all words: it maps code points one to one, never to "\n"
        keys = normalize_text("\n".join(w for w, _ in pairs)).split("\n") if pairs else []
        masks: dict[str, int] = {}
        kinds_of: dict[str, list[str]] = {}
        for key, (_, kind) in zip(keys, pairs, strict=True):
            if not 1 <= len(key) <= MAX_WORD_LEN:
                continue
            if not typed:
                kind = "word"
            elif kind not in type_index:
                if "other" not in type_index:
                    continue
                kind = "other"
            bit = 1 << type_index[kind]
            if masks.get(key, 0) & bit:
                continue
            masks[key] = masks.get(key, 0) | bit
            kinds_of.setdefault(key, []).append(kind)
        self.pairs = [(w, k) for w, kinds in kinds_of.items() for k in kinds]
        self.entries = {w: kinds[0] for w, kinds in kinds_of.items()}  # first type of a word
        words = masks
        self.lengths = sorted({len(w) for w in words})
        all_cps = codepoints("".join(words)) if words else np.zeros(0, np.uint32)
        self._chars = np.unique(all_cps.astype(np.int64))  # lexicon-local ids are index + 1
        self._char_ids = _IdTable(self._chars, range(1, len(self._chars) + 1), 0)
        # one table of every word's window hash (salted by its length) -> the bit mask of the
        # word's types; every proper prefix of a word is in it too, with PREFIX_BIT, so that
        # matching stops extending a window as soon as no word starts with it
        groups: dict[int, list[str]] = {}
        for word in words:
            groups.setdefault(len(word), []).append(word)
        all_keys, all_masks = [], []
        for length, group in sorted(groups.items()):
            cps = codepoints("".join(group)).astype(np.int64).reshape(len(group), length)
            ids = np.searchsorted(self._chars, cps) + 1
            running = np.zeros(len(group), dtype=np.uint64)
            for k in range(length):
                running += ids[:, k].astype(np.uint64) * _MULTIPLIERS[k]
                all_keys.append(running + _SALTS[k])  # the window of the first k + 1
                if k < length - 1:
                    all_masks.append(np.full(len(group), PREFIX_BIT, dtype=np.uint64))
            all_masks.append(np.array([words[w] for w in group], dtype=np.uint64))
        keys = np.concatenate(all_keys) if all_keys else np.zeros(0, np.uint64)
        masks = np.concatenate(all_masks) if all_masks else keys
        keys, where = np.unique(keys, return_inverse=True)  # a word can be another's prefix
        merged = np.zeros(len(keys), dtype=np.uint64)
        np.bitwise_or.at(merged, where, masks)
        masks = merged
        self._table = _HashTable(keys, masks)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def from_jieba(
        cls,
        path: str | os.PathLike | None = None,
        min_len: int = 2,
        max_len: int = 6,
        min_freq: int = 1,
        typed: bool = True,
        rare_below: int = 0,
    ) -> Lexicon:
        """jieba's dict.txt lines are ``word frequency pos``; POS nr/nrt/nrfg become ``nr``.
        With ``rare_below`` each type is split in two: words rarer than that get ``<type>_rare``
        (jieba's long tail of names is noisier than its common words)."""
        source = Path(path) if path else jieba_dictionary_path()
        entries = []
        with open(source, encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) < 2:
                    continue
                word = parts[0]
                if not min_len <= len(word) <= max_len:
                    continue
                try:
                    freq = int(parts[1])
                except ValueError:
                    continue
                if freq < min_freq:
                    continue
                pos = parts[2] if len(parts) > 2 else ""
                kind = _JIEBA_TYPE.get(pos, "other")
                if rare_below and freq < rare_below:
                    kind += "_rare"
                entries.append((word, kind))
        types = LEXICON_TYPES
        if rare_below:
            types = LEXICON_TYPES + tuple(f"{t}_rare" for t in LEXICON_TYPES)
        return cls(entries, typed=typed, types=types)

    @classmethod
    def read(
        cls, path: str | os.PathLike, typed: bool = True, types: Sequence[str] | None = None
    ) -> Lexicon:
        """The lexicon file's entries. Built lexicons are shared by content (sha256): every
        retrained bundle of a project carries the same gazetteer, and building one takes
        seconds, which a hot-swap to the new version should not pay again."""
        data = Path(path).read_bytes()
        key = (hashlib.sha256(data).hexdigest(), typed, tuple(types or ()))
        with _LEXICON_LOCK:
            cached = _LEXICON_CACHE.get(key)
        if cached is not None:
            return cached
        entries = []
        for line in data.decode("utf-8").split("\n"):
            if line:
                word, _, kind = line.partition("\t")
                entries.append((word, kind or "other"))
        lexicon = cls(entries, typed=typed, types=types)
        with _LEXICON_LOCK:
            _LEXICON_CACHE[key] = lexicon
            while len(_LEXICON_CACHE) > _LEXICON_CACHE_SIZE:
                _LEXICON_CACHE.pop(next(iter(_LEXICON_CACHE)))
        return lexicon

    def write(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            for word, kind in self.pairs:
                handle.write(f"{word}\t{kind}\n")

    @property
    def dim(self) -> int:
        return len(self.types) * len(WORD_COLUMNS)

    def flags(self, cps: np.ndarray, text_ids: np.ndarray) -> np.ndarray:
        """[N, dim] float32 B/M/E/S flags per type for a flat batch of normalised code points;
        ``text_ids`` says which text each position belongs to (words never cross texts)."""
        out = np.zeros((len(cps), self.dim), dtype=np.float32)
        self.flag_into(cps, text_ids, out, np.arange(len(cps)), 0)
        return out

    def flag_into(self, cps, text_ids, out, rows, column: int) -> None:
        """Set the flags of position i in ``out[rows[i], column:column + dim]`` (``out`` zeroed
        by the caller): the padded batch is written in place, with no flat copy between."""
        if len(cps) == 0 or not self.lengths:
            return
        ids = self._char_ids.find(cps).view(np.uint64)  # ids are never negative
        table = self._table
        _match_words(
            ids, np.ascontiguousarray(text_ids, dtype=np.int64), self.lengths[-1],
            table.keys, table.values, table.shift, table.mask,
            len(self.types), len(WORD_COLUMNS), out, rows, column,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _probe(keys: np.ndarray, values: np.ndarray, shift, mask, key) -> np.uint64:
    """The value stored for ``key`` in an open-addressing table, 0 when absent."""
    if key == 0:
        key = np.uint64(1)
    slot = key >> shift
    while True:
        stored = keys[slot]
        if stored == key:
            return values[slot]
        if stored == 0:
            return np.uint64(0)
        slot = (slot + np.uint64(1)) & mask


@numba.njit(cache=True, nogil=True)
def _match_words(ids, text_ids, longest, keys, values, shift, mask, types, cols, out, rows, column):
    """Every window of known characters inside one text, up to ``longest`` long, hashed as the
    table's words were and looked up; a hit sets the B/M/E/S flags of each type it carries.
    A window that is neither a word nor a word's prefix ends the extension: most stop after
    one or two characters (16 lookups per position before, for a gazetteer of long names)."""
    n = len(ids)
    for begin in range(n):
        running = np.uint64(0)
        for size in range(1, longest + 1):
            last = begin + size - 1
            if last >= n or ids[last] == 0 or text_ids[last] != text_ids[begin]:
                break
            running += ids[last] * _MULTIPLIERS[size - 1]
            found = _probe(keys, values, shift, mask, running + _SALTS[size - 1])
            if found == 0:
                break
            for kind in range(types):
                if (found >> np.uint64(kind)) & np.uint64(1) == 0:
                    continue
                base = column + kind * cols
                if size == 1:
                    out[rows[begin], base + 3] = 1.0
                    continue
                out[rows[begin], base] = 1.0
                out[rows[last], base + 2] = 1.0
                for inner in range(begin + 1, last):
                    out[rows[inner], base + 1] = 1.0


class _HashTable:
    """Open addressing with linear probing over uint64 keys (already hashes).
    A binary search of a 300,000-word table costs ~19 cache misses per window; this costs ~1.
    ``_probe`` finds a key's non-zero value, or 0 when absent. Key 0 marks an empty
    slot, so a key of 0 is stored as 1 (both sides do the same; a clash is ~2^-64)."""

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        bits = max(4, int(np.ceil(np.log2(max(len(keys), 1) * 3))))  # load factor <= 1/3
        self.shift = np.uint64(64 - bits)
        self.mask = np.uint64((1 << bits) - 1)
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.values = np.zeros(1 << bits, dtype=np.uint64)
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        values = np.ascontiguousarray(values, dtype=np.uint64)
        _insert(self.keys, self.values, self.shift, self.mask, keys, values)


@numba.njit(cache=True, nogil=True)
def _insert(table_keys, table_values, shift, mask, keys, values):
    for k in range(len(keys)):
        key = keys[k] if keys[k] != 0 else np.uint64(1)
        slot = key >> shift
        while table_keys[slot] != 0:
            slot = (slot + np.uint64(1)) & mask
        table_keys[slot] = key
        table_values[slot] = values[k]


@numba.njit(cache=True, nogil=True)
def _scramble(value) -> np.uint64:
    """A one-to-one map of uint64 onto itself (murmur3's finaliser, after adding 1) that
    spreads code points and bigram keys over the table's top bits; only 2^64 - 1 maps to 0."""
    x = np.uint64(value) + np.uint64(1)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@numba.njit(cache=True, nogil=True)
def _scramble_all(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), np.uint64)
    for k in range(len(values)):
        out[k] = _scramble(values[k])
    return out


@numba.njit(cache=True, nogil=True)
def _find_ids(keys, values, shift, mask, queries, missing, out):
    for k in range(len(queries)):
        found = _probe(keys, values, shift, mask, _scramble(queries[k]))
        out[k] = found if found else missing


class _IdTable:
    """Non-negative integer keys (code points, bigram keys) -> positive ids, one hash probe
    per lookup (a binary search over a 110,000-bigram vocabulary cost 17 steps and most of
    featurisation's time outside the lexicons); absent keys get ``missing``."""

    def __init__(self, keys: Iterable[int], ids: Iterable[int], missing: int):
        keys = np.fromiter(keys, dtype=np.uint64)
        self._table = _HashTable(_scramble_all(keys), np.fromiter(ids, dtype=np.uint64))
        self.missing = missing

    def find(self, queries: np.ndarray) -> np.ndarray:
        out = np.empty(len(queries), np.int64)
        table = self._table
        _find_ids(table.keys, table.values, table.shift, table.mask,
                  np.ascontiguousarray(queries, dtype=np.uint64), self.missing, out)  # fmt: skip
        return out


class Featurizer:
    """Texts -> the arrays a bundle's ONNX graph takes (``chars``, ``bigrams``, ``lexicon``,
    ``lengths``). Vocabularies come from training data; index 0 pads, index 1 is unknown."""

    def __init__(
        self,
        chars: Sequence[str],
        bigrams: Sequence[str] | None = None,
        lexicon: Lexicon | None = None,
        max_len: int = 256,
        gazetteer: Lexicon | None = None,
    ):
        """``lexicon`` is the dictionary gazetteer (jieba's words by part of speech);
        ``gazetteer`` holds entity mentions of the training data typed by their labels.
        Both feed the one ``lexicon`` input: dictionary flags first, then gazetteer flags."""
        if list(chars[:2]) != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError("a character vocabulary starts with <pad>, <unk>")
        self.chars = list(chars)
        self.bigrams = list(bigrams) if bigrams is not None else None
        self.lexicon = lexicon
        self.gazetteer = gazetteer
        self.max_len = max_len
        self._char_ids = _IdTable((ord(c) for c in self.chars[2:]), range(2, len(self.chars)), UNK)
        if self.bigrams is not None:
            if self.bigrams[:2] != [PAD_TOKEN, UNK_TOKEN]:
                raise ValueError("a bigram vocabulary starts with <pad>, <unk>")
            self._bigram_ids = _IdTable(
                (_bigram_key(b) for b in self.bigrams[2:]), range(2, len(self.bigrams)), UNK
            )

    # ---- building -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        min_char_count: int = 1,
        min_bigram_count: int = 1,
        bigrams: bool = True,
        lexicon: Lexicon | None = None,
        max_len: int = 256,
        base: Featurizer | None = None,
        gazetteer: Lexicon | None = None,
    ) -> Featurizer:
        """Vocabularies from ``texts``. With ``base`` the old vocabularies keep their indexes
        and new items are appended, so a warm-started model keeps its embedding rows."""
        char_counts: Counter[str] = Counter()
        bigram_counts: Counter[str] = Counter()
        for text in texts:
            norm = normalize_text(text)
            char_counts.update(norm)
            if bigrams and norm:
                bigram_counts.update(norm[i : i + 2] for i in range(len(norm) - 1))
                bigram_counts[norm[-1] + BIGRAM_END] += 1
        chars = list(base.chars) if base else [PAD_TOKEN, UNK_TOKEN]
        known = set(chars)
        # most frequent first (ties by code point): a language-model head over the first
        # ids only then covers most of the text
        chars += sorted(
            (
                c
                for c, n in char_counts.items()
                if n >= min_char_count and c not in known and not 0xD800 <= ord(c) <= 0xDFFF
            ),
            key=lambda c: (-char_counts[c], c),
        )
        bigram_list = None
        if base is not None and base.bigrams is not None:
            bigram_list = list(base.bigrams)
        elif bigrams and base is None:
            bigram_list = [PAD_TOKEN, UNK_TOKEN]
        if bigram_list is not None:
            known = set(bigram_list)
            bigram_list += sorted(
                b
                for b, n in bigram_counts.items()
                if n >= min_bigram_count and b not in known and not _has_surrogate(b)
            )
        if base is not None:
            lexicon, max_len = base.lexicon, base.max_len
            if gazetteer is None:
                gazetteer = base.gazetteer
            elif base.gazetteer is None or gazetteer.types != base.gazetteer.types:
                raise ValueError("a warm start keeps the gazetteer's types (the label set)")
        return cls(chars, bigram_list, lexicon, max_len=max_len, gazetteer=gazetteer)

    # ---- encoding -------------------------------------------------------------------------

    @property
    def input_names(self) -> list[str]:
        names = ["chars"]
        if self.bigrams is not None:
            names.append("bigrams")
        if self.lexicon is not None or self.gazetteer is not None:
            names.append("lexicon")
        return names + ["lengths"]

    @property
    def lexicon_dim(self) -> int:
        return sum(lex.dim for lex in (self.lexicon, self.gazetteer) if lex is not None)

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Padded ``[batch, time]`` arrays (``lexicon`` is ``[batch, time, dim]``) and
        ``lengths``. An empty text gets length 0 and one padding position."""
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        batch = len(texts)
        width = max(1, int(lengths.max())) if batch else 1
        cps = normalize(codepoints("".join(texts)))
        text_ids = np.repeat(np.arange(batch), lengths)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if batch else lengths
        cols = np.arange(len(cps)) - starts[text_ids]

        def padded(values: np.ndarray, dtype) -> np.ndarray:
            out = np.zeros((batch, width), dtype=dtype)
            out[text_ids, cols] = values
            return out

        result = {"chars": padded(self._char_ids.find(cps), np.int64)}
        if self.bigrams is not None:
            following = np.empty_like(cps)
            following[:-1] = cps[1:]
            ends = np.cumsum(lengths)[lengths > 0] - 1
            following[ends] = END_CODEPOINT
            keys = (cps << CODEPOINT_BITS) | following
            result["bigrams"] = padded(self._bigram_ids.find(keys), np.int64)
        lexicons = [lex for lex in (self.lexicon, self.gazetteer) if lex is not None]
        if lexicons:
            flags = np.zeros((batch, width, self.lexicon_dim), dtype=np.float32)
            flat, rows, column = flags.reshape(batch * width, -1), text_ids * width + cols, 0
            for lex in lexicons:  # dictionary flags first, then the gazetteer's
                lex.flag_into(cps, text_ids, flat, rows, column)
                column += lex.dim
            result["lexicon"] = flags
        result["lengths"] = lengths
        return result

    # ---- persistence ----------------------------------------------------------------------

    def config(self) -> dict:
        """The ``features`` entry of a bundle's config.json."""
        return {
            "inputs": self.input_names,
            "chars": len(self.chars),
            "bigrams": len(self.bigrams) if self.bigrams is not None else 0,
            "lexicon": self.lexicon is not None,
            # "is not None": a Lexicon with no words is falsy (len 0) but still has its columns
            "lexicon_typed": self.lexicon is not None and self.lexicon.typed,
            "lexicon_types": list(self.lexicon.types) if self.lexicon is not None else [],
            "lexicon_columns": WORD_COLUMNS,
            "lexicon_dim": self.lexicon_dim,
            "gazetteer": self.gazetteer is not None,
            "gazetteer_types": list(self.gazetteer.types) if self.gazetteer is not None else [],
            "max_len": self.max_len,
            "normalize": "fullwidth-ascii,lowercase-latin",
        }

    def save(self, folder: str | os.PathLike) -> None:
        """Write vocab.json, lexicon.txt (the words in use, so a bundle does not need jieba)
        and the ``features`` key of config.json (other keys of an existing file are kept)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocab = {"chars": self.chars, "bigrams": self.bigrams or []}
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
        if self.lexicon is not None:
            self.lexicon.write(folder / "lexicon.txt")
        if self.gazetteer is not None:
            self.gazetteer.write(folder / "gazetteer.txt")
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text("utf-8")) if config_path.exists() else {}
        config["features"] = self.config()
        config.setdefault("max_len", self.max_len)
        config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), "utf-8")

    @classmethod
    def from_bundle(cls, folder: str | os.PathLike) -> Featurizer:
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text("utf-8"))
        features = config["features"]
        vocab = json.loads((folder / "vocab.json").read_text("utf-8"))
        lexicon = None
        if features.get("lexicon"):
            typed = features.get("lexicon_typed", True)
            types = features.get("lexicon_types") if typed else None
            lexicon = Lexicon.read(folder / "lexicon.txt", typed=typed, types=types)
        bigrams = vocab["bigrams"] if "bigrams" in features.get("inputs", []) else None
        max_len = int(config.get("max_len", features.get("max_len", 256)))
        gazetteer = None
        if features.get("gazetteer"):
            gazetteer = Lexicon.read(folder / "gazetteer.txt", types=features["gazetteer_types"])
        return cls(vocab["chars"], bigrams, lexicon, max_len=max_len, gazetteer=gazetteer)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _bigram_key(bigram: str) -> int:
    first = ord(bigram[0])
    second = END_CODEPOINT if bigram[1:] == BIGRAM_END else ord(bigram[1])
    if len(bigram) != 2 and bigram[1:] != BIGRAM_END:
        raise ValueError(f"bad bigram vocabulary entry {bigram!r}")
    return (first << CODEPOINT_BITS) | second
