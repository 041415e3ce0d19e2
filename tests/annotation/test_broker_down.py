"""With the broker unreachable, endpoints that enqueue answer 503 E204 and store nothing."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Annotation, Document
from nerloop.tasks import BrokerUnavailable, ensure_broker

pytestmark = pytest.mark.django_db


def test_broker_down_ensure_broker_raises_quickly(broker_down):
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        ensure_broker()
    assert time.monotonic() - started < 5
    assert info.value.status_code == 503
    assert info.value.code == "E204"


def test_broker_up_ensure_broker_passes():
    ensure_broker()


def test_broker_down_bulk_create_is_503_and_stores_nothing(world, broker_down):
    body = [{"text": "张三在北京", "spans": [[0, 2, "PER"]]}, {"text": "李四"}]
    response = world.api("admin").post(
        f"/api/v1/projects/{world.project.pk}/documents", body, format="json"
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "E204"
    assert "broker" in error["message"]
    assert not Document.objects.exists() and not Annotation.objects.exists()


def test_broker_down_upload_is_503_and_stores_nothing(world, broker_down):
    file = SimpleUploadedFile("a.jsonl", '{"text": "张三在北京"}\n'.encode())
    response = world.api("admin").post(
        f"/api/v1/projects/{world.project.pk}/documents/upload", {"file": file}, format="multipart"
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "E204"
    assert not Document.objects.exists()


def test_broker_down_does_not_block_endpoints_that_do_not_enqueue(world, broker_down):
    world.document()
    assert (
        world.api("annotator").get(f"/api/v1/projects/{world.project.pk}/queue/next").status_code
        == 200
    )
