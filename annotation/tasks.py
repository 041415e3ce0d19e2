"""Celery tasks of the annotation app: thin wrappers that take ids and call one service.

They go to the ``inference`` queue, the default one (``CELERY_TASK_DEFAULT_QUEUE``).
"""

from __future__ import annotations

import logging

from nerloop.tasks import nerloop_task

log = logging.getLogger(__name__)


@nerloop_task("annotation.predict_documents", time_limit=900)
def predict_documents(project_id: int, document_ids: list[int]) -> int:
    """Pre-annotate documents with the project's serving model; safe to run twice.

    With no model to serve yet (a new project, no default bundle) the documents stay
    unpredicted, with one warning instead of a traceback per chunk: a promotion re-predicts
    the pool, and the periodic sweep re-queues what is left."""
    from inference.engine import ModelNotReady

    from .predicting import predict_documents as run

    try:
        return run(project_id, document_ids)
    except ModelNotReady as exc:
        log.warning(
            "project %s: %d documents wait for a model (%s)", project_id, len(document_ids), exc
        )
        return 0


@nerloop_task("annotation.sweep_unpredicted", time_limit=120)
def sweep_unpredicted() -> int:
    """Periodic: re-queue documents whose prediction task was lost."""
    from .predicting import sweep_unpredicted as run

    return run()
