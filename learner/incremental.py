"""Training sets for the active-learning loop's retraining (Django-free, torch-free).

- ``replay_mix``: a warm-started round fine-tunes on the new batch plus replayed old labels,
  the new part at most ``new_share`` of the set, so the model does not forget what it knew.
- ``stopping_split``: the platform's retraining stops early on a tenth of the train split, held
  out of training, so the eval split that scores a model (and the gate) never chose its epoch.
- ``oversample``: a seed set of fifty sentences is two batches; with a dev evaluation after
  every epoch, early stopping would judge the model after a handful of updates (and training
  time would go to evaluation). Repeating a small set to a minimum epoch size fixes both.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

MIN_EPOCH_SENTENCES = 600
STOP_SHARE = 0.1  # of the train examples, held out for early stopping
STOP_MAX = 500
STOP_MIN = 20  # fewer held-out sentences judge an epoch by chance (two of them scored F1 0)
# below this, nothing is held out and early stopping uses the eval split (then the gate
# scores on the split that chose the epoch: a retrain on the same 121 sentences was promoted
# over one on 162); from here on at least STOP_MIN of them are held out
STOP_MIN_TRAIN = 100


def replay_mix(
    examples: Sequence, new: Sequence[int], old: Sequence[int], new_share: float, rng
) -> list:
    """``examples[new]`` plus a random sample of ``examples[old]`` (all of them when there
    are fewer than the share asks for)."""
    if not 0 < new_share <= 1:
        raise ValueError("new_share must be in (0, 1]")
    old = np.asarray(old, dtype=np.int64)
    want = math.ceil(len(new) * (1 - new_share) / new_share)
    replay = old if want >= len(old) else rng.choice(old, size=want, replace=False)
    return [examples[i] for i in [*new, *replay.tolist()]]


def oversample(examples: Sequence, minimum: int = MIN_EPOCH_SENTENCES) -> list:
    """The examples repeated (whole copies) until there are at least ``minimum``."""
    examples = list(examples)
    if not examples or len(examples) >= minimum:
        return examples
    return examples * math.ceil(minimum / len(examples))


def stopping_split(examples: Sequence, seed: int) -> tuple[list, list]:
    """``(fit, stop)``: about a tenth of ``examples`` (at least STOP_MIN, at most STOP_MAX)
    held out for early stopping, the rest to train on; ``stop`` is empty under STOP_MIN_TRAIN.

    Whether an example is held out depends only on its text and ``seed`` (one per project),
    not on the rest of the set: a text held out of one run stays out of the next, and a text
    trained on never becomes a stopping sentence later. A retrain warm-started from the
    previous model therefore stops early on sentences that model never saw; drawn afresh for
    every run, the held-out tenth was mostly the parent's training data, scored near 1.0 F1
    from the first epoch and stopped every retrain after a few epochs. (As a set grows, only
    the cap can move a held-out text back into training; the minimum can hold out a text
    trained on before, in sets of a few hundred.)
    """
    examples = list(examples)
    if len(examples) < STOP_MIN_TRAIN:
        return examples, []
    keys = np.array([_draw(example.text, seed) for example in examples])
    held = keys < STOP_SHARE
    if held.sum() > STOP_MAX:
        held = keys < np.sort(keys[held])[STOP_MAX]
    elif held.sum() < STOP_MIN:
        held = keys <= np.sort(keys)[STOP_MIN - 1]
    fit = [example for example, out in zip(examples, held, strict=True) if not out]
    stop = [example for example, out in zip(examples, held, strict=True) if out]
    return fit, stop


def _draw(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by the text and the seed."""
    digest = hashlib.blake2b(f"{seed}\0{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
