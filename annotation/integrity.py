"""What must follow a deletion, whichever way it comes (the API, the Django admin, a shell):

- an annotation deleted: its document is open again (``predicted`` when a model predicted it,
  else ``new``) instead of staying ``validated`` with no answer, out of the queue for good;
- a membership deleted: the documents that user held in the project go back to the queue.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.signals import post_delete


def _started_by(kwargs, model) -> bool:
    """Whether the deletion was of ``model`` itself, not a cascade from a document or a
    project being deleted (nothing to reopen or release then)."""
    origin = kwargs.get("origin")
    return (origin.model if isinstance(origin, QuerySet) else type(origin)) is model


def reopen_document(sender, instance, **kwargs) -> None:
    from .models import Document

    if not _started_by(kwargs, sender):
        return
    rows = Document.objects.filter(pk=instance.document_id)
    rows.filter(predicted_by__isnull=False).update(status=Document.Status.PREDICTED)
    rows.filter(predicted_by__isnull=True).update(status=Document.Status.NEW)


def release_held(sender, instance, **kwargs) -> None:
    from .models import Document

    if not _started_by(kwargs, sender):
        return
    Document.objects.filter(project_id=instance.project_id, assignee_id=instance.user_id).update(
        assignee=None, assigned_until=None
    )


def connect() -> None:
    from .models import Annotation, ProjectMembership

    post_delete.connect(reopen_document, sender=Annotation, dispatch_uid="annotation.reopen")
    post_delete.connect(release_held, sender=ProjectMembership, dispatch_uid="annotation.release")
