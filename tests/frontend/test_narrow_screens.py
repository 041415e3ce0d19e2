"""Every page fits a phone's width: nothing pushes the page sideways (wide tables and the
chart scroll inside their cards)."""

from __future__ import annotations

import pytest

from learner.models import ModelVersion
from tests.frontend.conftest import login, make_version, queue_document, shot
from tests.frontend.test_pages import project_pages

pytestmark = [pytest.mark.browser]


def test_pages_fit_a_400px_wide_screen(page, live_server, world):
    model = make_version(world.project, "v1", status=ModelVersion.Status.ACTIVE)
    world.project.name = "一个名字相当长的命名实体识别标注项目（用来检验窄屏布局）"
    world.project.save()
    queue_document(world.project, model, "张三在北京的清华大学工作，李四去了上海。", [], 0.9)
    make_version(world.project, "v2", status=ModelVersion.Status.CANDIDATE, metrics={"f1": 0.4})
    page.set_viewport_size({"width": 400, "height": 860})
    login(page, live_server, "admin")
    for path in project_pages(world.project.pk):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter((e) => e.getBoundingClientRect().right > 401)
                .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`)"""
        )
        assert width <= 400, f"{path} is {width}px wide: {wide}"
        # a checkbox sits beside its sentence, not alone on a line above it
        alone = page.evaluate(
            """() => [...document.querySelectorAll('label.row > input[type=checkbox]')]
                .filter((box) => box.offsetParent !== null)
                .filter((box) => {
                    const text = document.createRange();
                    text.selectNodeContents(box.parentElement);
                    text.setStartAfter(box);
                    const first = text.getClientRects()[0];
                    const mark = box.getBoundingClientRect();
                    return first && first.top > mark.bottom;
                }).map((box) => box.id)"""
        )
        assert not alone, f"{path}: checkboxes alone on their line: {alone}"
    shot(page, "export-400px")


def test_a_long_project_name_wraps_instead_of_widening_the_page(page, live_server, world):
    world.project.name = "x" * 200  # one "word": the most a name may be
    world.project.save()
    login(page, live_server, "admin")
    for width in (1366, 400):
        page.set_viewport_size({"width": width, "height": 860})
        for path in ("/", f"/projects/{world.project.pk}/dashboard/"):
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path} at {width}px is {scroll}px wide"


def test_model_versions_stack_on_a_phone(page, live_server, world):
    """At phone width each version is a block of "heading value" lines, its Activate button
    on screen, rather than nine columns squeezed to a word each."""
    make_version(world.project, "v1", status=ModelVersion.Status.ACTIVE, metrics={"f1": 0.6})
    older = make_version(
        world.project,
        "v2-with-a-long-name-20261127090838",
        status=ModelVersion.Status.CANDIDATE,
        metrics={"f1": 0.4},
        gate_reason="F1 0.4000 is below the active version's 0.6000 minus the tolerance 0.0",
    )
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    row = page.locator(f"#versions-body tr[data-version-id='{older.pk}']")
    row.wait_for()
    button = row.locator(".activate-btn")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert row.bounding_box()["height"] < 400  # a few lines, not a column of single words
    assert page.locator("#versions-table thead").is_hidden()
    assert row.locator("td").first.get_attribute("data-label") == "版本"
    # versions that labelled nothing (registered bundles) put whole numbers on the axis
    ticks = page.eval_on_selector_all("#f1-chart text", "els => els.map((e) => e.textContent)")
    assert "0" in ticks and "1" in ticks, ticks
    assert "0.2" not in ticks and not any("000000" in tick for tick in ticks), ticks
    shot(page, "dashboard-versions-phone")
