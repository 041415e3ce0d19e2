"""Query strategies: which unlabelled sentences are worth an annotator's time.

Plain numpy/scikit-learn on arrays (ids, uncertainty scores, embeddings, lengths), so the
platform, the simulation and the tests all run the very same functions without a database
or torch. Strategies are registered under stable names; a project stores only the name.

Every uncertainty array follows one convention: higher means the model is less sure.
``uncertainty_arrays`` converts the engine's per-text dictionaries into that form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

UNITS = ("sentences", "characters")
DEFAULT_STRATEGY = "entropy_kmeans"
# Candidates kept for clustering, as a multiple of the expected batch size.
CANDIDATE_FACTOR = 5
# Cold start clusters at most this many texts, a uniform sample of a larger pool.
COLD_START_SAMPLE = 20_000
# Information density: a sentence's mean cosine similarity to its nearest neighbours among at
# most DENSITY_SAMPLE sentences of the pool (an evenly spaced sample of a larger one).
DENSITY_NEIGHBOURS = 20
DENSITY_SAMPLE = 10_000
# ``entropy_kmeans`` weighs by density this many times its candidates, the most uncertain.
DENSITY_FACTOR = 4
# The engine's uncertainty keys; ``mnlp`` is a log probability (higher = surer) and is negated.
UNCERTAINTY_KEYS = ("mean_entropy", "max_entropy", "least_confidence", "mnlp")


@dataclass(frozen=True)
class Budget:
    """How much to select: a number of sentences, or of characters (long sentences cost more)."""

    amount: int
    unit: str = "sentences"

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"unknown budget unit {self.unit!r}; expected one of {UNITS}")
        if self.amount < 1:
            raise ValueError(f"budget must be positive, got {self.amount}")


@dataclass
class Pool:
    """The unlabelled candidates, one row per sentence, all arrays aligned with ``ids``.

    ``uncertainty`` maps a key of UNCERTAINTY_KEYS to a float array (higher = less sure);
    empty when no model has predicted yet (cold start). ``texts`` feed the cold-start
    TF-IDF clustering; ``embeddings`` the diversity step of ``entropy_kmeans``.
    """

    ids: np.ndarray
    lengths: np.ndarray
    uncertainty: dict[str, np.ndarray] = field(default_factory=dict)
    embeddings: np.ndarray | None = None
    texts: Sequence[str] | None = None

    def __post_init__(self):
        self.ids = np.asarray(self.ids)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        n = len(self.ids)
        if self.lengths.shape != (n,):
            raise ValueError(f"lengths has shape {self.lengths.shape}, expected ({n},)")
        for key, values in list(self.uncertainty.items()):
            if key not in UNCERTAINTY_KEYS:
                raise ValueError(f"unknown uncertainty key {key!r}")
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (n,):
                raise ValueError(f"uncertainty {key!r} has shape {values.shape}, expected ({n},)")
            self.uncertainty[key] = values
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
            if self.embeddings.ndim != 2 or len(self.embeddings) != n:
                raise ValueError(f"embeddings has shape {self.embeddings.shape}, expected ({n}, d)")
        if self.texts is not None and len(self.texts) != n:
            raise ValueError(f"{len(self.texts)} texts for {n} ids")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_model(self) -> bool:
        return bool(self.uncertainty)


Strategy = Callable[[Pool, Budget, np.random.Generator], np.ndarray]
STRATEGIES: dict[str, Strategy] = {}


def register(name: str) -> Callable[[Strategy], Strategy]:
    def decorator(fn: Strategy) -> Strategy:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered")
        STRATEGIES[name] = fn
        return fn

    return decorator


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise KeyError(f"unknown selection strategy {name!r}; known: {known}") from None


def select(
    name: str, pool: Pool, budget: Budget, seed: int | None = 0, threads: int | None = 1
) -> np.ndarray:
    """The ids of the batch to label, most wanted first, within ``budget``.

    ``threads`` caps the BLAS/OpenMP pools of numpy and scikit-learn (None: their default).
    One by default: on a 2-core machine shared with other workers, spinning OpenMP threads
    made a cold start 7x slower here than a single thread did.
    """
    if len(pool) == 0:
        return pool.ids[:0]
    # threadpool_limits caps only the libraries already loaded: load scikit-learn's OpenMP
    # and BLAS first, or the first selection in a process runs multi-threaded and, its
    # floating-point sums ordered differently, picks another batch for the same seed.
    import sklearn.cluster
    import sklearn.decomposition
    import sklearn.feature_extraction.text  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        order = get_strategy(name)(pool, budget, np.random.default_rng(seed))
    return pool.ids[take(order, pool.lengths, budget)]


def take(order: np.ndarray, lengths: np.ndarray, budget: Budget) -> np.ndarray:
    """The prefix of ``order`` that fills the budget (a character budget may end one sentence
    over, so a batch is never empty)."""
    if budget.unit == "sentences":
        return order[: budget.amount]
    cumulative = np.cumsum(lengths[order])
    count = int(np.searchsorted(cumulative, budget.amount, side="left")) + 1
    return order[:count]


def expected_count(order: np.ndarray, lengths: np.ndarray, budget: Budget) -> int:
    """How many sentences of ``order`` the budget buys: the cluster count for diversity."""
    return max(1, len(take(order, lengths, budget)))


def uncertainty_arrays(uncertainties: Iterable[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Engine dictionaries (one per text) -> aligned arrays in the higher-is-less-sure form."""
    rows = list(uncertainties)
    arrays: dict[str, np.ndarray] = {}
    for key in UNCERTAINTY_KEYS:
        if rows and all(key in row for row in rows):
            values = np.array([row[key] for row in rows], dtype=np.float64)
            arrays[key] = -values if key == "mnlp" else values
    return arrays


def _by_score(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices by descending score; ties broken at random so equal scores do not follow ids."""
    jitter = rng.random(len(scores))
    return np.lexsort((jitter, -scores))


def _uncertainty_strategy(key: str) -> Strategy:
    def strategy(pool: Pool, budget: Budget, rng: np.random.Generator) -> np.ndarray:
        if not pool.has_model:
            return cold_start(pool, budget, rng)
        return _by_score(pool.uncertainty[key], rng)

    strategy.__doc__ = f"Most uncertain first by {key!r}; cold start without a model."
    return strategy


@register("random")
def random_order(pool: Pool, budget: Budget, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(len(pool))


register("least_confidence")(_uncertainty_strategy("least_confidence"))
register("entropy")(_uncertainty_strategy("mean_entropy"))
register("mnlp")(_uncertainty_strategy("mnlp"))


@register("entropy_kmeans")
def entropy_kmeans(pool: Pool, budget: Budget, rng: np.random.Generator) -> np.ndarray:
    """Top-uncertainty candidates clustered on the sentence embeddings; the most uncertain
    of each cluster first, so a batch is not twenty near-copies of one sentence.

    Uncertainty is the mean token entropy weighted by information density (Settles & Craven,
    "An analysis of active learning strategies for sequence labeling tasks", 2008): an odd
    sentence unlike the rest of the pool teaches the model less than an uncertain one with
    many neighbours, whose lesson carries over to them."""
    if not pool.has_model:
        return cold_start(pool, budget, rng)
    scores = pool.uncertainty["mean_entropy"]
    if pool.embeddings is None:
        return _by_score(scores, rng)
    # Density re-ranks the most uncertain (DENSITY_FACTOR times the candidates it can yield,
    # at most DENSITY_SAMPLE); the rest follow by plain uncertainty.
    by_entropy = np.argsort(-scores, kind="stable")
    reach = DENSITY_FACTOR * CANDIDATE_FACTOR * expected_count(by_entropy, pool.lengths, budget)
    reach = min(reach, DENSITY_SAMPLE)
    top, rest = by_entropy[:reach], by_entropy[reach:]
    weighted = scores[top] * density(pool.embeddings, rows=top)
    ranked = np.concatenate([top[_by_score(weighted, rng)], rest])
    wanted = expected_count(ranked, pool.lengths, budget)
    candidates = ranked[: min(len(ranked), CANDIDATE_FACTOR * wanted)]
    vectors = _normalise(pool.embeddings[candidates])
    labels = _cluster(vectors, min(wanted, len(candidates)), rng)
    # candidates are already in descending (weighted) uncertainty, so within each cluster the
    # first member is its most uncertain one.
    head = _round_robin(candidates, labels, cluster_order=None)
    chosen = np.zeros(len(pool), dtype=bool)
    chosen[head] = True
    return np.concatenate([head, ranked[~chosen[ranked]]])


def density(
    embeddings: np.ndarray, rows: np.ndarray | None = None, neighbours: int = DENSITY_NEIGHBOURS
) -> np.ndarray:
    """The mean cosine similarity of each of ``rows`` (default: all) to its ``neighbours``
    nearest rows of ``embeddings`` (itself left out), centred on their mean (raw LSTM states
    all point much the same way). Neighbours are looked for among an evenly spaced sample of
    at most DENSITY_SAMPLE rows. Floored at a small positive number, so weighted scores keep
    the order of the uncertainty among equally isolated sentences."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    count = len(vectors)
    rows = np.arange(count) if rows is None else np.asarray(rows, dtype=np.int64)
    if count < 2:
        return np.ones(len(rows))
    vectors = _normalise(vectors - vectors.mean(axis=0))
    if count > DENSITY_SAMPLE:
        reference = np.linspace(0, count - 1, DENSITY_SAMPLE).astype(np.int64)
    else:
        reference = np.arange(count)
    in_reference = np.zeros(count, dtype=bool)
    in_reference[reference] = True
    known = vectors[reference].T
    k = min(neighbours, len(reference) - 1)
    result = np.empty(len(rows))
    for lo in range(0, len(rows), 2000):
        chunk = rows[lo : lo + 2000]
        top = np.partition(vectors[chunk] @ known, -(k + 1), axis=1)[:, -(k + 1) :]
        # a row of the sample finds itself (similarity 1) among its nearest: leave that out;
        # any other row leaves out its (k+1)-th nearest instead
        drop = np.where(in_reference[chunk], top.max(axis=1), top.min(axis=1))
        result[lo : lo + 2000] = (top.sum(axis=1) - drop) / k
    return np.clip(result, 1e-3, None)


def cold_start(pool: Pool, budget: Budget, rng: np.random.Generator) -> np.ndarray:
    """No model yet: KMeans on character n-gram TF-IDF, the sentence nearest each centroid
    first (largest clusters first), so the first batch covers the corpus's variety."""
    if pool.texts is None:
        return rng.permutation(len(pool))
    from sklearn.feature_extraction.text import TfidfVectorizer

    order = rng.permutation(len(pool))
    # A uniform sample shows the corpus's variety as well as the whole pool does, and
    # n-gram counting is most of the cost (100,000 texts: 20 s on a busy machine, 4 s sampled).
    sample = order[:COLD_START_SAMPLE] if len(pool) > COLD_START_SAMPLE else np.arange(len(pool))
    rest = order[COLD_START_SAMPLE:] if len(pool) > COLD_START_SAMPLE else order[:0]
    wanted = min(expected_count(order, pool.lengths, budget), len(sample))
    vectorizer = TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, 3),
        min_df=2,
        max_features=50_000,
        sublinear_tf=True,
        dtype=np.float32,
    )
    try:
        matrix = vectorizer.fit_transform([pool.texts[i] for i in sample])
    except ValueError:  # every text empty, or no n-gram seen twice: nothing to cluster on
        return order
    if matrix.shape[1] == 0:
        return order
    vectors = _reduce(matrix, rng)
    labels = _cluster(vectors, wanted, rng)
    centroids = np.zeros((labels.max() + 1, vectors.shape[1]), dtype=np.float32)
    np.add.at(centroids, labels, vectors)
    centroids = _normalise(centroids)
    closeness = np.einsum("ij,ij->i", vectors, centroids[labels])
    by_closeness = _by_score(closeness, rng)
    sizes = np.bincount(labels)
    ranked = _round_robin(by_closeness, labels[by_closeness], cluster_order=np.argsort(-sizes))
    return np.concatenate([sample[ranked], rest])


def _round_robin(indices: np.ndarray, labels: np.ndarray, cluster_order) -> np.ndarray:
    """Interleave clusters: each cluster's first member, then each one's second, and so on.
    Within a round clusters keep ``cluster_order`` (or the order of their first member)."""
    rank_in_cluster = np.zeros(len(indices), dtype=np.int64)
    seen: dict[int, int] = {}
    for position, label in enumerate(labels.tolist()):
        rank_in_cluster[position] = seen.get(label, 0)
        seen[label] = rank_in_cluster[position] + 1
    if cluster_order is None:
        first_seen = {label: position for position, label in reversed(list(enumerate(labels)))}
        cluster_rank = np.array([first_seen[label] for label in labels.tolist()])
    else:
        position_of = np.empty(len(cluster_order), dtype=np.int64)
        position_of[cluster_order] = np.arange(len(cluster_order))
        cluster_rank = position_of[labels]
    return indices[np.lexsort((cluster_rank, rank_in_cluster))]


def _cluster(vectors: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    k = max(1, min(k, len(vectors)))
    if k == 1:
        return np.zeros(len(vectors), dtype=np.int64)
    model = MiniBatchKMeans(
        n_clusters=k,
        batch_size=max(1024, 3 * k),
        n_init=1,
        max_iter=50,
        random_state=int(rng.integers(2**31 - 1)),
    )
    return model.fit_predict(vectors).astype(np.int64)


def _reduce(matrix, rng: np.random.Generator, dims: int = 128, fit_rows: int = 20_000):
    """TF-IDF rows -> dense unit vectors. The SVD is fitted on a sample of rows and applied
    to all, which keeps 100,000 texts to about a second instead of over ten."""
    from sklearn.decomposition import TruncatedSVD

    dims = min(dims, matrix.shape[1] - 1, matrix.shape[0] - 1)
    if dims < 2:
        return _normalise(matrix.toarray())
    rows = matrix.shape[0]
    sample = rng.choice(rows, size=fit_rows, replace=False) if rows > fit_rows else slice(None)
    svd = TruncatedSVD(n_components=dims, n_iter=3, random_state=int(rng.integers(2**31 - 1)))
    svd.fit(matrix[sample])
    return _normalise(svd.transform(matrix))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
