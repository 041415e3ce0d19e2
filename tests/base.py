"""Shared platform fixtures: two projects, each with its own users, for ownership tests.

``world`` gives project A with an admin, an annotator and a client, and project B whose
admin (``outsider``) has no role in A. Every endpoint test checks each of these roles plus
an anonymous caller. Loaded for the whole suite through ``pytest_plugins`` in conftest.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.models import Document, Project, Role

ROLES = ("admin", "annotator", "client", "outsider", "anonymous")


@dataclass
class World:
    project: Project
    other_project: Project
    admin: object
    annotator: object
    client: object
    outsider: object

    def user(self, role: str):
        return None if role == "anonymous" else getattr(self, role)

    def api(self, role: str) -> APIClient:
        """An API client authenticated as ``role`` (anonymous: not authenticated)."""
        client = APIClient()
        user = self.user(role)
        if user is not None:
            client.force_authenticate(user)
        return client

    def document(self, text: str = "张三在北京工作。", project: Project | None = None, **kw):
        return Document.objects.create(project=project or self.project, text=text, **kw)


def make_user(username: str, password: str | None = None, creates_projects: bool = False):
    """A user; without a password unless given (hashing one costs a noticeable 0.1 s);
    ``creates_projects``: granted "Can add project"."""
    user = get_user_model().objects.create_user(username=username, password=password)
    if creates_projects:
        from django.contrib.auth.models import Permission

        user.user_permissions.add(Permission.objects.get(codename="add_project"))
    return user


@pytest.fixture
def world(db) -> World:
    # the project leads may create projects; the annotator and the client may not
    users = {
        role: make_user(role, creates_projects=role in ("admin", "outsider"))
        for role in ("admin", "annotator", "client", "outsider")
    }
    project = Project.objects.create(name="A", created_by=users["admin"])
    project.add_member(users["admin"], Role.ADMIN)
    project.add_member(users["annotator"], Role.ANNOTATOR)
    project.add_member(users["client"], Role.CLIENT)
    other = Project.objects.create(name="B", created_by=users["outsider"])
    other.add_member(users["outsider"], Role.ADMIN)
    return World(project, other, **users)


def expected(allowed: tuple[str, ...], role: str, ok: int) -> int:
    """The status ``role`` should get from an endpoint that ``allowed`` roles may use.

    Anonymous callers get 401 (with a WWW-Authenticate: Token challenge), non-members 404
    (the project is not theirs to know about), members with too small a role 403.
    """
    if role in allowed:
        return ok
    return {"outsider": 404, "anonymous": 401}.get(role, 403)


@contextmanager
def running_worker():
    """A real Celery worker consuming the ``control``, ``inference`` and ``training`` queues from
    the configured broker (Redis in CI, the filesystem transport otherwise), in a thread of
    this process so that it sees the test database. Its database connections are closed after
    every task, so the test database can be flushed and dropped afterwards."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from nerloop.celery import app, make_broker_folders

    def close_connections(**kwargs):
        connections.close_all()

    make_broker_folders()
    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            queues=["control", "inference", "training"],
            perform_ping_check=False,
            shutdown_timeout=60,
            loglevel="WARNING",
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_connections)


@pytest.fixture
def live_worker(transactional_db):
    """``running_worker`` for the length of a test."""
    with running_worker() as worker:
        yield worker


def wait_for(condition, timeout: float = 60.0, interval: float = 0.2):
    """Poll ``condition()`` until it is truthy; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)
