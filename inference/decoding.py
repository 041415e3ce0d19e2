"""Linear-chain CRF decoding in numpy, vectorised over the whole batch.

Every function takes ``emissions`` ``[B, T, L]``, ``lengths`` ``[B]`` (1 <= length <= T; the
positions from ``length`` on are padding and are ignored), ``transitions`` ``[L, L]`` where
``transitions[i, j]`` scores tag i followed by tag j, and ``start``/``end`` ``[L]``. A path's
score is ``start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_last]``.

The loops run over time steps only, never over sentences: a per-sentence Python Viterbi was
what dominated end-to-end serving time once the ONNX graph ran in INT8.

Marginals come from forward-backward. The fast path runs it in probability space with one
scale factor per step (``exp`` taken once per batch, each step a small matrix product), which
equals the log-space recursion up to rounding; when a step's scaled mass underflows to zero
(scores hundreds of nats apart) the batch is redone with the plain log-space (logsumexp)
recursion, ``forward_backward_log``, which is also the reference the tests check against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_TINY = np.finfo(np.float64).tiny


def _inputs(emissions, lengths, transitions, start, end, dtype):
    em = np.asarray(emissions, dtype=dtype)
    if em.ndim != 3:
        raise ValueError(f"emissions must be [batch, time, tags], got shape {em.shape}")
    batch, time, tags = em.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {lengths.shape}")
    if batch and (lengths.min() < 1 or lengths.max() > time):
        raise ValueError(f"every length must be between 1 and {time}, got {lengths.tolist()}")
    trans = np.asarray(transitions, dtype=dtype)
    start = np.asarray(start, dtype=dtype)
    end = np.asarray(end, dtype=dtype)
    if trans.shape != (tags, tags) or start.shape != (tags,) or end.shape != (tags,):
        raise ValueError(
            f"CRF shapes {trans.shape}, {start.shape}, {end.shape} do not fit {tags} tags"
        )
    return em, lengths, trans, start, end


def viterbi(emissions, lengths, transitions, start, end) -> tuple[np.ndarray, np.ndarray]:
    """Best tag path per sentence: ``(paths int64 [B, T], best_scores [B])``; padding is 0.

    Computes in float32 unless the emissions are float64. The forward pass keeps only the
    running maxima; back-pointers are recomputed for the one chosen tag per step while
    backtracking, which is a ``[B, L]`` operation instead of storing a ``[B, L, L]`` argmax.
    """
    dtype = np.float64 if np.asarray(emissions).dtype == np.float64 else np.float32
    em, lengths, trans, start, end = _inputs(emissions, lengths, transitions, start, end, dtype)
    batch, time, tags = em.shape
    if batch == 0:
        return np.zeros((0, time), np.int64), np.zeros(0, dtype)
    trans_by_next = np.ascontiguousarray(trans.T)  # [next j, previous i]
    shortest = int(lengths.min())
    history = np.empty((time, batch, tags), dtype)  # best score ending in each tag
    # scratch[i, b, j] = delta[b, i] + trans[i, j]: the max over the leading axis is an
    # elementwise maximum of contiguous [B, L] slabs, about 3x faster than reducing rows.
    scratch = np.empty((tags, batch, tags), dtype)
    trans_rows = trans[:, None, :]
    np.add(start, em[:, 0], out=history[0])
    for t in range(1, time):
        np.add(history[t - 1].T[:, :, None], trans_rows, out=scratch)
        np.maximum.reduce(scratch, axis=0, out=history[t])
        history[t] += em[:, t]
        if t >= shortest:  # finished sentences carry their last scores forward
            np.copyto(history[t], history[t - 1], where=(t >= lengths)[:, None])
    final = history[time - 1] + end
    last_tag = final.argmax(axis=1)
    best = final[np.arange(batch), last_tag]
    last_pos = lengths - 1
    paths = np.zeros((batch, time), np.int64)
    tag = np.where(last_pos == time - 1, last_tag, 0)
    paths[:, time - 1] = tag
    for t in range(time - 2, -1, -1):
        tag = (history[t] + trans_by_next[tag]).argmax(axis=1)
        if t >= shortest - 1:
            tag = np.where(t < last_pos, tag, np.where(t == last_pos, last_tag, 0))
        paths[:, t] = tag
    return paths, best


class ForwardBackward(NamedTuple):
    log_z: np.ndarray  # float64 [B], log partition function
    marginals: np.ndarray  # [B, T, L], P(tag at t); rows past the length are 0


def _forward_backward_scaled(em, lengths, trans, start, end) -> ForwardBackward | None:
    """Probability-space forward-backward with per-step scaling; None when mass underflows.

    Runs in the emissions' dtype (float32 from ONNX: half the memory traffic; log Z is summed
    in float64). Arrays are time-major so every step reads and writes contiguous ``[B, L]``
    slabs, and the marginals are built inside the forward buffer as the backward pass goes.
    """
    dtype = em.dtype
    batch, time, tags = em.shape
    shortest = int(lengths.min())
    last_pos = lengths - 1
    em_max = em.max(axis=2)  # [B, T]
    weights = np.empty((time, batch, tags), dtype)  # best tag at each position weighs 1
    np.subtract(em.transpose(1, 0, 2), em_max.T[:, :, None], out=weights)
    np.exp(weights, out=weights)
    trans_max = float(trans.max())
    trans_w = np.exp(trans - trans_max)
    trans_w_t = np.ascontiguousarray(trans_w.T)
    start_w = np.exp(start - start.max())
    end_w = np.exp(end - end.max())
    add = np.add.reduce

    alpha = np.empty((time, batch, tags), dtype)  # becomes the marginals
    scales = np.ones((time, batch))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.multiply(start_w, weights[0], out=alpha[0])
        total = add(alpha[0], axis=1)
        scales[0] = total
        alpha[0] /= total[:, None]
        for t in range(1, time):
            cur = alpha[t]
            np.dot(alpha[t - 1], trans_w, out=cur)
            cur *= weights[t]
            total = add(cur, axis=1)
            if t >= shortest:  # finished sentences keep their last column, scale 1
                done = t >= lengths
                np.copyto(cur, alpha[t - 1], where=done[:, None])
                total[done] = 1.0
            scales[t] = total
            cur /= total[:, None]
        finish = add(alpha[time - 1] * end_w, axis=1).astype(np.float64)

        beta = np.tile(end_w, (batch, 1))
        step = np.empty_like(beta)
        product = np.empty_like(beta)
        alpha[time - 1] *= beta
        for t in range(time - 2, -1, -1):
            np.multiply(weights[t + 1], beta, out=product)
            np.dot(product, trans_w_t, out=step)
            total = add(step, axis=1)
            if t >= shortest - 1:  # a sentence's last position starts from the end scores
                at_end = t >= last_pos
                step[at_end] = end_w
                total[at_end] = 1.0
            step /= total[:, None]
            alpha[t] *= step
            beta, step = step, beta
        norm = add(alpha, axis=2)  # [T, B]
        mask = np.arange(time)[:, None] < lengths[None, :]
        real = norm[mask]
        if not (
            (scales[mask] > 0).all()
            and np.isfinite(scales[mask]).all()
            and (finish > 0).all()
            and (real > 0).all()
            and np.isfinite(real).all()
        ):
            return None
        alpha /= norm[:, :, None]
    alpha[~mask] = 0.0
    log_z = (
        np.log(finish)
        + float(end.max())
        + float(start.max())
        + np.where(mask, np.log(scales) + em_max.T, 0.0).sum(axis=0)
        + trans_max * (lengths - 1)
    )
    return ForwardBackward(log_z, alpha.transpose(1, 0, 2))


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    top = values.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        summed = np.log(np.exp(values - top).sum(axis=axis))
    return summed + np.squeeze(top, axis=axis)


def forward_backward_log(emissions, lengths, transitions, start, end) -> ForwardBackward:
    """Forward-backward with logsumexp at every step: slower, never underflows."""
    em, lengths, trans, start, end = _inputs(
        emissions, lengths, transitions, start, end, np.float64
    )
    batch, time, tags = em.shape
    last_pos = lengths - 1
    alpha = np.empty((batch, time, tags))
    alpha[:, 0] = start + em[:, 0]
    for t in range(1, time):
        step = _logsumexp(alpha[:, t - 1, :, None] + trans[None], axis=1) + em[:, t]
        alpha[:, t] = np.where((t < lengths)[:, None], step, alpha[:, t - 1])
    log_z = _logsumexp(alpha[:, time - 1] + end, axis=1)
    beta = np.empty((batch, time, tags))
    beta[:, time - 1] = end
    for t in range(time - 2, -1, -1):
        step = _logsumexp(trans[None] + (em[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = np.where((t < last_pos)[:, None], step, end)
    mask = np.arange(time)[None, :] < lengths[:, None]
    marginals = np.exp(alpha + beta - log_z[:, None, None])
    marginals[~mask] = 0.0
    return ForwardBackward(log_z, marginals)


def forward_backward(emissions, lengths, transitions, start, end) -> ForwardBackward:
    """``(log_z float64 [B], marginals [B, T, L])``, masked by ``lengths``.

    Marginals are float32 for float32 emissions, else float64; they may be a transposed
    view (not C-contiguous).
    """
    dtype = np.float32 if np.asarray(emissions).dtype == np.float32 else np.float64
    em, lens, trans, st, en = _inputs(emissions, lengths, transitions, start, end, dtype)
    if em.shape[0] == 0:
        return ForwardBackward(np.zeros(0), np.zeros(em.shape, dtype))
    result = _forward_backward_scaled(em, lens, trans, st, en)
    if result is None:
        result = forward_backward_log(em, lens, trans, st, en)
    return result


def log_partition(emissions, lengths, transitions, start, end) -> np.ndarray:
    """log Z per sentence: the log-sum-exp of every tag path's score."""
    return forward_backward(emissions, lengths, transitions, start, end).log_z


def marginals(emissions, lengths, transitions, start, end) -> np.ndarray:
    """P(tag at position t) per sentence, ``[B, T, L]``, zero past each length."""
    return forward_backward(emissions, lengths, transitions, start, end).marginals


def token_entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each position's tag distribution, ``[B, T]``; padding gives 0."""
    logs = np.maximum(probs, np.finfo(probs.dtype).tiny)
    np.log(logs, out=logs)
    logs *= probs
    return -np.add.reduce(logs, axis=-1)


def path_probabilities(probs: np.ndarray, paths: np.ndarray) -> np.ndarray:
    """The marginal probability of the chosen tag at each position, ``[B, T]``."""
    batch, time = paths.shape
    return probs[np.arange(batch)[:, None], np.arange(time)[None, :], paths]


def span_confidence(path_probs: np.ndarray, rows, starts, ends) -> np.ndarray:
    """Confidence of spans ``[start, end)`` of batch row ``rows``: the geometric mean of the
    marginal probabilities of the span's tags on the Viterbi path.

    The geometric mean keeps the score in [0, 1] and comparable across span lengths (a plain
    product would punish long entities); it is low when any one tag of the span is doubtful,
    which is what a reviewer needs to see.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    logs = np.log(np.maximum(path_probs, _TINY))
    cumulative = np.zeros((logs.shape[0], logs.shape[1] + 1))
    np.cumsum(logs, axis=1, out=cumulative[:, 1:])
    mean_log = (cumulative[rows, ends] - cumulative[rows, starts]) / (ends - starts)
    return np.exp(mean_log)


def sentence_uncertainty(
    entropy: np.ndarray, lengths: np.ndarray, best_scores: np.ndarray, log_z: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-sentence uncertainty measures, each an array ``[B]``.

    ``mean_entropy``/``max_entropy``: over the sentence's token entropies; ``least_confidence``:
    1 - P(best path); ``mnlp``: log P(best path) / length (maximum normalised log-probability;
    lower means less sure). ``entropy`` must be zero past each length, as ``token_entropy`` of
    masked marginals is.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    log_best = np.minimum(np.asarray(best_scores, dtype=np.float64) - log_z, 0.0)
    return {
        "mean_entropy": entropy.sum(axis=1) / lengths,
        "max_entropy": entropy.max(axis=1),
        "least_confidence": -np.expm1(log_best),
        "mnlp": log_best / lengths,
    }


class Decoded(NamedTuple):
    paths: np.ndarray  # int64 [B, T]
    best_scores: np.ndarray  # [B]
    log_z: np.ndarray  # [B]
    marginals: np.ndarray  # [B, T, L]
    entropy: np.ndarray  # [B, T]
    path_probs: np.ndarray  # [B, T]


def decode(emissions, lengths, transitions, start, end) -> Decoded:
    """Viterbi, marginals, token entropy and path probabilities for a whole batch at once."""
    paths, best = viterbi(emissions, lengths, transitions, start, end)
    log_z, probs = forward_backward(emissions, lengths, transitions, start, end)
    return Decoded(
        paths, best, log_z, probs, token_entropy(probs), path_probabilities(probs, paths)
    )
