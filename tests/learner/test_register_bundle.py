"""``manage.py register_bundle``: a model trained with ``nerloop train`` serves a project."""

import io

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation, normalize_labels
from annotation.predicting import serving_version
from inference import registry
from learner.models import ModelVersion
from tests.inference.tiny_bundle import build_tiny_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(tmp_path):
    path = build_tiny_bundle(tmp_path / "offline", version="offline-1")
    yield path
    registry.unload(path)


def register(*args):
    out = io.StringIO()
    call_command("register_bundle", *map(str, args), stdout=out)
    return out.getvalue()


def test_register_bundle_adds_a_scored_candidate_then_serves_it(world, trained, settings, tmp_path):
    settings.BUNDLE_DIR = tmp_path / "bundles"
    doc = world.document("张三在北京。", split="eval", status="validated")
    Annotation.objects.create(
        document=doc, validated=True,
        spans=[{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}],
    )  # fmt: skip
    said = register(trained, "--project", world.project.pk)
    version = ModelVersion.objects.get(project=world.project)
    assert version.version == "offline-1" and version.status == "candidate"
    assert version.metrics["f1"] == pytest.approx(1.0)  # scored on the project's eval set
    assert "eval F1 1.0000" in said and "activate" in said
    assert version.bundle_path.startswith(str(settings.BUNDLE_DIR))
    with pytest.raises(CommandError, match="already has a version 'offline-1'"):
        register(trained, "--project", world.project.pk)

    said = register(trained, "--project", world.project.pk, "--name", "offline-2", "--activate")
    assert "serves project" in said
    assert serving_version(world.project).version == "offline-2"
    # the name it was given is the name its predictions carry, as the dashboard shows it
    answer = world.api("admin").post(
        "/api/v1/predict", {"text": "张三在北京。", "project": world.project.pk}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["model_version"] == "offline-2"
    registry.unload(settings.BUNDLE_DIR / f"project-{world.project.pk}" / "offline-2")


def test_register_bundle_refuses_what_cannot_serve_the_project(world, trained, tmp_path):
    world.project.labels = normalize_labels(["PER", "ORG"])
    world.project.save()
    with pytest.raises(CommandError, match="predicts LOC, which project .* has no label for"):
        register(trained, "--project", world.project.pk)
    (trained / "labels.json").write_text("[]")
    with pytest.raises(CommandError, match="is not a servable bundle"):
        register(trained, "--project", world.project.pk)
    with pytest.raises(CommandError, match="no project 999"):
        register(trained, "--project", 999)
    assert not ModelVersion.objects.filter(project=world.project).exists()


@pytest.mark.parametrize("name", ["../../evil", "a/b", ".hidden", "x" * 101])
def test_register_bundle_refuses_a_name_that_is_not_a_plain_folder_name(
    world, trained, settings, tmp_path, name
):
    settings.BUNDLE_DIR = tmp_path / "bundles"
    with pytest.raises(CommandError, match="use letters, digits"):
        register(trained, "--project", world.project.pk, "--name", name)
    assert not ModelVersion.objects.exists()
    assert not (tmp_path / "evil").exists() and not settings.BUNDLE_DIR.exists()


def test_register_bundle_records_what_the_model_was_trained_on(world, trained, settings, tmp_path):
    """The dashboard said "trained on 0 sentences" for every registered model."""
    import json

    from inference import bundle

    settings.BUNDLE_DIR = tmp_path / "bundles"
    config = json.loads((trained / bundle.CONFIG).read_text("utf-8"))
    config["training"] = {"train_sentences": 1220, "train_chars": 38154}
    (trained / bundle.CONFIG).write_text(json.dumps(config), "utf-8")
    bundle.write_manifest(trained)
    register(trained, "--project", world.project.pk)
    rows = world.api("admin").get(f"/api/v1/projects/{world.project.pk}/metrics").json()
    [row] = rows["versions"]
    assert (row["labels"]["sentences"], row["labels"]["characters"]) == (1220, 38154)
