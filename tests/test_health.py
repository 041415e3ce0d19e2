"""The probes a load balancer or a monitor calls, without logging in."""

import pytest
from django.test import Client, override_settings

from nerloop.tasks import BrokerUnavailable

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_a_login():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_the_database_the_broker_and_the_default_model(tmp_path):
    with override_settings(DEFAULT_BUNDLE=str(tmp_path / "absent")):
        response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] == "ok"
    assert checks["default_model"].startswith("not loaded")  # said, but not a failure


def test_readyz_is_503_when_the_broker_is_down(monkeypatch):
    def down():
        raise BrokerUnavailable("the task broker is unreachable")

    monkeypatch.setattr("nerloop.health.ensure_broker", down)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {**response.json()["checks"], "broker": "unreachable"},
    }
