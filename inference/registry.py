"""The process-wide registry of loaded bundles, keyed by bundle folder.

Lifecycle as in MLServer's registry: a bundle is loaded and must pass a smoke prediction
before its reference is published; a reload builds the new object first and only then
replaces the old one, so a request never sees a half-loaded model. The replaced object is not
unloaded: requests that already hold it finish on it, and it is freed when the last of them
drops its reference. A failed load leaves whatever was serving in place and re-raises.

A process keeps at most ``capacity`` bundles (``NERLOOP_MAX_LOADED_BUNDLES``): past it, the
one used least recently is dropped, so a worker that predicted with every version a project
ever trained does not hold all of them in memory. A dropped bundle loads again on next use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .bundle import BundleError
from .engine import SMOKE_TEXT, ModelBundle, ModelNotReady

logger = logging.getLogger(__name__)

__all__ = [
    "ModelNotReady",
    "Registry",
    "default",
    "get",
    "preload_default",
    "registry",
    "reload",
    "smoke_check",
    "swap",
    "unload",
]


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def smoke_check(model: ModelBundle) -> None:
    """Predict a short, a blank and a windowed text; raise BundleError unless all look sane."""
    long_text = SMOKE_TEXT * (model.max_len // len(SMOKE_TEXT) + 2)
    texts = [SMOKE_TEXT, " ", long_text]
    try:
        results = model.predict(texts)
    except Exception as exc:  # any failure at all means this bundle must not serve
        raise BundleError(f"bundle {model.path} failed its smoke prediction: {exc!r}") from exc
    for text, result in zip(texts, results, strict=True):
        sane = (
            result.tokens == len(text)
            and result.embedding.shape == (model.embedding_dim,)
            and all(math.isfinite(value) for value in result.uncertainty.values())
            and all(0 <= e.start < e.end <= len(text) for e in result.entities)
        )
        if not sane:
            raise BundleError(f"bundle {model.path} gave a malformed smoke prediction")


def _capacity() -> int:
    from django.conf import settings

    return int(getattr(settings, "MAX_LOADED_BUNDLES", 4)) if settings.configured else 4


class Registry:
    def __init__(self, failure_ttl: float = 5.0, capacity: int | None = None) -> None:
        """``failure_ttl``: seconds a failed load is remembered, so a broken bundle answers
        requests with ModelNotReady at once instead of re-hashing its files every time.
        ``capacity``: most bundles kept loaded (None: the MAX_LOADED_BUNDLES setting)."""
        self.failure_ttl = failure_ttl
        self.capacity = capacity
        self._models: OrderedDict[str, ModelBundle] = OrderedDict()
        self._failures: dict[str, tuple[float, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @staticmethod
    def _load(key: str) -> ModelBundle:
        if not Path(key).is_dir():
            raise ModelNotReady(f"no model bundle at {key}")
        model = ModelBundle(key).load()
        smoke_check(model)
        return model

    def get(self, path: str | Path) -> ModelBundle:
        """The loaded bundle at ``path``, loading it on first use (one loader per path; other
        paths stay servable meanwhile). Raises ModelNotReady when it cannot be loaded."""
        key = _key(path)
        model = self._models.get(key)
        if model is not None:
            self._touch(key)
            return model
        with self._lock_for(key):
            model = self._models.get(key)
            if model is None:
                failed = self._failures.get(key)
                if failed and time.monotonic() - failed[0] < self.failure_ttl:
                    raise ModelNotReady(failed[1])
                try:
                    model = self._load(key)
                except (BundleError, ModelNotReady) as exc:
                    self._failures[key] = (time.monotonic(), str(exc))
                    raise ModelNotReady(str(exc)) from exc
                self._failures.pop(key, None)
                self._publish(key, model)
                logger.info("serving bundle %s version %s", key, model.version)
            return model

    def _touch(self, key: str) -> None:
        with self._guard:
            if key in self._models:
                self._models.move_to_end(key)

    def _publish(self, key: str, model: ModelBundle) -> None:
        """Serve ``model`` under ``key``; drop the least recently used bundles over capacity
        (requests holding one finish on it)."""
        capacity = max(1, self.capacity if self.capacity is not None else _capacity())
        with self._guard:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > capacity:
                dropped, _ = self._models.popitem(last=False)
                logger.info("dropped bundle %s (least recently used of %d)", dropped, capacity)

    def reload(self, path: str | Path) -> ModelBundle:
        """Load ``path`` afresh (its files changed) and replace the served object only once the
        new one passed its smoke prediction. On failure the old object keeps serving and the
        error (BundleError, ModelNotReady) is re-raised."""
        key = _key(path)
        with self._lock_for(key):
            model = self._load(key)
            self._publish(key, model)
            self._failures.pop(key, None)
        logger.info("reloaded bundle %s, now version %s", key, model.version)
        return model

    def swap(self, old_path: str | Path | None, new_path: str | Path) -> ModelBundle:
        """Serve ``new_path`` in place of ``old_path``: the new bundle is loaded and checked
        first; only then is the old one dropped from the registry. Errors are re-raised with
        the old one untouched."""
        new_key = _key(new_path)
        with self._lock_for(new_key):
            model = self._models.get(new_key) or self._load(new_key)
            self._publish(new_key, model)
        if old_path is not None and _key(old_path) != new_key:
            self.unload(old_path)
        return model

    def unload(self, path: str | Path) -> None:
        """Forget the bundle at ``path``; requests holding it finish on it."""
        with self._guard:
            self._models.pop(_key(path), None)

    def loaded(self) -> dict[str, ModelBundle]:
        with self._guard:
            return dict(self._models)

    def clear(self) -> None:
        with self._guard:
            self._models.clear()
        self._failures.clear()

    def default(self) -> ModelBundle:
        """The bundle at ``settings.DEFAULT_BUNDLE``."""
        from django.conf import settings

        path = getattr(settings, "DEFAULT_BUNDLE", "")
        if not path:
            raise ModelNotReady("no default bundle is configured (NERLOOP_DEFAULT_BUNDLE)")
        return self.get(path)


registry = Registry()


def get(path: str | Path) -> ModelBundle:
    return registry.get(path)


def reload(path: str | Path) -> ModelBundle:
    return registry.reload(path)


def swap(old_path: str | Path | None, new_path: str | Path) -> ModelBundle:
    return registry.swap(old_path, new_path)


def unload(path: str | Path) -> None:
    registry.unload(path)


def default() -> ModelBundle:
    return registry.default()


def preload_default() -> threading.Thread:
    """Load the default bundle in a background thread, so a web process's first predict
    request does not wait for it (manifest check, ONNX session, warm-up decoding). A bundle
    that cannot load is logged; requests then get E201 as before."""

    def load() -> None:
        try:
            registry.default()
        except (ModelNotReady, BundleError) as exc:
            logger.warning("default bundle not preloaded: %s", exc)

    thread = threading.Thread(target=load, name="preload-default-bundle", daemon=True)
    thread.start()
    return thread
