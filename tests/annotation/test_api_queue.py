"""The review queue: /queue/next, /queue/{doc}/skip, /queue/{doc}/release."""

import importlib
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation import queue
from annotation.models import Document, Prediction
from learner.models import ModelVersion
from tests.base import ROLES, expected, make_user

pytestmark = pytest.mark.django_db


def url(world, suffix: str) -> str:
    return f"/api/v1/projects/{world.project.pk}/queue/{suffix}"


@pytest.mark.parametrize("role", ROLES)
def test_queue_next_permissions(world, role):
    world.document()
    response = world.api(role).get(url(world, "next"))
    assert response.status_code == expected(("admin", "annotator"), role, 200)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ["skip", "release"])
def test_queue_actions_permissions(world, role, action):
    doc = world.document()
    user = world.user(role)
    if user is not None:
        Document.objects.filter(pk=doc.pk).update(
            assignee=user, assigned_until=timezone.now() + timedelta(minutes=5)
        )
    response = world.api(role).post(url(world, f"{doc.pk}/{action}"))
    assert response.status_code == expected(("admin", "annotator"), role, 204)


def test_queue_next_gives_the_pre_annotation_and_assigns(world):
    version = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/x")
    doc = world.document(uncertainty=0.4, predicted_by=version, status="predicted")
    spans = [{"start": 0, "end": 2, "label": "PER", "score": 0.8}]
    Prediction.objects.create(
        document=doc,
        model_version=version,
        spans=spans,
        mean_entropy=0.4,
        max_entropy=0.9,
        least_confidence=0.3,
        mnlp=-0.2,
    )
    response = world.api("annotator").get(url(world, "next"))
    assert response.status_code == 200
    data = response.json()
    assert data["document"]["id"] == doc.pk
    assert data["prediction"]["spans"] == spans
    assert data["prediction"]["model_version"] == "v1"
    assert data["revision"] == 0
    doc.refresh_from_db()
    assert doc.assignee == world.annotator
    assert doc.assigned_until > timezone.now() + timedelta(minutes=20)


def test_queue_next_order_selected_then_uncertain_then_oldest(world):
    new = world.document("新的")
    sure = world.document("有把握", uncertainty=0.1, status="predicted")
    unsure = world.document("没把握", uncertainty=0.9, status="predicted")
    selected = world.document("被选中", uncertainty=0.2, status="queued", priority=5.0)
    world.document("已标注", status="validated")
    world.document("评测集", split="eval")
    users = [make_user(f"a{i}") for i in range(5)]
    got = [queue.next_document(world.project, user) for user in users]
    assert got == [selected, unsure, sure, new, None]


def test_queue_next_returns_the_callers_current_item_again(world):
    world.document("一")
    world.document("二")
    api = world.api("annotator")
    first = api.get(url(world, "next")).json()["document"]["id"]
    assert api.get(url(world, "next")).json()["document"]["id"] == first


def test_queue_two_annotators_never_get_the_same_item(world):
    world.document("一")
    world.document("二")
    a = world.api("annotator").get(url(world, "next")).json()["document"]["id"]
    b = world.api("admin").get(url(world, "next")).json()["document"]["id"]
    assert a != b
    assert world.api("outsider").get(url(world, "next")).status_code == 404


def test_queue_expired_assignment_is_handed_out_again(world):
    doc = world.document()
    assert doc.claim(world.annotator, ttl=timedelta(seconds=-1))
    response = world.api("admin").get(url(world, "next"))
    assert response.json()["document"]["id"] == doc.pk


def test_queue_empty_is_204(world):
    world.document(status="validated")
    assert world.api("annotator").get(url(world, "next")).status_code == 204


def test_queue_skip_never_offers_it_again_to_that_annotator(world):
    doc = world.document("一")
    api = world.api("annotator")
    assert api.get(url(world, "next")).json()["document"]["id"] == doc.pk
    assert api.post(url(world, f"{doc.pk}/skip")).status_code == 204
    assert api.get(url(world, "next")).status_code == 204
    assert world.api("admin").get(url(world, "next")).json()["document"]["id"] == doc.pk


def test_queue_release_gives_it_back(world):
    doc = world.document("一")
    api = world.api("annotator")
    api.get(url(world, "next"))
    assert api.post(url(world, f"{doc.pk}/release")).status_code == 204
    doc.refresh_from_db()
    assert doc.assignee is None
    assert world.api("admin").get(url(world, "next")).json()["document"]["id"] == doc.pk


@pytest.mark.parametrize("action", ["skip", "release"])
def test_queue_action_on_an_item_not_yours_is_a_conflict(world, action):
    doc = world.document("一")
    world.api("admin").get(url(world, "next"))
    response = world.api("annotator").post(url(world, f"{doc.pk}/{action}"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "E105"
    doc.refresh_from_db()
    assert doc.assignee == world.admin


def test_queue_action_on_another_projects_document_is_not_found(world):
    doc = world.document(project=world.other_project)
    assert world.api("annotator").post(url(world, f"{doc.pk}/release")).status_code == 404


def test_document_claim_is_exclusive(world):
    doc = world.document()
    assert doc.claim(world.annotator)
    stale_copy = Document.objects.get(pk=doc.pk)
    assert not stale_copy.claim(world.admin)
    assert stale_copy.claim(world.annotator)  # renewing your own claim is fine


@pytest.mark.django_db(transaction=True)
def test_queue_concurrent_requests_get_distinct_documents(world):
    """Eight threads, each its own database connection, ask at once; no document twice
    (PostgreSQL: SKIP LOCKED; SQLite: transactions take the write lock in turn)."""
    for i in range(8):
        world.document(f"第{i}句")
    users = [make_user(f"u{i}") for i in range(8)]
    got: list[int | None] = []
    barrier = threading.Barrier(len(users))
    lock = threading.Lock()

    def take(user):
        try:
            barrier.wait()
            document = queue.next_document(world.project, user)
            with lock:
                got.append(None if document is None else document.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handed = [pk for pk in got if pk is not None]
    assert len(handed) == len(set(handed))
    assert len(handed) == 8


def test_queue_order_index_covers_the_open_statuses():
    migration = importlib.import_module("annotation.migrations.0003_queue_order_index")
    statuses = "', '".join(Document.OPEN)
    assert f"status IN ('{statuses}')" in migration.CREATE
    assert "split = 'train'" in migration.CREATE


def test_queue_order_index_exists_on_postgresql(db):
    if connection.vendor != "postgresql":
        pytest.skip("the index is PostgreSQL-only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'doc_queue_order'")
        (definition,) = cursor.fetchone()
    assert "priority DESC, uncertainty DESC NULLS LAST, id" in definition


def held(world, user) -> set[int]:
    rows = Document.objects.filter(
        project=world.project, assignee=user, assigned_until__gt=timezone.now()
    )
    return set(rows.values_list("pk", flat=True))


def take(api, world, exclude=None):
    """The id ``queue/next`` hands out (None for 204), optionally with ``exclude``."""
    suffix = "next" if exclude is None else f"next?exclude={exclude}"
    response = api.get(url(world, suffix))
    return None if response.status_code == 204 else response.json()["document"]["id"]


def test_queue_next_exclude_claims_the_following_item(world):
    one, two, _three = (world.document(t) for t in ("一", "二", "三"))
    api = world.api("annotator")
    assert take(api, world) == one.pk
    assert take(api, world, exclude=one.pk) == two.pk
    assert held(world, world.annotator) == {one.pk, two.pk}
    # Asking again gives the same two: the current one first, the one ahead after it.
    assert take(api, world) == one.pk
    assert take(api, world, exclude=one.pk) == two.pk
    assert take(api, world, exclude=two.pk) == one.pk


@pytest.mark.parametrize("exclude", ["first", "second", "unheld", "missing"])
def test_queue_next_never_holds_more_than_two(world, exclude):
    docs = [world.document(f"第{i}句") for i in range(5)]
    api = world.api("annotator")
    take(api, world)
    take(api, world, exclude=docs[0].pk)
    pick = {"first": docs[0].pk, "second": docs[1].pk, "unheld": docs[3].pk, "missing": 10**9}
    for _ in range(3):
        assert take(api, world, exclude=pick[exclude]) in {docs[0].pk, docs[1].pk}
    assert held(world, world.annotator) == {docs[0].pk, docs[1].pk}
    assert queue.MAX_HELD == 2


def test_queue_item_held_ahead_goes_to_no_one_else(world):
    one, two, three = (world.document(t) for t in ("一", "二", "三"))
    api = world.api("annotator")
    take(api, world)
    take(api, world, exclude=one.pk)
    other = world.api("admin")
    assert take(other, world) == three.pk
    assert take(other, world, exclude=three.pk) is None  # 204: nothing else is free
    assert held(world, world.admin) == {three.pk}
    assert two.pk in held(world, world.annotator)


def test_queue_after_submitting_the_item_held_ahead_comes_next(world):
    one, two, three = (world.document(t) for t in ("一", "二", "三"))
    api = world.api("annotator")
    take(api, world)
    take(api, world, exclude=one.pk)
    body = {"spans": [], "revision": 0}
    annotation_url = f"/api/v1/projects/{world.project.pk}/documents/{one.pk}/annotation"
    assert api.post(annotation_url, body, format="json").status_code == 200
    assert held(world, world.annotator) == {two.pk}
    assert take(api, world) == two.pk
    assert take(api, world, exclude=two.pk) == three.pk
    assert held(world, world.annotator) == {two.pk, three.pk}


@pytest.mark.parametrize("action", ["skip", "release"])
@pytest.mark.parametrize("which", [0, 1])
def test_queue_skip_and_release_work_on_either_held_item(world, action, which):
    docs = [world.document(t) for t in ("一", "二", "三")]
    api = world.api("annotator")
    take(api, world)
    take(api, world, exclude=docs[0].pk)
    gone, kept = docs[which], docs[1 - which]
    assert api.post(url(world, f"{gone.pk}/{action}")).status_code == 204
    assert held(world, world.annotator) == {kept.pk}
    following = take(api, world, exclude=kept.pk)
    # A released item is free again and first in line; a skipped one is never offered again.
    assert following == (gone.pk if action == "release" else docs[2].pk)


def test_queue_next_exclude_renews_the_claim_on_the_item_on_screen(world):
    one = world.document("一")
    world.document("二")
    assert one.claim(world.annotator, ttl=timedelta(seconds=30))
    take(world.api("annotator"), world, exclude=one.pk)
    one.refresh_from_db()
    assert one.assigned_until > timezone.now() + timedelta(minutes=20)


def test_queue_item_says_how_long_its_claim_lasts(world):
    world.document("一")
    data = world.api("annotator").get(url(world, "next")).json()
    assert 1790 < data["expires_in"] <= 1800


@pytest.mark.parametrize("bad", ["abc", "0", "-3", "1.5"])
def test_queue_next_exclude_must_be_a_document_id(world, bad):
    world.document("一")
    response = world.api("annotator").get(url(world, f"next?exclude={bad}"))
    assert response.status_code == 400
    assert "exclude" in str(response.json())
    assert held(world, world.annotator) == set()


@pytest.mark.django_db(transaction=True)
def test_queue_concurrent_requests_of_one_user_hold_at_most_two(world):
    """Six tabs of one annotator ask for the item after the same one at once: the user-row
    lock makes them take turns, so one new item is claimed and the others get it too."""
    docs = [world.document(f"第{i}句") for i in range(8)]
    assert docs[0].claim(world.annotator)
    got: list[int | None] = []
    barrier = threading.Barrier(6)
    lock = threading.Lock()

    def ask():
        try:
            barrier.wait()
            document = queue.next_document(world.project, world.annotator, exclude=docs[0].pk)
            with lock:
                got.append(None if document is None else document.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [docs[1].pk] * 6
    assert held(world, world.annotator) == {docs[0].pk, docs[1].pk}


def test_queue_asks_for_the_next_batch_once_the_selected_one_is_used_up(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    """Not at the periodic check a minute later: meanwhile annotators would get documents
    by age (before any model) instead of chosen ones."""
    from learner import tasks

    asked = []
    monkeypatch.setattr(tasks.select_batch, "delay", lambda project_id: asked.append(project_id))
    first = world.document("被选中一", status="queued", priority=2.0)
    second = world.document("被选中二", status="queued", priority=1.0)
    world.document("没被选中")
    users = [make_user(f"a{i}") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        assert queue.next_document(world.project, users[0]) == first
    assert asked == []  # one selected document still waits
    with django_capture_on_commit_callbacks(execute=True):
        assert queue.next_document(world.project, users[1]) == second
    assert asked == [world.project.pk]  # the batch is used up: the next one is selected now
    with django_capture_on_commit_callbacks(execute=True):
        queue.next_document(world.project, users[2])
    assert asked == [world.project.pk]  # once, however many annotators ask
