"""The review queue: which document an annotator gets next, and what they see with it.

Order: documents selection has ranked (``priority``) first, then the model's least sure
(``uncertainty``), then the rest by age. Handing one out is ``Document.claim``, a
conditional UPDATE; on PostgreSQL the candidate row is also locked with SKIP LOCKED so two
annotators asking at once go straight to different rows instead of racing for one.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .models import Document, Project

CLAIM_ATTEMPTS = 8


def candidates(project: Project, user) -> QuerySet[Document]:
    now = timezone.now()
    return (
        Document.objects.filter(
            project=project, split=Document.Split.TRAIN, status__in=Document.OPEN
        )
        .filter(Q(assignee__isnull=True) | Q(assigned_until__lte=now))
        .exclude(skips__user=user)
        .order_by(F("priority").desc(), F("uncertainty").desc(nulls_last=True), "id")
    )


def held_by(project: Project, user) -> Document | None:
    """The document ``user`` already holds in ``project``, if its claim is still valid."""
    return (
        Document.objects.filter(project=project, assignee=user, assigned_until__gt=timezone.now())
        .filter(status__in=Document.OPEN)
        .order_by("assigned_until")
        .first()
    )


def next_document(project: Project, user) -> Document | None:
    """The caller's current item (its claim renewed) or a newly claimed one; None when empty."""
    held = held_by(project, user)
    if held is not None and held.claim(user):
        return held
    lock = connection.features.has_select_for_update_skip_locked
    for _ in range(CLAIM_ATTEMPTS):
        with transaction.atomic():
            rows = candidates(project, user)
            if lock:
                rows = rows.select_for_update(skip_locked=True, of=("self",))
            document = rows.first()
            if document is None:
                return None
            if document.claim(user):
                return document
    return None


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
        },
        "assigned_until": document.assigned_until,
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
        else {"spans": annotation.spans, "revision": annotation.revision},
        "revision": annotation.revision if annotation is not None else 0,
    }
