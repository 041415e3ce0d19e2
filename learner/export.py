"""Export a trained tagger as a model bundle (docs/bundle.md): ONNX graph, its INT8 twin,
vocabulary and lexicon, labels, CRF scores, config, metrics measured through the serving
engine itself, the torch weights (for warm starts), and last the sha256 manifest.

Dynamic quantization (ONNX Runtime ``quantize_dynamic``, QInt8 weights) covers the MatMul/Gemm
of the emission and attention layers, the embedding Gathers and the LSTM; ONNX Runtime turns
the LSTM into its own ``com.microsoft.DynamicQuantizeLSTM`` op, so the INT8 graph needs ONNX
Runtime (which serves it). Ops without an integer kernel (LayerNorm, Softmax, the CRF-free
graph's element-wise ops) stay fp32 inside the INT8 graph.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from annotation.spans import Example
from inference import bundle as bundle_files

from .evaluation import evaluate
from .training import WEIGHTS_FILE, TrainedModel, labels_of

OPSET = 17
WINDOW_OVERLAP = 32


class _Graph(nn.Module):
    """Positional inputs in the featurizer's order -> the network's keyword arguments."""

    def __init__(self, model: nn.Module, names: Sequence[str]):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *inputs):
        return self.model(**dict(zip(self.names, inputs, strict=True)))


def export_onnx(trained: TrainedModel, path: str | os.PathLike) -> None:
    """Write the fp32 graph with dynamic batch and length axes (TorchScript-based exporter:
    it turns the packed BiLSTM into one ONNX LSTM with ``sequence_lens``)."""
    model = trained.model
    names = trained.featurizer.input_names
    sample = trained.tensors(
        ["示例文本，用来导出。", "另一个句子", "长一点的第三个句子在这里结束了"]
    )
    dynamic = {}
    for name in names:
        dynamic[name] = {0: "batch"} if name == "lengths" else {0: "batch", 1: "time"}
    dynamic["emissions"] = {0: "batch", 1: "time"}
    dynamic["embedding"] = {0: "batch"}
    model.eval()
    try:
        with warnings.catch_warnings():
            # the TorchScript exporter is the documented route here (dynamo=False); its
            # deprecation and tracer notes about the packed LSTM are expected, not problems
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch")
            torch.onnx.export(
                _Graph(model, names),
                tuple(sample[name] for name in names),
                str(path),
                input_names=names,
                output_names=["emissions", "embedding"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        model.eval()  # the exporter can leave the module in training mode


def quantize(fp32_path: str | os.PathLike, int8_path: str | os.PathLike) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # its advice on every call ("consider pre-processing", a line per weight it leaves in fp32)
    # goes to the root logger at INFO/WARNING; the result is checked by the INT8 evaluation
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def crf_scores(trained: TrainedModel) -> dict:
    """Transition scores with the BIOES constraints already applied (what decoding uses)."""
    with torch.no_grad():
        trans, start, end = trained.model.crf.scores()
    return {"transitions": trans.tolist(), "start": start.tolist(), "end": end.tolist()}


def score_bundle(folder: str | os.PathLike, examples: Sequence[Example], int8: bool) -> dict:
    """Entity F1 of the bundle as served: the real engine, windows and compiled decoding.

    One sentence per batch: INT8 dynamic quantization scales a batch's activations together,
    so in a batch a sentence's answer depends a little on its neighbours, and an eval set one
    sentence larger moved a small project's F1 by two points (a gate decides on less). Alone,
    each sentence gets the answer a single predict call gives, whatever the set."""
    from inference.engine import ModelBundle

    engine = ModelBundle(folder, int8=int8, batch_size=1).load()
    predictions = engine.predict([ex.text for ex in examples])
    predicted = [[(e.start, e.end, e.label) for e in p.entities] for p in predictions]
    return evaluate([ex.spans for ex in examples], predicted)


# The files an export writes (a half-written bundle holds some of them).
BUNDLE_FILES = {
    bundle_files.MODEL, bundle_files.MODEL_INT8, bundle_files.VOCAB, bundle_files.LEXICON,
    bundle_files.LABELS, bundle_files.CRF, bundle_files.CONFIG, bundle_files.METRICS,
    bundle_files.MANIFEST, bundle_files.MANIFEST + ".tmp", "gazetteer.txt", WEIGHTS_FILE,
}  # fmt: skip


def check_overwritable(folder: Path) -> None:
    """Raise FileExistsError unless ``folder`` holds a bundle and nothing else, so that
    ``--out . --overwrite`` cannot delete a repository or the training data."""
    strangers = sorted(p.name for p in folder.iterdir() if p.name not in BUNDLE_FILES or p.is_dir())
    if strangers:
        shown = ", ".join(strangers[:5]) + (" ..." if len(strangers) > 5 else "")
        raise FileExistsError(
            f"{folder} holds more than a model bundle ({shown}); it is not overwritten"
        )


def _remove_old_bundle(folder: Path) -> None:
    check_overwritable(folder)
    for path in folder.iterdir():
        path.unlink()


def export_bundle(
    trained: TrainedModel,
    folder: str | os.PathLike,
    evaluations: dict[str, Sequence[Example]] | None = None,
    *,
    version: str | None = None,
    int8: bool = True,
    overwrite: bool = False,
    extra_config: dict | None = None,
) -> Path:
    """Write the bundle; ``evaluations`` maps a split name (``dev``, ``test``) to examples
    scored through the engine in fp32 and INT8. The last split named is the headline."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a bundle folder")
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise FileExistsError(f"bundle folder {folder} is not empty")
        _remove_old_bundle(folder)
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    trained.save(folder)  # vocab.json, lexicon.txt, config.json["features"], model.pt
    export_onnx(trained, folder / bundle_files.MODEL)
    if int8:
        quantize(folder / bundle_files.MODEL, folder / bundle_files.MODEL_INT8)
    (folder / bundle_files.LABELS).write_text(json.dumps(trained.tags), "utf-8")
    (folder / bundle_files.CRF).write_text(json.dumps(crf_scores(trained)), "utf-8")
    config_path = folder / bundle_files.CONFIG
    config = json.loads(config_path.read_text("utf-8"))
    config.update(
        {
            "arch": trained.arch,
            "scheme": "bioes",
            "max_len": trained.featurizer.max_len,
            "window_overlap": WINDOW_OVERLAP,
            "entity_types": labels_of(trained.tags),
            "version": version or f"{trained.arch}-{time.strftime('%Y%m%d-%H%M%S')}",
            "created": created,
            "hparams": {k: v for k, v in trained.model.hparams.items() if k != "token_ids"},
            "training": trained.summary,
            "opset": OPSET,
            "int8": int8,
        }
    )
    config.update(extra_config or {})
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2, default=str), "utf-8")
    bundle_files.write_manifest(folder)
    if evaluations:
        metrics: dict = {}
        for split, examples in evaluations.items():
            scores = score_bundle(folder, examples, int8=False)
            if int8:
                scores["int8"] = score_bundle(folder, examples, int8=True)
            scores["sentences"] = len(examples)
            metrics[split] = scores
        headline = dict(metrics[list(evaluations)[-1]])
        headline["split"] = list(evaluations)[-1]
        headline["splits"] = metrics
        (folder / bundle_files.METRICS).write_text(json.dumps(headline, indent=2), "utf-8")
        bundle_files.write_manifest(folder)
    return folder
