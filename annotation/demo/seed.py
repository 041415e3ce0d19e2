"""The embedded run's starting point: a demo project over ``corpus.jsonl`` and a demo model.

The corpus's train split is dealt in two: the demo model is trained on one half (seconds to
a minute or two on two cores), so that a fresh machine pre-annotates from the first request;
the project gets the other half as an unlabelled pool and the eval split with its gold spans,
as a real project would start. The model never saw the project's texts: its pre-annotations
are predictions, not recall, and the project's eval set scores it as it would any model (a
model trained on the pool and stopped on the eval split scored 0.985 there, so no model of
the project's own could ever pass the promotion gate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from annotation.formats import read_file
from annotation.spans import Example

from .build_corpus import CORPUS

DEMO_PROJECT = "演示项目 Demo"
DEMO_DESCRIPTION = "人名 (PER)、地名 (LOC)、机构名 (ORG)：a made-up corpus to try the platform on."


def demo_splits(path: Path = CORPUS) -> dict[str, list[Example]]:
    """``model`` and ``model_dev`` (the demo model's training and early-stopping sentences:
    every other train sentence), ``pool`` (the rest of the train split: the project's
    unlabelled documents) and ``eval`` (the project's gold eval split)."""
    data = corpus(path)
    model = data["train"][0::2]
    return {
        "model": [ex for k, ex in enumerate(model) if k % 5],
        "model_dev": model[0::5],
        "pool": data["train"][1::2],
        "eval": data["eval"],
    }


def corpus(path: Path = CORPUS) -> dict[str, list[Example]]:
    """The corpus split by each record's ``split`` (train/eval)."""
    splits: dict[str, list[Example]] = {"train": [], "eval": []}
    for example in read_file(path, "jsonl"):
        meta = dict(example.meta)
        split = meta.pop("split", "train")
        splits[split].append(Example(example.text, example.spans, meta))
    return splits


def train_demo_bundle(
    folder: Path, time_budget: float = 120.0, log: Callable[[str], None] = print
) -> Path:
    """Train a small BiLSTM-CRF on the demo corpus and export it as a bundle to ``folder``."""
    from learner.export import export_bundle
    from learner.training import FeatureOptions, TrainOptions, train

    data = demo_splits()
    options = TrainOptions(
        epochs=25,
        patience=6,
        # about 100 sentences: batches of 8 make 13 updates an epoch, not 4. With batches of
        # 32 a loaded machine's 120 s ran out at epoch 19, dev F1 0.57, and the model found
        # no entity in "张伟昨天在上海参加了阿里巴巴集团的发布会。"; with 8, 0.93 on the
        # project's eval set after 25 epochs in 26 s on that machine
        batch_size=8,
        time_budget=time_budget,
        hparams={"char_dim": 64, "bigram_dim": 32, "hidden": 64},
        features=FeatureOptions(lexicon=None, max_len=128),
        progress=False,
    )
    started = time.monotonic()
    trained = train(data["model"], data["model_dev"], "bilstm_crf", options, log=log)
    export_bundle(
        trained,
        folder,
        {"dev": data["model_dev"]},
        version=f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
        overwrite=True,
    )
    log(f"demo model trained in {time.monotonic() - started:.0f}s, written to {folder}")
    return folder


def create_demo_project(admin):
    """Create the demo project once (returns it, or the existing one)."""
    from annotation.importing import Entry, import_entries
    from annotation.models import Project, Role

    project = Project.objects.filter(name=DEMO_PROJECT).first()
    if project is not None:
        return project, False
    data = demo_splits()
    project = Project.objects.create(
        name=DEMO_PROJECT, description=DEMO_DESCRIPTION, created_by=admin, retrain_threshold=20
    )
    project.add_member(admin, Role.ADMIN)
    entries = [Entry(Example(ex.text, [], ex.meta), "train", gold=False) for ex in data["pool"]] + [
        Entry(ex, "eval", gold=True) for ex in data["eval"]
    ]
    import_entries(project, entries)
    return project, True
