"""The one task decorator and the broker check every enqueueing endpoint makes.

``nerloop_task`` gives each task an explicit dotted name, ``acks_late``, time limits and a
log line with its duration and outcome. ``ensure_broker`` turns a broker that cannot be
reached into a 503 (E204) before anything is committed, so a request never half-succeeds
and never runs the work itself instead.
"""

from __future__ import annotations

import functools
import logging
import time

from kombu.exceptions import OperationalError
from rest_framework import status

from nerloop.celery import app, make_broker_folders
from nerloop.errors import CodedAPIException

log = logging.getLogger("nerloop.tasks")


def nerloop_task(name: str, *, time_limit: int = 600, soft_time_limit: int | None = None, **opts):
    """Register ``fn`` as a Celery task named ``name`` that logs how long each run took."""

    def wrap(fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            started = time.monotonic()
            outcome = "failed"
            try:
                result = fn(*args, **kwargs)
                outcome = "ok"
                return result
            finally:
                log.info(
                    "task %s %s in %.3fs args=%s",
                    name,
                    outcome,
                    time.monotonic() - started,
                    _short(args),
                )

        return app.task(
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit or max(1, time_limit - 30),
            **opts,
        )(timed)

    return wrap


def _short(args) -> str:
    text = repr(args)
    return text if len(text) <= 120 else text[:117] + "..."


class BrokerUnavailable(CodedAPIException):
    def __init__(self, detail: str):
        super().__init__("E204", detail, status.HTTP_503_SERVICE_UNAVAILABLE)


def ensure_broker() -> None:
    """Raise BrokerUnavailable (503, E204) unless the broker accepts a connection now."""
    make_broker_folders()
    timeout = app.conf.broker_connection_timeout or 2
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=timeout)
    except (OperationalError, OSError) as exc:
        log.warning("broker unreachable: %s", exc)
        raise BrokerUnavailable(
            f"the task broker is unreachable ({exc}); try again later"
        ) from None
