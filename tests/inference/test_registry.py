"""The bundle registry: load once, swap only after the new bundle works, keep serving."""

import shutil
import threading

import pytest
from django.test import override_settings

from inference.bundle import BundleError
from inference.registry import ModelNotReady, Registry

from .tiny_bundle import build_tiny_bundle


def _tamper(folder):
    with open(folder / "crf.json", "a") as handle:
        handle.write(" ")


def test_registry_loads_a_bundle_once(tiny_bundle):
    reg = Registry()
    first = reg.get(tiny_bundle)
    assert first.ready and reg.get(str(tiny_bundle) + "/") is first
    assert list(reg.loaded()) == [str(tiny_bundle.resolve())]


def test_registry_concurrent_first_use_loads_one_object(tiny_bundle):
    reg = Registry()
    got = []
    threads = [threading.Thread(target=lambda: got.append(reg.get(tiny_bundle))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 6 and all(model is got[0] for model in got)


def test_registry_missing_bundle_is_not_ready(tmp_path):
    with pytest.raises(ModelNotReady, match="no model bundle"):
        Registry().get(tmp_path / "absent")


def test_registry_tampered_bundle_is_not_ready_and_says_why(tiny_bundle):
    _tamper(tiny_bundle)
    with pytest.raises(ModelNotReady, match="crf.json") as info:
        Registry().get(tiny_bundle)
    assert isinstance(info.value.__cause__, BundleError)


def test_registry_reload_replaces_only_after_loading(tmp_path):
    folder = build_tiny_bundle(tmp_path / "m", version="v1")
    reg = Registry()
    old = reg.get(folder)
    shutil.rmtree(folder)
    build_tiny_bundle(folder, version="v2")
    new = reg.reload(folder)
    assert new is not old and new.version == "v2" and reg.get(folder) is new
    # a request that took the old object before the swap still finishes on it
    assert old.predict(["张三"])[0].model_version == "v1"


def test_registry_failed_reload_keeps_old_model_serving(tmp_path):
    folder = build_tiny_bundle(tmp_path / "m", version="v1")
    reg = Registry()
    old = reg.get(folder)
    _tamper(folder)
    with pytest.raises(BundleError, match="crf.json"):
        reg.reload(folder)
    assert reg.get(folder) is old
    assert old.predict(["张三在北京"])[0].entities


def test_registry_swap_moves_to_new_folder(tmp_path):
    old_folder = build_tiny_bundle(tmp_path / "a", version="v1")
    new_folder = build_tiny_bundle(tmp_path / "b", version="v2")
    reg = Registry()
    old = reg.get(old_folder)
    new = reg.swap(old_folder, new_folder)
    assert new.version == "v2"
    assert list(reg.loaded()) == [str(new_folder.resolve())]
    assert old.ready  # not unloaded under a request that may still hold it


def test_registry_failed_swap_leaves_old_in_place(tmp_path):
    old_folder = build_tiny_bundle(tmp_path / "a", version="v1")
    new_folder = build_tiny_bundle(tmp_path / "b", version="v2")
    _tamper(new_folder)
    reg = Registry()
    old = reg.get(old_folder)
    with pytest.raises(BundleError):
        reg.swap(old_folder, new_folder)
    assert reg.loaded() == {str(old_folder.resolve()): old}


def test_registry_requests_during_reload_never_fail(tmp_path):
    folder = build_tiny_bundle(tmp_path / "m", version="v1")
    reg = Registry()
    reg.get(folder)
    errors, versions, stop = [], set(), threading.Event()

    def serve():
        while not stop.is_set():
            try:
                versions.add(reg.get(folder).predict(["张三在北京。"])[0].model_version)
            except Exception as exc:  # the test records any failure at all
                errors.append(exc)

    workers = [threading.Thread(target=serve) for _ in range(2)]
    for worker in workers:
        worker.start()
    for _ in range(3):
        reg.reload(folder)
    stop.set()
    for worker in workers:
        worker.join()
    assert not errors and versions == {"v1"}


def test_registry_default_uses_setting(tiny_bundle):
    reg = Registry()
    with override_settings(DEFAULT_BUNDLE=str(tiny_bundle)):
        assert reg.default().version == "tiny-1"
    with override_settings(DEFAULT_BUNDLE=""), pytest.raises(ModelNotReady):
        Registry().default()


def test_registry_remembers_a_failed_load_for_a_while(tmp_path):
    folder = tmp_path / "later"
    reg = Registry(failure_ttl=60)
    with pytest.raises(ModelNotReady):
        reg.get(folder)
    build_tiny_bundle(folder)
    with pytest.raises(ModelNotReady, match="no model bundle"):
        reg.get(folder)  # still the remembered failure
    assert reg.reload(folder).ready  # an explicit reload always tries again
    assert reg.get(folder).ready


def test_registry_retries_a_failed_load_after_its_ttl(tmp_path):
    folder = tmp_path / "later"
    reg = Registry(failure_ttl=0)
    with pytest.raises(ModelNotReady):
        reg.get(folder)
    build_tiny_bundle(folder)
    assert reg.get(folder).ready


def test_registry_keeps_at_most_capacity_bundles_dropping_least_recent(tmp_path):
    folders = [build_tiny_bundle(tmp_path / name, version=name) for name in ("a", "b", "c")]
    reg = Registry(capacity=2)
    first = reg.get(folders[0])
    reg.get(folders[1])
    assert reg.get(folders[0]) is first  # a is now the most recently used
    reg.get(folders[2])
    assert sorted(reg.loaded()) == sorted(str(f.resolve()) for f in (folders[0], folders[2]))
    assert first.predict(["张三"])[0].model_version == "a"
    again = reg.get(folders[1])  # dropped bundles load again on demand
    assert again.version == "b" and len(reg.loaded()) == 2


def test_registry_capacity_comes_from_settings(tmp_path):
    folders = [build_tiny_bundle(tmp_path / name, version=name) for name in ("a", "b")]
    with override_settings(MAX_LOADED_BUNDLES=1):
        reg = Registry()
        reg.get(folders[0])
        reg.get(folders[1])
        assert list(reg.loaded()) == [str(folders[1].resolve())]


def test_a_serving_process_preloads_the_default_bundle(tiny_bundle):
    """Importing the WSGI module (what runserver and gunicorn do) loads the default model in
    the background, so the first predict request does not wait for it."""
    import importlib
    import sys
    import time

    from inference import registry as module

    module.registry.clear()
    try:
        with override_settings(DEFAULT_BUNDLE=str(tiny_bundle)):
            if "nerloop.wsgi" in sys.modules:
                importlib.reload(sys.modules["nerloop.wsgi"])
            else:
                importlib.import_module("nerloop.wsgi")
            deadline = time.monotonic() + 60
            while not module.registry.loaded() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list(module.registry.loaded()) == [str(tiny_bundle.resolve())]
    finally:
        module.registry.clear()


def test_a_default_bundle_that_cannot_load_is_only_logged_at_preload(tmp_path, caplog):
    from inference import registry as module

    with override_settings(DEFAULT_BUNDLE=str(tmp_path / "absent")):
        module.preload_default().join(timeout=60)
    assert "default bundle not preloaded" in caplog.text
    assert not module.registry.loaded()
    module.registry.clear()
