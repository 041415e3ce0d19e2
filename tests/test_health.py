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


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head_and_any_host(path, tmp_path):
    """A load balancer probing by address (a Host not in ALLOWED_HOSTS) or with HEAD."""
    with override_settings(DEFAULT_BUNDLE=str(tmp_path / "absent")):
        by_address = Client().get(path, HTTP_HOST="10.0.0.5:8000")
        head = Client().head(path)
    assert by_address.status_code == 200 and by_address.json()["status"] == "ok"
    assert head.status_code == 200 and head.content == b""
    assert head["Content-Type"] == "application/json"
    # anything else still checks the host
    assert Client().get("/login/", HTTP_HOST="10.0.0.5:8000").status_code == 400
    assert Client().post(path).status_code == 405
