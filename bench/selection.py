"""Selection speed over 100,000 candidate sentences (target: <= 30 s each), every strategy.

Texts are real sentences from the shared corpora, drawn with replacement; uncertainty and
embeddings are synthetic (selection cost does not depend on where they came from).
Run: python -m bench.selection [--candidates N] [--batch N] [--dim D]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from learner.selection import STRATEGIES, Budget, Pool, select

RESULTS = Path(__file__).resolve().parent / "results"


def corpus_texts(datasets: Path) -> list[str]:
    texts: list[str] = []
    for name in ("train.json", "dev.json", "test.json"):
        path = datasets / "cluener2020" / name
        if path.exists():
            texts.extend(json.loads(line)["text"] for line in path.open(encoding="utf-8"))
    resume = datasets / "resume" / "train.char.bmes"
    if resume.exists():
        chars: list[str] = []
        for line in resume.open(encoding="utf-8"):
            if line.strip():
                chars.append(line.split()[0])
            elif chars:
                texts.append("".join(chars))
                chars = []
    if not texts:
        raise SystemExit(f"no corpus texts found under {datasets}")
    return texts


def synthetic_pool(texts: list[str], n: int, dim: int, seed: int) -> Pool:
    rng = np.random.default_rng(seed)
    drawn = [texts[i] for i in rng.integers(len(texts), size=n)]
    lengths = np.array([len(t) for t in drawn])
    centres = rng.normal(size=(50, dim)).astype(np.float32)
    embeddings = centres[rng.integers(50, size=n)] + 0.5 * rng.normal(size=(n, dim)).astype(
        np.float32
    )
    mean_entropy = rng.gamma(1.0, 0.1, size=n)
    return Pool(
        ids=np.arange(n),
        lengths=lengths,
        uncertainty={
            "mean_entropy": mean_entropy,
            "max_entropy": mean_entropy * 3,
            "least_confidence": 1 - np.exp(-mean_entropy * lengths),
            "mnlp": -mean_entropy,
        },
        embeddings=embeddings,
        texts=drawn,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200, help="sentences per batch")
    parser.add_argument("--chars", type=int, default=20_000, help="character budget run")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--datasets", default=os.environ.get("NERLOOP_DATASETS_DIR", ""))
    args = parser.parse_args()
    datasets = Path(args.datasets or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    pool = synthetic_pool(corpus_texts(datasets), args.candidates, args.dim, seed=0)
    cold = Pool(ids=pool.ids, lengths=pool.lengths, texts=pool.texts)
    rows = []
    cases = [(name, pool) for name in sorted(STRATEGIES)] + [("cold_start", cold)]
    for name, case_pool in cases:
        strategy = "entropy_kmeans" if name == "cold_start" else name
        for budget in (Budget(args.batch), Budget(args.chars, "characters")):
            start = time.perf_counter()
            chosen = select(strategy, case_pool, budget, seed=1)
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "strategy": name,
                    "candidates": len(case_pool),
                    "budget": f"{budget.amount} {budget.unit}",
                    "selected": len(chosen),
                    "characters": int(pool.lengths[chosen].sum()),
                    "seconds": round(seconds, 3),
                    "target_s": 30,
                }
            )
    header = f"{'strategy':18}{'candidates':>11}{'budget':>20}{'selected':>10}{'chars':>9}{'s':>9}"
    print(header)
    for row in rows:
        print(
            f"{row['strategy']:18}{row['candidates']:>11}{row['budget']:>20}"
            f"{row['selected']:>10}{row['characters']:>9}{row['seconds']:>9.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "selection.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
