"""``--init-from``: a CRF on a local Hugging Face checkpoint. The test writes a tiny randomly
initialised BERT itself (config, character vocab.txt, weights); nothing is downloaded."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from annotation.formats import read_file
from inference.engine import ModelBundle
from learner.export import export_bundle
from learner.nets import hf_model_from_checkpoint
from learner.training import TrainOptions, hf_featurizer, is_hf_checkpoint, label_tags, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentences(datasets_dir):
    examples = read_file(datasets_dir / "resume" / "train.char.bmes", strict=False)
    return [ex for ex in examples if ex.spans and len(ex.text) <= 60][:40]


def write_checkpoint(folder, texts, token_classification_labels=None):
    from transformers import BertConfig, BertForTokenClassification, BertModel, BertTokenizer

    chars = sorted(set("".join(texts)))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", "utf-8")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    if token_classification_labels:
        config.num_labels = len(token_classification_labels)
        config.id2label = dict(enumerate(token_classification_labels))
        config.label2id = {label: i for i, label in enumerate(token_classification_labels)}
        model = BertForTokenClassification(config)
    else:
        model = BertModel(config)
    model.save_pretrained(folder)
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, sentences):
    folder = tmp_path_factory.mktemp("hf") / "tiny-bert"
    model = write_checkpoint(folder, [ex.text for ex in sentences])
    return folder, model


def test_init_from_detects_a_hf_checkpoint(checkpoint, tmp_path):
    folder, _ = checkpoint
    assert is_hf_checkpoint(folder)
    assert not is_hf_checkpoint(tmp_path)


def test_init_from_copies_the_encoder_weights(checkpoint, sentences):
    folder, original = checkpoint
    featurizer = hf_featurizer(str(folder), 128)
    model = hf_model_from_checkpoint(str(folder), label_tags(["NAME"]), featurizer.chars)
    expected = original.state_dict()
    for name, value in model.encoder.state_dict().items():
        torch.testing.assert_close(value, expected[name], msg=name)
    ids = featurizer.encode([sentences[0].text])["chars"][0]
    tokens = model.token_ids[torch.from_numpy(ids)].tolist()
    vocab = (folder / "vocab.txt").read_text("utf-8").splitlines()
    assert "：" in sentences[0].text  # full-width: the featurizer folds it, the vocab has it
    assert [vocab[t] for t in tokens] == list(sentences[0].text)


def test_init_from_uses_a_matching_token_classification_head(tmp_path, sentences):
    tags = label_tags(["NAME", "ORG"])
    original = write_checkpoint(tmp_path / "tc", [ex.text for ex in sentences], tags[::-1])
    featurizer = hf_featurizer(str(tmp_path / "tc"), 128)
    model = hf_model_from_checkpoint(str(tmp_path / "tc"), tags, featurizer.chars)
    rows = [tags[::-1].index(tag) for tag in tags]
    torch.testing.assert_close(model.emit.weight, original.classifier.weight[rows])


def test_init_from_trains_exports_and_serves(checkpoint, sentences, tmp_path):
    folder, _ = checkpoint
    options = TrainOptions(
        epochs=3, lr=5e-3, batch_size=8, threads=1, progress=False, init_from=str(folder)
    )
    model = train(sentences, sentences, "bilstm_crf", options, log=None)
    assert model.arch == "hf_crf"
    assert model.history[-1]["loss"] < model.history[0]["loss"]
    export_bundle(model, tmp_path / "bundle", None, int8=False)
    session = ort.InferenceSession(
        str(tmp_path / "bundle" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    texts = [ex.text for ex in sentences[:8]] + ["未知的字符也可以"]
    emissions, _ = session.run(None, model.featurizer.encode(texts))
    with torch.no_grad():
        expected = model.model(**model.tensors(texts))[0].numpy()
    np.testing.assert_allclose(emissions, expected, atol=1e-4, rtol=1e-4)
    engine = ModelBundle(tmp_path / "bundle", int8=False, threads=1).load()
    served = [[(e.start, e.end, e.label) for e in p.entities] for p in engine.predict(texts)]
    assert served == [[tuple(s) for s in spans] for spans in model.predict(texts)]


def test_init_from_on_the_command_line_says_what_it_trains(checkpoint, sentences, tmp_path):
    import io

    from django.core.management import CommandError, call_command

    from annotation.formats import write_file

    folder, _ = checkpoint
    write_file(tmp_path / "train.jsonl", sentences, "jsonl")
    common = ["--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "train.jsonl")]
    with pytest.raises(CommandError, match="Hugging Face checkpoint: it trains hf_crf, not"):
        call_command("train", *common, "--out", str(tmp_path / "x"), "--init-from", str(folder),
                     "--arch", "transformer_crf")  # fmt: skip
    out = io.StringIO()
    call_command("train", *common, "--out", str(tmp_path / "hf"), "--init-from", str(folder),
                 "--epochs", "1", "--threads", "1", "--no-int8", "--quiet", stdout=out)  # fmt: skip
    assert (
        "\ntraining hf_crf on 40 sentences" in out.getvalue()
    )  # after the shared-sentence warning

    # a nerloop bundle of other labels: the asked-for warm start is refused, not dropped
    from annotation.spans import Example, Span

    other = [Example(ex.text, [Span(s.start, s.end, "X") for s in ex.spans]) for ex in sentences]
    write_file(tmp_path / "other.jsonl", other, "jsonl")
    with pytest.raises(
        CommandError,
        match=r"same labels; only in the model: \[.*NAME.*\], only in the training data: \['X'\]",
    ):
        call_command("train", "--train", str(tmp_path / "other.jsonl"), "--dev",
                     str(tmp_path / "other.jsonl"), "--out", str(tmp_path / "y"),
                     "--init-from", str(tmp_path / "hf"))  # fmt: skip
