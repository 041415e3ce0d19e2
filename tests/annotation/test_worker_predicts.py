"""A real Celery worker predicts imported documents into the database (issue 4, done means)."""

import pytest
from django.test import override_settings

from annotation.models import Annotation, Document, Prediction, Project, Role
from inference import registry
from inference.engine import ModelBundle
from tests.base import make_user, wait_for
from tests.inference.conftest import build_tiny_bundle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RESUME_LABELS = ["NAME", "ORG", "TITLE", "EDU", "CONT", "PRO", "RACE", "LOC"]


@pytest.fixture
def served_bundle(tmp_path):
    path = build_tiny_bundle(tmp_path / "bundle", version="tiny-worker", max_len=32, overlap=4)
    with override_settings(DEFAULT_BUNDLE=str(path)):
        yield path
    registry.unload(path)


def admin_client(project):
    from rest_framework.test import APIClient

    user = make_user("boss")
    project.add_member(user, Role.ADMIN)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_worker_predicts_documents_posted_through_the_api(served_bundle, live_worker):
    project = Project.objects.create(name="worker")
    api = admin_client(project)
    texts = [f"张三第{i}次去北京和杭州。" for i in range(40)]
    response = api.post(
        f"/api/v1/projects/{project.pk}/documents", [{"text": t} for t in texts], format="json"
    )
    assert response.status_code == 201
    wait_for(lambda: Prediction.objects.filter(document__project=project).count() == 40)
    progress = api.get(f"/api/v1/projects/{project.pk}/progress").json()
    assert progress["predicted"] == 40
    assert progress["by_status"]["predicted"] == 40
    first = Document.objects.get(pk=response.json()["ids"][0])
    labels = [s["label"] for s in first.latest_prediction().spans]
    assert "PER" in labels and "LOC" in labels


def test_worker_predicts_the_whole_resume_train_set_as_the_engine_does(
    served_bundle, live_worker, datasets_dir
):
    # PER too: the default (tiny) model predicts PER and LOC, and serves only projects that
    # have every type it predicts
    labels = [{"name": n} for n in [*RESUME_LABELS, "PER"]]
    project = Project.objects.create(name="resume", labels=labels)
    api = admin_client(project)
    path = datasets_dir / "resume" / "train.char.bmes"
    with path.open("rb") as handle:
        response = api.post(
            f"/api/v1/projects/{project.pk}/documents/upload",
            {"file": handle, "strict": "false"},  # one sentence there leaves an ORG open
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    total = response.json()["documents"]
    assert total == 3821
    assert Annotation.objects.filter(document__project=project, validated=True).count() == total

    wait_for(
        lambda: Prediction.objects.filter(document__project=project).count() == total, timeout=300
    )
    documents = list(Document.objects.filter(project=project).order_by("id"))
    expected = ModelBundle(served_bundle).load().predict([doc.text for doc in documents])
    stored = {
        p.document_id: p
        for p in Prediction.objects.filter(document__project=project).select_related(
            "model_version"
        )
    }
    long_texts = 0
    for doc, answer in zip(documents, expected, strict=True):
        prediction = stored[doc.pk]
        assert prediction.model_version.version == "tiny-worker"
        assert [(s["start"], s["end"], s["label"]) for s in prediction.spans] == [
            (e.start, e.end, e.label) for e in answer.entities
        ], doc.text
        assert prediction.mean_entropy == pytest.approx(
            answer.uncertainty["mean_entropy"], abs=1e-6
        )
        assert prediction.vector == pytest.approx(answer.embedding, abs=1e-6)
        long_texts += len(doc.text) > 32
    assert long_texts > 100  # windowed texts were part of it
    assert set(Document.objects.filter(project=project).values_list("status", flat=True)) == {
        "validated"
    }
