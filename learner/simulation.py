"""Active-learning simulation: does the loop learn faster than labelling at random?

An oracle answers with the gold spans. Each (strategy, repeat) curve starts from a seed set
chosen the way the platform chooses one without a model (cold start), then runs rounds of
select -> label -> retrain -> evaluate. Rounds warm-start from the previous round's model and
fine-tune on the new batch mixed with replayed old labels, stopping early, as the platform's
retraining does, instead of training from scratch each time. Selection goes through the
very same strategy functions as the platform (``learner.selection``), fed with uncertainty
computed by the serving decoder (``inference.decoding``) from the torch model's emissions.

Labels are counted in characters as well as sentences: uncertainty sampling favours long
sentences, and counting sentences would flatter it.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from annotation.spans import Example
from inference.features import visible

from . import selection
from .evaluation import evaluate
from .incremental import MIN_EPOCH_SENTENCES, oversample, replay_mix

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)


# Named corpora of the shared datasets folder: (train file as the pool, evaluation file).
CORPORA = {
    "cluener": ("cluener2020/train.json", "cluener2020/dev.json"),
    "resume": ("resume/train.char.bmes", "resume/test.char.bmes"),
    "msra": ("msra/dev.bio", "msra/test.bio"),
}
TARGET_SHARE = 0.10  # "at 10% of the characters ..."
TARGET_FRACTION = 0.95  # "... reaches 95% of the full-pool F1 ..."
TARGET_BUDGET = 0.30  # "... with at most 30% of the characters"


@dataclass
class Corpus:
    """``pool``: what the oracle may label; ``stop``: labelled sentences held out of the pool
    that early stopping scores (what a project's eval split is to the platform); ``eval``: the
    corpus's evaluation set, which only the reported F1 sees."""

    name: str
    pool: list[Example]
    eval: list[Example]
    labels: list[str]
    stop: list[Example] = field(default_factory=list)

    @property
    def pool_chars(self) -> int:
        return sum(len(ex.text) for ex in self.pool)


def load_corpus(
    name: str,
    train_path: str | Path,
    eval_path: str | Path,
    stop_sentences: int = 500,
    strict: bool = True,
) -> Corpus:
    """Pool, stopping and evaluation examples; empty texts are dropped (nothing to label).

    ``stop_sentences`` random sentences of the training file (at most a fifth of it, always
    the same ones) are held out of the pool for early stopping, so that choosing the epoch
    never looks at the evaluation set the reported F1 comes from."""
    from annotation.formats import read_file

    pool = [ex for ex in read_file(train_path, strict=strict) if ex.text]
    held_out = [ex for ex in read_file(eval_path, strict=strict) if ex.text]
    if not pool or not held_out:
        raise ValueError(f"{name}: the pool and the evaluation set must both have sentences")
    labels = sorted({s.label for ex in pool + held_out for s in ex.spans})
    size = min(stop_sentences, len(pool) // 5)
    picked = set(np.random.default_rng(12345).choice(len(pool), size=size, replace=False).tolist())
    stop = [ex for i, ex in enumerate(pool) if i in picked]
    pool = [ex for i, ex in enumerate(pool) if i not in picked]
    return Corpus(name, pool, held_out, labels, stop)


@dataclass
class SimulationOptions:
    strategies: list[str] = field(default_factory=lambda: ["random", "entropy_kmeans"])
    unit: str = "characters"
    seed_size: str = "2%"
    # small batches while the model is weak (it re-ranks the pool after every 2%), then 10%;
    # the last one repeats
    batch_sizes: list[str] = field(default_factory=lambda: ["2%", "2%", "2%", "2%", "10%"])
    rounds: int = 6  # points at 2, 4, 6, 8, 10, 20 and 30% with the defaults
    repeats: int = 1
    seed: int = 0
    arch: str = "bilstm_crf"
    new_share: float = 0.15  # at most this share of an incremental round's data is new
    min_epoch_sentences: int = MIN_EPOCH_SENTENCES  # small sets repeat up to this per epoch
    stop_sentences: int = 500  # pool sentences held out for early stopping (load_corpus)
    # a seed set of 2% still improved at epoch 20 (patience 3), and warm rounds stopped at
    # 8 epochs while improving: both caps cost F1 at every point, random's and the strategies'
    first_epochs: int = 40
    first_patience: int = 5
    epochs: int = 15
    patience: int = 3
    lr: float | None = None  # None: the architecture's default
    time_budget: float | None = None  # seconds per training run
    full_pool: bool = True
    full_epochs: int = 30
    full_patience: int = 4
    full_time_budget: float | None = 1200.0
    # torch threads per training process. One: on a shared 2-core machine an OpenMP pool of
    # two spinning threads made an epoch 15x slower here; use --jobs to fill the cores.
    threads: int = 1
    hparams: dict = field(default_factory=dict)  # the network's settings (nerloop train's)

    def __post_init__(self):
        unknown = [s for s in self.strategies if s not in selection.STRATEGIES]
        if unknown:
            raise ValueError(
                f"unknown strategies {unknown}; known: {', '.join(sorted(selection.STRATEGIES))}"
            )
        if self.unit not in selection.UNITS:
            raise ValueError(f"unit must be one of {selection.UNITS}")
        if not 0 < self.new_share <= 1:
            raise ValueError("new_share must be in (0, 1]")
        for amount in [self.seed_size, *self.batch_sizes]:
            parse_amount(amount)
        if self.hparams:
            from .nets import check_hparams

            check_hparams(self.arch, self.hparams)
        for name in ("repeats", "threads", "first_epochs", "epochs", "full_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("rounds", "first_patience", "patience", "full_patience", "stop_sentences"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def parse_amount(text: str) -> tuple[float, bool]:
    """'500' -> (500, False); '2.5%' -> (0.025, True)."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            value, share = float(raw[:-1]) / 100, True
        else:
            value, share = float(raw), False
    except ValueError:
        raise ValueError(f"amount {text!r} is neither a number nor a percentage") from None
    if value <= 0 or (share and value > 1):
        raise ValueError(f"amount {text!r} is out of range")
    return value, share


def resolve_amount(text: str, unit: str, lengths: np.ndarray) -> int:
    value, share = parse_amount(text)
    total = int(lengths.sum()) if unit == "characters" else len(lengths)
    return max(1, round(value * total) if share else int(value))


# ---- model-side helpers (torch is imported only inside these) -------------------------------


def score_pool(model, texts: Sequence[str], batch_size: int = 256):
    """Uncertainty arrays (higher = less sure) and sentence embeddings for ``texts``: the
    torch model's emissions decoded by the serving decoder, so the numbers are the engine's."""
    import torch

    from inference import decoding

    net = model.model
    net.eval()
    trans, start, end = (t.detach().double().numpy() for t in net.crf.scores())
    max_len = model.featurizer.max_len
    clipped = [visible(t)[0][:max_len] for t in texts]
    order = np.argsort([len(t) for t in clipped], kind="stable")
    scores = {key: np.zeros(len(texts)) for key in selection.UNCERTAINTY_KEYS}
    embeddings: np.ndarray | None = None
    with torch.no_grad():
        for lo in range(0, len(order), batch_size):
            chunk = order[lo : lo + batch_size]
            inputs = model.tensors([clipped[i] for i in chunk])
            emissions, embedding = net(**inputs)
            lengths = inputs["lengths"].numpy()
            decoded = decoding.decode(emissions.numpy(), lengths, trans, start, end)
            measures = decoding.sentence_uncertainty(
                decoded.entropy, lengths, decoded.best_scores, decoded.log_z
            )
            for key, values in measures.items():
                scores[key][chunk] = -values if key == "mnlp" else values
            if embeddings is None:
                embeddings = np.zeros((len(texts), embedding.shape[1]), dtype=np.float32)
            embeddings[chunk] = embedding.numpy()
    return scores, embeddings


def _train(
    corpus: Corpus, examples, options: SimulationOptions, seed: int, warm=None, full=False
) -> tuple:
    from .training import TrainOptions, train

    if full:
        epochs, patience = options.full_epochs, options.full_patience
        budget = options.full_time_budget
    elif warm is None:
        epochs, patience, budget = options.first_epochs, options.first_patience, options.time_budget
    else:
        epochs, patience, budget = options.epochs, options.patience, options.time_budget
    train_options = TrainOptions(
        epochs=epochs,
        patience=patience,
        lr=options.lr,
        seed=seed,
        threads=options.threads,
        time_budget=budget,
        progress=False,
        hparams=options.hparams,
    )
    started = time.monotonic()
    model = train(
        oversample(examples, options.min_epoch_sentences),
        stopping_set(corpus),
        options.arch,
        train_options,
        warm,
        log=None,
        labels=corpus.labels,
    )
    return model, time.monotonic() - started


def stopping_set(corpus: Corpus) -> list[Example]:
    """What early stopping scores: the sentences held out of the pool (never the evaluation
    set); with none held out (``--stop-sentences 0``) it is the evaluation set."""
    return corpus.stop or corpus.eval


def _evaluate(corpus: Corpus, model) -> dict:
    predicted = model.predict([ex.text for ex in corpus.eval])
    return evaluate([ex.spans for ex in corpus.eval], predicted)


# ---- the loop ------------------------------------------------------------------------------


def run_curve(
    corpus: Corpus, strategy: str, repeat: int, options: SimulationOptions, log: Log = _print
) -> list[dict]:
    """One learning curve: seed set, then ``options.rounds`` select/label/retrain rounds."""
    seed = options.seed + repeat
    rng = np.random.default_rng(seed)
    lengths = np.array([len(ex.text) for ex in corpus.pool])
    total_chars, total_sentences = int(lengths.sum()), len(lengths)
    texts = [ex.text for ex in corpus.pool]
    labelled = np.zeros(len(corpus.pool), dtype=bool)
    rows: list[dict] = []
    model = None
    for round_index in range(options.rounds + 1):
        unlabelled = np.flatnonzero(~labelled)
        if len(unlabelled) == 0:
            break
        size = options.seed_size if round_index == 0 else _batch_size(options, round_index)
        budget = selection.Budget(resolve_amount(size, options.unit, lengths), options.unit)
        started = time.monotonic()
        pool = selection.Pool(
            ids=unlabelled,
            lengths=lengths[unlabelled],
            texts=[texts[i] for i in unlabelled],
        )
        if model is not None and strategy != "random":
            pool.uncertainty, pool.embeddings = score_pool(model, pool.texts)
        score_seconds = time.monotonic() - started
        chosen = selection.select(strategy, pool, budget, seed=int(rng.integers(2**31 - 1)))
        select_seconds = time.monotonic() - started - score_seconds
        labelled[chosen] = True
        if model is None:
            batch = [corpus.pool[i] for i in np.flatnonzero(labelled)]
        else:
            new = set(chosen.tolist())
            old = [i for i in np.flatnonzero(labelled).tolist() if i not in new]
            batch = replay_mix(corpus.pool, sorted(new), old, options.new_share, rng)
        model, train_seconds = _train(corpus, batch, options, seed, warm=model)
        scores = _evaluate(corpus, model)
        row = {
            "corpus": corpus.name,
            "strategy": strategy,
            "repeat": repeat,
            "round": round_index,
            "sentences": int(labelled.sum()),
            "characters": int(lengths[labelled].sum()),
            "sentence_share": float(labelled.sum() / total_sentences),
            "char_share": float(lengths[labelled].sum() / total_chars),
            "batch_sentences": len(chosen),
            "batch_characters": int(lengths[chosen].sum()),
            "trained_on": len(batch),
            "f1": scores["f1"],
            "precision": scores["precision"],
            "recall": scores["recall"],
            "per_type_f1": {k: v["f1"] for k, v in scores["per_type"].items()},
            "epochs": model.summary.get("epochs"),
            "best_epoch": model.summary.get("best_epoch"),
            "score_seconds": round(score_seconds, 2),
            "select_seconds": round(select_seconds, 2),
            "train_seconds": round(train_seconds, 2),
        }
        rows.append(row)
        log(
            f"{corpus.name:8} {strategy:16} rep {repeat} round {round_index:2}: "
            f"{row['sentences']:6} sentences {100 * row['char_share']:5.1f}% chars  "
            f"F1 {100 * row['f1']:5.2f}  train {train_seconds:5.1f}s "
            f"({_count(row['epochs'], 'epoch')} on {len(batch)})  "
            f"select {score_seconds + select_seconds:.1f}s"
        )
    return rows


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _batch_size(options: SimulationOptions, round_index: int) -> str:
    sizes = options.batch_sizes
    return sizes[min(round_index - 1, len(sizes) - 1)]


def run_full_pool(corpus: Corpus, options: SimulationOptions, log: Log = _print) -> dict:
    """The reference: one model trained from scratch on the whole pool."""
    model, seconds = _train(corpus, corpus.pool, options, options.seed, full=True)
    scores = _evaluate(corpus, model)
    log(f"{corpus.name:8} full pool ({len(corpus.pool)} sentences): F1 {100 * scores['f1']:.2f}")
    return {
        "f1": scores["f1"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "per_type_f1": {k: v["f1"] for k, v in scores["per_type"].items()},
        "epochs": model.summary.get("epochs"),
        "train_seconds": round(seconds, 2),
    }


def _run_job(corpus: Corpus, job: tuple, options: SimulationOptions, log: Log = _print):
    """One unit of work: the full-pool reference or one (strategy, repeat) curve. Module
    level, so a process pool can run it."""
    from threadpoolctl import threadpool_limits

    kind, strategy, repeat = job
    with threadpool_limits(limits=options.threads):  # numpy/sklearn pools, like torch's
        if kind == "full":
            return run_full_pool(corpus, options, log)
        return run_curve(corpus, strategy, repeat, options, log)


def simulate(
    corpora: Sequence[Corpus], options: SimulationOptions, log: Log = _print, jobs: int = 1
) -> dict:
    """Every curve of every corpus (and the full-pool references), ``jobs`` processes at a
    time; each process trains with ``options.threads`` torch threads."""
    started = time.monotonic()
    work = []
    for corpus in corpora:
        if options.full_pool:
            work.append((corpus, ("full", None, 0)))
        for repeat in range(options.repeats):
            for strategy in options.strategies:
                work.append((corpus, ("curve", strategy, repeat)))
    # biggest first, so a long job does not start last and leave the other cores idle
    work.sort(key=lambda item: (-item[0].pool_chars, item[1][0] != "full"))
    if jobs <= 1:
        outputs = [_run_job(corpus, job, options, log) for corpus, job in work]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no forked OpenMP or Django state
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(_run_job, corpus, job, options) for corpus, job in work]
            outputs = [future.result() for future in futures]
    results: dict = {"options": asdict(options), "jobs": jobs, "corpora": {}, "rows": []}
    for corpus in corpora:
        results["corpora"][corpus.name] = {
            "pool_sentences": len(corpus.pool),
            "pool_chars": corpus.pool_chars,
            "eval_sentences": len(corpus.eval),
            "labels": corpus.labels,
            "full": None,
        }
    for (corpus, (kind, _, _)), output in zip(work, outputs, strict=True):
        if kind == "full":
            results["corpora"][corpus.name]["full"] = output
        else:
            results["rows"] += output
    order = {corpus.name: i for i, corpus in enumerate(corpora)}
    strategies = {name: i for i, name in enumerate(options.strategies)}
    results["rows"].sort(
        key=lambda r: (order[r["corpus"]], strategies[r["strategy"]], r["repeat"], r["round"])
    )
    results["summary"] = summarise(results)
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


# ---- reporting -----------------------------------------------------------------------------


def _interpolate(rows: list[dict], share: float) -> float | None:
    """F1 of one curve at a character share, linear between rounds; None outside the curve."""
    xs = [r["char_share"] for r in rows]
    if not xs or share < xs[0] - 1e-9 or share > xs[-1] + 1e-9:
        return None
    return float(np.interp(share, xs, [r["f1"] for r in rows]))


def _share_reaching(rows: list[dict], level: float) -> float | None:
    """The character share at which a curve first reaches an F1 level (interpolated)."""
    previous = None
    for row in rows:
        if row["f1"] >= level:
            if previous is None:
                return row["char_share"]
            x0, y0 = previous["char_share"], previous["f1"]
            return x0 + (level - y0) * (row["char_share"] - x0) / (row["f1"] - y0)
        previous = row
    return None


def summarise(results: dict) -> list[dict]:
    """Per corpus and strategy: mean and spread per round, F1 at 10% of the characters, the
    share needed for 95% of the full-pool F1, and the gap to random at 10%."""
    summary = []
    for name, info in results["corpora"].items():
        rows = [r for r in results["rows"] if r["corpus"] == name]
        full = info["full"]["f1"] if info.get("full") else None
        at_share: dict[str, float | None] = {}
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            curves = _curves(rows, strategy)
            at = [_interpolate(c, TARGET_SHARE) for c in curves]
            at_mean = float(np.mean(at)) if at and None not in at else None
            at_share[strategy] = at_mean
            rounds = []
            for index in range(max(len(c) for c in curves)):
                points = [c[index] for c in curves if len(c) > index]
                f1s = [p["f1"] for p in points]
                rounds.append(
                    {
                        "round": index,
                        "char_share": float(np.mean([p["char_share"] for p in points])),
                        "sentence_share": float(np.mean([p["sentence_share"] for p in points])),
                        "f1_mean": float(np.mean(f1s)),
                        "f1_std": float(np.std(f1s)),
                        "train_seconds": float(np.mean([p["train_seconds"] for p in points])),
                    }
                )
            mean_curve = [{"char_share": r["char_share"], "f1": r["f1_mean"]} for r in rounds]
            reach = None if full is None else _share_reaching(mean_curve, TARGET_FRACTION * full)
            summary.append(
                {
                    "corpus": name,
                    "strategy": strategy,
                    "repeats": len(curves),
                    "full_f1": full,
                    "f1_at_10pct": at_mean,
                    "share_for_95pct": reach,
                    "rounds": rounds,
                }
            )
        random_at = at_share.get("random")
        for entry in summary:
            if entry["corpus"] == name:
                mine = entry["f1_at_10pct"]
                entry["gain_over_random_at_10pct"] = (
                    mine - random_at if mine is not None and random_at is not None else None
                )
    return summary


def _curves(rows: list[dict], strategy: str) -> list[list[dict]]:
    by_repeat: dict[int, list[dict]] = {}
    for row in rows:
        if row["strategy"] == strategy:
            by_repeat.setdefault(row["repeat"], []).append(row)
    return [sorted(c, key=lambda r: r["round"]) for _, c in sorted(by_repeat.items())]


def format_table(results: dict) -> str:
    def pct(value, digits=1):
        return "-" if value is None else f"{100 * value:.{digits}f}"

    lines = []
    for entry in results["summary"]:
        lines.append(
            f"\n{entry['corpus']} / {entry['strategy']} ({entry['repeats']} repeats; "
            f"full-pool F1 {pct(entry['full_f1'], 2)})"
        )
        lines.append(
            f"{'round':>5} {'chars %':>8} {'sents %':>8} {'F1 mean':>8} {'+-':>6} {'s':>7}"
        )
        for r in entry["rounds"]:
            lines.append(
                f"{r['round']:>5} {pct(r['char_share']):>8} {pct(r['sentence_share']):>8} "
                f"{pct(r['f1_mean'], 2):>8} {pct(r['f1_std'], 2):>6} {r['train_seconds']:>7.1f}"
            )
    lines.append("\nsummary")
    lines.append(
        f"{'corpus':10}{'strategy':18}{'full F1':>9}{'F1@10%':>9}{'vs random':>10}"
        f"{'chars% for 95%':>16}"
    )
    for entry in results["summary"]:
        gain = entry.get("gain_over_random_at_10pct")
        lines.append(
            f"{entry['corpus']:10}{entry['strategy']:18}{pct(entry['full_f1'], 2):>9}"
            f"{pct(entry['f1_at_10pct'], 2):>9}"
            f"{('-' if gain is None else f'{100 * gain:+.2f}'):>10}"
            f"{pct(entry['share_for_95pct']):>16}"
        )
    lines.append(
        f"(- : a curve that stops short of {100 * TARGET_SHARE:.0f}% of the characters, no "
        f"random curve to compare with, or {100 * TARGET_FRACTION:.0f}% of the full-pool F1 "
        "never reached)"
    )
    lines.append(
        f"(nerloop's own targets on CLUENER2020 and Resume: entropy_kmeans >= "
        f"{100 * TARGET_FRACTION:.0f}% of full F1 with <= {100 * TARGET_BUDGET:.0f}% of the "
        f"characters; >= +3 F1 over random at {100 * TARGET_SHARE:.0f}%)"
    )
    if "seconds" in results:
        lines.append(f"total {results['seconds'] / 60:.1f} minutes")
    return "\n".join(lines)


def write_outputs(results: dict, out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "simulation.json", out / "simulation.csv", out / "simulation.png"]
    written[0].write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    columns = [k for k in results["rows"][0] if k != "per_type_f1"] if results["rows"] else []
    with written[1].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results["rows"])
    plot(results, written[2])
    return written


def plot(results: dict, path: Path) -> None:
    """F1 against labelled characters, one curve per strategy (mean, shaded min-max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["corpora"])
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(6 * max(1, len(names)), 4.5))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=False):
        info = results["corpora"][name]
        rows = [r for r in results["rows"] if r["corpus"] == name]
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            curves = _curves(rows, strategy)
            count = min(len(c) for c in curves)
            chars = np.array([[c[i]["characters"] for i in range(count)] for c in curves])
            f1 = np.array([[100 * c[i]["f1"] for i in range(count)] for c in curves])
            x = chars.mean(axis=0) / 1000
            ax.plot(x, f1.mean(axis=0), marker="o", markersize=3, label=strategy)
            ax.fill_between(x, f1.min(axis=0), f1.max(axis=0), alpha=0.2)
        if info.get("full"):
            full = 100 * info["full"]["f1"]
            ax.axhline(full, color="black", linestyle="--", linewidth=1, label="full pool")
            ax.axhline(TARGET_FRACTION * full, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{name} ({info['pool_chars'] / 1000:.0f}k characters in the pool)")
        ax.set_xlabel("labelled characters (thousands)")
        ax.set_ylabel("entity F1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
