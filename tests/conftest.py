import os
from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    path = Path(settings.DATASETS_DIR)
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


def pytest_configure(config):
    os.environ.setdefault("SECRET_KEY", "test-only-secret")
