"""Retraining and promotion timings on the real platform code (targets: a run on 2,000
labelled sentences <= 120 s on 2 cores; promotion to serving the new version <= 2 s).

A throwaway SQLite database under a temporary folder; a Resume project with N validated
train sentences and the Resume dev set as its eval split. Run 1 trains from scratch on half
of them, run 2 warm-starts from run 1's model on all N, the way a threshold-triggered
retrain does. Meanwhile a thread asks the web side's serving path (``serving_bundle``, the
hot-swap cache) for the project's model non-stop, to time the switch after run 2 promotes.
Run: python -m bench.retraining [--sentences 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the run")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--cold", action="store_true", help="also train all of it from scratch")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="nerloop-bench-retraining-"))
    os.environ["NERLOOP_DATA_DIR"] = str(folder)
    os.environ.pop("DATABASE_URL", None)  # a throwaway SQLite file and broker folder
    os.environ.pop("REDIS_URL", None)
    os.environ["NERLOOP_TRAIN_THREADS"] = str(args.threads)
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nerloop.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from nerloop.celery import make_broker_folders

    make_broker_folders()  # promotion queues re-prediction; no worker runs it here

    from annotation.formats import read_file
    from annotation.models import Annotation, Document, Project, normalize_labels, spans_to_json
    from annotation.predicting import serving_bundle
    from learner.models import ModelVersion
    from learner.retraining import request_training, run_training

    datasets = Path(settings.DATASETS_DIR) / "resume"
    pool = [ex for ex in read_file(datasets / "train.char.bmes", strict=False) if ex.text]
    held_out = [ex for ex in read_file(datasets / "dev.char.bmes", strict=False) if ex.text]
    pool = pool[: args.sentences]
    labels = sorted({s.label for ex in pool + held_out for s in ex.spans})

    def new_project(name: str) -> Project:
        return Project.objects.create(
            name=name, labels=normalize_labels(labels), promotion_tolerance=args.tolerance
        )

    project = new_project("bench")

    def add(examples, split, project=project):
        docs = Document.objects.bulk_create(
            Document(project=project, text=ex.text, split=split, status="validated")
            for ex in examples
        )
        Annotation.objects.bulk_create(
            Annotation(document=d, spans=spans_to_json(ex.spans), validated=True)
            for d, ex in zip(docs, examples, strict=True)
        )

    add(held_out, "eval")
    add(pool[: len(pool) // 2], "train")
    rows = []

    def run_once(label: str, project=project) -> ModelVersion:
        run, _ = request_training(project)
        started = time.monotonic()
        version_id = run_training(run.pk)
        seconds = time.monotonic() - started
        run.refresh_from_db()
        if version_id is None:
            raise SystemExit(f"{label} failed: {run.error}")
        version = ModelVersion.objects.get(pk=version_id)
        metrics = version.metrics
        rows.append(
            {
                "run": label,
                "sentences": version.train_sentences,
                "characters": version.train_chars,
                "warm_start": metrics["warm_start"],
                "epochs": metrics["epochs"],
                "f1": round(metrics["f1"], 4),
                "status": version.status,
                **{k: v for k, v in metrics["timings"].items() if k != "queued_seconds"},
                "wall_seconds": round(seconds, 1),
                "target_s": 120,
            }
        )
        return version

    first = run_once("cold start, half the data")
    assert serving_bundle(project).version == first.version  # the web side now serves run 1
    add(pool[len(pool) // 2 :], "train")

    answers: list[tuple[float, str]] = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            model = serving_bundle(project)
            model.predict([pool[0].text])
            answers.append((time.time(), model.version))
            time.sleep(0.01)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    second = run_once("warm start, all the data")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and answers[-1][1] != second.version:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    swap = None
    if second.status == ModelVersion.Status.ACTIVE:
        switched = min(t for t, v in answers if v == second.version)
        swap = round(switched - second.activated.timestamp(), 3)
    if args.cold:  # for comparison: the same data from scratch (a project's very first run)
        scratch = new_project("bench from scratch")
        add(held_out, "eval", scratch)
        add(pool, "train", scratch)
        run_once("from scratch, all the data", scratch)

    print(f"{'run':28}{'sents':>7}{'chars':>8}{'warm':>6}{'epochs':>7}{'F1':>8}"
          f"{'train s':>9}{'export s':>9}{'total s':>9}")  # fmt: skip
    for row in rows:
        print(
            f"{row['run']:28}{row['sentences']:>7}{row['characters']:>8}{row['warm_start']!s:>6}"
            f"{row['epochs']:>7}{row['f1']:>8.4f}{row['train_seconds']:>9.1f}"
            f"{row['export_seconds']:>9.1f}{row['total_seconds']:>9.1f}"
        )
    print(f"promotion -> serving the new version: {swap} s (target <= 2 s)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"runs": rows, "promotion_to_serving_seconds": swap, "threads": args.threads}
    (RESULTS / "retraining.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
