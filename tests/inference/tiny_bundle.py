"""A tiny but real model bundle: the Featurizer's files plus an ONNX graph written with
onnx.helper, so engine, registry and API tests run ONNX Runtime without training anything.

The graph looks characters (and bigrams) up in two tables: emissions = E[chars] + F[bigrams],
and embedding = the mean of W[chars] over the real characters. Characters of the names below
push their entity tags, so predictions are known in advance; everything else leans to O.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference import bundle
from inference.features import PAD_TOKEN, UNK_TOKEN, Featurizer

LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
# character -> (tag it pushes, strength). A cue character scores O at 1.0, any other at 3.0;
# the weak cues of 杭州 leave the model unsure, so scores and entropies are not all 1 and 0.
CUES = {
    "张": ("B-PER", 6.0),
    "小": ("I-PER", 6.0),
    "三": ("E-PER", 6.0),
    "李": ("S-PER", 6.0),
    "北": ("B-LOC", 6.0),
    "京": ("E-LOC", 6.0),
    "杭": ("B-LOC", 2.0),
    "州": ("E-LOC", 2.5),
}
CHARS = sorted(set("张小三李北京杭州在和去了住是人我们今天很开心这里一个𠀀😀🎉，。！？ab1 "))
EMBED_DIM = 6


def _graph(vocab_size: int, bigram_size: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    tags = len(LABELS)
    emit = np.zeros((vocab_size, tags), np.float32)
    emit[:, 0] = 3.0  # unknown and ordinary characters lean to O
    emit[0] = 0.0
    for char, (tag, strength) in CUES.items():
        row = CHARS.index(char) + 2
        emit[row, 0] = 1.0
        emit[row, LABELS.index(tag)] = strength
    bigram = (rng.normal(size=(bigram_size, tags)) * 0.1).astype(np.float32)
    bigram[0] = 0.0
    word = rng.normal(size=(vocab_size, EMBED_DIM)).astype(np.float32)
    word[0] = 0.0  # padding adds nothing to the sum
    nodes = [
        helper.make_node("Gather", ["E", "chars"], ["char_emit"]),
        helper.make_node("Gather", ["F", "bigrams"], ["bigram_emit"]),
        helper.make_node("Add", ["char_emit", "bigram_emit"], ["emissions"]),
        helper.make_node("Gather", ["W", "chars"], ["vectors"]),
        helper.make_node("ReduceSum", ["vectors", "time_axis"], ["summed"], keepdims=0),
        helper.make_node("Unsqueeze", ["lengths", "last_axis"], ["lengths_column"]),
        helper.make_node("Cast", ["lengths_column"], ["count"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["summed", "count"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_tagger",
        inputs=[
            helper.make_tensor_value_info("chars", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("bigrams", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        outputs=[
            helper.make_tensor_value_info("emissions", TensorProto.FLOAT, ["batch", "time", tags]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBED_DIM]),
        ],
        initializer=[
            numpy_helper.from_array(emit, "E"),
            numpy_helper.from_array(bigram, "F"),
            numpy_helper.from_array(word, "W"),
            numpy_helper.from_array(np.array([1], np.int64), "time_axis"),
            numpy_helper.from_array(np.array([1], np.int64), "last_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_tiny_bundle(
    folder: Path,
    *,
    max_len: int = 64,
    overlap: int = 8,
    version: str = "tiny-1",
    int8: bool = False,
    seed: int = 0,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    training_text = "".join(CHARS) + "张三李北京杭州"
    featurizer = Featurizer.build([training_text], lexicon=None, max_len=max_len)
    assert featurizer.chars == [PAD_TOKEN, UNK_TOKEN, *featurizer.chars[2:]]
    # the cue table indexes CHARS directly, so keep the featurizer's order identical
    featurizer = Featurizer([PAD_TOKEN, UNK_TOKEN, *CHARS], featurizer.bigrams, None, max_len)
    featurizer.save(folder)
    model = _graph(len(featurizer.chars), len(featurizer.bigrams), seed)
    onnx.save(model, str(folder / bundle.MODEL))
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(folder / bundle.MODEL), str(folder / bundle.MODEL_INT8), weight_type=QuantType.QInt8
        )
    tags = len(LABELS)
    rng = np.random.default_rng(seed + 1)
    crf = {
        "transitions": (rng.normal(size=(tags, tags)) * 0.2).tolist(),
        "start": np.zeros(tags).tolist(),
        "end": np.zeros(tags).tolist(),
    }
    (folder / bundle.LABELS).write_text(json.dumps(LABELS), "utf-8")
    (folder / bundle.CRF).write_text(json.dumps(crf), "utf-8")
    config = json.loads((folder / bundle.CONFIG).read_text("utf-8"))
    config.update(
        {
            "arch": "tiny",
            "scheme": "bioes",
            "max_len": max_len,
            "window_overlap": overlap,
            "entity_types": ["LOC", "PER"],
            "version": version,
            "created": "2024-01-01T00:00:00+00:00",
        }
    )
    (folder / bundle.CONFIG).write_text(json.dumps(config, ensure_ascii=False), "utf-8")
    (folder / bundle.METRICS).write_text(json.dumps({"f1": 0.5}), "utf-8")
    bundle.write_manifest(folder)
    return folder
