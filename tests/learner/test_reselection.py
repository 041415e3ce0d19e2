"""Filling the review queue from stored predictions (or, before any model, from the texts)."""

import numpy as np
import pytest

from annotation import queue
from annotation.models import Document, Prediction
from learner.models import ModelVersion
from learner.reselection import build_pool, select_batch

pytestmark = pytest.mark.django_db


def predicted(world, version, texts_and_entropy, status=Document.Status.PREDICTED, **kw):
    docs = []
    rng = np.random.default_rng(0)
    for text, entropy in texts_and_entropy:
        doc = world.document(text, status=status, predicted_by=version, uncertainty=entropy, **kw)
        Prediction.objects.create(
            document=doc,
            model_version=version,
            spans=[],
            mean_entropy=entropy,
            max_entropy=2 * entropy,
            least_confidence=entropy,
            mnlp=-entropy,
            embedding=Prediction.pack(rng.normal(size=4)),
        )
        docs.append(doc)
    return docs


@pytest.fixture
def version(world):
    version = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/b")
    version.activate()
    return version


def test_reselection_queues_the_most_uncertain_in_priority_order(world, version):
    world.project.selection_strategy = "entropy"
    world.project.batch_size = 3
    world.project.save()
    docs = predicted(
        world, version, [(f"句子{i}", e) for i, e in enumerate([0.1, 0.9, 0.5, 0.7, 0.2])]
    )
    chosen = select_batch(world.project.pk)
    assert chosen == [docs[1].pk, docs[3].pk, docs[2].pk]
    rows = {d.pk: d for d in Document.objects.filter(project=world.project)}
    assert [rows[pk].status for pk in chosen] == ["queued"] * 3
    assert rows[docs[1].pk].priority > rows[docs[3].pk].priority > rows[docs[2].pk].priority > 0
    assert rows[docs[0].pk].status == "predicted" and rows[docs[0].pk].priority == 0
    assert queue.next_document(world.project, world.annotator).pk == docs[1].pk


def test_reselection_returns_leftovers_of_the_previous_batch(world, version):
    world.project.selection_strategy = "entropy"
    world.project.batch_size = 1
    world.project.save()
    low, high = predicted(world, version, [("低", 0.1), ("高", 0.9)])
    Document.objects.filter(pk=low.pk).update(status="queued", priority=5.0)
    assert select_batch(world.project.pk) == [high.pk]
    low.refresh_from_db()
    assert (low.status, low.priority) == ("predicted", 0.0)


def test_reselection_skips_annotated_validated_and_eval_documents(world, version):
    world.project.selection_strategy = "entropy"
    world.project.batch_size = 10
    world.project.save()
    predicted(world, version, [("草稿", 0.99)], status=Document.Status.ANNOTATED)
    predicted(world, version, [("已审", 0.98)], status=Document.Status.VALIDATED)
    predicted(world, version, [("评测", 0.97)], split=Document.Split.EVAL)
    (open_doc,) = predicted(world, version, [("待标", 0.1)])
    assert select_batch(world.project.pk) == [open_doc.pk]


def test_reselection_pool_uses_one_models_predictions(world, version):
    other = ModelVersion.objects.create(project=world.project, version="v0", bundle_path="/a")
    predicted(world, other, [("旧模型", 0.99)])
    mine = predicted(world, version, [("新模型一", 0.3), ("新模型二", 0.4)])
    pool = build_pool(world.project)
    assert sorted(pool.ids.tolist()) == sorted(d.pk for d in mine)
    assert pool.embeddings.shape == (2, 4)
    assert pool.uncertainty["mnlp"].tolist() == [0.3, 0.4]  # higher = less sure


def test_reselection_cold_start_clusters_texts(world):
    world.project.batch_size = 3
    world.project.save()
    kinds = (
        ["张三在北京大学读书，后来去了清华大学{}。"] * 12
        + ["腾讯公司发布了新游戏王者荣耀第{}季。"] * 5
        + ["他担任高级工程师和技术总监{}年。"] * 4
    )
    docs = [world.document(t.format(i)) for i, t in enumerate(kinds)]
    kind_of = {d.pk: (0 if i < 12 else 1 if i < 17 else 2) for i, d in enumerate(docs)}
    chosen = select_batch(world.project.pk, seed=3)
    assert sorted(kind_of[pk] for pk in chosen) == [0, 1, 2]
    assert Document.objects.filter(status="queued").count() == 3


def test_reselection_of_a_missing_project_does_nothing(db):
    assert select_batch(987654) == []


def test_reselection_takes_one_copy_of_a_text_and_none_already_answered(world, version):
    from annotation.models import Annotation

    world.project.selection_strategy = "entropy"
    world.project.batch_size = 3
    world.project.save()
    docs = predicted(
        world,
        version,
        [("重复的句子", 0.9), ("重复的句子", 0.9), ("重复的句子", 0.8), ("答过的句子", 0.7),
         ("另一句", 0.5), ("第三句", 0.3)],
    )  # fmt: skip
    answered = world.document("答过的句子", status="validated")
    Annotation.objects.create(document=answered, spans=[], validated=True)
    chosen = select_batch(world.project.pk)
    assert chosen == [docs[0].pk, docs[4].pk, docs[5].pk]


def test_reselection_cold_start_also_takes_one_copy_of_a_text(world):
    world.project.batch_size = 5
    world.project.save()
    docs = [world.document(text) for text in ("同一句", "同一句", "另一句", "第三句")]
    chosen = select_batch(world.project.pk, seed=0)
    assert sorted(chosen) == [docs[0].pk, docs[2].pk, docs[3].pk]


def test_the_periodic_check_refills_the_queue_of_a_project_that_is_training(world, monkeypatch):
    """A first run can take minutes; meanwhile the queue gets a (cold start) batch instead of
    handing out documents by age."""
    from learner import tasks
    from learner.models import TrainingRun

    for text in ("张三在北京工作。", "李四去了上海。", "王五在杭州读书。"):
        world.document(text)
    TrainingRun.objects.create(project=world.project).start()
    sent = []
    monkeypatch.setattr(tasks.select_batch, "delay", sent.append)
    result = tasks.check_projects()
    assert world.project.pk in result["selected"] and world.project.pk in sent
