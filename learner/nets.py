"""Network architectures, registered under stable names (a bundle's config stores the name).

Every network takes the Featurizer's arrays by name (``chars``, ``bigrams``, ``lexicon``,
``lengths``) and returns ``(emissions, embedding)``: the CRF's unary scores and the mean of the
encoder states over the real characters (the sentence embedding diversity sampling uses).
That pair is exactly the ONNX graph's output, so export needs no other wrapper logic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .crf import CRF

ARCHITECTURES: dict[str, type[Tagger]] = {}


def register(name: str) -> Callable[[type[Tagger]], type[Tagger]]:
    def add(cls: type[Tagger]) -> type[Tagger]:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        cls.arch = name
        ARCHITECTURES[name] = cls
        return cls

    return add


def build_model(arch: str, tags: Sequence[str], sizes: dict, hparams: dict | None = None) -> Tagger:
    """``sizes`` gives the input sizes (``chars``, ``bigrams``, ``lexicon_dim``)."""
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        )
    cls = ARCHITECTURES[arch]
    return cls(tags, sizes, **{**cls.defaults, **(hparams or {})})


def check_hparams(arch: str, hparams: dict) -> None:
    """ValueError naming what is wrong with ``hparams`` for ``arch`` (an unknown name, values
    that do not go together), before any data is read or trained on."""
    if not isinstance(hparams, dict):
        raise ValueError('must be a JSON object, e.g. {"hidden": 128}')
    known = ARCHITECTURES[arch].defaults
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} unknown to {arch}; known: {', '.join(sorted(known))}"
        )
    try:
        build_model(arch, ["O"], {"chars": 2, "bigrams": 2, "lexicon_dim": 0}, hparams)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def real_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(2).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class Tagger(nn.Module):
    """Shared parts: input embeddings (char, bigram, lexicon flags), emission layer, CRF."""

    arch = ""
    defaults: dict = {}

    def __init__(self, tags: Sequence[str], sizes: dict, hparams: dict):
        super().__init__()
        self.tags = list(tags)
        self.sizes = dict(sizes)
        self.hparams = dict(hparams)
        self.crf = CRF(self.tags)

    def make_inputs(self, char_dim: int, bigram_dim: int) -> int:
        self.char_embed = nn.Embedding(self.sizes["chars"], char_dim, padding_idx=0)
        width = char_dim
        self.bigram_embed = None
        if self.sizes.get("bigrams"):
            self.bigram_embed = nn.Embedding(self.sizes["bigrams"], bigram_dim, padding_idx=0)
            width += bigram_dim
        self.lexicon_dim = int(self.sizes.get("lexicon_dim") or 0)
        return width + self.lexicon_dim

    def embed(self, chars, bigrams=None, lexicon=None) -> torch.Tensor:
        parts = [self.char_embed(chars)]
        if self.bigram_embed is not None:
            parts.append(self.bigram_embed(bigrams))
        if self.lexicon_dim:
            parts.append(lexicon)
        return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]

    def loss(self, inputs: dict[str, torch.Tensor], tags: torch.Tensor) -> torch.Tensor:
        emissions, _ = self(**inputs)
        return self.crf.nll(emissions, tags, real_mask(inputs["lengths"], tags.shape[1]))

    @torch.no_grad()
    def decode(self, inputs: dict[str, torch.Tensor]) -> list[list[int]]:
        emissions, _ = self(**inputs)
        return self.crf.decode(emissions, inputs["lengths"])

    def describe(self) -> dict:
        """What it takes to rebuild the network: ``build_model(**describe())``."""
        return {"arch": self.arch, "tags": self.tags, "sizes": self.sizes, "hparams": self.hparams}


@register("bilstm_crf")
class BiLSTMCRF(Tagger):
    """Embeddings -> dropout -> BiLSTM over packed sequences -> dropout -> linear -> CRF."""

    # lm_weight: each direction also predicts the characters beyond what it has read, in
    # training only (the exported graph has no language-model heads); lm_vocab: how many of
    # the most frequent characters it tells apart, the rarer ones share the last class
    defaults = {
        "char_dim": 100,
        "bigram_dim": 100,
        "hidden": 128,
        "layers": 1,
        "dropout": 0.5,
        "lm_weight": 0.1,
        "lm_vocab": 1024,
    }

    def __init__(self, tags, sizes, **hp):
        super().__init__(tags, sizes, hp)
        width = self.make_inputs(hp["char_dim"], hp["bigram_dim"])
        self.dropout = nn.Dropout(hp["dropout"])
        self.lstm = nn.LSTM(
            width,
            hp["hidden"],
            num_layers=hp["layers"],
            bidirectional=True,
            batch_first=True,
            dropout=hp["dropout"] if hp["layers"] > 1 else 0.0,
        )
        self.emit = nn.Linear(2 * hp["hidden"], len(self.tags))
        if hp.get("lm_weight"):
            if hp["layers"] != 1:  # a second layer's forward states have read the future
                raise ValueError(
                    "lm_weight (0.1 by default) needs a one-layer BiLSTM: with layers "
                    f"{hp['layers']}, pass lm_weight 0"
                )
            classes = min(self.sizes["chars"], hp["lm_vocab"])
            self.lm_next = nn.Linear(hp["hidden"], classes)
            self.lm_prev = nn.Linear(hp["hidden"], classes)

    def loss(self, inputs, tags):
        """The CRF's loss plus ``lm_weight`` times a character language model's (Rei, "Semi-
        supervised multitask learning for sequence labeling", 2017), summed per sentence like
        the CRF's: the forward states predict the next character but one (they have read the
        next one's bigram), the backward states the previous character."""
        weight = self.hparams.get("lm_weight")
        if not weight:
            return super().loss(inputs, tags)
        states, mask = self.encode(**inputs)
        emissions = self.emit(self.dropout(states))
        nll = self.crf.nll(emissions, tags, mask)
        hidden = self.hparams["hidden"]
        # the vocabulary runs most frequent first: ids past the head's size share its last class
        chars = inputs["chars"].clamp(max=self.lm_next.out_features - 1)
        states = self.dropout(states)
        # the forward state at i has read the bigram (i, i+1): it predicts character i+2 (the
        # dictionary flags it has read still hint at whether a word goes on; the targets are
        # the ids the network was given, <unk> where training replaced one)
        ahead = mask[:, 2:]
        next_loss = nn.functional.cross_entropy(
            self.lm_next(states[:, :-2, :hidden][ahead]), chars[:, 2:][ahead], reduction="sum"
        )
        behind = mask[:, 1:]
        prev_loss = nn.functional.cross_entropy(
            self.lm_prev(states[:, 1:, hidden:][behind]), chars[:, :-1][behind], reduction="sum"
        )
        return nll + weight * (next_loss + prev_loss) / chars.shape[0]

    def forward(self, chars, lengths, bigrams=None, lexicon=None):
        states, mask = self.encode(chars, lengths, bigrams, lexicon)
        emissions = self.emit(self.dropout(states))
        return emissions, masked_mean(states, mask)

    def encode(self, chars, lengths, bigrams=None, lexicon=None):
        width = chars.shape[1]
        x = self.dropout(self.embed(chars, bigrams, lexicon))
        # an empty text has length 0; pack it as one padding step and mask it out below
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        states, _ = self.lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=width)
        return states, real_mask(lengths, width)


class SelfAttentionLayer(nn.Module):
    """A pre-norm Transformer encoder layer written out, so the ONNX export is plain ops."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, width, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=2)

        def heads(t):
            return t.reshape(batch, width, self.heads, -1).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        att = torch.matmul(q, k.transpose(2, 3)) * self.scale + bias
        mixed = torch.matmul(self.drop(att.softmax(-1)), v).transpose(1, 2)
        x = x + self.drop(self.out(mixed.reshape(batch, width, dim)))
        return x + self.drop(self.ff(self.norm2(x)))


@register("transformer_crf")
class TransformerCRF(Tagger):
    """Embeddings -> projection + sinusoidal positions -> Transformer encoder -> linear -> CRF."""

    defaults = {
        "char_dim": 100,
        "bigram_dim": 100,
        "dim": 128,
        "heads": 4,
        "layers": 2,
        "ff": 256,
        "dropout": 0.2,
    }

    def __init__(self, tags, sizes, **hp):
        super().__init__(tags, sizes, hp)
        width = self.make_inputs(hp["char_dim"], hp["bigram_dim"])
        self.project = nn.Linear(width, hp["dim"])
        self.dropout = nn.Dropout(hp["dropout"])
        self.layers = nn.ModuleList(
            SelfAttentionLayer(hp["dim"], hp["heads"], hp["ff"], hp["dropout"])
            for _ in range(hp["layers"])
        )
        self.norm = nn.LayerNorm(hp["dim"])
        self.emit = nn.Linear(hp["dim"], len(self.tags))

    def positions(self, width: int, dim: int) -> torch.Tensor:
        pos = torch.arange(width, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        angles = pos * freq
        return torch.stack((angles.sin(), angles.cos()), dim=2).reshape(width, dim)

    def forward(self, chars, lengths, bigrams=None, lexicon=None):
        width = chars.shape[1]
        mask = real_mask(lengths, width)
        x = self.project(self.dropout(self.embed(chars, bigrams, lexicon)))
        x = self.dropout(x + self.positions(width, x.shape[2]))
        bias = (~mask).to(x.dtype).mul(-1e4).unsqueeze(1).unsqueeze(1)
        for layer in self.layers:
            x = layer(x, bias)
        states = self.norm(x)
        return self.emit(self.dropout(states)), masked_mean(states, mask)


@register("hf_crf")
class HFEncoderCRF(Tagger):
    """A CRF over a local Hugging Face encoder checkpoint (``--init-from``), one character per
    token: the featurizer's character ids are mapped to the checkpoint's token ids by a lookup
    buffer, so the bundle's inputs stay the same as for the other architectures."""

    defaults = {"dropout": 0.1, "encoder_config": None, "token_ids": None}

    def __init__(self, tags, sizes, **hp):
        super().__init__(tags, sizes, hp)
        from transformers import AutoConfig, AutoModel

        if hp["encoder_config"] is None or hp["token_ids"] is None:
            raise ValueError("hf_crf is built by hf_model_from_checkpoint (--init-from PATH)")
        config = dict(hp["encoder_config"])
        config_obj = AutoConfig.for_model(config.pop("model_type"), **config)
        config_obj._attn_implementation = "eager"
        self.encoder = AutoModel.from_config(config_obj, attn_implementation="eager")
        self.register_buffer("token_ids", torch.tensor(hp["token_ids"], dtype=torch.long))
        self.dropout = nn.Dropout(hp["dropout"])
        self.lexicon_dim = 0
        self.emit = nn.Linear(config_obj.hidden_size, len(self.tags))

    def forward(self, chars, lengths, bigrams=None, lexicon=None):
        mask = real_mask(lengths, chars.shape[1])
        tokens = self.token_ids.index_select(0, chars.reshape(-1)).reshape(chars.shape)
        out = self.encoder(input_ids=tokens, attention_mask=mask.long())
        states = out.last_hidden_state
        return self.emit(self.dropout(states)), masked_mean(states, mask)


def hf_model_from_checkpoint(path: str, tags: Sequence[str], chars: Sequence[str]) -> HFEncoderCRF:
    """Build ``hf_crf`` from a local checkpoint directory (no download: local_files_only).

    ``chars`` is the featurizer's character vocabulary; each is looked up in the checkpoint's
    tokenizer vocabulary (padding -> the pad token, anything missing -> the unknown token).
    A token-classification head whose labels equal ``tags`` initialises the emission layer.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    from inference.features import normalize_text

    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # the featurizer folds full-width ASCII and capitals; find each folded character's token
    by_char: dict[str, int] = {}
    for token, index in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        if len(token) == 1:
            folded = normalize_text(token)
            if folded == token or folded not in by_char:
                by_char[folded] = index
    token_ids = [pad, unk] + [by_char.get(c, unk) for c in chars[2:]]
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    head = None
    if config.architectures and any("TokenClassification" in a for a in config.architectures):
        full = AutoModelForTokenClassification.from_pretrained(
            path, local_files_only=True, attn_implementation="eager"
        )
        encoder = full.base_model
        head = (full.classifier, [full.config.id2label[i] for i in range(full.config.num_labels)])
    else:
        encoder = AutoModel.from_pretrained(
            path, local_files_only=True, attn_implementation="eager"
        )
    encoder_config = encoder.config.to_dict()
    keep = {"model_type"} | set(type(encoder.config)().to_dict())
    encoder_config = {k: v for k, v in encoder_config.items() if k in keep}
    model = HFEncoderCRF(
        tags,
        {"chars": len(chars), "bigrams": 0, "lexicon_dim": 0},
        **{**HFEncoderCRF.defaults, "encoder_config": encoder_config, "token_ids": token_ids},
    )
    missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
    # a token-classification checkpoint has no pooler; the CRF never uses one anyway
    missing = [name for name in missing if not name.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not fit its encoder: {missing or unexpected}")
    if head is not None and isinstance(head[0], nn.Linear):
        classifier, labels = head
        index = {label: i for i, label in enumerate(labels)}
        if set(index) == set(model.tags):
            with torch.no_grad():
                rows = torch.tensor([index[t] for t in model.tags])
                model.emit.weight.copy_(classifier.weight[rows])
                model.emit.bias.copy_(classifier.bias[rows])
    return model
