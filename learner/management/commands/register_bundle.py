"""``python manage.py register_bundle PATH --project ID [--activate]``: put a model trained
outside the platform (``nerloop train``) into a project's model versions.

The bundle is verified (manifest), must predict only types the project has as labels, is
copied under the platform's bundle folder, and is scored on the project's validated eval set
through the serving engine, so the dashboard compares it with the project's own versions.
With ``--activate`` it serves at once, as an admin's activation does (the pool is predicted
again and the queue re-selected); otherwise it waits as a candidate to be activated.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from annotation.models import Project

# a folder name under the project's bundle folder: no separators, no "..", no hidden names
VERSION_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


class Command(BaseCommand):
    help = "Add a model bundle trained elsewhere to a project's versions (and serve it)."

    def add_arguments(self, parser):
        parser.add_argument("bundle", help="bundle folder written by `nerloop train`")
        parser.add_argument("--project", type=int, required=True, help="project id")
        parser.add_argument("--name", help="version name (default: the bundle's own)")
        parser.add_argument(
            "--activate", action="store_true", help="serve it now (as an admin's activation)"
        )

    def handle(self, *args, **opts):
        from inference import bundle
        from learner import retraining
        from learner.export import score_bundle
        from learner.models import ModelVersion
        from nerloop.tasks import BrokerUnavailable, ensure_broker

        project = Project.objects.filter(pk=opts["project"]).first()
        if project is None:
            raise CommandError(f"no project {opts['project']}")
        source = Path(opts["bundle"])
        try:
            bundle.verify(source)
            info = bundle.BundleInfo.read(source)
        except bundle.BundleError as exc:
            raise CommandError(f"{source} is not a servable bundle: {exc}") from None
        if not info.entity_types:
            raise CommandError(f"{source} predicts no entity type: it was trained on no entities")
        foreign = sorted(set(info.entity_types) - set(project.label_names()))
        if foreign:
            raise CommandError(
                f"the model predicts {', '.join(foreign)}, which project {project.pk} has no "
                "label for: add them to its labels first"
            )
        name = opts["name"] or str(info.config.get("version") or source.resolve().name)
        if not VERSION_NAME.fullmatch(name):
            raise CommandError(
                f"version name {name!r}: use letters, digits, '.', '_' and '-' (at most 100), "
                "not starting with '.' (--name)"
            )
        if project.model_versions.filter(version=name).exists():
            raise CommandError(f"project {project.pk} already has a version {name!r} (--name)")
        folder = Path(settings.BUNDLE_DIR) / f"project-{project.pk}" / name
        if folder.exists():
            raise CommandError(f"{folder} exists already (--name)")
        shutil.copytree(source, folder)
        if info.config.get("version") != name:
            # the name answers predictions too (model_version), as the dashboard shows it
            config = json.loads((folder / bundle.CONFIG).read_text("utf-8"))
            config["version"] = name
            (folder / bundle.CONFIG).write_text(json.dumps(config, ensure_ascii=False, indent=2))
            bundle.write_manifest(folder)

        _, eval_examples, _ = retraining.training_examples(project, timezone.now())
        int8 = bool(settings.SERVE_INT8) and (folder / bundle.MODEL_INT8).is_file()
        metrics = {"registered_from": str(source.resolve()), "served": "int8" if int8 else "fp32"}
        if eval_examples:
            scores = score_bundle(folder, eval_examples, int8=int8)
            metrics.update(scores, eval_sentences=len(eval_examples))
        trained = info.config.get("training") or {}
        version = ModelVersion.objects.create(
            project=project,
            version=name,
            bundle_path=str(folder),
            arch=str(info.config.get("arch", "")),
            train_sentences=int(trained.get("train_sentences") or 0),
            train_chars=int(trained.get("train_chars") or 0),
            metrics=metrics,
            gate_reason=f"registered from {source.resolve()}",
        )
        f1 = f"eval F1 {metrics['f1']:.4f}" if "f1" in metrics else "no validated eval set"
        self.stdout.write(f"version {name} of project {project.pk}: {f1}")
        if opts["activate"]:
            try:
                ensure_broker()  # activation queues re-prediction of the pool
            except BrokerUnavailable as exc:
                raise CommandError(f"registered as a candidate, not activated: {exc}") from None
            retraining.activate(version, project)
            self.stdout.write(self.style.SUCCESS(f"{name} serves project {project.pk} now"))
        else:
            self.stdout.write(
                f"a candidate: activate it on the dashboard or with "
                f"POST /api/v1/projects/{project.pk}/versions/{version.pk}/activate"
            )
