import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from annotation.formats import read_file
from annotation.spans import Example
from inference import bundle
from inference.engine import ModelBundle
from inference.features import Featurizer
from learner.evaluation import evaluate
from learner.export import export_bundle
from learner.training import FeatureOptions, TrainedModel, TrainOptions, train

pytestmark = pytest.mark.slow

SMALL = {"char_dim": 32, "bigram_dim": 16, "hidden": 32}


@pytest.fixture(scope="module")
def resume(datasets_dir):
    folder = datasets_dir / "resume"
    return (
        read_file(folder / "train.char.bmes", strict=False)[:300],
        read_file(folder / "dev.char.bmes", strict=False)[:80],
    )


@pytest.fixture(scope="module")
def real_texts(datasets_dir) -> list[str]:
    """Sentences the model never saw, from every shared corpus (unknown characters too)."""
    texts = [
        ex.text for ex in read_file(datasets_dir / "resume" / "test.char.bmes", strict=False)[:40]
    ]
    texts += [ex.text for ex in read_file(datasets_dir / "cluener2020" / "dev.json")[:40]]
    texts += [
        ex.text for ex in read_file(datasets_dir / "msra" / "test.bio")[:40] if len(ex.text) <= 200
    ]
    return texts


def options(**kwargs) -> TrainOptions:
    base = {
        "epochs": 4,
        "batch_size": 16,
        "threads": 1,
        "progress": False,
        "hparams": SMALL,
        "features": FeatureOptions(max_len=200),
    }
    return TrainOptions(**{**base, **kwargs})


@pytest.fixture(scope="module")
def exported(tmp_path_factory, resume):
    train_set, dev_set = resume
    model = train(train_set, dev_set, "bilstm_crf", options(), log=None)
    folder = tmp_path_factory.mktemp("bundle") / "resume"
    export_bundle(model, folder, {"dev": dev_set}, version="test-1")
    return model, folder


def torch_emissions(model: TrainedModel, texts: list[str]) -> np.ndarray:
    with torch.no_grad():
        return model.model(**model.tensors(texts))[0].numpy()


def test_export_writes_every_contract_file(exported):
    model, folder = exported
    names = {p.name for p in folder.iterdir()}
    expected = {
        "model.onnx",
        "model.int8.onnx",
        "vocab.json",
        "lexicon.txt",
        "gazetteer.txt",
        "labels.json",
        "crf.json",
        "config.json",
        "metrics.json",
        "manifest.json",
        "model.pt",
    }
    assert names == expected
    assert set(bundle.verify(folder)) == expected - {"manifest.json"}
    config = json.loads((folder / "config.json").read_text())
    assert config["arch"] == "bilstm_crf" and config["scheme"] == "bioes"
    assert config["max_len"] == 200 and config["version"] == "test-1"
    assert config["entity_types"] == sorted({t[2:] for t in model.tags if t != "O"})
    assert config["features"]["inputs"] == ["chars", "bigrams", "lexicon", "lengths"]
    assert json.loads((folder / "labels.json").read_text()) == model.tags
    crf = json.loads((folder / "crf.json").read_text())
    assert np.array(crf["transitions"]).shape == (len(model.tags), len(model.tags))


def test_export_graph_is_a_packed_lstm_and_int8_quantizes_it(exported):
    _, folder = exported
    graph = onnx.load(str(folder / "model.onnx")).graph
    lstm = [node for node in graph.node if node.op_type == "LSTM"]
    assert len(lstm) == 1 and len(lstm[0].input) > 4 and lstm[0].input[4]  # sequence_lens
    assert [i.name for i in graph.input] == ["chars", "bigrams", "lexicon", "lengths"]
    int8_ops = {node.op_type for node in onnx.load(str(folder / "model.int8.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in int8_ops


def test_export_onnx_emissions_match_torch(exported, real_texts):
    model, folder = exported
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for lo in range(0, len(real_texts), 32):
        batch = real_texts[lo : lo + 32]
        feed = model.featurizer.encode(batch)
        emissions, embedding = session.run(None, feed)
        np.testing.assert_allclose(emissions, torch_emissions(model, batch), atol=1e-4, rtol=1e-4)
        with torch.no_grad():
            expected = model.model(**model.tensors(batch))[1].numpy()
        np.testing.assert_allclose(embedding, expected, atol=1e-4, rtol=1e-4)


def test_export_engine_spans_equal_torch_spans(exported, real_texts):
    model, folder = exported
    engine = ModelBundle(folder, int8=False, threads=1).load()
    served = [[(e.start, e.end, e.label) for e in p.entities] for p in engine.predict(real_texts)]
    expected = [[tuple(s) for s in spans] for spans in model.predict(real_texts)]
    assert served == expected
    assert sum(map(len, expected)) > 20  # the comparison covers real entities


def test_export_metrics_measured_through_the_engine(exported, resume):
    model, folder = exported
    metrics = json.loads((folder / "metrics.json").read_text())
    _, dev_set = resume
    direct = evaluate([ex.spans for ex in dev_set], model.predict([ex.text for ex in dev_set]))
    assert metrics["split"] == "dev"
    assert metrics["f1"] == pytest.approx(direct["f1"])
    assert set(metrics["per_type"]) == set(direct["per_type"])
    assert 0.0 < metrics["int8"]["f1"] <= 1.0
    assert abs(metrics["int8"]["f1"] - metrics["f1"]) < 0.1


def test_export_bundle_round_trips_to_torch_for_warm_start(exported, real_texts):
    model, folder = exported
    loaded = TrainedModel.load(folder)
    assert loaded.predict(real_texts[:20]) == model.predict(real_texts[:20])


def test_export_refuses_a_non_empty_folder(exported):
    model, folder = exported
    with pytest.raises(FileExistsError):
        export_bundle(model, folder)


def test_export_a_model_trained_on_sentences_without_entities(tmp_path, resume):
    """A project's first run may see only entity-free sentences: its gazetteer of mentions is
    empty but keeps one column group per label, and the bundle must load with those columns."""
    train_set, dev_set = resume
    empty = [Example(ex.text) for ex in train_set[:20]]
    labels = sorted({s.label for ex in dev_set for s in ex.spans})
    model = train(empty, dev_set, "bilstm_crf", options(epochs=1), log=None, labels=labels)
    assert len(model.featurizer.gazetteer) == 0
    export_bundle(model, tmp_path / "b", {"dev": dev_set}, int8=False)
    loaded = Featurizer.from_bundle(tmp_path / "b")
    assert loaded.lexicon_dim == model.featurizer.lexicon_dim
    assert loaded.gazetteer.types == tuple(labels)
    assert len(ModelBundle(tmp_path / "b").load().predict(["李明在上海工作。"])) == 1


def test_export_transformer_parity(tmp_path, resume, real_texts):
    train_set, dev_set = resume
    hparams = {"char_dim": 32, "bigram_dim": 16, "dim": 32, "ff": 64, "layers": 1}
    model = train(
        train_set[:100], dev_set, "transformer_crf", options(epochs=1, hparams=hparams), log=None
    )
    export_bundle(model, tmp_path / "tr", None, int8=False)
    session = ort.InferenceSession(
        str(tmp_path / "tr" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    batch = real_texts[:16]
    emissions, _ = session.run(None, model.featurizer.encode(batch))
    np.testing.assert_allclose(emissions, torch_emissions(model, batch), atol=1e-4, rtol=1e-4)
    assert not (tmp_path / "tr" / "model.int8.onnx").exists()
