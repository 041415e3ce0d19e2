"""Browser fixtures: Debian's headless Chromium driven by Playwright's sync API against
pytest-django's live_server (a real server thread on the test database).

Opt-in: only tests that ask for ``page`` start a browser. Screenshots go to
tests/screenshots/ (git-ignored) so a person can look at every page after a run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.signals import setting_changed

from annotation.models import Document, Prediction
from learner.models import ModelVersion

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
PASSWORD = "pw-for-browser-tests"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def compiled_messages() -> None:
    """The UI's .mo files are in git (`make messages` compiles them from the .po files, and
    tests/frontend/test_pages.py checks they agree); compile any that is missing here."""
    locale = Path(settings.BASE_DIR) / "frontend" / "locale"
    stale = [po for po in locale.glob("*/LC_MESSAGES/*.po") if not po.with_suffix(".mo").exists()]
    if not stale:
        return
    if shutil.which("msgfmt") is None:
        pytest.fail(
            "GNU gettext's msgfmt is missing: run `make messages` (apt-get install gettext)"
        )
    here = os.getcwd()
    os.chdir(locale.parent)
    try:
        call_command("compilemessages", verbosity=0)
    finally:
        os.chdir(here)
    # Catalogs loaded before the .mo existed are cached empty: have Django drop them.
    setting_changed.send(
        sender=None, setting="LOCALE_PATHS", value=settings.LOCALE_PATHS, enter=False
    )


@pytest.fixture(scope="session")
def browser(compiled_messages):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run `make browser`")
    # Playwright's sync API runs an asyncio loop in this thread; Django's ORM (used by the
    # tests to seed and check rows) refuses to run inside one unless told it is safe here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, transactional_db):
    """A fresh browser context (English browser locale: the UI must still default to
    Chinese). Fails the test if the page throws a JavaScript error or asks another host for
    anything."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.js_errors = errors
    # Every page works offline: nothing may be fetched from another host (a CDN, fonts).
    local = (live_server.url, "data:", "blob:", "about:")
    elsewhere: list[str] = []
    tab.on("request", lambda r: None if r.url.startswith(local) else elsewhere.append(r.url))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not elsewhere, f"requests to other hosts: {elsewhere}"


def login(page, live_server, username: str) -> None:
    """Log in through the login form, as a person would (the user gets a password first)."""
    user = get_user_model().objects.get(username=username)
    if not user.has_usable_password():
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{live_server.url}/")


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar belongs at the top
    page.screenshot(path=str(path), full_page=True)
    return path


def make_version(project, version: str, **fields) -> ModelVersion:
    fields.setdefault("bundle_path", f"/nonexistent/{version}")
    return ModelVersion.objects.create(project=project, version=version, **fields)


def queue_document(project, version: ModelVersion, text: str, spans, uncertainty: float):
    """A document in the review queue with the model's pre-annotation."""
    document = Document.objects.create(
        project=project, text=text, status=Document.Status.QUEUED, uncertainty=uncertainty
    )
    Prediction.objects.create(
        document=document,
        model_version=version,
        spans=spans,
        mean_entropy=uncertainty,
        max_entropy=uncertainty,
        least_confidence=uncertainty,
        mnlp=-uncertainty,
    )
    return document
