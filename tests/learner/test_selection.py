import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from learner import selection
from learner.selection import Budget, Pool, density, select, take, uncertainty_arrays


def make_pool(n=60, dim=8, seed=0, texts=None):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 40, size=n)
    mean_entropy = rng.random(n)
    return Pool(
        ids=np.arange(1000, 1000 + n),
        lengths=lengths,
        uncertainty={
            "mean_entropy": mean_entropy,
            "max_entropy": mean_entropy * 2,
            "least_confidence": 1 - rng.random(n),
            "mnlp": rng.random(n),
        },
        embeddings=rng.normal(size=(n, dim)),
        texts=texts,
    )


def test_selection_names_are_pinned():
    assert set(selection.STRATEGIES) == {
        "random",
        "least_confidence",
        "entropy",
        "mnlp",
        "entropy_kmeans",
    }
    assert selection.DEFAULT_STRATEGY in selection.STRATEGIES


def test_selection_unknown_name_names_the_known_ones():
    with pytest.raises(KeyError, match="entropy_kmeans"):
        selection.get_strategy("bald")


@pytest.mark.parametrize("name", sorted(selection.STRATEGIES))
def test_selection_returns_distinct_pool_ids_within_budget(name):
    pool = make_pool()
    chosen = select(name, pool, Budget(10), seed=3)
    assert len(chosen) == 10
    assert len(set(chosen.tolist())) == 10
    assert set(chosen.tolist()) <= set(pool.ids.tolist())


@pytest.mark.parametrize("name", sorted(selection.STRATEGIES))
def test_selection_character_budget_stops_at_the_first_sentence_over(name):
    pool = make_pool()
    chosen = select(name, pool, Budget(200, "characters"), seed=3)
    lengths = dict(zip(pool.ids.tolist(), pool.lengths.tolist(), strict=True))
    total = sum(lengths[i] for i in chosen.tolist())
    assert total >= 200
    assert total - lengths[chosen[-1]] < 200


@pytest.mark.parametrize("name", sorted(selection.STRATEGIES))
def test_selection_is_reproducible_with_a_seed(name):
    pool = make_pool(texts=[f"北京{i}号大街{i % 7}" for i in range(60)])
    first = select(name, pool, Budget(12), seed=5)
    again = select(name, pool, Budget(12), seed=5)
    assert first.tolist() == again.tolist()


def test_selection_entropy_takes_highest_mean_entropy():
    pool = make_pool()
    chosen = select("entropy", pool, Budget(5))
    expected = pool.ids[np.argsort(-pool.uncertainty["mean_entropy"])[:5]]
    assert chosen.tolist() == expected.tolist()


def test_selection_least_confidence_takes_lowest_best_path_probability():
    pool = make_pool()
    chosen = select("least_confidence", pool, Budget(5))
    expected = pool.ids[np.argsort(-pool.uncertainty["least_confidence"])[:5]]
    assert chosen.tolist() == expected.tolist()


def test_selection_uncertainty_arrays_negate_mnlp_log_probability():
    rows = [
        {"mean_entropy": 0.1, "max_entropy": 0.5, "least_confidence": 0.2, "mnlp": -0.05},
        {"mean_entropy": 0.3, "max_entropy": 0.9, "least_confidence": 0.6, "mnlp": -0.40},
    ]
    arrays = uncertainty_arrays(rows)
    assert arrays["mnlp"].tolist() == [0.05, 0.40]
    pool = Pool(ids=np.array([7, 8]), lengths=np.array([3, 3]), uncertainty=arrays)
    assert select("mnlp", pool, Budget(1)).tolist() == [8]


def test_selection_entropy_kmeans_spreads_over_clusters():
    # Six tight groups of six, equally dense: the 6 most uncertain sentences are near-copies
    # in group 0, group 1 is a bit less uncertain. Plain entropy takes only group 0;
    # entropy_kmeans must reach into group 1.
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(6), 6)
    n = len(group)
    embeddings = 10.0 * np.eye(6)[group] + rng.normal(scale=0.01, size=(n, 6))
    entropy = np.array([0.9, 0.5, 0.3, 0.2, 0.1, 0.05])[group] + rng.random(n) * 0.01
    pool = Pool(
        ids=np.arange(n),
        lengths=np.full(n, 10),
        uncertainty={"mean_entropy": entropy},
        embeddings=embeddings,
    )
    plain = select("entropy", pool, Budget(2))
    diverse = select("entropy_kmeans", pool, Budget(2))
    assert set(group[plain].tolist()) == {0}
    assert set(group[diverse].tolist()) == {0, 1}
    # and the representative of each group is that group's most uncertain member
    for g in (0, 1):
        members = np.flatnonzero(group == g)
        assert members[np.argmax(entropy[members])] in diverse.tolist()


def test_density_is_low_for_an_outlier():
    rng = np.random.default_rng(1)
    crowd = rng.normal(size=(200, 8)) * 0.3 + np.array([3.0, 0, 0, 0, 0, 0, 0, 0])
    second = rng.normal(size=(200, 8)) * 0.3 + np.array([0, 3.0, 0, 0, 0, 0, 0, 0])
    outlier = np.array([[0, 0, 0, 0, 0, 0, 0, -9.0]])
    values = density(np.vstack([crowd, second, outlier]))
    assert values.shape == (401,)
    assert values[-1] < values[:400].min()
    assert (values > 0).all()


def test_density_of_a_large_pool_uses_a_sample(monkeypatch):
    # beyond DENSITY_SAMPLE rows, neighbours come from an evenly spaced sample; rows of the
    # sample leave themselves out and the others do not, so both kinds score alike
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(4, 8)) * 3
    vectors = centres[np.arange(1000) % 4] + rng.normal(size=(1000, 8)) * 0.3
    full = density(vectors)
    monkeypatch.setattr(selection, "DENSITY_SAMPLE", 400)
    sampled = density(vectors)
    assert np.corrcoef(full, sampled)[0, 1] > 0.8


def test_entropy_kmeans_prefers_an_uncertain_crowd_to_an_odd_sentence():
    # one sentence unlike all others is the most uncertain; the crowd's most uncertain member
    # (a little less so) is what entropy_kmeans takes first, plain entropy takes the outlier
    rng = np.random.default_rng(3)
    crowd = rng.normal(size=(60, 8)) * 0.2 + np.array([2.0, 1, 0, 0, 0, 0, 0, 0])
    others = rng.normal(size=(60, 8)) * 0.2 + np.array([0, 1.0, 2, 0, 0, 0, 0, 0])
    embeddings = np.vstack([crowd, others, [[0, 0, 0, 0, 0, 0, 0, -9.0]]])
    entropy = np.concatenate([0.5 + rng.random(60) * 0.1, 0.1 + rng.random(60) * 0.1, [0.7]])
    pool = Pool(
        ids=np.arange(121),
        lengths=np.full(121, 10),
        uncertainty={"mean_entropy": entropy},
        embeddings=embeddings,
    )
    assert select("entropy", pool, Budget(1)).tolist() == [120]
    first = select("entropy_kmeans", pool, Budget(1)).tolist()
    assert first != [120] and first[0] < 60


def test_selection_cold_start_covers_the_corpus_variety():
    # Three kinds of sentences in unequal numbers; a 3-sentence cold-start batch should take
    # one of each, where random picks would mostly repeat the largest kind.
    kinds = (
        ["张三在北京大学读书，后来去了清华大学{}。"] * 30
        + ["腾讯公司发布了新游戏王者荣耀第{}季。"] * 8
        + ["他担任高级工程师和技术总监{}年。"] * 6
    )
    texts = [template.format(i) for i, template in enumerate(kinds)]
    kind = np.array([0] * 30 + [1] * 8 + [2] * 6)
    pool = Pool(ids=np.arange(len(texts)), lengths=[len(t) for t in texts], texts=texts)
    assert not pool.has_model
    for name in ("entropy_kmeans", "entropy", "mnlp", "least_confidence"):
        chosen = select(name, pool, Budget(3), seed=1)
        assert sorted(kind[chosen].tolist()) == [0, 1, 2], name


def test_selection_cold_start_without_texts_is_random_order():
    pool = Pool(ids=np.arange(10), lengths=np.full(10, 4))
    assert len(select("entropy_kmeans", pool, Budget(4))) == 4


def test_selection_empty_pool_selects_nothing():
    pool = Pool(ids=np.array([], dtype=np.int64), lengths=np.array([], dtype=np.int64))
    assert select("entropy_kmeans", pool, Budget(5)).tolist() == []


def test_selection_budget_larger_than_pool_takes_everything():
    pool = make_pool(n=7)
    assert sorted(select("entropy_kmeans", pool, Budget(50)).tolist()) == pool.ids.tolist()
    chars = int(pool.lengths.sum()) * 2
    assert len(select("random", pool, Budget(chars, "characters"))) == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lengths": [1, 2]}, "lengths"),
        ({"uncertainty": {"entropy": [0.1, 0.2, 0.3]}}, "unknown uncertainty key"),
        ({"uncertainty": {"mean_entropy": [0.1]}}, "mean_entropy"),
        ({"embeddings": np.zeros((2, 3))}, "embeddings"),
        ({"texts": ["a"]}, "texts"),
    ],
)
def test_selection_pool_refuses_misaligned_arrays(kwargs, message):
    base = {"ids": [1, 2, 3], "lengths": [3, 4, 5]}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Pool(**base)


def test_selection_budget_validates_unit_and_amount():
    with pytest.raises(ValueError, match="unit"):
        Budget(5, "tokens")
    with pytest.raises(ValueError, match="positive"):
        Budget(0)


def test_selection_take_character_prefix():
    order = np.array([2, 0, 1])
    lengths = np.array([10, 20, 30])
    assert take(order, lengths, Budget(30, "characters")).tolist() == [2]
    assert take(order, lengths, Budget(31, "characters")).tolist() == [2, 0]
    assert take(order, lengths, Budget(41, "characters")).tolist() == [2, 0, 1]


def test_selection_cold_start_on_a_large_pool_clusters_a_sample(monkeypatch):
    monkeypatch.setattr(selection, "COLD_START_SAMPLE", 20)
    texts = [f"第{i}个句子，张三在北京{i % 5}号工作。" for i in range(60)]
    pool = Pool(ids=np.arange(100, 160), lengths=[len(t) for t in texts], texts=texts)
    everything = select("entropy_kmeans", pool, Budget(60), seed=2)
    assert sorted(everything.tolist()) == pool.ids.tolist()
    first = select("entropy_kmeans", pool, Budget(4), seed=2)
    assert len(set(first.tolist())) == 4


def test_selection_first_call_in_a_fresh_process_runs_single_threaded(tmp_path):
    """threadpool_limits caps only libraries already loaded; scikit-learn's OpenMP used to load
    inside the first selection and run uncapped, so the same seed picked another batch in a
    fresh process (the first curve of every simulate_al worker) than later in it."""
    script = tmp_path / "first_selection.py"
    script.write_text(
        "import numpy as np, threadpoolctl\n"
        "from learner import selection\n"
        "seen = []\n"
        "original = selection._cluster\n"
        "def spy(*args, **kwargs):\n"
        "    labels = original(*args, **kwargs)\n"
        "    seen.extend(i['num_threads'] for i in threadpoolctl.threadpool_info())\n"
        "    return labels\n"
        "selection._cluster = spy\n"
        "rng = np.random.default_rng(0)\n"
        "texts = [''.join(rng.choice(list('北京上海大学公司张三'), size=12)) for _ in range(300)]\n"
        "pool = selection.Pool(ids=np.arange(300), lengths=[12] * 300, texts=texts)\n"
        "selection.select('entropy_kmeans', pool, selection.Budget(20), seed=1)\n"
        "print(seen)\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "2"},
    )
    assert result.returncode == 0, result.stderr
    threads = json.loads(result.stdout.strip().splitlines()[-1])
    assert threads and set(threads) == {1}, threads
