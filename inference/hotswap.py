"""Hot-swap: every process serves a project's newly activated model without a restart.

A web process answers each predict request with the bundle of the project's active version.
Asking the database on every request would work but costs a query per call, so the answer
("project 7 serves the bundle at path P") is cached for ``ACTIVE_MODEL_TTL_MS``. When the
answer changes, the new bundle is loaded in a background thread (``registry.get``: verify,
load, smoke prediction) while the old one keeps answering; only a loaded bundle replaces the
old reference. Requests already running hold their own reference and finish on the old model.
When nothing was being served yet for the project, the first request loads synchronously.

Which path is active is not decided here: callers pass a ``resolve`` function (a database
lookup in ``annotation.predicting``), so ``inference/`` stays free of the learner's models.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import registry as registry_module
from .engine import ModelBundle

logger = logging.getLogger(__name__)

Resolve = Callable[[], "str | None"]  # the active bundle path, or None for the default bundle


def _ttl_seconds() -> float:
    from django.conf import settings

    return getattr(settings, "ACTIVE_MODEL_TTL_MS", 500) / 1000.0


@dataclass
class _Entry:
    wanted: str | None = None  # the path the database named at the last check
    checked: float = float("-inf")  # time.monotonic() of that check
    serving: ModelBundle | None = None  # what requests get now
    serving_path: str | None = None
    loading: str | None = None  # the path a background thread is loading, if any
    lock: threading.Lock = field(default_factory=threading.Lock)


class ActiveBundles:
    """Per-process cache from a project key to the bundle serving it. The key is any hashable
    that names one project for good (``annotation.predicting`` uses its id and creation time,
    so a reused id after a rollback never sees another project's cached model)."""

    def __init__(self, registry: registry_module.Registry | None = None):
        self.registry = registry or registry_module.registry
        self._entries: dict[int, _Entry] = {}
        self._guard = threading.Lock()

    def _entry(self, key) -> _Entry:
        with self._guard:
            return self._entries.setdefault(key, _Entry())

    def bundle_for(self, key, resolve: Resolve, ttl: float | None = None) -> ModelBundle:
        """The bundle serving ``key`` now. Raises ``ModelNotReady`` when none can serve."""
        entry = self._entry(key)
        ttl = _ttl_seconds() if ttl is None else ttl
        now = time.monotonic()
        if now - entry.checked >= ttl:
            wanted = resolve()
            with entry.lock:
                entry.wanted, entry.checked = wanted, now
        wanted = entry.wanted
        serving = entry.serving
        if serving is not None and entry.serving_path == wanted:
            return serving
        if serving is None:
            return self._load_now(entry, wanted)
        self._load_in_background(key, entry, wanted)
        return serving

    def _open(self, path: str | None) -> ModelBundle:
        return self.registry.default() if path is None else self.registry.get(path)

    def _load_now(self, entry: _Entry, wanted: str | None) -> ModelBundle:
        model = self._open(wanted)
        with entry.lock:
            if entry.serving is None or entry.wanted == wanted:
                entry.serving, entry.serving_path = model, wanted
        return model

    def _load_in_background(self, key, entry: _Entry, wanted: str | None) -> None:
        with entry.lock:
            if entry.loading == wanted:
                return
            entry.loading = wanted
        thread = threading.Thread(
            target=self._swap, args=(key, entry, wanted), name=f"hotswap-{key}", daemon=True
        )
        thread.start()

    def _swap(self, key, entry: _Entry, wanted: str | None) -> None:
        try:
            model = self._open(wanted)
        except Exception:  # a broken bundle must not take serving down: keep the old model
            logger.exception("project %s: bundle %s failed to load; old model serves", key, wanted)
            with entry.lock:
                entry.loading = None
                entry.checked = float("-inf")
            return
        with entry.lock:
            old_path = entry.serving_path
            if entry.wanted == wanted:
                entry.serving, entry.serving_path = model, wanted
            entry.loading = None
        logger.info("project %s now served by %s (version %s)", key, wanted, model.version)
        if old_path is not None and old_path != wanted and not self._in_use(old_path):
            self.registry.unload(old_path)  # requests holding it finish on it

    def _in_use(self, path: str) -> bool:
        with self._guard:
            entries = list(self._entries.values())
        target = Path(path)
        return any(e.serving_path and Path(e.serving_path) == target for e in entries)

    def forget(self, key) -> None:
        """Drop the cached answer so the next request asks again (tests, explicit activations
        in this process)."""
        entry = self._entry(key)
        with entry.lock:
            entry.checked = float("-inf")

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()


active_bundles = ActiveBundles()
