"""Hot-swap: predict requests keep flowing while a project's active version changes.

The bundles are the serving tests' tiny real ONNX bundles (no training), two of them with
different versions, so every answer says which model gave it.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from inference import registry
from inference.hotswap import ActiveBundles
from learner.models import ModelVersion
from tests.inference.tiny_bundle import build_tiny_bundle

TEXTS = ["张三在北京工作。", "李四去了杭州，我们很开心。"]


@pytest.fixture
def two_bundles(tmp_path):
    first = build_tiny_bundle(tmp_path / "a", version="tiny-a", seed=1)
    second = build_tiny_bundle(tmp_path / "b", version="tiny-b", seed=2)
    yield str(first), str(second)
    registry.unload(first)
    registry.unload(second)


def test_hot_swap_loads_beside_the_old_model_then_switches(two_bundles):
    first, second = two_bundles
    cache = ActiveBundles()
    wanted = {"path": first}
    old = cache.bundle_for("p", lambda: wanted["path"], ttl=0)
    assert old.version == "tiny-a"
    wanted["path"] = second
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        model = cache.bundle_for("p", lambda: wanted["path"], ttl=0)
        seen.add(model.version)
        if model.version == "tiny-b":
            break
        time.sleep(0.01)
    assert "tiny-b" in seen
    # the old object was dropped from the registry but still answers whoever holds it
    assert registry.registry.loaded().get(first) is None
    assert old.predict(TEXTS)[0].model_version == "tiny-a"


def test_hot_swap_keeps_serving_when_the_new_bundle_is_broken(two_bundles, tmp_path):
    first, _ = two_bundles
    cache = ActiveBundles()
    wanted = {"path": first}
    assert cache.bundle_for("p", lambda: wanted["path"], ttl=0).version == "tiny-a"
    wanted["path"] = str(tmp_path / "no-such-bundle")
    for _ in range(20):
        assert cache.bundle_for("p", lambda: wanted["path"], ttl=0).version == "tiny-a"
        time.sleep(0.01)


def test_hot_swap_caches_the_active_lookup_for_the_ttl(two_bundles):
    first, _ = two_bundles
    cache = ActiveBundles()
    calls = []

    def resolve():
        calls.append(1)
        return first

    for _ in range(50):
        cache.bundle_for("p", resolve, ttl=60)
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_hot_swap_under_continuous_predict_traffic(world, two_bundles):
    """Threads post predict requests non-stop while the project's active version changes:
    no request fails, both versions answer, each thread moves from the old to the new one
    once, and the new version serves within 2 s of its activation."""
    first, second = two_bundles
    project = world.project
    old = ModelVersion.objects.create(project=project, version="tiny-a", bundle_path=first)
    old.activate()
    new = ModelVersion.objects.create(project=project, version="tiny-b", bundle_path=second)
    stop = threading.Event()
    answers: list[list[tuple[float, str]]] = [[] for _ in range(4)]
    failures: list[str] = []

    def client_loop(index: int) -> None:
        client = APIClient()
        client.force_authenticate(world.client)
        try:
            while not stop.is_set():
                response = client.post(
                    "/api/v1/predict", {"texts": TEXTS, "project": project.pk}, format="json"
                )
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.content[:200]!r}")
                    continue
                answers[index].append((time.monotonic(), response.json()["model_version"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while min(len(a) for a in answers) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        new.activate()  # what the promotion gate does
        activated = time.monotonic()
        while time.monotonic() < deadline:
            if all(a and a[-1][1] == "tiny-b" for a in answers):
                break
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    versions = [v for thread_answers in answers for _, v in thread_answers]
    assert {"tiny-a", "tiny-b"} <= set(versions)
    first_new = min(t for thread_answers in answers for t, v in thread_answers if v == "tiny-b")
    print(f"\nactivation -> first answer from the new version: {first_new - activated:.2f} s")
    for thread_answers in answers:
        sequence = [v for _, v in thread_answers]
        switch = sequence.index("tiny-b")
        assert set(sequence[:switch]) == {"tiny-a"} and set(sequence[switch:]) == {"tiny-b"}
