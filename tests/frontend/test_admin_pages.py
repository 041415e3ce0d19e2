"""Log in and out, the language switch, project settings, import and export in a real browser."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission

from annotation.models import Annotation, Document, Project, ProjectMembership, normalize_labels
from tests.frontend.conftest import PASSWORD, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_login_language_switch_and_logout(page, live_server, world):
    world.annotator.set_password(PASSWORD)
    world.annotator.save()
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/")
    assert "/login/" in page.url  # pages need a session
    page.fill("#id_username", "annotator")
    page.fill("#id_password", "wrong password")
    page.click("#login-submit")
    assert page.is_visible(".error-box")
    shot(page, "login")
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{live_server.url}/projects/{world.project.pk}/annotate/")

    page.goto(f"{live_server.url}/")
    page.wait_for_selector(".project-card")
    # An English browser still gets the Chinese UI by default.
    assert page.inner_text(".mainnav a[href='/']") == "项目"
    assert page.inner_text(".project-card .project-name") == "A"
    shot(page, "home")
    with page.expect_navigation():  # the form posts, then redirects back here
        page.click("#lang-en")
    assert page.inner_text(".mainnav a[href='/']") == "Projects"
    assert page.inner_text(".project-card .project-role") == "annotator"
    with page.expect_navigation():  # the form posts, then redirects back here
        page.click("#lang-zh-hans")
    assert page.inner_text(".mainnav a[href='/']") == "项目"

    page.click("#logout-button")
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url


def test_settings_page_saves_labels_and_settings(page, live_server, world):
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/settings/")
    page.wait_for_selector("#label-rows .label-row")
    page.fill("#f-retrain_threshold", "7")
    page.fill("#f-promotion_tolerance", "0.02")
    page.select_option("#f-selection_strategy", "entropy")
    page.fill("#f-batch_size", "15")
    existing = [c.input_value() for c in page.locator("#label-rows .l-color").all()]
    page.click("#btn-add-label")
    row = page.locator("#label-rows .label-row").last
    assert row.locator(".l-color").input_value() not in existing  # a colour of its own
    row.locator(".l-name").fill("PRODUCT")
    row.locator(".l-color").fill("#34d399")
    assert row.locator(".l-hotkey").input_value() == "4"
    page.click("#btn-save")
    page.wait_for_selector("#settings-status.ok")
    world.project.refresh_from_db()
    assert world.project.retrain_threshold == 7
    assert world.project.promotion_tolerance == pytest.approx(0.02)
    assert world.project.selection_strategy == "entropy"
    assert world.project.batch_size == 15
    assert world.project.labels[-1] == {"name": "PRODUCT", "color": "#34d399", "hotkey": "4"}
    shot(page, "settings")

    # A refused change is explained in words and nothing is stored.
    page.locator("#label-rows .label-row").last.locator(".l-hotkey").fill("1")
    page.click("#btn-save")
    page.wait_for_selector("#settings-status.error")
    said = page.inner_text("#settings-status")
    # the server's reason in the page's language, then a sentence of its own
    assert "快捷键 '1' 已被占用。未保存任何改动" in said, said
    world.project.refresh_from_db()
    assert world.project.labels[-1]["hotkey"] == "4"
    page.locator("#label-rows .label-row").last.locator(".l-hotkey").fill("4")

    # An emptied number is not saved as 0: the form says what is missing.
    for field, value in (
        ("#f-batch_size", ""),
        ("#f-retrain_threshold", ""),
        ("#f-batch_size", "0"),
    ):
        page.fill(field, value)
        page.click("#btn-save")
        page.wait_for_timeout(300)
        assert page.evaluate(f"!document.querySelector('{field}').validity.valid")
        page.fill("#f-batch_size", "15")
        page.fill("#f-retrain_threshold", "7")
    world.project.refresh_from_db()
    assert (world.project.batch_size, world.project.retrain_threshold) == (15, 7)


def test_settings_page_is_read_only_for_annotators(page, live_server, world):
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/settings/")
    page.wait_for_selector("#settings-status.error")
    assert page.is_disabled("#btn-save")
    assert page.is_disabled("#f-retrain_threshold")
    assert page.is_disabled("#f-description")  # not a field that looks editable


def upload_two_records(page, live_server, world, first: str, **choices) -> bytes:
    """As an admin, upload a JSON lines file of ``first`` (张三 a PER) and a sentence without
    spans, with the import form's ``choices`` (select id -> value); returns the file."""
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/import/")
    records = [
        {"text": first, "entities": [{"start": 0, "end": 2, "label": "PER"}]},
        {"text": "今天天气很好。"},
    ]
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    page.wait_for_selector("#f-file:not([disabled])", state="attached")
    page.set_input_files(
        "#f-file", {"name": "docs.jsonl", "mimeType": "application/json", "buffer": content}
    )
    for name, value in choices.items():
        page.select_option(f"#f-{name}", value)
    page.click("#btn-upload")
    return content


def test_import_page_says_when_the_gold_starts_a_training_run(page, live_server, world):
    world.project.retrain_threshold = 1
    world.project.save()
    scored = world.document("李四在上海。", split="eval", status="validated")
    Annotation.objects.create(
        document=scored, validated=True, spans=[{"start": 0, "end": 2, "label": "PER"}]
    )
    upload_two_records(page, live_server, world, "张三在北京工作。", format="jsonl")
    page.wait_for_selector("#r-retrain:not([hidden])")
    assert "一分钟内将开始一次训练" in page.inner_text("#r-retrain")


def test_import_and_export_pages(page, live_server, world):
    # Types no default model predicts (whether or not one is installed): nothing serves yet.
    world.project.labels = normalize_labels(["PER", "NAME"])
    world.project.save()
    content = upload_two_records(page, live_server, world, "张三在北京<b>工作</b>", format="jsonl")
    page.wait_for_selector("#import-result:not([hidden])")
    assert page.inner_text("#r-documents") == "2"
    assert page.inner_text("#r-annotated") == "1"
    # The page says what comes next: no model can pre-annotate the project yet, and what
    # keeps the first training run from starting (the file had no eval split)
    page.wait_for_selector("#import-status.ok")
    assert "评估集中没有已验证的标注" in page.inner_text("#import-status")
    assert Document.objects.filter(project=world.project).count() == 2
    assert Annotation.objects.filter(document__project=world.project).count() == 1
    # the default split is the file's own (a nerloop export), else train
    assert page.input_value("#f-split") == ""
    assert set(Document.objects.values_list("split", flat=True)) == {"train"}
    assert page.is_hidden("#r-eval-unanswered")  # train documents wait for the queue anyway
    assert page.is_hidden("#r-retrain")  # with no eval answer, no run can start
    shot(page, "import")

    # The same file again: skipped by default, and said
    page.set_input_files(
        "#f-file", {"name": "docs.jsonl", "mimeType": "application/json", "buffer": content}
    )
    page.click("#btn-upload")
    page.wait_for_function("document.getElementById('r-documents').textContent === '0'")
    assert "已跳过 2 篇" in page.inner_text("#r-duplicates")
    assert Document.objects.filter(project=world.project).count() == 2
    page.wait_for_selector("#import-status.ok")
    assert page.inner_text("#import-status") == "没有导入新的内容。"  # no "pre-annotates"

    # A malformed file is refused in words, and nothing of it is stored.
    page.set_input_files(
        "#f-file", {"name": "bad.jsonl", "mimeType": "application/json", "buffer": b"{not json"}
    )
    page.click("#btn-upload")
    page.wait_for_selector("#import-status.error")
    assert Document.objects.filter(project=world.project).count() == 2
    said = page.inner_text("#import-status")
    assert said.startswith(
        "服务器拒绝了此操作：无法导入这些文档: bad.jsonl line 1: invalid JSON"
    ), said
    assert "problems" not in said and "document: 0" not in said  # words, not a dump
    assert page.is_hidden("#import-problems")  # one problem: said once
    # a file of several bad lines: each is listed, to be fixed in one go
    page.set_input_files(
        "#f-file",
        {"name": "bad.jsonl", "mimeType": "application/json",
         "buffer": b'{not json\n{"text": "ok"}\n{"text": 5}\n'},
    )  # fmt: skip
    page.click("#btn-upload")
    page.wait_for_selector("#import-problems:not([hidden])")
    listed = page.locator("#import-problems li").all_inner_texts()
    assert [item.split("：")[0].split(":")[0] for item in listed] == ["第 1 行", "第 3 行"], listed
    shot(page, "import-problems")
    # an empty file: the reason is said, not left out after the colon
    page.set_input_files(
        "#f-file", {"name": "empty.jsonl", "mimeType": "application/json", "buffer": b""}
    )
    page.click("#btn-upload")
    page.wait_for_function(
        "document.getElementById('import-status').textContent.includes('空文件')"
    )
    assert page.inner_text("#import-status").startswith("服务器拒绝了此操作：file: ")
    # several bad documents: the first, and how many more
    lines = "\n".join(
        json.dumps({"text": f"好{name}", "entities": [{"start": 0, "end": 1, "label": name}]})
        for name in ("X", "Y", "Z")
    )
    page.set_input_files(
        "#f-file",
        {"name": "labels.jsonl", "mimeType": "application/json", "buffer": lines.encode()},
    )
    page.click("#btn-upload")
    page.wait_for_function(
        "document.getElementById('import-status').textContent.includes('另有 2 个问题')"
    )
    assert "请勾选" in page.inner_text("#import-status")  # how to fix it, in the page's words

    # A CoNLL entity never closed is refused, and imports once "repair" is ticked.
    conll = {
        "name": "open.bmes",
        "mimeType": "text/plain",
        "buffer": "张 B-PER\n三 M-PER\n".encode(),
    }
    page.select_option("#f-format", "")
    page.set_input_files("#f-file", conll)
    page.click("#btn-upload")
    page.wait_for_function(
        "document.getElementById('import-status').textContent.includes('strict=false')"
    )
    page.check("#f-repair")
    page.set_input_files("#f-file", conll)
    page.click("#btn-upload")
    page.wait_for_selector("#import-status.ok")
    assert Document.objects.filter(project=world.project, text="张三").exists()

    page.goto(f"{live_server.url}/projects/{world.project.pk}/export/")
    page.check("#x-annotated")
    link = page.locator(".export-link[data-format='jsonl']")
    assert link.get_attribute("href").endswith("/export/jsonl?annotated=1")
    with page.expect_download() as download:
        link.click()
    lines = download.value.path().read_text("utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["张三在北京<b>工作</b>", "张三"]
    shot(page, "export")

    page.uncheck("#x-annotated")
    page.check("#x-predictions")
    with page.expect_download() as download:
        link.click()
    lines = download.value.path().read_text("utf-8").splitlines()
    assert [json.loads(line)["nerloop_source"] for line in lines] == ["human", "none", "human"]
    assert [json.loads(line)["nerloop_split"] for line in lines] == ["train"] * 3

    # CoNLL in the tags a BMES corpus came in; the JSON formats have none to choose
    page.select_option("#x-scheme", "bmes")
    conll = page.locator(".export-link[data-format='conll']")
    assert conll.get_attribute("href").endswith("/export/conll?predictions=1&scheme=bmes")
    assert "scheme" not in link.get_attribute("href")
    with page.expect_download() as download:
        conll.click()
    tags = [line.split()[1] for line in download.value.path().read_text("utf-8").splitlines()[:2]]
    assert tags == ["B-PER", "E-PER"]  # 张三


def test_import_page_says_eval_documents_without_spans_are_not_scored(page, live_server, world):
    upload_two_records(page, live_server, world, "张三在北京工作", split="eval")
    page.wait_for_selector("#r-eval-unanswered:not([hidden])")
    assert "有 1 篇评估集文档没有实体标注" in page.inner_text("#r-eval-unanswered")
    assert "所有文档都作为金标准" in page.inner_text("#r-eval-unanswered")


def test_import_page_refuses_annotators(page, live_server, world):
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/import/")
    page.wait_for_selector("#import-status.error")
    assert page.is_disabled("#btn-upload")


def test_create_a_project_and_manage_its_members(page, live_server, world):
    # Without "Can add project" there is no form, and a sentence says whom to ask.
    login(page, live_server, "annotator")
    page.wait_for_selector("#no-new-project")
    assert page.locator("#new-project").count() == 0
    world.annotator.user_permissions.add(Permission.objects.get(codename="add_project"))
    page.reload()
    page.click("#new-project summary")
    page.fill("#np-name", "简历实体")
    # the labels a project gets when left alone are written out, not a grey placeholder
    assert page.input_value("#np-labels") == "PER, LOC, ORG"
    page.fill("#np-labels", "NAME, ORG，TITLE")
    page.click("#np-create")
    page.wait_for_url("**/settings/")
    project = Project.objects.get(name="简历实体")
    assert project.label_names() == ["NAME", "ORG", "TITLE"]
    assert project.role_of(world.annotator) == "admin"  # its creator administers it

    page.wait_for_selector("#member-rows tr[data-username='annotator']")
    page.fill("#m-username", "client")
    page.select_option("#m-role", "annotator")
    page.click("#btn-add-member")
    page.wait_for_selector("#member-rows tr[data-username='client']")
    assert project.role_of(world.client) == "annotator"
    page.fill("#m-username", "nobody")
    page.click("#btn-add-member")
    page.wait_for_selector("#members-status.error")
    # the API's own field message comes in the page's language too
    said = page.inner_text("#members-status")
    assert "没有名为 nobody 的用户" in said and "username" not in said, said  # the form's words
    assert "只能添加已有的账号" in page.inner_text("#accounts-hint")  # and where they come from
    assert project.memberships.count() == 2

    # The last admin cannot step down: the refusal is shown and the role stays.
    page.select_option("#member-rows tr[data-username='annotator'] .member-role", "client")
    page.wait_for_function(
        "document.getElementById('members-status').textContent.includes('admin')"
        " || document.getElementById('members-status').textContent.includes('管理员')"
    )
    assert "error" in page.get_attribute("#members-status", "class")
    assert project.role_of(world.annotator) == "admin"
    # The list is read again after a refusal: the role that stands is shown.
    page.wait_for_function(
        "document.querySelector(\"#member-rows tr[data-username='annotator'] .member-role\")"
        ".value === 'admin'"
    )
    shot(page, "settings-members")

    # From the keyboard, an arrow key steps through the roles without saving each one; Enter
    # saves the role chosen.
    select = "#member-rows tr[data-username='client'] .member-role"
    page.focus(select)
    page.keyboard.press("ArrowDown")
    chosen = page.eval_on_selector(select, "el => el.value")
    assert chosen != "annotator"
    page.wait_for_timeout(300)
    assert project.role_of(world.client) == "annotator"  # nothing saved yet
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('members-status').className.includes('ok')")
    assert project.role_of(world.client) == chosen
    label = page.get_attribute(
        "#member-rows tr[data-username='client'] .member-remove", "aria-label"
    )
    assert "client" in label, label

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#member-rows tr[data-username='client'] .member-remove")
    page.wait_for_timeout(300)
    assert asked and "client" in asked[0] and project.role_of(world.client) == chosen  # declined
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#member-rows tr[data-username='client'] .member-remove")
    page.wait_for_selector("#member-rows tr[data-username='client']", state="detached")
    assert project.role_of(world.client) is None


def test_api_docs_render_offline(page, live_server, world):
    """Swagger UI comes from this server (the page fixture fails on any other host)."""
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag")
    assert page.locator(".opblock").count() > 20


def test_home_page_lists_more_projects_than_one_api_page(page, live_server, world):
    """The project list comes in pages of 100: the home page follows DRF's absolute next
    links, and the playground's model picker too."""
    projects = Project.objects.bulk_create(
        [Project(name=f"批量项目{i:03}", created_by=world.annotator) for i in range(120)]
    )
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=p, user=world.annotator, role="annotator") for p in projects]
    )
    login(page, live_server, "annotator")
    page.wait_for_function("document.querySelectorAll('.project-card').length === 121")
    page.goto(f"{live_server.url}/playground/")
    page.wait_for_function(
        "document.querySelector('#play-project') &&"
        " document.querySelectorAll('#play-project option').length > 120"
    )


def test_settings_page_deletes_the_project_once_its_name_is_typed(page, live_server, world):
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/settings/")
    page.wait_for_selector("#delete-card:not([hidden])")
    page.fill("#d-name", "not the name")
    page.click("#btn-delete-project")
    page.wait_for_selector("#delete-status.error")
    assert Project.objects.filter(pk=world.project.pk).exists()
    page.fill("#d-name", world.project.name)
    page.click("#btn-delete-project")
    page.wait_for_url(f"{live_server.url}/")
    assert not Project.objects.filter(pk=world.project.pk).exists()


def test_settings_page_hides_deletion_from_annotators(page, live_server, world):
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/settings/")
    page.wait_for_selector("#nav-project-name:not(:empty)")
    assert page.is_hidden("#delete-card")


def test_import_page_says_when_the_first_training_run_starts(page, live_server, world):
    world.project.labels = normalize_labels(["PER", "NAME"])
    world.project.retrain_threshold = 2
    world.project.save()
    api = world.api("admin")
    evaluation = {
        "documents": [{"text": "李四在上海。", "spans": [{"start": 0, "end": 2, "label": "PER"}]}],
        "split": "eval",
    }
    assert (
        api.post(
            f"/api/v1/projects/{world.project.pk}/documents", evaluation, format="json"
        ).status_code
        == 201
    )
    records = [
        {"text": f"张{name}在北京工作。", "entities": [{"start": 0, "end": 2, "label": "PER"}]}
        for name in "三四五"
    ]
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/import/")
    page.wait_for_selector("#f-file:not([disabled])", state="attached")
    page.set_input_files(
        "#f-file", {"name": "gold.jsonl", "mimeType": "application/json", "buffer": content}
    )
    page.click("#btn-upload")
    page.wait_for_selector("#import-status.ok")
    said = page.inner_text("#import-status")
    assert "首次训练（基于 3 篇已验证的训练文档）将在一分钟内开始" in said, said
