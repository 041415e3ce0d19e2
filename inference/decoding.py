"""Linear-chain CRF decoding, compiled with numba and run over the whole batch in one call.

Every function takes ``emissions`` ``[B, T, L]``, ``lengths`` ``[B]`` (1 <= length <= T; the
positions from ``length`` on are padding and are ignored), ``transitions`` ``[L, L]`` where
``transitions[i, j]`` scores tag i followed by tag j, and ``start``/``end`` ``[L]``. A path's
score is ``start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_last]``.

Serving time is what this module is about. A per-sentence Python Viterbi dominated end-to-end
time once the ONNX graph ran in INT8; numpy over whole batches then spent most of its time
calling small array operations once per time step. Two compiled loops run over the batch's
sentences: ``_viterbi_rows`` (best paths, and emissions shifted by each step's largest) and
``_marginal_rows`` (forward-backward, marginals, the path's marginals). Between and after them
numpy takes the ``exp`` of the shifted emissions and the ``log`` of the marginals for the
token entropy over the whole batch at once: its SIMD kernels do that about 10x faster than a
compiled loop's one call per element (1.6 M values per 1,024 CLUENER sentences; the decoding
took 54 ms instead of 73 ms, one thread, on an AVX-512 Xeon). Both loops run in the tag order
of a ``Layout``, where BIOES's allowed transitions make one dense block and a sparse rest
(43 ms instead of 54).

Forward-backward runs in probability space with one scale factor per step (``exp`` taken once
per score), which equals the log-space recursion up to rounding. A sentence whose scaled mass
underflows to zero (scores hundreds of nats apart) is redone with the plain log-space
(logsumexp) recursion, ``forward_backward_log``, which is also the reference the tests check.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
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


# A transition this far below the best one is forbidden (``learner.crf.FORBIDDEN`` is -10000):
# its weight exp(score - best) is exactly 0 in float32 and float64 alike, and no emissions a
# network gives outweigh it in the Viterbi.
_NEGLIGIBLE = 1000.0
# Tag vectors are padded to a multiple of this (float32 values in one AVX-512 register or two
# AVX2 ones), so the compiled loops over tags run in whole vectors with no scalar remainder.
_VECTOR = 16


class Layout(NamedTuple):
    """The tags reordered so that the allowed transitions are mostly one dense block.

    Position k of the reordered, padded tag vectors (``width`` long; the padding is never
    reachable) holds tag ``order[k]``. Previous tags ``rows[0]:rows[1]`` go into next tags
    ``0:cols`` with scores ``block`` (``-inf`` where forbidden); the allowed transitions outside
    that block are ``sparse_prev -> sparse_next`` with ``sparse_scores``. ``trans``, ``start``
    and ``end`` are the CRF's scores reordered and padded (``-inf``).

    The block is the largest group of next tags that share their set of previous tags, with
    those previous tags placed next to each other. BIOES over K types allows (2K + 1)^2 + 4K of
    its (4K + 1)^2 transitions: O, E-* and S-* into O, B-* and S-* (the block), and B-X or I-X
    into I-X or E-X (the sparse rest, two each). For CLUENER's ten types the loops then run 21
    rows of 32 scores per step (plus 40 sparse ones) instead of 41 of 48. A matrix with
    nothing forbidden is one block: the dense computation.
    """

    order: np.ndarray
    width: int
    rows: tuple[int, int]
    cols: int
    block: np.ndarray
    sparse_prev: np.ndarray
    sparse_next: np.ndarray
    sparse_scores: np.ndarray
    trans: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _padded(tags: int) -> int:
    return -(-tags // _VECTOR) * _VECTOR


def transition_layout(trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> Layout:
    """Reorder the tags around the largest group of next tags sharing their previous tags."""
    tags = len(trans)
    allowed = trans > trans.max() - _NEGLIGIBLE
    groups: dict[bytes, list[int]] = {}
    for j in range(tags):
        groups.setdefault(allowed[:, j].tobytes(), []).append(j)
    into = max(groups.values(), key=lambda group: len(group) * allowed[:, group[0]].sum())
    came = np.flatnonzero(allowed[:, into[0]]).tolist()
    order = [j for j in into if j not in came] + [j for j in into if j in came]
    order += [i for i in came if i not in into]
    order += [j for j in range(tags) if j not in order]
    order = np.asarray(order, dtype=np.int64)
    width = _padded(tags)
    first = len(into) - len(set(into) & set(came))  # the previous tags follow the next-only
    rows = (first, first + len(came))
    cols = min(width, _padded(len(into)))
    lowest = trans.dtype.type(-np.inf)
    scores = np.full((width, width), lowest, trans.dtype)
    scores[:tags, :tags] = trans[np.ix_(order, order)]
    ok = np.zeros((width, width), np.bool_)
    ok[:tags, :tags] = allowed[np.ix_(order, order)]
    inside = np.zeros_like(ok)
    inside[rows[0] : rows[1], :cols] = True
    block = np.where(ok, scores, lowest)[rows[0] : rows[1], :cols]
    sparse_prev, sparse_next = np.nonzero(ok & ~inside)
    return Layout(
        order,
        width,
        rows,
        cols,
        np.ascontiguousarray(block),
        sparse_prev.astype(np.int64),
        sparse_next.astype(np.int64),
        np.ascontiguousarray(scores[sparse_prev, sparse_next]),
        scores,
        np.concatenate([start[order], np.full(width - tags, lowest, start.dtype)]),
        np.concatenate([end[order], np.full(width - tags, lowest, end.dtype)]),
    )


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _viterbi_rows(em, lengths, order, rows, cols, block, sparse_prev, sparse_next,
                  sparse_scores, trans, start, end, want_shifted, paths, best, shifted,
                  log_scale):  # fmt: skip
    """Best paths row by row, in the ``Layout``'s order; with ``want_shifted`` also each
    step's emissions, reordered and less their largest (``-inf`` past the length and in the
    padding), whose sum of largest goes to ``log_scale``."""
    batch, time, tags = em.shape
    width = len(start)
    lowest = em.dtype.type(-np.inf)
    history = np.full((time, width), lowest, em.dtype)  # best score of a path ending in a tag
    best_in = np.empty(width, em.dtype)  # best score of a path into each tag at this step
    for b in range(batch):
        n = lengths[b]
        for k in range(tags):
            history[0, k] = start[k] + em[b, 0, order[k]]
        for t in range(1, n):
            best_in[:] = lowest
            # previous tag outermost: an element-wise max over the next tags vectorises,
            # a max-reduction over the previous ones did not
            for i in range(rows[0], rows[1]):
                came = history[t - 1, i]
                for k in range(cols):
                    score = came + block[i - rows[0], k]
                    best_in[k] = score if score > best_in[k] else best_in[k]
            for e in range(len(sparse_prev)):
                score = history[t - 1, sparse_prev[e]] + sparse_scores[e]
                k = sparse_next[e]
                best_in[k] = score if score > best_in[k] else best_in[k]
            for k in range(tags):
                history[t, k] = best_in[k] + em[b, t, order[k]]
        tag, top = 0, lowest
        for k in range(tags):
            if history[n - 1, k] + end[k] > top:
                tag, top = k, history[n - 1, k] + end[k]
        best[b] = top
        paths[b, n - 1] = order[tag]
        for t in range(n - 2, -1, -1):  # back-pointers recomputed for the chosen tag only
            arg, top = 0, lowest
            for i in range(tags):
                if history[t, i] + trans[i, tag] > top:
                    arg, top = i, history[t, i] + trans[i, tag]
            tag = arg
            paths[b, t] = order[tag]
        if not want_shifted:
            continue
        log_scale[b] = 0.0  # float64: log Z of long sentences sums many terms
        for t in range(n):
            top = lowest
            for k in range(tags):
                top = max(top, em[b, t, k])
            log_scale[b] += top
            for k in range(tags):
                shifted[b, t, k] = em[b, t, order[k]] - top
            shifted[b, t, tags:] = lowest
        shifted[b, n:] = lowest


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _marginal_rows(scaled, lengths, order, rows, cols, block, sparse_prev, sparse_next,
                   sparse_scores, trans, start, end, paths, log_scale, log_z, probs,
                   path_probs, failed):  # fmt: skip
    """Forward-backward row by row over ``scaled`` (exp of ``_viterbi_rows``'s shifted
    emissions, in the ``Layout``'s order); ``failed[b]`` marks a row whose scaled mass
    underflowed (its marginals and log Z are then left for the log-space pass)."""
    batch, time, width = scaled.shape
    tags = len(order)
    zero = scaled.dtype.type(0)
    top_trans, top_start, top_end = trans.max(), start.max(), end.max()
    block_w = np.exp(block - top_trans)  # forbidden: exactly 0
    sparse_w = np.exp(sparse_scores - top_trans)
    start_w, end_w = np.exp(start - top_start), np.exp(end - top_end)
    alpha = np.empty((time, width), scaled.dtype)
    beta = np.empty(width, scaled.dtype)
    carried = np.empty(width, scaled.dtype)
    for b in range(batch):
        n = lengths[b]
        log_mass = log_scale[b]
        ok = True
        for t in range(n):
            if t == 0:
                alpha[0, :] = start_w
            else:
                alpha[t, :] = zero
                for i in range(rows[0], rows[1]):  # element-wise over the next tags
                    mass = alpha[t - 1, i]
                    for k in range(cols):
                        alpha[t, k] += mass * block_w[i - rows[0], k]
                for e in range(len(sparse_prev)):
                    alpha[t, sparse_next[e]] += alpha[t - 1, sparse_prev[e]] * sparse_w[e]
            total = zero
            for k in range(width):
                alpha[t, k] *= scaled[b, t, k]
                total += alpha[t, k]
            if not (total > 0 and total < np.inf):
                ok = False
                break
            log_mass += np.log(total)
            for k in range(width):
                alpha[t, k] /= total
        finish = zero
        if ok:
            for k in range(width):
                finish += alpha[n - 1, k] * end_w[k]
            ok = finish > 0
        if ok:
            log_z[b] = np.log(finish) + log_mass + top_trans * (n - 1) + top_start + top_end
            beta[:] = end_w
        for t in range(n - 1, -1, -1):
            if not ok:
                break
            if t < n - 1:
                for k in range(width):
                    carried[k] = scaled[b, t + 1, k] * beta[k]
                beta[:] = zero
                for i in range(rows[0], rows[1]):
                    mass = zero
                    for k in range(cols):
                        mass += block_w[i - rows[0], k] * carried[k]
                    beta[i] = mass
                for e in range(len(sparse_prev)):
                    beta[sparse_prev[e]] += sparse_w[e] * carried[sparse_next[e]]
                total = zero
                for i in range(width):
                    total += beta[i]
                if not (total > 0 and total < np.inf):
                    ok = False
                    break
                for i in range(width):
                    beta[i] /= total
            norm = zero
            for k in range(width):
                norm += alpha[t, k] * beta[k]
            if not (norm > 0 and norm < np.inf):
                ok = False
                break
            for k in range(tags):
                probs[b, t, order[k]] = alpha[t, k] * beta[k] / norm
            path_probs[b, t] = probs[b, t, paths[b, t]]
        failed[b] = not ok


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _entropy_rows(probs, logs, entropy):
    """``entropy[b, t] = -sum_j p log p`` from the marginals and their logarithms (a loop: a
    numpy reduction over the short tag axis is several times slower)."""
    for b in range(probs.shape[0]):
        for t in range(probs.shape[1]):
            spread = probs.dtype.type(0)
            for j in range(probs.shape[2]):
                spread -= probs[b, t, j] * logs[b, t, j]
            entropy[b, t] = spread


class Decoded(NamedTuple):
    paths: np.ndarray  # int64 [B, T]
    best_scores: np.ndarray  # [B]
    log_z: np.ndarray  # float64 [B]
    marginals: np.ndarray  # [B, T, L]
    entropy: np.ndarray  # [B, T]
    path_probs: np.ndarray  # [B, T]


_layouts: dict[bytes, Layout] = {}


def _layout(trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> Layout:
    """``transition_layout``, kept for the few CRFs a process decodes with."""
    key = trans.tobytes() + start.tobytes() + end.tobytes() + trans.dtype.str.encode()
    layout = _layouts.get(key)
    if layout is None:
        if len(_layouts) >= 16:
            _layouts.clear()
        layout = _layouts[key] = transition_layout(trans, start, end)
    return layout


def _run(emissions, lengths, transitions, start, end, want_marginals: bool) -> Decoded:
    """The compiled pass in float32 for float32 emissions (what ONNX gives), else float64;
    rows whose scaled mass underflowed are redone in log space."""
    dtype = np.float32 if np.asarray(emissions).dtype == np.float32 else np.float64
    em, lengths, trans, start, end = _inputs(emissions, lengths, transitions, start, end, dtype)
    batch, time, tags = em.shape
    paths = np.zeros((batch, time), np.int64)
    best = np.zeros(batch, dtype)
    log_z = np.zeros(batch)
    probs = np.zeros((batch, time, tags), dtype)
    entropy = np.zeros((batch, time), dtype)
    path_probs = np.zeros((batch, time), dtype)
    failed = np.zeros(batch, np.bool_)
    if batch:
        em = np.ascontiguousarray(em)
        layout = _layout(trans, start, end)
        crf = (layout.order, layout.rows, layout.cols, layout.block, layout.sparse_prev,
               layout.sparse_next, layout.sparse_scores, layout.trans, layout.start,
               layout.end)  # fmt: skip
        shape = (batch, time, layout.width) if want_marginals else (0, 0, 0)
        shifted = np.empty(shape, dtype)
        log_scale = np.zeros(batch)
        _viterbi_rows(em, lengths, *crf, want_marginals, paths, best, shifted, log_scale)
        if want_marginals:
            # numpy's exp and log run in SIMD; compiled loops call them once per element
            scaled = np.exp(shifted, out=shifted)
            _marginal_rows(scaled, lengths, *crf, paths, log_scale, log_z, probs, path_probs,
                           failed)  # fmt: skip
    if failed.any():
        rows = np.flatnonzero(failed)
        exact = forward_backward_log(em[rows], lengths[rows], trans, start, end)
        log_z[rows] = exact.log_z
        probs[rows] = exact.marginals
        path_probs[rows] = path_probabilities(probs[rows], paths[rows])
    if want_marginals and batch:
        entropy = token_entropy(probs)
    return Decoded(paths, best, log_z, probs, entropy, path_probs)


def viterbi(emissions, lengths, transitions, start, end) -> tuple[np.ndarray, np.ndarray]:
    """Best tag path per sentence: ``(paths int64 [B, T], best_scores [B])``; padding is 0.
    Computes in float32 for float32 emissions, else float64."""
    result = _run(emissions, lengths, transitions, start, end, want_marginals=False)
    return result.paths, result.best_scores


class ForwardBackward(NamedTuple):
    log_z: np.ndarray  # float64 [B], log partition function
    marginals: np.ndarray  # [B, T, L], P(tag at t); rows past the length are 0


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
    """``(log_z float64 [B], marginals [B, T, L])``, masked by ``lengths``; marginals are
    float32 for float32 emissions, else float64."""
    result = _run(emissions, lengths, transitions, start, end, want_marginals=True)
    return ForwardBackward(result.log_z, result.marginals)


def log_partition(emissions, lengths, transitions, start, end) -> np.ndarray:
    """log Z per sentence: the log-sum-exp of every tag path's score."""
    return forward_backward(emissions, lengths, transitions, start, end).log_z


def marginals(emissions, lengths, transitions, start, end) -> np.ndarray:
    """P(tag at position t) per sentence, ``[B, T, L]``, zero past each length."""
    return forward_backward(emissions, lengths, transitions, start, end).marginals


def token_entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each position's tag distribution, ``[B, T]``; padding gives 0."""
    probs = np.ascontiguousarray(probs)
    logs = np.log(np.maximum(probs, np.finfo(probs.dtype).tiny))  # numpy's SIMD log
    entropy = np.empty(probs.shape[:-1], probs.dtype)
    _entropy_rows(probs, logs, entropy)
    return entropy


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


def decode(emissions, lengths, transitions, start, end) -> Decoded:
    """Viterbi, marginals, token entropy and path probabilities for a whole batch at once."""
    return _run(emissions, lengths, transitions, start, end, want_marginals=True)
