"""Celery tasks of the annotation app: thin wrappers that take ids and call one service.

They go to the ``inference`` queue, the default one (``CELERY_TASK_DEFAULT_QUEUE``).
"""

from __future__ import annotations

from nerloop.tasks import nerloop_task


@nerloop_task("annotation.predict_documents", time_limit=900)
def predict_documents(project_id: int, document_ids: list[int]) -> int:
    """Pre-annotate documents with the project's serving model; safe to run twice."""
    from .predicting import predict_documents as run

    return run(project_id, document_ids)


@nerloop_task("annotation.sweep_unpredicted", time_limit=120)
def sweep_unpredicted() -> int:
    """Periodic: re-queue documents whose prediction task was lost."""
    from .predicting import sweep_unpredicted as run

    return run()
