"""A linear-chain CRF in torch: negative log-likelihood by the forward algorithm, batched Viterbi.

Transitions that the BIOES scheme forbids (``O`` -> ``I-PER``, ``B-PER`` -> ``E-LOC``, ...)
carry a fixed large penalty, in training and in decoding alike, so every decoded sequence
is a well-formed span list. The exported ``crf.json`` holds the penalised scores, which is
what the numpy decoder in ``inference/decoding.py`` needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FORBIDDEN = -10000.0


def bioes_constraints(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Penalty matrices (0 allowed, FORBIDDEN not) for transitions, first and last tag."""
    size = len(tags)
    parts = [(t, "") if t == "O" else tuple(t.split("-", 1)) for t in tags]
    trans = torch.full((size, size), FORBIDDEN)
    start = torch.full((size,), FORBIDDEN)
    end = torch.full((size,), FORBIDDEN)
    for j, (p_next, l_next) in enumerate(parts):
        if p_next in {"O", "B", "S"}:
            start[j] = 0.0
        if p_next in {"O", "E", "S"}:
            end[j] = 0.0
        for i, (p_prev, l_prev) in enumerate(parts):
            if p_prev in {"O", "E", "S"}:
                ok = p_next in {"O", "B", "S"}
            else:  # B or I: the entity must go on with I or close with E, same label
                ok = p_next in {"I", "E"} and l_next == l_prev
            if ok:
                trans[i, j] = 0.0
    return trans, start, end


class CRF(nn.Module):
    def __init__(self, tags: Sequence[str]):
        super().__init__()
        self.tags = list(tags)
        size = len(self.tags)
        self.transitions = nn.Parameter(torch.zeros(size, size))
        self.start = nn.Parameter(torch.zeros(size))
        self.end = nn.Parameter(torch.zeros(size))
        trans, start, end = bioes_constraints(self.tags)
        self.register_buffer("trans_penalty", trans, persistent=False)
        self.register_buffer("start_penalty", start, persistent=False)
        self.register_buffer("end_penalty", end, persistent=False)

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transition, start and end scores with the scheme's constraints applied."""
        return (
            self.transitions + self.trans_penalty,
            self.start + self.start_penalty,
            self.end + self.end_penalty,
        )

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The forward algorithm, each step a matrix product in the exp domain: alpha and each
        column of the transitions are shifted by their maximum first, so the exponentials stay
        in range (a broadcast logsumexp over batch x tags x tags was most of a CRF's time)."""
        trans, start, end = self.scores()
        shift = trans.max(0, keepdim=True).values  # per next tag
        weights = torch.exp(trans - shift)  # forbidden transitions become exactly 0
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            top = alpha.max(1, keepdim=True).values
            total = torch.exp(alpha - top) @ weights
            # a tag that no likely previous tag may precede underflows to 0: floor it at the
            # smallest normal float, far below anything that counts in the sum over tags
            step = top + shift + torch.log(total.clamp(min=torch.finfo(total.dtype).tiny))
            alpha = torch.where(mask[:, t].unsqueeze(1), step + emissions[:, t], alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def path_score(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        trans, start, end = self.scores()
        maskf = mask.to(emissions.dtype)
        unary = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        score = start[tags[:, 0]] + (unary * maskf).sum(1)
        pair = trans[tags[:, :-1], tags[:, 1:]]
        score = score + (pair * maskf[:, 1:]).sum(1)
        last = mask.long().sum(1).clamp(min=1) - 1
        return score + end[tags.gather(1, last.unsqueeze(1)).squeeze(1)]

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per sentence (``mask[:, 0]`` must be true)."""
        return (self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)).mean()

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Best tag index sequence per sentence, the whole batch at once."""
        batch, width, size = emissions.shape
        if width == 0:
            return [[] for _ in range(batch)]
        trans, start, end = self.scores()
        mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
        identity = torch.arange(size).expand(batch, size)
        score = start + emissions[:, 0]
        pointers = []
        for t in range(1, width):
            best, arg = (score.unsqueeze(2) + trans).max(1)
            step = best + emissions[:, t]
            on = mask[:, t].unsqueeze(1)
            score = torch.where(on, step, score)
            pointers.append(torch.where(on, arg, identity))  # padding keeps the tag
        tag = (score + end).argmax(1)
        path = [tag]
        for arg in reversed(pointers):
            tag = arg.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        path.reverse()
        best_paths = torch.stack(path, 1).tolist()
        return [row[:n] for row, n in zip(best_paths, lengths.tolist(), strict=True)]
