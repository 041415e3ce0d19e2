"""Engine benchmark: train on the shared corpora, export bundles, measure F1 and speed.

``python -m bench.engine`` (``make bench``) prints two tables and writes
``bench/results/engine.json``; bundles land in ``bench/results/bundles/<dataset>`` (git-ignored)
for others to reuse (``--reuse`` skips training where a bundle is already there).

Splits (the models are judged on text they never saw, model selection included):
- cluener: train minus a held-out slice (early stopping) -> dev (the official test has no labels)
- resume: train -> dev for early stopping -> test
- msra: msra/dev.bio minus a held-out slice (early stopping) -> test.bio

Speed is measured end to end: featurisation, the network and CRF decoding. Torch eager uses
its own batched Viterbi (``TrainedModel.predict``); ONNX goes through ``inference.engine``
(compiled Viterbi, marginals, windows), fp32 and INT8, the serving path itself. Both use
``--threads`` cores: the engine as lanes of one ONNX Runtime thread, torch in whichever of its
ways is fastest (one thread, an OpenMP pool, or the engine's lanes). Every way runs once per
round (``--speed-rounds`` 3 of ``--speed-seconds`` 2, alternating) and keeps its median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from annotation.formats import read_file

RESULTS = Path(__file__).resolve().parent / "results"
HOLDOUT = 500  # sentences kept out of training for early stopping (cluener, msra)

TARGETS = {
    "cluener": {"f1": 72.0, "train_seconds": 900},
    "resume": {"f1": 94.5},
    "msra": {"f1": 72.4},
    "int8_f1_drop": 0.5,
    "int8_vs_torch_b64": 3.0,
    "engine_chars_per_s_b64": 100_000,
    "p99_ms": 5.0,
}
BUDGETS = {"cluener": 870.0, "resume": 600.0, "msra": 600.0}


def default_datasets_dir() -> Path:
    env = os.environ.get("NERLOOP_DATASETS_DIR")
    return (
        Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    )


def load_splits(name: str, root: Path, seed: int = 13) -> dict:
    """train / stop (early stopping) / eval examples, and the eval split's name."""
    if name == "cluener":
        train = read_file(root / "cluener2020" / "train.json")
        rng = random.Random(seed)
        order = list(range(len(train)))
        rng.shuffle(order)
        held = set(order[:HOLDOUT])
        return {
            "train": [ex for i, ex in enumerate(train) if i not in held],
            "stop": [train[i] for i in sorted(held)],
            "eval": read_file(root / "cluener2020" / "dev.json"),
            "eval_name": "dev",
            "stop_name": f"train hold-out ({HOLDOUT})",
        }
    if name == "resume":
        folder = root / "resume"
        # train.char.bmes has one ORG entity cut by a sentence break; repair it, as documented
        return {
            "train": read_file(folder / "train.char.bmes", strict=False),
            "stop": read_file(folder / "dev.char.bmes", strict=False),
            "eval": read_file(folder / "test.char.bmes", strict=False),
            "eval_name": "test",
            "stop_name": "dev",
        }
    if name == "msra":
        pool = read_file(root / "msra" / "dev.bio")
        rng = random.Random(seed)
        order = list(range(len(pool)))
        rng.shuffle(order)
        held = set(order[:HOLDOUT])
        return {
            "train": [ex for i, ex in enumerate(pool) if i not in held],
            "stop": [pool[i] for i in sorted(held)],
            "eval": read_file(root / "msra" / "test.bio"),
            "eval_name": "test",
            "stop_name": f"dev.bio hold-out ({HOLDOUT})",
        }
    raise ValueError(f"unknown dataset {name!r} (cluener, resume, msra)")


def file_mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 2) if path.exists() else float("nan")


def train_one(name: str, arch: str, splits: dict, args) -> dict:
    from learner.export import export_bundle
    from learner.training import TrainOptions, train

    folder = RESULTS / "bundles" / (name if arch == "bilstm_crf" else f"{name}-{arch}")
    if args.reuse and (folder / "metrics.json").exists():
        print(f"[{name}/{arch}] reusing {folder}")
    else:
        budget = args.budget if args.budget is not None else BUDGETS[name]
        options = TrainOptions(
            epochs=args.epochs,
            time_budget=budget,
            seed=args.seed,
            threads=args.train_threads,
            progress=not args.quiet,
            patience=args.patience,
            hparams=args.hparams,
        )
        print(
            f"[{name}/{arch}] train {len(splits['train'])} sentences, early stopping on "
            f"{splits['stop_name']}, evaluation on {splits['eval_name']}, budget {budget:.0f}s"
        )
        trained = train(splits["train"], splits["stop"], arch, options)
        export_bundle(
            trained,
            folder,
            {"stop": splits["stop"], splits["eval_name"]: splits["eval"]},
            version=f"bench-{name}-{arch}",
            overwrite=True,
            extra_config={"dataset": name, "eval_split": splits["eval_name"]},
        )
    config = json.loads((folder / "config.json").read_text("utf-8"))
    metrics = json.loads((folder / "metrics.json").read_text("utf-8"))
    training = config.get("training", {})
    return {
        "dataset": name,
        "arch": arch,
        "eval_split": metrics["split"],
        "epochs": training.get("epochs"),
        "best_epoch": training.get("best_epoch"),
        "train_seconds": round(training.get("train_seconds", float("nan")), 1),
        "size_fp32_mb": file_mb(folder / "model.onnx"),
        "size_int8_mb": file_mb(folder / "model.int8.onnx"),
        "f1": round(metrics["f1"] * 100, 2),
        "f1_int8": round(metrics["int8"]["f1"] * 100, 2) if "int8" in metrics else None,
        "precision": round(metrics["precision"] * 100, 2),
        "recall": round(metrics["recall"] * 100, 2),
        "per_type_f1": {k: round(v["f1"] * 100, 2) for k, v in metrics["per_type"].items()},
        "hparams": training.get("options", {}).get("hparams", {}),
        "bundle": str(folder),
    }


def _rate(run, batches: list[list[str]], repeat_seconds: float) -> tuple[float, float]:
    """Sentences/s and characters/s of ``run`` over ``batches`` (repeated to fill the time)."""
    run(batches[0])  # warm-up
    sentences = chars = 0
    started = time.perf_counter()
    while True:
        for batch in batches:
            run(batch)
            sentences += len(batch)
            chars += sum(map(len, batch))
        elapsed = time.perf_counter() - started
        if elapsed >= repeat_seconds:
            return sentences / elapsed, chars / elapsed


def _middle(rates: list[tuple[float, float]]) -> tuple[float, float]:
    """The try with the median characters/s (the lower middle of an even count)."""
    return sorted(rates, key=lambda rate: rate[1])[(len(rates) - 1) // 2]


def _torch_lanes(eager, pool: ThreadPoolExecutor, lanes: int):
    """Torch eager with the engine's split of a batch: the texts sorted by length, every
    lane-th one to each of ``lanes`` threads (one torch thread each), as the engine does."""

    def run(batch: list[str]):
        order = sorted(batch, key=len)
        parts = [order[k::lanes] for k in range(lanes)]
        return list(pool.map(lambda part: eager.predict(part, batch_size=64), parts))

    return run


def measure_speed(folder: Path, texts: list[str], args) -> dict:
    import torch

    from inference.engine import ModelBundle
    from learner.training import TrainedModel

    eager = TrainedModel.load(folder)
    engines = {
        "onnx_fp32": ModelBundle(folder, int8=False, threads=args.threads, batch_size=64).load(),
        "onnx_int8": ModelBundle(folder, int8=True, threads=args.threads, batch_size=64).load(),
    }
    pool = ThreadPoolExecutor(args.threads)
    # torch gets its best way of using the cores: one thread, an OpenMP pool of ``threads``
    # (on busy cores it can be far slower than one), or the engine's split of a batch into
    # lanes of one thread each; the comparison must not profit from a worse one
    torch_ways = {"1": (1, None)}
    if args.threads > 1:
        torch_ways[str(args.threads)] = (args.threads, None)
        torch_ways[f"{args.threads}x1"] = (1, _torch_lanes(eager, pool, args.threads))

    def plain_torch(batch: list[str]):
        return eager.predict(batch, batch_size=64)

    rows = []
    for batch_size in (1, 64):
        count = args.speed_sentences if batch_size == 64 else args.speed_sentences // 4
        sample = texts[:count]
        batches = [sample[i : i + batch_size] for i in range(0, len(sample), batch_size)]
        ways = []  # (runtime, way, threads for torch or None, run)
        for way, (threads, run) in torch_ways.items():
            if batch_size == 1 and run is not None:
                continue  # one text cannot be split
            ways.append(("torch_eager", way, threads, run or plain_torch))
        for key, engine in engines.items():
            way = f"{engine.lanes}x1" if batch_size > 1 else "1"  # one text runs on one lane
            ways.append((key, way, None, engine.predict))
        # every way once per round, rounds alternating, each way's median kept: on a host
        # whose speed drifts within minutes, a single try per way (or the best of several
        # for one runtime only) compares moments more than runtimes
        measured = {(key, way): [] for key, way, _, _ in ways}
        for _ in range(args.speed_rounds):
            for key, way, threads, run in ways:
                if threads is not None:
                    torch.set_num_threads(threads)
                measured[(key, way)].append(_rate(run, batches, args.speed_seconds))
        for key in dict.fromkeys(key for key, _, _, _ in ways):
            tries = [
                (_middle(rates), way, rates)
                for (runtime, way), rates in measured.items()
                if runtime == key
            ]
            (sent_s, char_s), way, rates = max(tries, key=lambda t: t[0][1])
            rows.append(
                {
                    "runtime": key,
                    "batch": batch_size,
                    "threads": way,
                    "sentences_per_s": round(sent_s, 1),
                    "chars_per_s": round(char_s),
                    "tries": [
                        {"threads": w, "chars_per_s": [round(c) for _, c in r]} for _, w, r in tries
                    ],
                }
            )
            print(
                f"  {key:<12} batch {batch_size:>2} threads {way}: {sent_s:9.1f} "
                f"sentences/s {char_s:11.0f} chars/s (median of {len(rates)}: "
                f"{', '.join(f'{c:.0f}' for _, c in rates)})"
            )
    pool.shutdown()
    latency = {}
    for key, engine in engines.items():
        for text in texts[:20]:
            engine.predict([text])
        samples = []
        for text in texts[: args.latency_sentences]:
            started = time.perf_counter()
            engine.predict([text])
            samples.append((time.perf_counter() - started) * 1000)
        latency[key] = {
            "p50_ms": round(float(np.percentile(samples, 50)), 3),
            "p99_ms": round(float(np.percentile(samples, 99)), 3),
            "mean_ms": round(statistics.fmean(samples), 3),
            "sentences": len(samples),
            "mean_chars": round(
                statistics.fmean(len(t) for t in texts[: args.latency_sentences]), 1
            ),
        }
    return {"throughput": rows, "latency": latency}


def print_tables(training: list[dict], speed: dict | None) -> None:
    head = (
        f"{'dataset':<8} {'arch':<16} {'split':<5} {'epochs':>6} {'best':>4} {'train s':>8} "
        f"{'fp32 MB':>8} {'int8 MB':>8} {'F1 fp32':>8} {'F1 int8':>8} {'target':>7}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for row in training:
        target = TARGETS.get(row["dataset"], {}).get("f1", float("nan"))
        print(
            f"{row['dataset']:<8} {row['arch']:<16} {row['eval_split']:<5} {row['epochs']:>6} "
            f"{row['best_epoch']:>4} {row['train_seconds']:>8.0f} {row['size_fp32_mb']:>8.2f} "
            f"{row['size_int8_mb']:>8.2f} {row['f1']:>8.2f} {row['f1_int8'] or float('nan'):>8.2f} "
            f"{target:>7.1f}"
        )
    if not speed:
        return
    head = f"{'runtime':<12} {'batch':>5} {'threads':>7} {'sentences/s':>12} {'chars/s':>10}"
    print(f"\nthroughput on {speed['texts']} ({speed['bundle']})\n{head}\n" + "-" * len(head))
    for row in speed["throughput"]:
        print(
            f"{row['runtime']:<12} {row['batch']:>5} {row.get('threads', '')!s:>7} "
            f"{row['sentences_per_s']:>12.1f} "
            f"{row['chars_per_s']:>10}"
        )
    for key, row in speed["latency"].items():
        print(
            f"latency {key}: one sentence (mean {row['mean_chars']} chars) p50 {row['p50_ms']} ms, "
            f"p99 {row['p99_ms']} ms over {row['sentences']} sentences"
        )
    print(f"int8 vs torch eager at batch 64: {speed['int8_vs_torch_b64']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="cluener,resume,msra")
    parser.add_argument("--archs", default="bilstm_crf", help="comma-separated architectures")
    parser.add_argument("--budget", type=float, default=None, help="seconds per model")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--hparams",
        type=json.loads,
        default={},
        help='network settings as JSON, for every dataset, e.g. {"lm_weight": 0}',
    )
    parser.add_argument("--threads", type=int, default=2, help="cores for inference")
    parser.add_argument(
        "--train-threads",
        type=int,
        default=1,
        help="torch threads for training; on 2 cores shared with other processes one thread "
        "trained 4-5x faster than two (an oversubscribed OpenMP pool)",
    )
    parser.add_argument("--reuse", action="store_true", help="reuse bundles already written")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--speed-dataset", default="cluener")
    parser.add_argument("--speed-sentences", type=int, default=1024)
    parser.add_argument("--speed-seconds", type=float, default=2.0, help="per try")
    parser.add_argument(
        "--speed-rounds", type=int, default=3, help="tries per runtime, rounds alternating"
    )
    parser.add_argument("--latency-sentences", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=None, help="shared datasets folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    root = args.data or default_datasets_dir()
    if not root.is_dir():
        print(f"datasets folder {root} not found (set NERLOOP_DATASETS_DIR)", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / "engine.json"
    datasets = [d for d in args.datasets.split(",") if d]
    archs = [a for a in args.archs.split(",") if a]
    if args.hparams:
        from learner.nets import check_hparams

        try:  # before hours of training: the network takes any keyword and would ignore a typo
            for arch in archs:
                check_hparams(arch, args.hparams)
        except ValueError as exc:
            print(f"--hparams: {exc}", file=sys.stderr)
            return 2
    training = []
    all_splits = {}
    for name in datasets:
        all_splits[name] = load_splits(name, root, args.seed)
        for arch in archs:
            training.append(train_one(name, arch, all_splits[name], args))
    speed = None
    if not args.no_speed:
        name = args.speed_dataset
        folder = RESULTS / "bundles" / name
        if not (folder / "manifest.json").exists():
            print(
                f"no bundle at {folder} for the speed tables; train {name} first", file=sys.stderr
            )
        else:
            splits = all_splits.get(name) or load_splits(name, root, args.seed)
            texts = [ex.text for ex in splits["eval"]]
            random.Random(args.seed).shuffle(texts)
            print(
                f"\nspeed on {len(texts)} {name} {splits['eval_name']} sentences, {args.threads} threads"
            )
            speed = measure_speed(folder, texts, args)
            speed["bundle"] = str(folder)
            speed["texts"] = f"{name} {splits['eval_name']} sentences, shuffled"
            b64 = {r["runtime"]: r["chars_per_s"] for r in speed["throughput"] if r["batch"] == 64}
            speed["int8_vs_torch_b64"] = b64["onnx_int8"] / b64["torch_eager"]
    # datasets not run this time keep their previous rows, so partial runs add up (read now,
    # not at the start: runs of different datasets may go on side by side)
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    keep = [
        row
        for row in previous.get("training", [])
        if (row["dataset"], row["arch"]) not in {(r["dataset"], r["arch"]) for r in training}
    ]
    result = {
        "training": keep + training,
        "speed": speed or previous.get("speed"),
        "targets": TARGETS,
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "train_threads": args.train_threads,
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")
    print_tables(result["training"], result["speed"])
    print(f"\nwritten {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
