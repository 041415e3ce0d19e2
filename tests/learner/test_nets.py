import itertools

import pytest
import torch

from annotation.tags import tags_to_spans
from learner.crf import CRF, FORBIDDEN
from learner.nets import ARCHITECTURES, build_model
from learner.training import label_tags

TAGS = label_tags(["LOC"])  # O, B-LOC, I-LOC, E-LOC, S-LOC
SIZES = {"chars": 30, "bigrams": 40, "lexicon_dim": 8}


def random_crf(seed: int = 0) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(TAGS)
    with torch.no_grad():
        for param in crf.parameters():
            param.normal_()
    return crf


def brute_force(crf: CRF, emissions: torch.Tensor, length: int):
    """Every tag path of one sentence: (log partition, best path)."""
    trans, start, end = crf.scores()
    scores = {}
    for path in itertools.product(range(len(TAGS)), repeat=length):
        score = start[path[0]] + end[path[-1]]
        score = score + sum(emissions[t, tag] for t, tag in enumerate(path))
        score = score + sum(trans[a, b] for a, b in itertools.pairwise(path))
        scores[path] = score
    values = torch.stack(list(scores.values()))
    return torch.logsumexp(values, 0), list(max(scores, key=lambda p: scores[p]))


def test_nets_registered_architecture_names():
    assert set(ARCHITECTURES) == {"bilstm_crf", "transformer_crf", "hf_crf"}


def test_crf_constraints_forbid_broken_bioes():
    crf = CRF(TAGS)
    trans, start, end = crf.scores()
    o, b, i, e, s = range(5)
    assert trans[o, i] == FORBIDDEN and trans[b, o] == FORBIDDEN and trans[e, e] == FORBIDDEN
    assert trans[b, i] == 0 and trans[i, e] == 0 and trans[s, b] == 0 and trans[e, o] == 0
    assert start[i] == FORBIDDEN and start[b] == 0 and end[b] == FORBIDDEN and end[e] == 0


@pytest.mark.parametrize("lengths", [[3], [4, 2], [1, 3, 2]])
@torch.no_grad()
def test_crf_nll_matches_brute_force(lengths):
    crf = random_crf(sum(lengths))
    width = max(lengths)
    emissions = torch.randn(len(lengths), width, len(TAGS))
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    tags = torch.randint(0, len(TAGS), (len(lengths), width))
    log_z = crf.log_partition(emissions, mask)
    path_score = crf.path_score(emissions, tags, mask)
    trans, start, end = crf.scores()
    expected_nll = []
    for row, n in enumerate(lengths):
        brute_log_z, _ = brute_force(crf, emissions[row], n)
        assert log_z[row].item() == pytest.approx(brute_log_z.item(), rel=1e-5, abs=1e-3)
        path = tags[row, :n].tolist()
        manual = start[path[0]] + end[path[-1]]
        manual = manual + sum(emissions[row, t, p] for t, p in enumerate(path))
        manual = manual + sum(trans[a, b] for a, b in itertools.pairwise(path))
        assert path_score[row].item() == pytest.approx(manual.item(), rel=1e-5, abs=1e-3)
        expected_nll.append(brute_log_z - manual)
    nll = crf.nll(emissions, tags, mask)
    assert nll.item() == pytest.approx(torch.stack(expected_nll).mean().item(), rel=1e-4)


def test_crf_nll_gradient_is_finite():
    crf = random_crf()
    emissions = torch.randn(2, 4, len(TAGS), requires_grad=True)
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    tags = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0]])
    crf.nll(emissions, tags, mask).backward()
    assert torch.isfinite(emissions.grad).all() and torch.isfinite(crf.transitions.grad).all()


def test_crf_log_partition_holds_with_confident_emissions():
    """Emissions a trained model reaches (tens of nats apart) push most tags' exponentials
    below float range: the result still equals a logsumexp over every tag pair, to the
    precision that matters, and the gradient stays finite."""
    torch.manual_seed(3)
    crf = random_crf()
    emissions = (torch.randn(4, 12, len(TAGS)) * 40).requires_grad_()
    mask = torch.ones(4, 12, dtype=torch.bool)
    trans, start, end = crf.scores()
    alpha = start + emissions[:, 0]
    for t in range(1, 12):
        alpha = torch.logsumexp(alpha.unsqueeze(2) + trans + emissions[:, t].unsqueeze(1), 1)
    expected = torch.logsumexp(alpha + end, 1)
    log_z = crf.log_partition(emissions, mask)
    assert torch.allclose(log_z, expected, rtol=1e-5, atol=1e-2)
    tags = emissions.argmax(2).detach()
    crf.nll(emissions, tags, mask).backward()
    assert torch.isfinite(emissions.grad).all()


@pytest.mark.parametrize("seed", range(4))
def test_crf_viterbi_matches_brute_force(seed):
    crf = random_crf(seed)
    lengths = [4, 2, 3]
    emissions = torch.randn(3, 4, len(TAGS)) * 3
    paths = crf.decode(emissions, torch.tensor(lengths))
    for row, n in enumerate(lengths):
        _, best = brute_force(crf, emissions[row], n)
        assert paths[row] == best
        tags_to_spans([TAGS[t] for t in paths[row]], "bioes", strict=True)  # well formed


def inputs(batch_lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    width = max(batch_lengths)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(batch_lengths).unsqueeze(1)
    chars = torch.randint(2, SIZES["chars"], (len(batch_lengths), width), generator=gen) * mask
    bigrams = torch.randint(2, SIZES["bigrams"], (len(batch_lengths), width), generator=gen) * mask
    lexicon = (torch.rand(len(batch_lengths), width, 8, generator=gen) > 0.7).float()
    lexicon = lexicon * mask.unsqueeze(2)
    return {
        "chars": chars,
        "bigrams": bigrams,
        "lexicon": lexicon,
        "lengths": torch.tensor(batch_lengths),
    }


@pytest.mark.parametrize("arch", ["bilstm_crf", "transformer_crf"])
def test_nets_forward_shapes_and_padding_invariance(arch):
    torch.manual_seed(0)
    model = build_model(arch, TAGS, SIZES).eval()
    batch = inputs([5, 2, 7])
    emissions, embedding = model(**batch)
    assert emissions.shape == (3, 7, len(TAGS))
    assert embedding.shape[0] == 3
    alone = {k: v[1:2, :2] if v.dim() > 1 else v[1:2] for k, v in batch.items()}
    emissions_alone, embedding_alone = model(**alone)
    torch.testing.assert_close(emissions_alone[0], emissions[1, :2], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(embedding_alone[0], embedding[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ["bilstm_crf", "transformer_crf"])
def test_nets_loss_decreases_on_one_batch(arch):
    torch.manual_seed(0)
    model = build_model(arch, TAGS, SIZES)
    batch = inputs([6, 4])
    gold = torch.tensor([[1, 2, 3, 0, 4, 0], [0, 1, 3, 0, 0, 0]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model.loss(batch, gold)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < first * 0.2
    assert model.decode(batch) == [[1, 2, 3, 0, 4, 0], [0, 1, 3, 0]]


def test_nets_empty_text_in_a_batch():
    model = build_model("bilstm_crf", TAGS, SIZES).eval()
    batch = inputs([3, 1])
    batch["lengths"] = torch.tensor([3, 0])
    emissions, embedding = model(**batch)
    assert torch.isfinite(emissions).all() and torch.isfinite(embedding).all()
    assert model.decode(batch)[1] == []


def test_nets_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("nope", TAGS, SIZES)
