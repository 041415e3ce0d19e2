import pytest
import torch

from annotation.formats import read_file
from annotation.spans import Example, Span
from learner.evaluation import evaluate
from learner.training import (
    FeatureOptions,
    TrainedModel,
    TrainOptions,
    entity_gazetteer,
    fold_flags,
    label_tags,
    train,
    visible_example,
)

TINY = FeatureOptions(lexicon=None)


def quick(**kwargs) -> TrainOptions:
    defaults = {
        "epochs": 40,
        "patience": 0,
        "lr": 1e-2,
        "batch_size": 4,
        "threads": 1,
        "progress": False,
        "hparams": {"char_dim": 32, "bigram_dim": 16, "hidden": 32},
        "features": TINY,
    }
    return TrainOptions(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def sentences(datasets_dir) -> list[Example]:
    examples = read_file(datasets_dir / "resume" / "train.char.bmes", strict=False)
    return [ex for ex in examples if ex.spans and len(ex.text) <= 40][:8]


@pytest.fixture(scope="module")
def overfit(sentences) -> TrainedModel:
    return train(sentences, sentences, "bilstm_crf", quick(), log=None)


def test_training_label_tags_order():
    assert label_tags(["PER", "LOC"]) == [
        "O",
        *("B-LOC", "I-LOC", "E-LOC", "S-LOC"),
        *("B-PER", "I-PER", "E-PER", "S-PER"),
    ]


@pytest.mark.slow
def test_training_overfits_a_few_real_sentences(overfit, sentences):
    predicted = overfit.predict([ex.text for ex in sentences])
    assert evaluate([ex.spans for ex in sentences], predicted)["f1"] == 1.0
    assert overfit.summary["dev_f1"] == 1.0
    assert overfit.history[-1]["loss"] < overfit.history[0]["loss"]


def test_training_reads_examples_without_invisible_characters():
    """What the serving engine does to a text (inference.features.visible), training does to
    an example: the model never sees a zero-width space or a BOM, and spans move with the
    text."""
    example = Example(
        "\ufeff张\u200b三在\u200b北京\u200b。",
        [Span(1, 4, "PER"), Span(6, 8, "LOC"), Span(8, 9, "X")],
        {"id": 1},
    )
    seen = visible_example(example)
    assert seen.text == "张三在北京。" and seen.meta == {"id": 1}
    assert seen.spans == [Span(0, 2, "PER"), Span(3, 5, "LOC")]  # an invisible span goes
    plain = Example("张三", [Span(0, 2, "PER")])
    assert visible_example(plain) is plain


@pytest.mark.slow
def test_training_predicts_past_invisible_characters_in_the_texts_offsets(overfit, sentences):
    text = sentences[0].text
    marked = "\ufeff" + "\u200b".join(text)  # a zero-width space between every character
    [spans] = overfit.predict([marked])
    assert [(s.label, marked[s.start : s.end].replace("\u200b", "")) for s in spans] == [
        (s.label, text[s.start : s.end]) for s in sentences[0].spans
    ]


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(sentences):
    first = train(sentences, sentences, "bilstm_crf", quick(epochs=2), log=None)
    second = train(sentences, sentences, "bilstm_crf", quick(epochs=2), log=None)
    for (name, a), b in zip(
        first.model.state_dict().items(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_training_save_load_round_trip(tmp_path, overfit, sentences):
    overfit.save(tmp_path)
    loaded = TrainedModel.load(tmp_path)
    texts = [ex.text for ex in sentences] + ["一段没有见过的文字，张三在北京。"]
    assert loaded.predict(texts) == overfit.predict(texts)
    assert loaded.tags == overfit.tags and loaded.arch == "bilstm_crf"


def test_training_language_model_loss_is_added_in_training_only():
    """``lm_weight`` (on by default) adds a character language model's loss to the BiLSTM's
    training: the same weights without it give the CRF's loss alone, and the network's
    outputs (what the ONNX graph exports) do not depend on it. The heads tell apart the
    ``lm_vocab`` first (most frequent) characters; the rest share the last class."""
    from learner.nets import build_model

    sizes = {"chars": 50, "bigrams": 60, "lexicon_dim": 0}
    tags = label_tags(["PER"])
    small = {"hidden": 16, "dropout": 0.0}
    with_lm = build_model("bilstm_crf", tags, sizes, {**small, "lm_vocab": 20})
    assert with_lm.lm_next.out_features == with_lm.lm_prev.out_features == 20
    plain = build_model("bilstm_crf", tags, sizes, {**small, "lm_weight": 0.0})
    assert not any(name.startswith("lm_") for name, _ in plain.named_parameters())
    plain.load_state_dict(
        {k: v for k, v in with_lm.state_dict().items() if not k.startswith("lm_")}
    )
    inputs = {
        "chars": torch.randint(2, 50, (3, 7)),
        "bigrams": torch.randint(2, 60, (3, 7)),
        "lengths": torch.tensor([7, 5, 1]),
    }
    gold = torch.zeros(3, 7, dtype=torch.long)
    torch.testing.assert_close(with_lm(**inputs)[0], plain(**inputs)[0])
    assert with_lm.loss(inputs, gold) > plain.loss(inputs, gold)
    with_lm.loss(inputs, gold).backward()
    assert with_lm.lm_next.weight.grad.abs().sum() > 0
    assert with_lm.lm_prev.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one-layer"):
        build_model("bilstm_crf", tags, sizes, {**small, "layers": 2, "lm_weight": 0.1})


@pytest.mark.slow
def test_training_with_a_language_model_saves_loads_and_warm_starts(tmp_path, sentences):
    """A model trained with the language model's loss round-trips through save/load, and a
    warm start whose vocabulary grew keeps the old rows of the language-model heads."""
    lm = quick(epochs=2, hparams={"char_dim": 32, "bigram_dim": 16, "hidden": 32, "lm_weight": 0.1})
    model = train(sentences, sentences, "bilstm_crf", lm, log=None)
    model.save(tmp_path)
    loaded = TrainedModel.load(tmp_path)
    texts = [ex.text for ex in sentences]
    assert loaded.predict(texts) == model.predict(texts)
    new = [Example("新来的句子提到王小明。", [Span(5, 8, "NAME")])]
    warm = train(
        new + sentences, sentences, "bilstm_crf", quick(epochs=0), warm_start=model, log=None
    )
    assert warm.model.hparams["lm_weight"] == 0.1
    assert (
        warm.model.lm_next.weight.shape[0]
        == len(warm.featurizer.chars)  # under lm_vocab: one class per character
        > len(model.featurizer.chars)
    )
    for head in ("lm_next", "lm_prev"):
        for part in ("weight", "bias"):
            old = getattr(getattr(model.model, head), part)
            torch.testing.assert_close(getattr(getattr(warm.model, head), part)[: len(old)], old)


def test_training_loads_a_model_saved_before_the_language_model_options(tmp_path, sentences):
    """A model.pt whose hparams predate ``lm_weight``/``lm_vocab`` was trained without the
    heads: it loads as it was."""
    small = {"char_dim": 16, "bigram_dim": 8, "hidden": 16, "lm_weight": 0.0}
    plain = train(sentences, sentences, "bilstm_crf", quick(epochs=1, hparams=small), log=None)
    plain.save(tmp_path)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    for name in ("lm_weight", "lm_vocab"):
        saved["describe"]["hparams"].pop(name)
    torch.save(saved, tmp_path / "model.pt")
    loaded = TrainedModel.load(tmp_path)
    assert loaded.model.hparams["lm_weight"] == 0.0 and not hasattr(loaded.model, "lm_next")
    texts = ["张三在北京。", "一段没有见过的文字。"]
    assert loaded.predict(texts) == plain.predict(texts)


@pytest.mark.slow
def test_training_warm_start_keeps_old_weights(overfit, sentences):
    new = [Example("新来的句子提到王小明。", [Span(5, 8, "NAME")])]
    warm = train(
        new + sentences, sentences, "bilstm_crf", quick(epochs=0), warm_start=overfit, log=None
    )
    old_chars = overfit.featurizer.chars
    assert warm.featurizer.chars[: len(old_chars)] == old_chars
    assert len(warm.featurizer.chars) > len(old_chars)
    old_rows = overfit.model.char_embed.weight
    torch.testing.assert_close(warm.model.char_embed.weight[: len(old_chars)], old_rows)
    texts = [ex.text for ex in sentences]
    assert warm.predict(texts) == overfit.predict(texts)


@pytest.mark.slow
def test_training_warm_start_skipped_when_labels_differ(overfit, sentences):
    messages = []
    only_org = [Example(ex.text, [s for s in ex.spans if s.label == "ORG"]) for ex in sentences]
    model = train(
        only_org, only_org, "bilstm_crf", quick(epochs=1), warm_start=overfit, log=messages.append
    )
    assert any("warm start skipped" in m for m in messages)
    assert model.tags == label_tags(["ORG"])


@pytest.mark.slow
def test_training_labels_fix_the_tag_set(sentences):
    model = train(
        sentences[:2], sentences[:2], "bilstm_crf", quick(epochs=1), log=None, labels=["ZZZ"]
    )
    assert "S-ZZZ" in model.tags


@pytest.mark.slow
def test_training_time_budget_stops_early(sentences):
    model = train(sentences, sentences, "bilstm_crf", quick(epochs=1000, time_budget=1.0), log=None)
    assert len(model.history) < 1000
    assert model.summary["train_seconds"] < 20


def test_training_keeps_the_latest_epoch_while_dev_f1_stays_zero(sentences):
    """A model that has found no entity yet has not converged: early stopping must not keep
    its first epoch on a tie at F1 0 (a retrain served a model that predicted nothing)."""
    dev = [Example("今天天气很好，我们去公园。", [Span(0, 2, "NOPE")])]  # never predicted
    model = train(
        sentences, dev, "bilstm_crf", quick(epochs=4, patience=2), log=None, labels=["NOPE"]
    )
    assert [row["dev_f1"] for row in model.history] == [0.0] * 4  # no early stop at epoch 3
    assert model.summary["best_epoch"] == 4


@pytest.mark.slow
def test_training_transformer_learns(sentences):
    options = quick(
        epochs=30, lr=3e-3, hparams={"char_dim": 32, "bigram_dim": 16, "dim": 32, "ff": 64}
    )
    model = train(sentences, sentences, "transformer_crf", options, log=None)
    assert model.summary["dev_f1"] > 0.8


def test_training_gazetteer_flags_are_out_of_fold():
    examples = [
        Example("王小明来了", [Span(0, 3, "PER")]),
        Example("我见到王小明", [Span(3, 6, "PER")]),
        Example("李四来了", [Span(0, 2, "PER")]),
    ]
    flags = fold_flags(examples, ["PER"], folds=3, seed=0)
    assert flags[2].sum() == 0  # 李四 is in no other example
    assert flags[0][0, 0] and flags[0][2, 2]  # 王小明 is, in example 1 (B and E flags)
    full = entity_gazetteer(examples, ["PER"])
    assert set(full.entries) == {"王小明", "李四"}
