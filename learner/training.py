"""Training a tagger from annotated examples: fixed seeds, length-bucketed batches, Adam,
gradient clipping, per-epoch dev F1, early stopping that keeps the best weights, an optional
time budget, and warm start from an earlier model (active learning retrains from the active
model when its label set is the same).

Tags are BIOES inside training only; everything that comes in or goes out is spans.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from annotation.spans import Example, Span
from annotation.tags import spans_to_tags, tags_to_spans
from inference.engine import trimmed_entities
from inference.features import (
    MAX_WORD_LEN,
    Featurizer,
    Lexicon,
    codepoints,
    normalize,
    normalize_text,
    restored_span,
    visible,
)

from .evaluation import evaluate
from .nets import Tagger, build_model, hf_model_from_checkpoint

WEIGHTS_FILE = "model.pt"


@dataclass
class FeatureOptions:
    bigrams: bool = True
    min_char_count: int = 1
    min_bigram_count: int = 1
    lexicon: str | None = "jieba"  # "jieba", a file of word<TAB>type lines, or None
    lexicon_typed: bool = True
    lexicon_rare_below: int = 0  # jieba frequency under which a word's type gets "_rare"
    # entity mentions of the training data as a gazetteer typed by label; while training, each
    # of ``gazetteer_folds`` parts is flagged with the mentions of the other parts only, so
    # the model learns how far a mention seen elsewhere can be trusted on new text
    gazetteer: bool = True
    gazetteer_folds: int = 5
    word_min: int = 2
    word_max: int = 6
    max_len: int = 256


@dataclass
class TrainOptions:
    epochs: int = 30
    batch_size: int = 32
    lr: float | None = None  # None: default_lr(arch)
    lr_decay: float = 1.0  # multiplies the learning rate after every epoch
    weight_decay: float = 0.0
    clip: float = 5.0
    patience: int = 5
    time_budget: float | None = None  # seconds of training, evaluation included
    seed: int = 13
    threads: int | None = None
    # share of training characters/bigrams replaced by <unk>: trains the <unk> embeddings that
    # unseen text (a new corpus, a new domain) relies on
    unk_rate: float = 0.05
    ema: float = 0.999  # decay of an exponential moving average of the weights (0: off)
    hparams: dict = field(default_factory=dict)
    features: FeatureOptions = field(default_factory=FeatureOptions)
    init_from: str | None = None  # a Hugging Face checkpoint folder, or a saved nerloop model
    progress: bool = True
    eval_batch_size: int = 128


DEFAULT_LR = {"bilstm_crf": 2e-3, "transformer_crf": 5e-4, "hf_crf": 5e-5}


def default_lr(arch: str) -> float:
    return DEFAULT_LR.get(arch, 1e-3)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def label_tags(labels: Sequence[str]) -> list[str]:
    """The BIOES tag list in index order: O, then B/I/E/S of each label, labels sorted."""
    tags = ["O"]
    for label in sorted(set(labels)):
        tags += [f"{p}-{label}" for p in "BIES"]
    return tags


def labels_of(tags: Sequence[str]) -> list[str]:
    return sorted({t.split("-", 1)[1] for t in tags if t != "O"})


@functools.lru_cache(maxsize=4)
def _cached_lexicon(
    source: str, typed: bool, word_min: int, word_max: int, rare_below: int = 0
) -> Lexicon:
    if source == "jieba":
        return Lexicon.from_jieba(
            min_len=word_min, max_len=word_max, typed=typed, rare_below=rare_below
        )
    entries = []
    for line in Path(source).read_text("utf-8").splitlines():
        word, _, kind = line.partition("\t")
        if word_min <= len(word) <= word_max:
            entries.append((word, kind or "other"))
    return Lexicon(entries, typed=typed)


def entity_gazetteer(examples: Sequence[Example], labels: Sequence[str]) -> Lexicon:
    """Mentions of 2 to MAX_WORD_LEN characters, typed by their labels (one name may carry
    several labels)."""
    entries = [
        (ex.text[s.start : s.end], s.label)
        for ex in examples
        for s in ex.spans
        if 2 <= s.end - s.start <= MAX_WORD_LEN
    ]
    return Lexicon(entries, typed=True, types=sorted(labels))


def fold_flags(
    examples: Sequence[Example], labels: Sequence[str], folds: int, seed: int
) -> list[np.ndarray]:
    """Per example, bool ``[length, dim]`` gazetteer flags from the mentions of the other
    folds (out-of-fold, as new text sees the gazetteer)."""
    assignment = np.random.default_rng(seed).permutation(len(examples)) % max(folds, 2)
    out: list[np.ndarray] = [np.zeros(0)] * len(examples)
    for fold in range(max(folds, 2)):
        inside = np.nonzero(assignment == fold)[0]
        if not len(inside):
            continue
        others = [ex for ex, k in zip(examples, assignment, strict=True) if k != fold]
        lexicon = entity_gazetteer(others, labels)
        texts = [examples[i].text for i in inside]
        lengths = np.array([len(t) for t in texts], dtype=np.int64)
        cps = normalize(codepoints("".join(texts)))
        flags = lexicon.flags(cps, np.repeat(np.arange(len(texts)), lengths)).astype(bool)
        for i, part in zip(inside, np.split(flags, np.cumsum(lengths)[:-1]), strict=True):
            out[i] = part
    return out


def make_featurizer(
    texts: Sequence[str],
    options: FeatureOptions,
    base: Featurizer | None = None,
    gazetteer: Lexicon | None = None,
) -> Featurizer:
    lexicon = None
    if options.lexicon and base is None:
        lexicon = _cached_lexicon(
            options.lexicon,
            options.lexicon_typed,
            options.word_min,
            options.word_max,
            options.lexicon_rare_below,
        )
    return Featurizer.build(
        texts,
        min_char_count=options.min_char_count,
        min_bigram_count=options.min_bigram_count,
        bigrams=options.bigrams,
        lexicon=lexicon,
        max_len=options.max_len,
        base=base,
        gazetteer=gazetteer,
    )


def hf_featurizer(path: str, max_len: int) -> Featurizer:
    """Characters are the checkpoint's single-character tokens: no bigrams, no lexicon."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    chars = ["<pad>", "<unk>"]
    seen = set(chars)
    for token in sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get):
        if len(token) == 1:
            norm = normalize_text(token)
            if norm not in seen:
                seen.add(norm)
                chars.append(norm)
    return Featurizer(chars, None, None, max_len=max_len)


def is_hf_checkpoint(path: str | os.PathLike) -> bool:
    config = Path(path) / "config.json"
    if not config.is_file() or (Path(path) / WEIGHTS_FILE).exists():
        return False
    return "model_type" in json.loads(config.read_text("utf-8"))


class TrainedModel:
    """A torch tagger with its featurizer: predicts spans, saves and loads (``model.pt`` plus
    the featurizer's files, so a bundle folder can also hold the weights for warm starts)."""

    def __init__(self, model: Tagger, featurizer: Featurizer, history: list | None = None):
        self.model = model
        self.featurizer = featurizer
        self.history = history or []
        self.summary: dict = {}

    @property
    def tags(self) -> list[str]:
        return self.model.tags

    @property
    def arch(self) -> str:
        return self.model.arch

    def tensors(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in self.featurizer.encode(texts).items()}

    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 128) -> list[list[Span]]:
        """Spans per text: torch eager emissions and the torch Viterbi, on the text without
        its invisible characters and trimmed as the serving engine trims them
        (``inference.engine``), so that both mean the same by an entity."""
        self.model.eval()
        shown = [visible(text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(shown[i][0]))
        out: list[list[Span]] = [[] for _ in texts]
        for lo in range(0, len(order), batch_size):
            chunk = order[lo : lo + batch_size]
            paths = self.model.decode(self.tensors([shown[i][0] for i in chunk]))
            for i, path in zip(chunk, paths, strict=True):
                spans = tags_to_spans([self.tags[t] for t in path], "bioes", strict=False)
                trimmed = trimmed_entities(shown[i][0], [(*span, 1.0) for span in spans])
                kept = shown[i][1]
                out[i] = [
                    Span(e.start, e.end, e.label)
                    if kept is None
                    else Span(*restored_span(kept, e.start, e.end), e.label)
                    for e in trimmed
                ]
        return out

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.featurizer.save(folder)
        state = {"describe": self.model.describe(), "state_dict": self.model.state_dict()}
        torch.save(state, folder / WEIGHTS_FILE)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainedModel:
        folder = Path(folder)
        state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        describe = state["describe"]
        if describe["arch"] == "bilstm_crf":  # saved before these options: it had no such heads
            describe["hparams"].setdefault("lm_weight", 0.0)
            describe["hparams"].setdefault("lm_vocab", describe["sizes"]["chars"])
        model = build_model(**describe)
        model.load_state_dict(state["state_dict"])
        model.eval()
        return cls(model, Featurizer.from_bundle(folder))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: sort inside pools of 50 batches, shuffle batches."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for lo in range(0, len(order), pool):
        chunk = order[lo : lo + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class WeightAverage:
    """Exponential moving average of the weights; dev scoring and the kept model use it.
    Averaged weights generalise a little better and make the dev curve less jumpy."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.steps = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                self.shadow[name].mul_(decay).add_(value, alpha=1 - decay)
            else:
                self.shadow[name].copy_(value)

    def apply(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.shadow)


def _warm_start(model: Tagger, source: TrainedModel) -> None:
    """Copy every weight of ``source`` whose shape fits; tables indexed by a vocabulary that
    grew (embeddings, language-model heads) keep the old rows (the featurizer was extended
    with ``base=``, so old indexes are unchanged)."""
    own = model.state_dict()
    for name, value in source.model.state_dict().items():
        if name not in own:
            continue
        target = own[name]
        if target.shape == value.shape:
            own[name] = value.clone()
        elif target.dim() == value.dim() and target.shape[1:] == value.shape[1:]:
            rows = min(target.shape[0], value.shape[0])
            target = target.clone()
            target[:rows] = value[:rows]
            own[name] = target
    model.load_state_dict(own)


def warm_start_fits(
    model: TrainedModel, train_examples: Sequence[Example], arch: str, labels=()
) -> bool:
    """Whether ``model`` can be trained further on these examples: the same architecture and
    the same tag set (the schema's labels and every label the examples use)."""
    seen = {s.label for ex in train_examples for s in ex.spans}
    return model.arch == arch and model.tags == label_tags(sorted(seen | set(labels or ())))


def visible_example(example: Example) -> Example:
    """The example as a model reads it: without invisible characters
    (``inference.features.INVISIBLE``), its spans moved with the text; a span of nothing
    else is dropped."""
    text, kept = visible(example.text)
    if kept is None:
        return example
    # the new offset of each old one: how many kept characters come before it
    before = np.searchsorted(kept, np.arange(len(example.text) + 1)).tolist()
    spans = [
        Span(before[s], before[e], label) for s, e, label in example.spans if before[e] > before[s]
    ]
    return Example(text, spans, example.meta)


def train(
    train_examples: Sequence[Example],
    dev_examples: Sequence[Example],
    arch: str = "bilstm_crf",
    options: TrainOptions | None = None,
    warm_start: TrainedModel | None = None,
    log: Callable[[str], None] | None = print,
    labels: Sequence[str] | None = None,
) -> TrainedModel:
    """Train, keep the weights of the best dev-F1 epoch, return them with the history.

    ``labels`` fixes the entity types (a project's schema): a small active-learning batch may
    not show every type yet, and the tag set must stay the same for warm starts."""
    options = options or TrainOptions()
    say = log or (lambda message: None)
    train_examples = [visible_example(ex) for ex in train_examples]
    dev_examples = [visible_example(ex) for ex in dev_examples]
    _seed_everything(options.seed)
    torch.set_num_threads(min(available_cores(), options.threads or available_cores()))
    started = time.monotonic()

    seen = {s.label for ex in train_examples for s in ex.spans}
    labels = sorted(seen | set(labels or ()))
    tags = label_tags(labels)
    texts = [ex.text for ex in train_examples]
    if options.init_from and is_hf_checkpoint(options.init_from):
        arch = "hf_crf"
        featurizer = hf_featurizer(options.init_from, options.features.max_len)
        model: Tagger = hf_model_from_checkpoint(options.init_from, tags, featurizer.chars)
    else:
        if options.init_from:
            warm_start = TrainedModel.load(options.init_from)
        if warm_start is not None and not warm_start_fits(warm_start, train_examples, arch, labels):
            say("warm start skipped: the label set or architecture differs from the old model's")
            warm_start = None
        base = warm_start.featurizer if warm_start is not None else None
        gazetteer = None
        if options.features.gazetteer:
            gazetteer = entity_gazetteer(train_examples, labels)
            if base is not None and base.gazetteer is None:
                gazetteer = None  # the old model has no gazetteer input to extend
        featurizer = make_featurizer(texts, options.features, base=base, gazetteer=gazetteer)
        sizes = {
            "chars": len(featurizer.chars),
            "bigrams": len(featurizer.bigrams) if featurizer.bigrams is not None else 0,
            "lexicon_dim": featurizer.lexicon_dim,
        }
        hparams = dict(warm_start.model.hparams) if warm_start else {}
        hparams.update(options.hparams)
        model = build_model(arch, tags, sizes, hparams)
        if warm_start is not None:
            _warm_start(model, warm_start)
            say(f"warm start from the previous {arch} model")

    tag_index = {t: i for i, t in enumerate(tags)}
    gold_ids = [
        np.array([tag_index[t] for t in spans_to_tags(len(ex.text), ex.spans, "bioes")])
        for ex in train_examples
    ]
    lengths = np.array([len(t) for t in texts])
    trained = TrainedModel(model, featurizer)
    out_of_fold = None
    if featurizer.gazetteer is not None:
        out_of_fold = fold_flags(
            train_examples,
            featurizer.gazetteer.types,
            options.features.gazetteer_folds,
            options.seed,
        )
        gazetteer_from = featurizer.lexicon_dim - featurizer.gazetteer.dim
    lr = options.lr or default_lr(arch)
    # fused: one pass over each tensor per step instead of one per operation; with a bigram
    # table of 100,000 rows the plain update was half of a training step's time
    optimizer = torch.optim.Adam(
        model.parameters(), lr=lr, weight_decay=options.weight_decay, fused=True
    )
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=options.lr_decay)
    rng = np.random.default_rng(options.seed)
    best_f1, best_state, best_epoch, stale = -1.0, None, 0, 0
    history: list[dict] = []
    dev_texts = [ex.text for ex in dev_examples]
    dev_gold = [ex.spans for ex in dev_examples]
    out_of_time = False
    averager = WeightAverage(model, options.ema) if options.ema else None

    for epoch in range(1, options.epochs + 1):
        model.train()
        epoch_start = time.monotonic()
        total_loss, seen = 0.0, 0
        batches = _batches(lengths, options.batch_size, rng)
        # disable=None: no bar when stderr is not a terminal (a log file got thousands of \r
        # frames); the per-epoch lines still come
        bar = tqdm(
            batches, desc=f"epoch {epoch}", disable=None if options.progress else True, leave=False
        )
        for batch in bar:
            inputs = trained.tensors([texts[i] for i in batch])
            if out_of_fold is not None:
                for row, i in enumerate(batch):
                    flags = torch.from_numpy(out_of_fold[i])
                    inputs["lexicon"][row, : lengths[i], gazetteer_from:] = flags
            if options.unk_rate > 0:
                for key in ("chars", "bigrams"):
                    if key in inputs:
                        drop = torch.rand(inputs[key].shape) < options.unk_rate
                        inputs[key] = inputs[key].masked_fill(drop & (inputs[key] > 0), 1)
            width = inputs["chars"].shape[1]
            gold = torch.zeros(len(batch), width, dtype=torch.long)
            for row, i in enumerate(batch):
                gold[row, : lengths[i]] = torch.from_numpy(gold_ids[i])
            loss = model.loss(inputs, gold)
            optimizer.zero_grad()
            loss.backward()
            if options.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip)
            optimizer.step()
            if averager is not None:
                averager.update(model)
            total_loss += loss.item() * len(batch)
            seen += len(batch)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
            if options.time_budget and time.monotonic() - started > options.time_budget:
                out_of_time = True
                break
        scheduler.step()
        train_seconds = time.monotonic() - epoch_start
        if averager is not None:
            live = copy.deepcopy(model.state_dict())
            averager.apply(model)
        scores = evaluate(dev_gold, trained.predict(dev_texts, options.eval_batch_size))
        record = {
            "epoch": epoch,
            "loss": total_loss / max(seen, 1),
            "dev_f1": scores["f1"],
            "dev_precision": scores["precision"],
            "dev_recall": scores["recall"],
            "epoch_seconds": train_seconds,
            "elapsed": time.monotonic() - started,
            "partial": out_of_time,
        }
        history.append(record)
        # while no entity has been found at all, the latest epoch is the best so far (the
        # first one, kept on a tie, predicted nothing: a retrain chose it at F1 0)
        improved = scores["f1"] > best_f1 or scores["f1"] == best_f1 == 0
        if improved:
            best_f1, best_epoch, stale = scores["f1"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if averager is not None:
            model.load_state_dict(live)
        say(
            f"epoch {epoch:3d}  loss {record['loss']:.4f}  dev P {scores['precision']:.4f} "
            f"R {scores['recall']:.4f} F1 {scores['f1']:.4f}  "
            f"{train_seconds:.1f}s{'  *' if improved else ''}"
        )
        if out_of_time:
            say(f"time budget of {options.time_budget:.0f}s reached")
            break
        if options.patience and stale >= options.patience:
            epochs = "epoch" if options.patience == 1 else "epochs"
            say(f"early stop: no dev F1 gain for {options.patience} {epochs}")
            break
        if options.time_budget:
            elapsed = time.monotonic() - started
            if elapsed + (elapsed / epoch) > options.time_budget * 1.05:
                say(f"time budget of {options.time_budget:.0f}s: no room for another epoch")
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    trained.history = history
    trained.summary = {
        "arch": arch,
        "best_epoch": best_epoch,
        "epochs": len(history),
        "dev_f1": best_f1,
        "train_seconds": time.monotonic() - started,
        "options": asdict(options),
        "train_sentences": len(train_examples),
        "train_chars": sum(len(ex.text) for ex in train_examples),
    }
    return trained
