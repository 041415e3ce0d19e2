"""The playground in a real browser, served by a real ONNX bundle through POST /api/v1/predict."""

from __future__ import annotations

import pytest

from inference import registry
from tests.frontend.conftest import login, shot
from tests.inference.conftest import build_tiny_bundle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served_bundle(tmp_path, settings):
    """The tiny bundle of the inference tests (its cues: 张/小/三 PER, 北京/杭州 LOC) as the
    platform default; the live server thread reads the same settings."""
    path = build_tiny_bundle(tmp_path / "play", version="tiny-play")
    settings.DEFAULT_BUNDLE = str(path)
    yield path
    registry.unload(path)


def marks(page) -> list[tuple[str, str]]:
    found = page.eval_on_selector_all(
        "#play-output mark.ent", "(ms) => ms.map((m) => [m.textContent, m.dataset.label])"
    )
    return [tuple(pair) for pair in found]


def test_playground_highlights_as_you_type(page, live_server, world, served_bundle):
    login(page, live_server, "client")
    page.goto(f"{live_server.url}/playground/")
    page.fill("#play-input", "")
    page.type("#play-input", "张小三在北京", delay=20)
    page.wait_for_function(
        "document.querySelectorAll('#play-output mark.ent').length === 2"
        " && document.getElementById('play-output').textContent === '张小三在北京'"
    )
    assert marks(page) == [("张小三", "PER"), ("北京", "LOC")]
    assert "tiny-play" in page.inner_text("#play-version")
    assert page.inner_text("#play-time").endswith(")")  # round trip and the model's own time
    answer = page.inner_text("#play-json")
    assert '"label": "PER"' in answer and '"took_ms"' in answer

    page.type("#play-input", "，李和😀去了杭州。", delay=20)
    page.wait_for_function("document.getElementById('play-output').textContent.endsWith('杭州。')")
    found = marks(page)
    assert ("张小三", "PER") in found and ("北京", "LOC") in found
    assert ("李", "PER") in found and ("杭州", "LOC") in found
    # The legend keeps the default colours: PER red, LOC cyan, ORG yellow.
    colours = page.eval_on_selector_all(
        "#play-legend .legend-item",
        "(items) => items.map((i) => [i.textContent, i.style.getPropertyValue('--ent')])",
    )
    assert [tuple(pair) for pair in colours[:3]] == [
        ("PER", "#ef4444"),
        ("LOC", "#22d3ee"),
        ("ORG", "#facc15"),
    ]
    shot(page, "playground")


def test_playground_renders_markup_as_text(page, live_server, world, served_bundle):
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/playground/")
    text = '<img src=x onerror="window.__xss=1">张三<script>window.__xss=2</script>'
    page.fill("#play-input", text)
    page.wait_for_function(f"document.getElementById('play-output').textContent === {text!r}")
    assert page.locator("#play-output img, #play-output script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert ("张三", "PER") in marks(page)


def test_playground_says_when_no_model_is_served(page, live_server, world, settings, tmp_path):
    settings.DEFAULT_BUNDLE = str(tmp_path / "missing")
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/playground/")
    page.wait_for_selector("#play-status.error")
    assert "503" not in page.inner_text("#play-status")  # words, not a bare status code
    assert '"code": "E201"' in page.inner_text("#play-json")


def test_playground_project_the_default_model_cannot_serve(page, live_server, world, served_bundle):
    """The tiny default model predicts PER and LOC: a project of other types gets an error in
    words, and nothing of the previous answer stays on screen."""
    from annotation.models import Project, Role, normalize_labels

    project = Project.objects.create(name="书与电影", labels=normalize_labels(["book", "movie"]))
    project.add_member(world.annotator, Role.ANNOTATOR)
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/playground/")
    page.fill("#play-input", "张小三在北京")
    page.wait_for_function("document.querySelectorAll('#play-output mark.ent').length === 2")
    assert "tiny-play" in page.inner_text("#play-version")
    page.select_option("#play-project", label="书与电影")
    page.wait_for_selector("#play-status.error")
    assert "(LOC, PER)" in page.inner_text("#play-status")
    assert page.inner_text("#play-version") == "" and page.inner_text("#play-time") == "–"
    assert page.locator("#play-entities tr, #play-output mark.ent").count() == 0
    shot(page, "playground-project-without-model")


def test_playground_says_when_the_model_is_slow_to_answer(page, live_server, world, served_bundle):
    """A model loading for its first request answers after seconds: the page says it waits."""
    login(page, live_server, "client")
    page.goto(f"{live_server.url}/playground/")
    held = []

    def hold(route):  # answered only when the test lets it go
        held.append(route)

    page.route("**/api/v1/predict", hold)
    page.fill("#play-input", "张小三在北京")
    page.wait_for_function(
        "document.getElementById('play-status').textContent.includes('正在等待模型')"
    )
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/predict")  # later requests (once the project list loads) pass
    page.wait_for_function(
        "document.querySelectorAll('#play-output mark.ent').length === 2"
        " && !document.getElementById('play-status').textContent.includes('正在等待模型')"
    )
