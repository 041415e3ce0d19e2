"""Fixtures shared by the annotation tests."""

import pytest
from django.test import override_settings

from inference import registry
from tests.inference.conftest import build_tiny_bundle


@pytest.fixture
def default_bundle(tmp_path):
    """A tiny bundle installed as the platform's default model."""
    path = build_tiny_bundle(tmp_path / "default", version="tiny-default")
    with override_settings(DEFAULT_BUNDLE=str(path)):
        yield path
    registry.unload(path)
