"""python manage.py prune_versions: old never-served candidates give their disk back."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from learner.models import ModelVersion
from tests.inference.conftest import build_tiny_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_versions(world, settings, tmp_path):
    """Under the platform's bundle folder: v1 served once (retired), v2 serves, and five
    candidates the gate refused (c1 oldest); another project has one candidate."""
    settings.BUNDLE_DIR = tmp_path / "bundles"

    def make(project, name, **fields):
        folder = build_tiny_bundle(settings.BUNDLE_DIR / f"project-{project.pk}" / name)
        return ModelVersion.objects.create(
            project=project, version=name, bundle_path=str(folder), metrics={"f1": 0.5}, **fields
        )

    v1 = make(world.project, "v1")
    v1.activate()
    v2 = make(world.project, "v2")
    v2.activate()
    candidates = [make(world.project, f"c{k}") for k in range(1, 6)]
    other = make(world.other_project, "o1")
    return world, v1, v2, candidates, other


def run(*args) -> str:
    out = StringIO()
    call_command("prune_versions", *args, stdout=out)
    return out.getvalue()


def test_prune_versions_removes_old_candidates_bundles_and_keeps_their_records(project_versions):
    world, v1, v2, candidates, other = project_versions
    listed = run("--keep", "2", "--dry-run")
    assert "would remove c3" in listed and "would remove c1" in listed and "c4" not in listed
    assert all(Path(c.bundle_path).is_dir() for c in candidates)  # a dry run changes nothing

    said = run("--keep", "2", "--project", str(world.project.pk))
    assert "3 bundle folders, freed" in said
    for version in candidates:
        version.refresh_from_db()
    gone, kept = candidates[:3], candidates[3:]
    assert all(not Path(c.bundle_path).exists() and c.metrics["bundle_pruned"] for c in gone)
    assert all(Path(c.bundle_path).is_dir() and "bundle_pruned" not in c.metrics for c in kept)
    # what served, and other projects, are untouched; the records stay for the dashboard
    assert Path(v1.bundle_path).is_dir() and Path(v2.bundle_path).is_dir()
    assert Path(other.bundle_path).is_dir()
    assert ModelVersion.objects.filter(project=world.project).count() == 7
    rows = world.api("admin").get(f"/api/v1/projects/{world.project.pk}/metrics").json()
    pruned = {row["version"]: row["bundle_pruned"] for row in rows["versions"]}
    assert pruned["c1"] is not None and pruned["c5"] is None and pruned["v1"] is None
    # a pruned version cannot be served again: its bundle check fails, nothing changes
    url = f"/api/v1/projects/{world.project.pk}/versions/{gone[0].pk}/activate"
    assert world.api("admin").post(url).status_code == 409
    assert ModelVersion.active_for(world.project) == v2
    # a second pass finds nothing more to do
    assert "0 bundle folders" in run("--keep", "2")


def test_prune_versions_refuses_bad_options(project_versions):
    with pytest.raises(CommandError, match="negative"):
        run("--keep", "-1")
    with pytest.raises(CommandError, match="no project 999"):
        run("--project", "999")
