"""``python manage.py prune_versions [--keep N] [--project ID] [--dry-run]``: free the disk
that old candidate versions hold.

Every retrain writes a bundle folder (about 20 MB for a small project), a candidate the gate
refused included, and keeps it for rollbacks. A candidate that never served and has newer
candidates is rarely worth rolling back to: this removes the bundle folders of a project's
never-served candidates beyond its ``--keep`` newest. The version records stay, so the
dashboard keeps their F1 in its history; ``metrics.bundle_pruned`` says when the folder went
(activating one then fails its bundle check, 409 E202). The active version, versions that
served once (retired) and the default model are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from annotation.models import Project
from learner.models import ModelVersion


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


class Command(BaseCommand):
    help = (
        "Remove the bundle folders of old candidate versions that never served (their records "
        "and F1 stay on the dashboard)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--keep", type=int, default=3, help="never-served candidates kept per project (3)"
        )
        parser.add_argument("--project", type=int, help="only this project")
        parser.add_argument("--dry-run", action="store_true", help="list them, remove nothing")

    def handle(self, *args, **opts):
        if opts["keep"] < 0:
            raise CommandError("--keep must not be negative")
        projects = Project.objects.order_by("id")
        if opts["project"] is not None:
            projects = projects.filter(pk=opts["project"])
            if not projects.exists():
                raise CommandError(f"there is no project {opts['project']}")
        root = Path(settings.BUNDLE_DIR).resolve()
        removed, freed = 0, 0
        for project in projects:
            candidates = [
                version
                for version in project.model_versions.filter(
                    status=ModelVersion.Status.CANDIDATE, activated__isnull=True
                ).order_by("-id")
                if not version.metrics.get("bundle_pruned")
            ]
            for version in candidates[opts["keep"] :]:
                folder = Path(version.folder).resolve()
                if root not in folder.parents or not folder.is_dir():
                    continue  # outside the platform's bundle folder, or already gone
                size = folder_size(folder)
                verb = "would remove" if opts["dry_run"] else "removed"
                self.stdout.write(
                    f"project {project.pk}: {verb} {version.version} ({size / 1e6:.1f} MB)"
                )
                removed, freed = removed + 1, freed + size
                if opts["dry_run"]:
                    continue
                shutil.rmtree(folder)
                version.metrics = {**version.metrics, "bundle_pruned": timezone.now().isoformat()}
                version.save(update_fields=["metrics"])
        verb = "would free" if opts["dry_run"] else "freed"
        self.stdout.write(f"{removed} bundle folders, {verb} {freed / 1e6:.1f} MB")
