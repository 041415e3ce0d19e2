"""Training sets for the active-learning loop's retraining (Django-free, torch-free).

- ``replay_mix``: a warm-started round fine-tunes on the new batch plus replayed old labels,
  the new part at most ``new_share`` of the set, so the model does not forget what it knew.
- ``oversample``: a seed set of fifty sentences is two batches; with a dev evaluation after
  every epoch, early stopping would judge the model after a handful of updates (and training
  time would go to evaluation). Repeating a small set to a minimum epoch size fixes both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MIN_EPOCH_SENTENCES = 600


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
