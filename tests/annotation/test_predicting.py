"""Batched prediction of stored documents (the service the inference worker runs)."""

import numpy as np
import pytest
from django.test import override_settings

from annotation.models import Document, Prediction, normalize_labels
from annotation.predicting import default_version, predict_documents, serving_version
from inference import registry
from inference.engine import ModelBundle
from learner.models import ModelVersion
from tests.inference.conftest import build_tiny_bundle

pytestmark = pytest.mark.django_db

TEXTS = ["张三在北京。", "李四去了杭州", "今天很开心", "张小三和李去了北京和杭州。" * 12]


@pytest.fixture
def project_bundle(tmp_path):
    path = build_tiny_bundle(tmp_path / "project", version="tiny-project", seed=3)
    yield path
    registry.unload(path)


def test_predicting_stores_what_the_engine_says(world, default_bundle):
    docs = [world.document(text) for text in TEXTS]
    stored = predict_documents(world.project.pk, [d.pk for d in docs], batch=3)
    assert stored == len(TEXTS)
    expected = ModelBundle(default_bundle).load().predict(TEXTS)
    version = ModelVersion.objects.get(project=None)
    assert version.version == "tiny-default" and version.status == "active"
    for doc, answer in zip(docs, expected, strict=True):
        prediction = Prediction.objects.get(document=doc)
        assert prediction.model_version == version
        assert [(s["start"], s["end"], s["label"]) for s in prediction.spans] == [
            (e.start, e.end, e.label) for e in answer.entities
        ]
        assert [s["score"] for s in prediction.spans] == pytest.approx(
            [e.score for e in answer.entities], abs=1e-4
        )
        assert prediction.mean_entropy == pytest.approx(answer.uncertainty["mean_entropy"])
        assert prediction.mnlp == pytest.approx(answer.uncertainty["mnlp"])
        np.testing.assert_allclose(prediction.vector, answer.embedding, rtol=1e-6)
        doc.refresh_from_db()
        assert doc.status == "predicted"
        assert doc.predicted_by == version
        assert doc.uncertainty == pytest.approx(answer.uncertainty["mean_entropy"])
    assert any(Prediction.objects.get(document=docs[0]).spans)


def test_predicting_twice_stores_nothing_new(world, default_bundle):
    docs = [world.document(text) for text in TEXTS[:2]]
    ids = [d.pk for d in docs]
    assert predict_documents(world.project.pk, ids) == 2
    assert predict_documents(world.project.pk, ids) == 0
    assert Prediction.objects.count() == 2


def test_predicting_keeps_the_status_of_annotated_documents(world, default_bundle):
    doc = world.document(status="validated")
    predict_documents(world.project.pk, [doc.pk])
    doc.refresh_from_db()
    assert doc.status == "validated" and doc.predicted_by is not None


def test_predicting_ignores_documents_of_other_projects_and_missing_ones(world, default_bundle):
    mine = world.document()
    theirs = world.document(project=world.other_project)
    assert predict_documents(world.project.pk, [mine.pk, theirs.pk, 999_999]) == 1
    assert not Prediction.objects.filter(document=theirs).exists()
    assert predict_documents(999_999, [mine.pk]) == 0


def test_predicting_uses_the_projects_active_version(world, default_bundle, project_bundle):
    active = ModelVersion.objects.create(
        project=world.project, version="tiny-project", bundle_path=str(project_bundle)
    )
    active.activate()
    assert serving_version(world.project) == active
    doc = world.document()
    predict_documents(world.project.pk, [doc.pk])
    assert Prediction.objects.get(document=doc).model_version == active
    assert serving_version(world.other_project) == default_version()


def test_predicting_a_new_version_adds_a_second_prediction(world, default_bundle, project_bundle):
    doc = world.document()
    predict_documents(world.project.pk, [doc.pk])
    active = ModelVersion.objects.create(
        project=world.project, version="tiny-project", bundle_path=str(project_bundle)
    )
    active.activate()
    assert predict_documents(world.project.pk, [doc.pk]) == 1
    doc.refresh_from_db()
    assert doc.predicted_by == active
    assert doc.latest_prediction().model_version == active
    assert Prediction.objects.filter(document=doc).count() == 2


def test_predicting_after_a_rollback_brings_the_older_answers_back(
    world, default_bundle, project_bundle, tmp_path
):
    """Activating a version that predicted the pool before makes its answers and uncertainty
    the documents' current ones again (what the queue shows), without predicting again."""
    first = ModelVersion.objects.create(
        project=world.project, version="tiny-project", bundle_path=str(project_bundle)
    )
    first.activate()
    doc = world.document("张三在北京。")
    predict_documents(world.project.pk, [doc.pk])
    doc.refresh_from_db()
    first_uncertainty = doc.uncertainty
    second_path = build_tiny_bundle(tmp_path / "second", version="tiny-second", seed=11)
    second = ModelVersion.objects.create(
        project=world.project, version="tiny-second", bundle_path=str(second_path)
    )
    second.activate()
    predict_documents(world.project.pk, [doc.pk])
    doc.refresh_from_db()
    assert doc.predicted_by == second and doc.latest_prediction().model_version == second

    first.activate()  # the rollback
    assert predict_documents(world.project.pk, [doc.pk]) == 0  # nothing predicted again
    doc.refresh_from_db()
    assert doc.predicted_by == first
    assert doc.uncertainty == pytest.approx(first_uncertainty)
    assert doc.latest_prediction().model_version == first
    registry.unload(second_path)


def test_predicting_default_version_is_recorded_once(world, default_bundle):
    assert default_version() == default_version()
    assert ModelVersion.objects.filter(project=None).count() == 1


def test_predicting_without_any_model_raises_model_not_ready(world, tmp_path):
    doc = world.document()
    missing = override_settings(DEFAULT_BUNDLE=str(tmp_path / "missing"))
    with missing, pytest.raises(registry.ModelNotReady):
        predict_documents(world.project.pk, [doc.pk])
    assert Document.objects.get(pk=doc.pk).status == "new"


def test_prediction_task_without_any_model_waits_with_one_warning(world, tmp_path, caplog):
    from annotation.tasks import predict_documents as task

    doc = world.document()
    with override_settings(DEFAULT_BUNDLE=str(tmp_path / "missing")):
        assert task(world.project.pk, [doc.pk]) == 0
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 documents wait for a model" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert Document.objects.get(pk=doc.pk).status == "new"


def test_default_model_does_not_serve_a_project_without_its_types(world, default_bundle):
    """The tiny default model predicts PER and LOC: a project without PER gets no
    pre-annotations from it (they would carry a label the project does not have)."""
    world.project.labels = normalize_labels(["LOC", "ORG"])
    world.project.save()
    doc = world.document()
    with pytest.raises(registry.ModelNotReady, match=r"does not have \(PER\)"):
        predict_documents(world.project.pk, [doc.pk])
    assert Document.objects.get(pk=doc.pk).status == "new"
    assert not Prediction.objects.exists()
    world.project.labels = normalize_labels(["PER", "LOC", "ORG"])  # a superset is served
    world.project.save()
    assert predict_documents(world.project.pk, [doc.pk]) == 1
    assert serving_version(world.project).version == "tiny-default"


def test_model_version_activate_retires_the_previous_one(world):
    first = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/1")
    second = ModelVersion.objects.create(project=world.project, version="v2", bundle_path="/2")
    first.activate()
    second.activate()
    first.refresh_from_db()
    assert (first.status, second.status) == ("retired", "active")
    assert ModelVersion.active_for(world.project) == second


def test_predicting_insert_skips_rows_stored_meanwhile(world, default_bundle):
    """A redelivered task may find some of its predictions stored by the first delivery."""
    from annotation.predicting import insert_predictions

    first, second = world.document("一"), world.document("二")
    version = default_version()

    def rows(*docs):
        return [
            Prediction(
                document=doc,
                model_version=version,
                spans=[],
                mean_entropy=0.1,
                max_entropy=0.2,
                least_confidence=0.1,
                mnlp=-0.1,
                embedding=Prediction.pack([0.5, 1.5]),
            )
            for doc in docs
        ]

    insert_predictions(rows(first))
    insert_predictions(rows(first, second))
    assert Prediction.objects.count() == 2
    assert list(Prediction.objects.get(document=second).vector) == [0.5, 1.5]


def test_a_batch_predicted_by_a_version_retired_meanwhile_does_not_take_over(
    world, default_bundle, project_bundle, tmp_path
):
    """A prediction task of the old version still running when an admin activates another:
    its answers are stored, but the documents keep the serving version's."""
    from annotation.predicting import load_bundle, store_predictions

    old = ModelVersion.objects.create(
        project=world.project, version="tiny-project", bundle_path=str(project_bundle)
    )
    old.activate()
    doc = world.document("张三在北京。")
    answers = load_bundle(old).predict([doc.text])  # the old task is mid-batch ...
    new_path = build_tiny_bundle(tmp_path / "new", version="tiny-new", seed=11)
    new = ModelVersion.objects.create(
        project=world.project, version="tiny-new", bundle_path=str(new_path)
    )
    new.activate()
    predict_documents(world.project.pk, [doc.pk])  # ... while the new one re-predicts
    store_predictions(old, [doc], answers, world.project.pk)  # ... then the old task writes
    doc.refresh_from_db()
    assert doc.predicted_by == new and doc.latest_prediction().model_version == new
    assert Prediction.objects.filter(document=doc, model_version=old).exists()
    registry.unload(new_path)


def test_repredicting_the_pool_deletes_answers_no_document_shows(
    world, default_bundle, tmp_path, monkeypatch
):
    """After each promotion the pool is re-predicted; the answers of versions older than the
    newest KEEP_VERSIONS (and not serving) go, except on documents that still show them."""
    from annotation import predicting
    from learner.tasks import repredict_pool

    monkeypatch.setattr(predicting, "KEEP_VERSIONS", 1)
    open_doc = world.document("张三在北京。")
    versions = []
    for seed in (3, 5, 7):
        path = build_tiny_bundle(tmp_path / f"v{seed}", version=f"tiny-{seed}", seed=seed)
        version = ModelVersion.objects.create(
            project=world.project, version=f"tiny-{seed}", bundle_path=str(path)
        )
        version.activate()
        versions.append(version)
        if seed == 5:  # answered while version 5 served: no later version predicts it
            done = world.document("李四去了杭州", status="validated")
            predict_documents(world.project.pk, [done.pk])
        assert repredict_pool(world.project.pk) >= 1
    other = world.document("张三在北京。", project=world.other_project)
    predict_documents(world.other_project.pk, [other.pk])

    # versions 3's and 5's answers on the open document are gone; version 5's stays where it
    # is what the document shows
    left = Prediction.objects.filter(document__project=world.project)
    assert sorted(left.values_list("document_id", "model_version__version")) == sorted(
        [(open_doc.pk, "tiny-7"), (done.pk, "tiny-5")]
    )
    assert Prediction.objects.filter(document=other).count() == 1
    open_doc.refresh_from_db()
    assert open_doc.latest_prediction().model_version == versions[-1]

    versions[0].activate()  # a rollback past the kept versions predicts again
    assert predict_documents(world.project.pk, [open_doc.pk]) == 1
    for version in versions:
        registry.unload(version.bundle_path)


def test_predicting_skips_documents_deleted_while_the_model_ran(world, default_bundle):
    from annotation.predicting import load_bundle, serving_version, store_predictions

    kept, gone = world.document("张三在北京。"), world.document("李四去了杭州")
    version = serving_version(world.project)
    answers = load_bundle(version).predict([kept.text, gone.text])
    Document.objects.filter(pk=gone.pk).delete()  # meanwhile, in the web process
    assert store_predictions(version, [kept, gone], answers, world.project.pk) == 1
    assert list(Prediction.objects.values_list("document_id", flat=True)) == [kept.pk]
    kept.refresh_from_db()
    assert kept.status == "predicted" and kept.predicted_by == version
