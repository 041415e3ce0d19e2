"""The serving engine: a verified model bundle behind an ONNX Runtime session.

``ModelBundle`` follows MLServer's model lifecycle: construct, ``load()``, check ``ready``,
``predict()``. Loading verifies the manifest before anything in the folder is opened.
Prediction tokenises whole batches with the bundle's Featurizer, runs ONNX on length-bucketed
batches (sorted by length, padded only to each batch's longest text), decodes each batch at
once (``inference/decoding.py``, compiled) and splits texts longer than the model's window
with ``inference/windows.py``. Batches run side by side on ``lanes`` threads, one ONNX
Runtime thread each. Nothing here imports torch.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from annotation.tags import TagError

from . import bundle as bundle_files
from .bundle import BundleError, BundleInfo
from .decoding import decode, sentence_uncertainty, span_confidence
from .features import Featurizer, restored_span, visible
from .paths import PathReader
from .windows import has_line_break, merge_spans, owned_ranges, split_windows

logger = logging.getLogger(__name__)

_ORT_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidGraph,
    ort_state.InvalidProtobuf,
    ort_state.NoSuchFile,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
)
SMOKE_TEXT = "张三在北京大学读书。"
MIN_LANE_BATCH = 8  # a batch is split over the lanes only into parts at least this large
# Texts per ONNX run (_run_graph). On CLUENER dev in batches of 64 on 2 lanes (INT8, medians
# of 10-12 alternating passes): 194-205k characters/s at 64, 212k at 16, 227-241k at 8,
# 229-237k at 4, 194k at 2: less padding against more, smaller runs.
GRAPH_ROWS = 8
UNCERTAINTY_KEYS = ("mean_entropy", "max_entropy", "least_confidence", "mnlp")


class ModelNotReady(Exception):
    """No loaded model can serve the request (code E201)."""

    code = "E201"


class Entity(NamedTuple):
    start: int
    end: int  # exclusive, in code points of the original text
    label: str
    score: float  # geometric mean of the marginals of the span's tags on the Viterbi path
    text: str

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }


@dataclass(slots=True)
class TextPrediction:
    entities: list[Entity]
    uncertainty: dict[str, float]  # UNCERTAINTY_KEYS
    embedding: np.ndarray  # float32 [dim]; zeros for a blank text
    model_version: str
    tokens: int  # code points in the text
    token_entropy: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


class _Piece(NamedTuple):
    """What one batch row (a whole text or one window of a long text) produced."""

    spans: list  # (start, end, label, score) in the piece's offsets
    entropy: np.ndarray  # float32 [length]
    uncertainty: dict[str, float]  # decoding.sentence_uncertainty of this row
    log_best: float  # log P(best path)
    embedding: np.ndarray  # float32 [dim]


_EDGE_CATEGORIES = {"Cf", "So", "Sk"}  # format characters, symbols (emoji), modifiers
_VARIATION_SELECTORS = {"\ufe0e", "\ufe0f"}
# Sentence punctuation ends a clause, never a mention ("李华：" "北京，"); brackets and quotes
# stay where they open or close one (《红楼梦》, （中国）, “...”), and go at the wrong end.
_CLAUSE_PUNCTUATION = set("，。：；！？、,;:!?")
_OPENING = {"Ps", "Pi"}  # 《 （ “ ...: a mention may start with one, never end with it
_CLOSING = {"Pe", "Pf"}  # 》 ） ” ...: a mention may end with one, never start with it


def _edge(char: str, wrong_brackets: set[str]) -> bool:
    """A character no mention starts or ends with: whitespace, an invisible format character
    (zero-width joiner, BOM), a symbol or emoji (with its modifiers and variation selectors),
    clause punctuation, or a bracket or quote that belongs at the other end
    (``wrong_brackets``: the categories that do not belong at this edge).

    Geometric shapes (U+25A0-U+25FF) are kept: Chinese text writes zero as ○ ("漳州一一○",
    "二○○八年") and hides names behind □ or ■, inside mentions and at their edges."""
    if char.isspace() or char in _VARIATION_SELECTORS or char in _CLAUSE_PUNCTUATION:
        return True
    category = unicodedata.category(char)
    if category in wrong_brackets:
        return True
    return category in _EDGE_CATEGORIES and not "\u25a0" <= char <= "\u25ff"


def trimmed_entities(text: str, spans) -> list[Entity]:
    """Entities of ``(start, end, label, score)`` spans, trimmed of blanks, symbols, emoji,
    clause punctuation and misplaced brackets at their edges. A model that saw few such
    characters in training may reach over them (" 张伟", "😀李", half of a flag, "李华："); a
    mention never starts or ends with one. A span of nothing else is dropped."""
    entities = []
    for start, end, label, score in spans:
        # a letter or digit (Chinese characters too) is never an edge: asked first, it spares
        # almost every span the Unicode lookups
        while start < end and not text[start].isalnum() and _edge(text[start], _CLOSING):
            start += 1
        while end > start and not text[end - 1].isalnum() and _edge(text[end - 1], _OPENING):
            end -= 1
        if start < end:
            entities.append(Entity(start, end, label, score, text[start:end]))
    return entities


def _restored(text: str, kept: np.ndarray, prediction: TextPrediction) -> TextPrediction:
    """A prediction on the visible characters of ``text`` (``kept[i]``: where visible
    character ``i`` is in ``text``), in ``text``'s offsets. A mention keeps an invisible
    character it surrounds ("张\u200b伟"); one at its edges stays outside."""
    entropy = np.zeros(len(text), np.float32)
    entropy[kept] = prediction.token_entropy
    entities = []
    for entity in prediction.entities:
        start, end = restored_span(kept, entity.start, entity.end)
        entities.append(entity._replace(start=start, end=end, text=text[start:end]))
    prediction.entities, prediction.tokens, prediction.token_entropy = entities, len(text), entropy
    return prediction


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _setting(name: str, default):
    """A Django setting when Django is configured; the engine also runs in plain scripts."""
    from django.conf import settings

    return getattr(settings, name, default) if settings.configured else default


class ModelBundle:
    """One bundle folder loaded for serving; thread-safe once loaded."""

    def __init__(
        self,
        path: str | Path,
        int8: bool | None = None,
        threads: int | None = None,
        batch_size: int = 64,
    ):
        self.path = Path(path)
        self.int8 = bool(_setting("SERVE_INT8", True)) if int8 is None else int8
        self.threads = int(_setting("ORT_THREADS", 0)) if threads is None else threads
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        # Cores one prediction may use. Each runs whole batches (featurisation, ONNX, decoding)
        # on its own: ONNX Runtime's intra-op threads parallelise an LSTM step poorly and
        # idle during the decoding, so one session thread per lane does better (measured at
        # batch 64 on 2 cores: 204k characters/s against 143k for one batch on 2 intra-op
        # threads, and a lower one-sentence latency).
        self.lanes = self.threads if self.threads > 0 else available_cores()
        self.info: BundleInfo | None = None
        self.model_file: str | None = None
        self.embedding_dim = 0
        self.stats = {"batches": 0, "texts": 0, "characters": 0}
        self._stats_lock = threading.Lock()
        self._session: ort.InferenceSession | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        state = f"ready {self.version}" if self._ready else "not loaded"
        return f"<ModelBundle {self.path} {state}>"

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    def load(self) -> ModelBundle:
        """Verify the manifest, read the bundle, open the ONNX session and run one warm-up
        prediction. Raises BundleError when the bundle must not be served."""
        bundle_files.verify(self.path)
        info = BundleInfo.read(self.path)
        try:
            featurizer = Featurizer.from_bundle(self.path)
        except (KeyError, ValueError, OSError) as exc:
            raise BundleError(f"bundle {self.path}: features cannot be read: {exc!r}") from exc
        model = bundle_files.MODEL
        if self.int8 and (self.path / bundle_files.MODEL_INT8).is_file():
            model = bundle_files.MODEL_INT8
        options = ort.SessionOptions()
        # one thread per run; ``lanes`` runs batches side by side (the session is thread-safe)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(self.path / model), options, providers=["CPUExecutionProvider"]
            )
        except _ORT_ERRORS as exc:
            raise BundleError(f"{model} in {self.path} cannot be loaded: {exc}") from exc
        inputs = [node.name for node in session.get_inputs()]
        unknown = sorted(set(inputs) - set(featurizer.input_names))
        if unknown:
            raise BundleError(f"{model} in {self.path} needs inputs no feature provides: {unknown}")
        outputs = {node.name: node for node in session.get_outputs()}
        if not {"emissions", "embedding"} <= set(outputs):
            raise BundleError(f"{model} in {self.path} lacks the emissions/embedding outputs")
        tags = outputs["emissions"].shape[-1]
        if isinstance(tags, int) and tags != len(info.labels):
            raise BundleError(
                f"{model} emits {tags} tags; {bundle_files.LABELS} lists {len(info.labels)}"
            )

        self.info = info
        self.model_file = model
        self._featurizer = featurizer
        self._session = session
        self._input_names = inputs
        self._outputs = ["emissions", "embedding"]
        self._crf = (info.transitions, info.start, info.end)
        try:
            self._reader = PathReader(info.labels, info.scheme)
        except TagError as exc:
            raise BundleError(f"{bundle_files.LABELS} in {self.path}: {exc}") from exc
        self._max_len = info.max_len
        self._overlap = info.window_overlap
        try:
            warm = self._run_batch(session, [SMOKE_TEXT[: self._max_len]])
        except (*_ORT_ERRORS, ValueError, IndexError, KeyError) as exc:
            # e.g. emissions whose tag count does not fit the CRF, a missing feature array
            raise BundleError(f"{model} in {self.path} fails on a warm-up text: {exc}") from exc
        self.embedding_dim = int(warm[0].embedding.shape[0])
        self._ready = True
        logger.info("loaded bundle %s (%s, version %s)", self.path, model, self.version)
        return self

    def unload(self) -> None:
        """Drop the session; requests already inside ``predict`` keep their own reference.
        The lane threads end once the last request holding their pool lets it go."""
        self._ready = False
        self._session = None
        self._pool = None

    # ---- metadata -------------------------------------------------------------------------

    def _loaded_info(self) -> BundleInfo:
        if self.info is None:
            raise ModelNotReady(f"bundle {self.path} is not loaded")
        return self.info

    @property
    def version(self) -> str:
        return self._loaded_info().version

    @property
    def labels(self) -> list[str]:
        return list(self._loaded_info().labels)

    @property
    def entity_types(self) -> list[str]:
        return self._loaded_info().entity_types

    @property
    def max_len(self) -> int:
        return self._loaded_info().max_len

    # ---- prediction -----------------------------------------------------------------------

    def predict(self, texts: Sequence[str]) -> list[TextPrediction]:
        """Entities, uncertainty and embedding for every text, in the order given.

        The model reads each text without its invisible characters (``features.INVISIBLE``);
        offsets, entity texts and token entropies are the original text's."""
        shown = [visible(text) if isinstance(text, str) else (text, None) for text in texts]
        results = self._predict_visible([text for text, _ in shown])
        for index, (_, kept) in enumerate(shown):
            if kept is not None:
                results[index] = _restored(texts[index], kept, results[index])
        return results

    def _predict_visible(self, texts: Sequence[str]) -> list[TextPrediction]:
        session = self._session
        if not self._ready or session is None:
            raise ModelNotReady(f"bundle {self.path} is not loaded")
        results: list[TextPrediction | None] = [None] * len(texts)
        piece_texts: list[str] = []
        owners: list[int] = []  # text index of each piece
        long_windows: dict[int, list] = {}
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is {type(text).__name__}, not str")
            if not text or text.isspace():
                results[index] = self._blank(text)
            elif len(text) <= self._max_len and not has_line_break(text):
                piece_texts.append(text)
                owners.append(index)
            else:
                windows = split_windows(text, self._max_len, self._overlap)
                long_windows[index] = windows
                for window in windows:
                    piece_texts.append(text[window.start : window.end])
                    owners.append(index)

        pieces: list[_Piece | None] = [None] * len(piece_texts)
        chunks = self._chunks(sorted(range(len(piece_texts)), key=lambda k: len(piece_texts[k])))

        def run(chunk: list[int]) -> list[_Piece]:
            return self._run_batch(session, [piece_texts[k] for k in chunk])

        done = map(run, chunks) if len(chunks) <= 1 else self._lane_pool().map(run, chunks)
        for chunk, batch_pieces in zip(chunks, done, strict=True):
            for k, piece in zip(chunk, batch_pieces, strict=True):
                pieces[k] = piece

        version = self.version
        grouped: dict[int, list[_Piece]] = {}
        for k, index in enumerate(owners):
            if index in long_windows:
                grouped.setdefault(index, []).append(pieces[k])
            else:
                results[index] = self._single(texts[index], pieces[k], version)
        for index, windows in long_windows.items():
            results[index] = self._merged(texts[index], windows, grouped[index], version)
        with self._stats_lock:
            self.stats["texts"] += len(texts)
        return results

    def _chunks(self, order: list[int]) -> list[list[int]]:
        """Batches of at most ``batch_size`` pieces, in length order. A single batch is dealt
        out to the lanes (every lane-th piece, so each part spans the same lengths) once
        each part keeps at least MIN_LANE_BATCH pieces."""
        if len(order) > self.batch_size:
            return [
                order[lo : lo + self.batch_size] for lo in range(0, len(order), self.batch_size)
            ]
        parts = min(self.lanes, len(order) // MIN_LANE_BATCH)
        if parts > 1:
            return [order[k::parts] for k in range(parts)]
        return [order] if order else []

    def _lane_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="nerloop-lane")
            return self._pool

    def _run_batch(self, session: ort.InferenceSession, texts: list[str]) -> list[_Piece]:
        """ONNX on one batch of non-empty texts no longer than max_len, decoded at once.

        The session is passed in, not read from ``self``: a request that started before
        ``unload`` finishes on the session it began with.
        """
        feed = self._featurizer.encode(texts)
        emissions, embeddings = self._run_graph(session, feed)
        lengths = feed["lengths"]
        decoded = decode(emissions, lengths, *self._crf)
        spans = self._spans(decoded.paths, lengths, decoded.path_probs)
        measures = sentence_uncertainty(
            decoded.entropy, lengths, decoded.best_scores, decoded.log_z
        )
        uncertainty = [
            dict(zip(UNCERTAINTY_KEYS, values, strict=True))
            for values in zip(*(measures[key].tolist() for key in UNCERTAINTY_KEYS), strict=True)
        ]
        log_best = (measures["mnlp"] * lengths).tolist()
        entropy = decoded.entropy.astype(np.float32)
        with self._stats_lock:
            self.stats["batches"] += 1
            self.stats["characters"] += int(lengths.sum())
        return [
            _Piece(
                spans[row],
                entropy[row, :length],
                uncertainty[row],
                log_best[row],
                embeddings[row].copy(),
            )
            for row, length in enumerate(lengths.tolist())
        ]

    def _run_graph(self, session: ort.InferenceSession, feed: dict) -> tuple:
        """Emissions and embeddings of a featurised batch. The graph runs on groups of
        GRAPH_ROWS texts of similar length, each padded only to its own longest: the LSTM
        computes every padded step, and a batch of 32 texts padded to the longest cost a
        third more steps than it has characters."""
        lengths = feed["lengths"]
        if len(lengths) <= GRAPH_ROWS:
            return session.run(self._outputs, {name: feed[name] for name in self._input_names})
        order = np.argsort(lengths, kind="stable")
        # a lane's batch comes sorted by length: slices then copy less than index lists
        in_order = bool((order[1:] > order[:-1]).all())
        emissions = embeddings = None
        for lo in range(0, len(order), GRAPH_ROWS):
            rows = slice(lo, lo + GRAPH_ROWS) if in_order else order[lo : lo + GRAPH_ROWS]
            width = int(lengths[rows].max())
            part = {
                name: feed[name][rows] if name == "lengths" else feed[name][rows, :width]
                for name in self._input_names
            }
            part_emissions, part_embeddings = session.run(self._outputs, part)
            if emissions is None:
                emissions = np.empty(  # past each text's length: never read
                    (len(lengths), feed["chars"].shape[1], part_emissions.shape[2]),
                    part_emissions.dtype,
                )
                embeddings = np.empty(
                    (len(lengths), part_embeddings.shape[1]), part_embeddings.dtype
                )
            emissions[rows, :width] = part_emissions
            embeddings[rows] = part_embeddings
        return emissions, embeddings

    def _spans(self, paths: np.ndarray, lengths: np.ndarray, path_probs: np.ndarray) -> list:
        """Tag paths -> per-row ``(start, end, label, score)`` lists."""
        rows, starts, ends, labels = self._reader.read(paths, lengths)
        per_row: list[list] = [[] for _ in range(len(paths))]
        if rows:
            scores = span_confidence(path_probs, rows, starts, ends).tolist()
            for row, start, end, label, score in zip(
                rows, starts, ends, labels, scores, strict=True
            ):
                per_row[row].append((start, end, label, score))
        return per_row

    # ---- assembling one text's result -----------------------------------------------------

    def _blank(self, text: str) -> TextPrediction:
        return TextPrediction(
            entities=[],
            uncertainty=dict.fromkeys(UNCERTAINTY_KEYS, 0.0),
            embedding=np.zeros(self.embedding_dim, np.float32),
            model_version=self.version,
            tokens=len(text),
            token_entropy=np.zeros(len(text), np.float32),
        )

    def _single(self, text: str, piece: _Piece, version: str) -> TextPrediction:
        entities = trimmed_entities(text, piece.spans)
        return TextPrediction(
            entities,
            piece.uncertainty,
            piece.embedding,
            version,
            len(text),
            piece.entropy,
        )

    def _merged(self, text: str, windows, pieces: list[_Piece], version: str) -> TextPrediction:
        """One result from a long text's windows.

        Spans: ``windows.merge_spans``. Token entropy: each character from the window that
        owns it (``owned_ranges``). Sentence log P(best path): each window's, weighted by the
        share of the window it owns, so overlaps are not counted twice (an approximation; the
        windows are decoded independently). Embedding: windows' embeddings weighted the same way.
        """
        spans = merge_spans(windows, [piece.spans for piece in pieces], len(text))
        entities = trimmed_entities(text, spans)
        ranges = owned_ranges(windows)
        entropy = np.concatenate(
            [
                piece.entropy[lo - window.start : hi - window.start]
                for piece, window, (lo, hi) in zip(pieces, windows, ranges, strict=True)
            ]
        )
        owned = np.array([hi - lo for lo, hi in ranges], dtype=np.float64)
        sizes = np.array([window.end - window.start for window in windows], dtype=np.float64)
        log_best = float(np.dot([piece.log_best for piece in pieces], owned / sizes))
        embedding = np.stack([piece.embedding for piece in pieces]).T @ (owned / owned.sum())
        return TextPrediction(
            entities,
            {  # the definitions of decoding.sentence_uncertainty, over the whole text
                "mean_entropy": float(entropy.mean()),
                "max_entropy": float(entropy.max()),
                "least_confidence": -math.expm1(log_best),
                "mnlp": log_best / len(text),
            },
            embedding.astype(np.float32),
            version,
            len(text),
            entropy,
        )
