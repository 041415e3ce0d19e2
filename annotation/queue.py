"""The review queue: which document an annotator gets next, and what they see with it.

Order: documents selection has ranked (``priority``) first, then the model's least sure
(``uncertainty``), then the rest by age. Handing one out is ``Document.claim``, a
conditional UPDATE; on PostgreSQL the candidate row is also locked with SKIP LOCKED so two
annotators asking at once go straight to different rows instead of racing for one.

An annotator may hold two items of a project at once: the one on screen and the next one,
which the workspace fetches ahead (``exclude`` = the one on screen) so that submitting
shows the next document without a round trip. Each has its own expiry; a user's requests
take a lock on their user row, so two tabs asking at once cannot make it three.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .models import Document, Project

CLAIM_ATTEMPTS = 8
# Items one annotator may hold in one project: the current one and the one fetched ahead.
MAX_HELD = 2
ORDER = (F("priority").desc(), F("uncertainty").desc(nulls_last=True), "id")
REFILL_SECONDS = 30


def candidates(project: Project, user) -> QuerySet[Document]:
    now = timezone.now()
    return (
        Document.objects.filter(
            project=project, split=Document.Split.TRAIN, status__in=Document.OPEN
        )
        .filter(Q(assignee__isnull=True) | Q(assigned_until__lte=now))
        .exclude(skips__user=user)
        .order_by(*ORDER)
    )


def held_by(project: Project, user) -> list[Document]:
    """The open documents ``user`` holds in ``project`` with unexpired claims, in queue
    order (a stable order, so asking again without ``exclude`` gives the same one)."""
    rows = Document.objects.filter(
        project=project, assignee=user, assigned_until__gt=timezone.now()
    ).filter(status__in=Document.OPEN)
    return list(rows.order_by(*ORDER)[:MAX_HELD])


def next_document(project: Project, user, exclude: int | None = None) -> Document | None:
    """An item for ``user``, or None when the queue has nothing for them.

    Without ``exclude``: the caller's current item (its claim renewed) or a newly claimed
    one. With ``exclude`` (the id of the item the caller has on screen): that item's claim
    is renewed and another one is given: the one already held ahead, else a newly claimed
    one. A new claim happens only when the caller holds nothing besides ``exclude``, so no
    one holds more than ``MAX_HELD`` items of a project.
    """
    with transaction.atomic():
        _lock_user(user)
        held = held_by(project, user)
        for document in held:
            if document.pk == exclude:
                document.claim(user)
        for document in held:
            if document.pk != exclude and document.claim(user):
                return document
        document = _claim_new(project, user, exclude)
    if document is not None and not _selected_left(project):
        ask_for_next_batch(project)
    return document


def _selected_left(project: Project) -> bool:
    """Whether documents of the selected batch are still waiting for someone."""
    return (
        Document.objects.filter(
            project=project, split=Document.Split.TRAIN, status__in=Document.OPEN, priority__gt=0
        )
        .filter(Q(assignee__isnull=True) | Q(assigned_until__lte=timezone.now()))
        .exists()
    )


def ask_for_next_batch(project: Project) -> None:
    """The selected batch is used up: select the next one now, not at the periodic check up
    to a minute later (meanwhile the queue hands out the rest by uncertainty, or by age before
    any model). At most once per REFILL_SECONDS per project, however many annotators ask."""
    from kombu.exceptions import OperationalError

    from learner.tasks import select_batch

    key = f"nerloop:refill:{project.pk}"
    if not cache.add(key, True, REFILL_SECONDS):
        return

    def send() -> None:
        try:
            select_batch.delay(project.pk)
        except OperationalError:  # the broker is down: the periodic check refills later
            cache.delete(key)

    transaction.on_commit(send)


def _lock_user(user) -> None:
    """Serialise one user's queue requests (a row lock on PostgreSQL; SQLite transactions
    here begin IMMEDIATE, which serialises every writer already)."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))


def _claim_new(project: Project, user, exclude: int | None) -> Document | None:
    lock = connection.features.has_select_for_update_skip_locked
    rows = candidates(project, user)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    if lock:
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    for _ in range(CLAIM_ATTEMPTS):
        document = rows.first()
        if document is None:
            return None
        if document.claim(user):
            return document
    return None


def _seconds_left(document: Document) -> float | None:
    if document.assigned_until is None:
        return None
    return round(max(0.0, (document.assigned_until - timezone.now()).total_seconds()), 3)


def item(document: Document) -> dict:
    """What the workspace shows: the text, the latest pre-annotation and any annotation."""
    prediction = document.latest_prediction()
    annotation = getattr(document, "annotation", None)
    return {
        "document": {
            "id": document.pk,
            "text": document.text,
            "meta": document.meta,
            "split": document.split,
            "status": document.status,
            "uncertainty": document.uncertainty,
            "predicted_by": document.predicted_by_id,
            "priority": document.priority,
            "created": document.created,
        },
        "assigned_until": document.assigned_until,
        # Seconds the claim has left, free of clock skew: how long a page may keep an item
        # it fetched ahead before showing it.
        "expires_in": _seconds_left(document),
        "prediction": None
        if prediction is None
        else {
            "spans": prediction.spans,
            "model_version": prediction.model_version.version,
            "mean_entropy": prediction.mean_entropy,
            "mnlp": prediction.mnlp,
        },
        "annotation": None
        if annotation is None
        else {
            "spans": annotation.spans,
            "revision": annotation.revision,
            "validated": annotation.validated,  # False: someone's draft
            "annotator": annotation.annotator.get_username() if annotation.annotator else None,
        },
        "revision": annotation.revision if annotation is not None else 0,
    }
