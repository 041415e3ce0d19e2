"""Fixtures of the serving tests; the bundle they load is built in ``tiny_bundle.py``."""

from pathlib import Path

import pytest

from .tiny_bundle import build_tiny_bundle


@pytest.fixture
def tiny_bundle(tmp_path) -> Path:
    return build_tiny_bundle(tmp_path / "tiny")
