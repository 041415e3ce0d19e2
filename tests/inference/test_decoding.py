"""CRF decoding checked against brute-force enumeration of every tag path."""

import itertools

import numpy as np
import pytest

from inference import decoding


def _crf(tags, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    trans = rng.normal(size=(tags, tags)) * scale
    return trans, rng.normal(size=tags) * scale, rng.normal(size=tags) * scale


def _path_score(em, path, trans, start, end):
    score = start[path[0]] + end[path[-1]] + sum(em[t, tag] for t, tag in enumerate(path))
    return score + sum(trans[a, b] for a, b in itertools.pairwise(path))


def _brute(em, length, trans, start, end):
    """Best path, its score, log Z and marginals of one sentence by enumerating all paths."""
    tags = em.shape[1]
    paths = list(itertools.product(range(tags), repeat=length))
    scores = np.array([_path_score(em, p, trans, start, end) for p in paths])
    top = scores.max()
    log_z = top + np.log(np.exp(scores - top).sum())
    probs = np.zeros((em.shape[0], tags))
    for path, score in zip(paths, scores, strict=True):
        for t, tag in enumerate(path):
            probs[t, tag] += np.exp(score - log_z)
    best = int(scores.argmax())
    return list(paths[best]), scores[best], log_z, probs


CASES = [
    # (lengths, time, tags): ragged batches, a batch of one, length-1 sentences, T == 1
    ([4, 1, 3, 2], 4, 3),
    ([5], 5, 4),
    ([1, 1], 1, 5),
    ([2, 5, 5, 1, 4], 5, 3),
]


@pytest.mark.parametrize(("lengths", "time", "tags"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_decoding_viterbi_equals_brute_force(lengths, time, tags, seed):
    em = np.random.default_rng(seed + 10).normal(size=(len(lengths), time, tags)) * 2
    trans, start, end = _crf(tags, seed)
    paths, best = decoding.viterbi(em, lengths, trans, start, end)
    assert paths.dtype == np.int64 and paths.shape == (len(lengths), time)
    for b, length in enumerate(lengths):
        want_path, want_score, _, _ = _brute(em[b], length, trans, start, end)
        assert paths[b, :length].tolist() == want_path
        assert (paths[b, length:] == 0).all()
        assert best[b] == pytest.approx(want_score, abs=1e-9)


@pytest.mark.parametrize(("lengths", "time", "tags"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_decoding_forward_backward_equals_brute_force(lengths, time, tags, seed):
    em = np.random.default_rng(seed + 20).normal(size=(len(lengths), time, tags)) * 3
    trans, start, end = _crf(tags, seed, scale=2.0)
    log_z = decoding.log_partition(em, lengths, trans, start, end)
    probs = decoding.marginals(em, lengths, trans, start, end)
    for b, length in enumerate(lengths):
        _, _, want_log_z, want_probs = _brute(em[b], length, trans, start, end)
        assert log_z[b] == pytest.approx(want_log_z, abs=1e-9)
        np.testing.assert_allclose(probs[b], want_probs, atol=1e-10)
        np.testing.assert_allclose(probs[b, :length].sum(axis=1), 1.0, atol=1e-12)


def test_decoding_log_space_reference_equals_scaled_path():
    rng = np.random.default_rng(3)
    em = rng.normal(size=(16, 12, 7)) * 4
    lengths = rng.integers(1, 13, size=16)
    trans, start, end = _crf(7, 3, scale=3.0)
    fast = decoding.forward_backward(em, lengths, trans, start, end)
    slow = decoding.forward_backward_log(em, lengths, trans, start, end)
    np.testing.assert_allclose(fast.log_z, slow.log_z, rtol=1e-12)
    np.testing.assert_allclose(fast.marginals, slow.marginals, atol=1e-12)


def _spy_log_space(monkeypatch) -> list:
    """Rows handed to the log-space pass."""
    handed = []
    reference = decoding.forward_backward_log

    def spy(em, lengths, *crf):
        handed.append(len(lengths))
        return reference(em, lengths, *crf)

    monkeypatch.setattr(decoding, "forward_backward_log", spy)
    return handed


def test_decoding_falls_back_to_log_space_when_scaled_mass_underflows(monkeypatch):
    # Tag 0 then tag 1 is forbidden-ish and every other path is 2000 nats down: in
    # probability space the second step's mass is exactly zero.
    em = np.array([[[0.0, -2000.0], [-2000.0, 0.0]]])
    trans = np.array([[0.0, -2000.0], [0.0, 0.0]])
    start = end = np.zeros(2)
    args = (em, np.array([2]), trans, start, end)
    handed = _spy_log_space(monkeypatch)
    result = decoding.forward_backward(*args)
    assert handed == [1]
    _, _, want_log_z, want_probs = _brute(em[0], 2, trans, start, end)
    assert result.log_z[0] == pytest.approx(want_log_z)
    np.testing.assert_allclose(result.marginals[0], want_probs, atol=1e-12)


def test_decoding_float32_emissions_give_the_float64_paths():
    rng = np.random.default_rng(5)
    em = rng.normal(size=(8, 9, 6)) * 3
    lengths = rng.integers(1, 10, size=8)
    trans, start, end = _crf(6, 5)
    paths64, best64 = decoding.viterbi(em, lengths, trans, start, end)
    paths32, best32 = decoding.viterbi(em.astype(np.float32), lengths, trans, start, end)
    assert best32.dtype == np.float32
    np.testing.assert_array_equal(paths32, paths64)
    np.testing.assert_allclose(best32, best64, rtol=1e-5)


def test_decoding_uncertainty_matches_its_definitions():
    lengths = [3, 1, 2]
    em = np.random.default_rng(7).normal(size=(3, 3, 3)) * 2
    trans, start, end = _crf(3, 7)
    result = decoding.decode(em, lengths, trans, start, end)
    measures = decoding.sentence_uncertainty(
        result.entropy, lengths, result.best_scores, result.log_z
    )
    for b, length in enumerate(lengths):
        _, best, log_z, probs = _brute(em[b], length, trans, start, end)
        entropies = [-(p[p > 0] * np.log(p[p > 0])).sum() for p in probs[:length]]
        assert measures["mean_entropy"][b] == pytest.approx(np.mean(entropies))
        assert measures["max_entropy"][b] == pytest.approx(np.max(entropies))
        assert measures["least_confidence"][b] == pytest.approx(1 - np.exp(best - log_z))
        assert measures["mnlp"][b] == pytest.approx((best - log_z) / length)
        assert (result.entropy[b, length:] == 0).all()


def test_decoding_certain_sentence_has_no_uncertainty():
    em = np.zeros((1, 4, 3))
    em[0, :, 0] = 50.0
    result = decoding.decode(em, [4], np.zeros((3, 3)), np.zeros(3), np.zeros(3))
    measures = decoding.sentence_uncertainty(result.entropy, [4], result.best_scores, result.log_z)
    assert measures["least_confidence"][0] == pytest.approx(0.0, abs=1e-12)
    assert measures["max_entropy"][0] == pytest.approx(0.0, abs=1e-12)
    assert result.path_probs[0] == pytest.approx(1.0)


def test_decoding_span_confidence_is_geometric_mean_of_path_marginals():
    lengths = [4, 3]
    em = np.random.default_rng(9).normal(size=(2, 4, 3))
    trans, start, end = _crf(3, 9)
    result = decoding.decode(em, lengths, trans, start, end)
    got = decoding.span_confidence(result.path_probs, [0, 0, 1], [1, 0, 2], [3, 4, 3])
    for score, (row, lo, hi) in zip(got, [(0, 1, 3), (0, 0, 4), (1, 2, 3)], strict=True):
        picked = [result.marginals[row, t, result.paths[row, t]] for t in range(lo, hi)]
        assert score == pytest.approx(np.prod(picked) ** (1 / (hi - lo)))
        assert 0.0 < score <= 1.0


@pytest.mark.parametrize("lengths", [[0, 2], [3, 1], [2]])
def test_decoding_rejects_lengths_outside_the_batch(lengths):
    em = np.zeros((2, 2, 3))
    with pytest.raises(ValueError):
        decoding.viterbi(em, lengths, np.zeros((3, 3)), np.zeros(3), np.zeros(3))


def test_decoding_float32_forward_backward_agrees_with_float64():
    rng = np.random.default_rng(11)
    em = rng.normal(size=(16, 20, 9)) * 4
    lengths = rng.integers(1, 21, size=16)
    trans, start, end = _crf(9, 11, scale=2.0)
    trans[0, 3] = -10000.0  # a forbidden transition, as learner/crf.py writes them
    exact = decoding.forward_backward(em, lengths, trans, start, end)
    fast = decoding.forward_backward(em.astype(np.float32), lengths, trans, start, end)
    assert fast.marginals.dtype == np.float32 and fast.log_z.dtype == np.float64
    np.testing.assert_allclose(fast.marginals, exact.marginals, atol=2e-6)
    np.testing.assert_allclose(fast.log_z, exact.log_z, rtol=1e-6)


def test_decoding_float32_underflow_falls_back_to_log_space(monkeypatch):
    # 150 nats apart: nothing in float64, but below float32's smallest normal number
    em = np.array([[[0.0, -150.0], [-150.0, 0.0]]], dtype=np.float32)
    trans = np.array([[0.0, -150.0], [0.0, 0.0]])
    start = end = np.zeros(2)
    args = (em, np.array([2]), trans.astype(np.float32), start, end)
    handed = _spy_log_space(monkeypatch)
    result = decoding.forward_backward(*args)
    assert handed == [1]
    _, _, want_log_z, want_probs = _brute(em[0].astype(np.float64), 2, trans, start, end)
    assert result.log_z[0] == pytest.approx(want_log_z)
    np.testing.assert_allclose(result.marginals[0], want_probs, atol=1e-9)


def test_decoding_redoes_only_the_rows_that_underflow(monkeypatch):
    rng = np.random.default_rng(13)
    em = rng.normal(size=(3, 2, 2))
    em[1] = [[0.0, -2000.0], [-2000.0, 0.0]]
    trans = np.array([[0.0, -2000.0], [0.0, 0.0]])
    start = end = np.zeros(2)
    handed = _spy_log_space(monkeypatch)
    result = decoding.decode(em, [2, 2, 2], trans, start, end)
    assert handed == [1]
    for b in range(3):
        path, best, log_z, probs = _brute(em[b], 2, trans, start, end)
        assert result.paths[b].tolist() == path and result.best_scores[b] == pytest.approx(best)
        assert result.log_z[b] == pytest.approx(log_z)
        np.testing.assert_allclose(result.marginals[b], probs, atol=1e-12)


def _bioes(types: int, seed: int):
    """Learned scores plus the penalties learner/crf.py adds for what BIOES forbids, with the
    tags in the order a bundle lists them (O, then B, I, E, S of each type)."""
    tags = [("O", -1)] + [(part, kind) for kind in range(types) for part in "BIES"]
    rng = np.random.default_rng(seed)
    trans = rng.normal(size=(len(tags), len(tags)))
    start, end = rng.normal(size=len(tags)), rng.normal(size=len(tags))
    for j, (part, kind) in enumerate(tags):
        start[j] -= 0 if part in "OBS" else 10000.0
        end[j] -= 0 if part in "OES" else 10000.0
        for i, (before, kind_before) in enumerate(tags):
            closed = before in "OES"
            ok = part in "OBS" if closed else part in "IE" and kind == kind_before
            trans[i, j] -= 0 if ok else 10000.0
    return trans, start, end


def _viterbi_reference(em, length, trans, start, end):
    """The plain dense Viterbi of one sentence."""
    history = [start + em[0]]
    for t in range(1, length):
        history.append((history[-1][:, None] + trans).max(axis=0) + em[t])
    path = [int(np.argmax(history[-1] + end))]
    for t in range(length - 2, -1, -1):
        path.insert(0, int(np.argmax(history[t] + trans[:, path[0]])))
    return path, float((history[-1] + end).max())


@pytest.mark.parametrize("types", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_decoding_bioes_constrained_crf_equals_brute_force(types, seed):
    trans, start, end = _bioes(types, seed)
    tags = len(trans)
    lengths = [4, 1, 3] if types == 1 else [3, 2]
    em = np.random.default_rng(seed + 30).normal(size=(len(lengths), max(lengths), tags)) * 3
    result = decoding.decode(em, lengths, trans, start, end)
    for b, length in enumerate(lengths):
        path, best, log_z, probs = _brute(em[b], length, trans, start, end)
        assert result.paths[b, :length].tolist() == path
        assert result.best_scores[b] == pytest.approx(best, abs=1e-9)
        assert result.log_z[b] == pytest.approx(log_z, abs=1e-9)
        np.testing.assert_allclose(result.marginals[b], probs, atol=1e-10)


def test_decoding_bioes_with_ten_types_equals_the_dense_references():
    # CLUENER's 41 tags: the decoder runs the allowed transitions as a block and a sparse rest
    trans, start, end = _bioes(10, 2)
    rng = np.random.default_rng(9)
    lengths = rng.integers(1, 40, size=24)
    em = rng.normal(size=(24, 40, 41)) * 4
    result = decoding.decode(em, lengths, trans, start, end)
    exact = decoding.forward_backward_log(em, lengths, trans, start, end)
    np.testing.assert_allclose(result.log_z, exact.log_z, rtol=1e-12)
    np.testing.assert_allclose(result.marginals, exact.marginals, atol=1e-12)
    for b, length in enumerate(lengths):
        path, best = _viterbi_reference(em[b], length, trans, start, end)
        assert result.paths[b, :length].tolist() == path
        assert result.best_scores[b] == pytest.approx(best, abs=1e-9)
    fast = decoding.decode(em.astype(np.float32), lengths, trans, start, end)
    np.testing.assert_array_equal(fast.paths, result.paths)
    np.testing.assert_allclose(fast.marginals, result.marginals, atol=2e-5)


def test_decoding_layout_of_bioes_is_one_block_and_two_transitions_per_inside_tag():
    layout = decoding.transition_layout(*_bioes(10, 0))
    assert layout.width == 48 and layout.rows[1] - layout.rows[0] == 21 and layout.cols == 32
    assert len(layout.sparse_prev) == 40
    into_block = {int(tag) for tag in layout.order[:21]}
    assert into_block == {0} | {1 + 4 * k for k in range(10)} | {4 + 4 * k for k in range(10)}
    dense = decoding.transition_layout(*_crf(7, 0))
    assert dense.rows == (0, 7) and dense.cols == 16 and len(dense.sparse_prev) == 0
