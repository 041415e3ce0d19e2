"""The dashboard in a real browser: a retrain started from the page adds a point to the F1
chart without a reload; admins roll back; annotators see no admin controls."""

from __future__ import annotations

import re
import time

import pytest
import torch
from django.utils import timezone

from annotation.models import Annotation, Document
from learner.models import ModelVersion, TrainingRun
from learner.retraining import run_training
from tests.frontend.conftest import login, make_version, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊"]
PLACES = ["北京", "上海", "杭州", "广州", "南京", "成都"]


def overall_points(page) -> int:
    return page.locator("#f1-chart circle.point[data-series='__overall']").count()


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def labelled(world):
    """Validated annotations in both splits, enough for a real (tiny) training run."""
    for i, (person, place) in enumerate((p, q) for p in PEOPLE for q in PLACES):
        text = f"{person}昨天去了{place}。" if i % 2 else f"{place}的{person}在工作。"
        split = Document.Split.EVAL if i % 5 == 0 else Document.Split.TRAIN
        doc = Document.objects.create(project=world.project, text=text, split=split)
        spans = [
            (text.index(person), text.index(person) + len(person), "PER"),
            (text.index(place), text.index(place) + len(place), "LOC"),
        ]
        Annotation.submit(doc, world.admin, spans, revision=0)
    return world


@pytest.fixture
def first_version(world, tmp_path):
    from tests.inference.conftest import build_tiny_bundle

    return make_version(
        world.project,
        "v1",
        bundle_path=str(build_tiny_bundle(tmp_path / "v1", version="v1")),  # activation verifies
        status=ModelVersion.Status.ACTIVE,
        train_sentences=4,
        train_chars=40,
        metrics={
            "f1": 0.2,
            "precision": 0.2,
            "recall": 0.2,
            "per_type": {"PER": {"f1": 0.3}, "LOC": {"f1": 0.1}},
            "labels": {"sentences": 4, "characters": 40},
        },
    )


def test_dashboard_gains_a_point_after_a_retrain(
    page, live_server, labelled, first_version, settings, one_thread
):
    settings.TRAIN_TIME_BUDGET = 6  # a real run, kept short
    world = labelled
    # the gate is not what this is about (tests/learner): six seconds of training on 26
    # sentences need not beat the tiny v1 on 7, and the new version must serve
    world.project.promotion_tolerance = 1.0
    world.project.save()
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    page.wait_for_function(
        "document.querySelectorAll('#f1-chart circle.point[data-series=\"__overall\"]').length === 1"
    )
    assert page.get_attribute("#f1-chart [data-active]", "data-active") == "v1"

    page.click("#btn-retrain")
    page.wait_for_selector("#runs-body tr[data-state='queued']")
    run = TrainingRun.objects.get(project=world.project)
    assert run.requested_by == world.admin
    began = time.monotonic()
    version_id = run_training(run.pk)  # what the training worker does with the queued run
    print(f"\nretrain for the dashboard test took {time.monotonic() - began:.1f} s")
    assert version_id is not None, TrainingRun.objects.get(pk=run.pk).error
    new = ModelVersion.objects.get(pk=version_id)
    assert new.status == ModelVersion.Status.ACTIVE, new.gate_reason

    # No reload: the page's polling picks the new version up.
    page.wait_for_function(
        "document.querySelectorAll('#f1-chart circle.point[data-series=\"__overall\"]').length === 2",
        timeout=15_000,
    )
    page.wait_for_selector(f"#f1-chart [data-active='{new.version}']")
    page.wait_for_selector("#runs-body tr[data-state='succeeded']")
    assert page.locator("#f1-chart g[data-series='PER'] circle").count() == 2
    row = page.locator(f"#versions-body tr[data-version-id='{new.pk}']")
    assert "已上线" in row.inner_text()  # "promoted", in the UI's language
    assert re.search(r"训练 [0-9.]+ 秒", row.inner_text()), row.inner_text()  # timings too
    page.click(f"#runs-body tr[data-run-id='{run.pk}'] summary")
    log = f"#runs-body tr[data-log-of='{run.pk}'] pre.log"
    page.wait_for_function(
        f"document.querySelector(\"{log}\")?.textContent.includes('train sentences')"
    )
    # the log spans the table, not the narrow state column
    table_width = page.locator("#runs-body").bounding_box()["width"]
    assert page.locator(log).bounding_box()["width"] > 0.8 * table_width
    # a log longer than its box opens at its end: the newest epoch, not the first
    at_end = f'(() => {{ const p = document.querySelector("{log}"); '
    at_end += "return p.scrollHeight <= p.clientHeight || p.scrollTop > 0; })()"
    assert page.evaluate(at_end)
    shot(page, "dashboard")

    # Rollback: the admin activates v1 again, confirming since it scored lower.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#versions-body tr[data-version-id='{first_version.pk}'] .activate-btn")
    page.wait_for_selector("#f1-chart [data-active='v1']")
    first_version.refresh_from_db()
    assert first_version.status == ModelVersion.Status.ACTIVE


def test_dashboard_annotator_sees_no_admin_controls(page, live_server, world, first_version):
    make_version(world.project, "v2", status=ModelVersion.Status.CANDIDATE, metrics={"f1": 0.1})
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    page.wait_for_selector("#versions-body tr[data-version-id]")
    assert not page.is_visible("#btn-retrain")
    assert page.locator(".activate-btn").count() == 0
    for section in ("settings", "import", "export"):
        assert not page.is_visible(f".mainnav a[href$='/{section}/']")
    assert page.is_visible(".mainnav a[href$='/annotate/']")
    shot(page, "dashboard-annotator")
    # The API refuses anyway, whatever a page shows.
    status = page.evaluate(
        """async (pid) => {
            try { await Nerloop.api.post(`projects/${pid}/train`, {}); return 'accepted'; }
            catch (err) { return err.status; }
        }""",
        world.project.pk,
    )
    assert status == 403
    assert not TrainingRun.objects.exists()


def test_dashboard_shows_the_default_model_a_first_version_must_beat(page, live_server, world):
    make_version(
        world.project,
        "v1",
        status=ModelVersion.Status.CANDIDATE,
        train_sentences=3,
        train_chars=39,
        metrics={
            "f1": 0.25,
            "per_type": {},
            "labels": {"sentences": 3, "characters": 39},
            "previous_f1": 0.9853,
            "compared_with": "default",
            "tolerance": 0.01,
            "promoted_by_gate": False,
        },
        gate_reason="kept as candidate: below the default model's 0.9853",
    )
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    # a horizontal line has no height, so Playwright never calls it visible: wait for it in the DOM
    page.wait_for_selector("#f1-chart line.default-bar", state="attached")
    assert page.get_attribute("#f1-chart line.default-bar", "data-f1") == "0.9853"
    assert "0.985" in page.inner_text("#chart-active")
    # the number the retraining trigger compares with the threshold
    page.wait_for_function(
        "document.getElementById('stat-feedback').textContent === "
        f"'0 / {world.project.retrain_threshold}'"
    )
    # a candidate's point is a ring of its series' colour, not a dark ring on the dark page
    ring = page.locator("#f1-chart circle.point[data-series='__overall']").first
    assert ring.get_attribute("fill") == "#0b1020"  # hollow
    assert ring.evaluate("c => getComputedStyle(c).stroke") not in ("none", "rgb(11, 16, 32)")
    # the gate's decision in the UI's language; the server's sentence is the tooltip
    gate = page.locator("#versions-body td.gate").first
    assert (
        gate.inner_text() == "保留为候选：F1 0.2500 比默认模型的 0.9853 低 0.7353，超过容差 0.0100"
    )
    assert gate.get_attribute("title").startswith("kept as candidate")
    shot(page, "dashboard-default-bar")


def test_dashboard_annotations_per_annotator_per_day(page, live_server, world):
    for i in range(3):
        Annotation.submit(world.document(f"标注员的第{i}句。"), world.annotator, [], revision=0)
    for i in range(2):
        Annotation.submit(world.document(f"管理员的第{i}句。"), world.admin, [], revision=0)
    today = timezone.localdate().isoformat()

    def table() -> tuple[list[str], list[list[str]]]:
        page.wait_for_selector("#per-day-body tr")
        head = page.locator("#per-day-head th").all_inner_texts()
        rows = [
            row.locator("td").all_inner_texts() for row in page.locator("#per-day-body tr").all()
        ]
        return head[1:], rows

    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    assert table() == (["admin", "annotator"], [[today, "2", "3"]])
    assert not page.is_visible("#per-day-scope")
    assert not page.is_visible("#per-day-empty")
    shot(page, "dashboard-activity")

    login(page, live_server, "annotator")  # annotators see their own column only
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    assert table() == (["annotator"], [[today, "3"]])
    assert page.is_visible("#per-day-scope")


def test_dashboard_stops_polling_once_access_is_lost(page, live_server, world):
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    page.wait_for_function("document.getElementById('dash-updated').textContent.includes('更新')")
    world.project.remove_member(world.annotator)
    page.wait_for_function(
        "document.getElementById('dash-updated').textContent.startsWith('未更新')", timeout=10_000
    )
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.wait_for_timeout(4000)  # longer than a polling period
    assert not [url for url in asked if "/api/" in url]


def test_a_client_is_sent_to_the_playground(page, live_server, world):
    login(page, live_server, "client")
    page.wait_for_selector(f".project-card[data-project-id='{world.project.pk}']")
    card = page.locator(f".project-card[data-project-id='{world.project.pk}']")
    assert not card.locator(".link-dashboard").is_visible()
    assert not card.locator(".link-annotate").is_visible()
    for section in ("dashboard", "annotate", "documents"):
        page.goto(f"{live_server.url}/projects/{world.project.pk}/{section}/")
        page.wait_for_selector("#client-only")
        assert not page.locator(".mainnav a[href*='/projects/']").first.is_visible()
    page.click("#client-only a")
    page.wait_for_function(
        f"document.getElementById('play-project').value === '{world.project.pk}'"
    )
    assert world.project.documents.filter(assignee=world.client).count() == 0


def test_dashboard_asks_before_a_worse_version_and_goes_back_to_the_default_model(
    page, live_server, world, first_version, default_bundle, tmp_path
):
    from tests.inference.conftest import build_tiny_bundle

    worse = make_version(
        world.project,
        "v2",
        bundle_path=str(build_tiny_bundle(tmp_path / "v2", version="v2")),
        status=ModelVersion.Status.CANDIDATE,
        metrics={"f1": 0.1, "labels": {"sentences": 5, "characters": 50}},
    )
    asked = []

    def answer(dialog, accept):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    # nothing validated yet: the page says why a full pool would not start a run
    page.wait_for_selector("#stat-cannot-train:not([hidden])")
    assert "训练集中还没有已验证的标注" in page.inner_text("#stat-cannot-train")

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.click(f"#versions-body tr[data-version-id='{worse.pk}'] .activate-btn")
    assert len(asked) == 1 and "v2" in asked[0] and "0.100" in asked[0] and "v1" in asked[0]
    worse.refresh_from_db()
    assert worse.status == ModelVersion.Status.CANDIDATE  # declined: nothing changed

    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.click(f"#versions-body tr[data-version-id='{worse.pk}'] .activate-btn")
    page.wait_for_selector(f"#versions-body tr[data-version-id='{worse.pk}'][data-status='active']")

    # the default model, offered again while the project's own version serves
    page.wait_for_selector("#default-model:not([hidden])")
    assert "tiny-default" in page.inner_text("#default-model-text")
    shot(page, "dashboard-default-model")
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.click("#btn-default-model")
    page.wait_for_selector("#default-model", state="hidden")
    assert ModelVersion.active_for(world.project) is None  # the default model serves
    assert len(asked) == 3

    # The default model's own F1 is on its own corpus (0.95 here); on this project's eval set
    # a gate scored it 0.05, so serving v1 (0.2) again is no step down and asks nothing.
    ModelVersion.objects.filter(project=None).update(metrics={"f1": 0.95})
    worse.metrics = {**worse.metrics, "compared_with": "default", "previous_f1": 0.05}
    worse.save()
    page.on("dialog", lambda dialog: answer(dialog, accept=True))
    page.reload()
    first = f"#versions-body tr[data-version-id='{first_version.pk}']"
    page.click(f"{first} .activate-btn")
    page.wait_for_selector(f"{first}[data-status='active']")
    assert len(asked) == 3, asked[3:]


def test_dashboard_chart_can_run_along_versions(page, live_server, world, first_version):
    """Retrains on nearly the same labels stack on one vertical line along labelled
    characters; one step per version tells them apart."""
    for name, f1 in (("v2", 0.3), ("v3", 0.25)):
        make_version(
            world.project,
            name,
            status=ModelVersion.Status.CANDIDATE,
            metrics={"f1": f1, "labels": {"sentences": 4, "characters": 40}},
        )
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    dots = "#f1-chart circle.point[data-series='__overall']"
    page.wait_for_function(f'document.querySelectorAll("{dots}").length === 3')
    along_chars = {page.locator(dots).nth(i).get_attribute("cx") for i in range(3)}
    assert len(along_chars) == 1  # the same 40 characters: one vertical line
    page.select_option("#chart-x", "version")
    xs = [
        float(page.locator(f"{dots}[data-version='{v}']").get_attribute("cx"))
        for v in ("v1", "v2", "v3")
    ]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert "模型版本（从旧到新）" in page.text_content("#f1-chart")
    shot(page, "dashboard-by-version")


def test_dashboard_asks_before_retraining_on_nothing_new(
    page, live_server, labelled, first_version
):
    world = labelled
    done = TrainingRun.objects.create(project=world.project, trigger="manual")
    done.start()
    done.succeed(first_version)
    asked = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    page.wait_for_selector(f"#runs-body tr[data-run-id='{done.pk}']")
    page.once("dialog", dismiss)
    page.click("#btn-retrain")
    assert len(asked) == 1 and "同样的标注" in asked[0], asked
    assert TrainingRun.objects.filter(project=world.project).count() == 1  # declined

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#btn-retrain")
    page.wait_for_selector("#runs-body tr[data-state='queued']")
    assert TrainingRun.objects.filter(project=world.project).count() == 2


def test_dashboard_cancels_a_busy_run(page, live_server, world, first_version):
    running = TrainingRun.objects.create(project=world.project, trigger="threshold")
    running.start()
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    page.wait_for_selector("#btn-cancel-run:not([hidden])")
    assert page.is_disabled("#btn-retrain")
    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#btn-cancel-run")
    page.wait_for_selector("#btn-cancel-run", state="hidden")
    assert asked and f"#{running.pk}" in asked[0]
    running.refresh_from_db()
    assert (running.state, running.error_code) == ("failed", "E303")
    assert page.is_enabled("#btn-retrain")
    page.wait_for_selector(f"#runs-body tr[data-run-id='{running.pk}'] .badge-failed")
    assert "已取消" in page.inner_text(f"#runs-body tr[data-run-id='{running.pk}']")
    shot(page, "dashboard-cancelled")

    # an annotator never sees the button
    again = TrainingRun.objects.create(project=world.project, trigger="threshold")
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    page.wait_for_selector(f"#runs-body tr[data-run-id='{again.pk}']")
    assert not page.is_visible("#btn-cancel-run")


def test_dashboard_chart_does_not_crowd_versions_at_its_right_edge(page, live_server, world):
    """Versions trained on 5,400 and 5,940 characters: the axis starts near them, not at 0."""
    for name, chars, status in (("v1", 5400, "retired"), ("v2", 5940, "active")):
        make_version(
            world.project,
            name,
            status=status,
            metrics={"f1": 0.4, "labels": {"sentences": 100, "characters": chars}},
        )
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    dots = "#f1-chart circle.point[data-series='__overall']"
    page.wait_for_function(f'document.querySelectorAll("{dots}").length === 2')
    first, second = (
        float(page.locator(f"{dots}[data-version='{v}']").get_attribute("cx")) for v in ("v1", "v2")
    )
    assert second - first > 400  # of a 900-wide chart: not both in its last 15 %


def test_dashboard_says_a_pruned_versions_bundle_is_gone(page, live_server, world, first_version):
    pruned = make_version(
        world.project,
        "v0-pruned",
        status=ModelVersion.Status.CANDIDATE,
        metrics={"f1": 0.3, "bundle_pruned": "2026-11-27T09:00:00+00:00"},
    )
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/dashboard/")
    row = page.locator(f"#versions-body tr[data-version-id='{pruned.pk}']")
    row.wait_for()
    assert "模型文件已删除" in row.inner_text()
    assert row.locator(".activate-btn").count() == 0
