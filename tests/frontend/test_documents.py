"""The document list in a real browser: filters in the URL, search, and opening any
document (the eval split and validated ones included) in the workspace to correct it."""

from __future__ import annotations

import pytest

from annotation.models import Annotation, Document
from tests.frontend.conftest import login, make_version, queue_document, shot
from tests.frontend.test_workspace import drag_select, shown_doc, stored_spans

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_documents_page_opens_eval_documents_for_annotation(page, live_server, world):
    model = make_version(world.project, "v1", status="active", metrics={"f1": 0.5})
    queued = queue_document(world.project, model, "张三在北京工作。", [], 0.9)
    first = world.document("李四去了北京大学。", split="eval")
    second = world.document("王五在北京开会。", split="eval")
    world.document("赵六在上海。", split="eval")
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/documents/")
    page.wait_for_selector(f"#doc-rows tr[data-doc-id='{queued.pk}']")
    assert page.locator("#doc-rows tr").count() == 4

    page.select_option("#f-split", "eval")
    page.fill("#f-q", "北京")
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 2")
    assert "split=eval" in page.url and "q=" in page.url  # the list can be reloaded or shared
    # split and status read in the UI's language
    row = page.locator(f"#doc-rows tr[data-doc-id='{first.pk}']").inner_text()
    assert "评估集" in row and "新导入" in row, row
    assert page.locator("#f-status option[value='validated']").inner_text() == "已验证"
    shot(page, "documents")

    page.click(f"#doc-rows tr[data-doc-id='{first.pk}'] a.doc-link")
    page.wait_for_selector(f"#doc-view[data-doc-id='{first.pk}']")
    assert "评估集" in page.inner_text("#ws-title")  # the split, in the UI's language
    # here the S key only moves on, and both the button and the key help say so
    assert page.inner_text("#help-skip") == "不保存，下一篇"
    assert page.inner_text("#btn-skip").startswith("不保存，下一篇")
    drag_select(page, "李四")
    page.keyboard.press("1")
    drag_select(page, "北京大学")
    page.keyboard.press("3")
    page.click("#btn-submit")
    # Saved, and on to the next document of the list it was opened from.
    page.wait_for_selector(f"#doc-view[data-doc-id='{second.pk}']")
    assert stored_spans(first) == [(0, 2, "PER"), (4, 8, "ORG")]
    assert Document.objects.get(pk=first.pk).status == Document.Status.VALIDATED
    assert page.url.endswith(f"?document={second.pk}")

    page.keyboard.press("s")  # on without saving: the last of the list, so back to it
    page.wait_for_url("**/documents/?*")
    assert "split=eval" in page.url
    page.wait_for_selector(f"#doc-rows tr[data-doc-id='{first.pk}'] mark.ent[data-label='ORG']")
    assert not Annotation.objects.filter(document=second).exists()
    assert Document.objects.get(pk=queued.pk).assignee is None  # nothing claimed


def test_a_validated_answer_of_no_entity_is_shown_as_it_is_with_the_guidelines(
    page, live_server, world
):
    model = make_version(world.project, "v1", status="active", metrics={"f1": 0.5})
    suggestion = [{"start": 0, "end": 2, "label": "PER", "score": 0.9}]
    doc = queue_document(world.project, model, "张三在北京工作。", suggestion, 0.5)
    Annotation.objects.create(document=doc, annotator=world.annotator, spans=[], validated=True)
    Document.objects.filter(pk=doc.pk).update(status=Document.Status.VALIDATED)
    world.project.description = "人名只标姓名，不含称谓。\n机构名标全称。"
    world.project.save()
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/?document={doc.pk}")
    page.wait_for_selector(f"#doc-view[data-doc-id='{doc.pk}']")
    assert shown_doc(page) == doc.pk
    assert page.locator("#doc-view mark.ent").count() == 0  # not the model's suggestion
    assert page.is_visible("#back-to-list")
    # The project's description is the annotators' guidelines, line breaks kept.
    assert page.inner_text("#guidelines-text") == "人名只标姓名，不含称谓。\n机构名标全称。"


def test_correct_the_document_just_submitted_then_back_to_the_queue(page, live_server, world):
    model = make_version(world.project, "v1", status="active", metrics={"f1": 0.5})
    suggestion = [{"start": 0, "end": 2, "label": "ORG", "score": 0.9}]
    first = queue_document(world.project, model, "张三在北京工作。", suggestion, 0.9)
    second = queue_document(world.project, model, "李四去了上海。", [], 0.5)
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/")
    page.wait_for_selector(f"#doc-view[data-doc-id='{first.pk}']")
    page.click("#btn-submit")  # accepts the wrong suggestion
    page.wait_for_selector(f"#doc-view[data-doc-id='{second.pk}']")
    assert stored_spans(first) == [(0, 2, "ORG")]

    page.click("#correct-last")
    page.wait_for_selector(f"#doc-view[data-doc-id='{first.pk}']")
    assert page.inner_text("#back-to-list") in ("返回审阅队列", "Back to the queue")
    page.click("#doc-view mark.ent[data-label='ORG']")
    page.click("#span-menu .label-btn:text-is('PER')")
    page.click("#btn-submit")
    page.wait_for_url(f"{live_server.url}/projects/{world.project.pk}/annotate/")
    # Back in the queue, where the document it was on is still held for this annotator.
    page.wait_for_selector(f"#doc-view[data-doc-id='{second.pk}']")
    assert stored_spans(first) == [(0, 2, "PER")]
    assert Annotation.objects.get(document=first).revision == 2


def test_documents_page_shows_the_beginning_of_a_long_document(page, live_server, world):
    long = world.document("张三在北京工作。" * 2000)  # 16,000 characters
    Annotation.objects.create(
        document=long, annotator=world.admin, validated=True,
        spans=[{"start": 0, "end": 2, "label": "PER"}, {"start": 15000, "end": 15002, "label": "PER"}],
    )  # fmt: skip
    world.document("李四在上海。")
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/documents/")
    cell = page.locator(f"#doc-rows tr[data-doc-id='{long.pk}'] .doc-text")
    cell.wait_for()
    assert "共 16000 字" in cell.inner_text()
    assert cell.locator("mark.ent").count() == 1  # the span past the preview is not drawn
    assert cell.bounding_box()["height"] < 400


def test_a_page_past_the_end_shows_the_last_page(page, live_server, world):
    Document.objects.bulk_create(
        [Document(project=world.project, text=f"第{i}号文件。") for i in range(130)]
    )
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/documents/?page=9")
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 30")
    assert "2" in page.inner_text("#page-info") and page.url.endswith("page=2")
    assert page.is_enabled("#btn-prev") and not page.is_enabled("#btn-next")


def test_back_returns_to_the_page_and_filter_before(page, live_server, world):
    Document.objects.bulk_create(
        [Document(project=world.project, text=f"第{i}号文件。") for i in range(130)]
    )
    world.document("评估句子。", split="eval")
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/documents/")
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 100")
    page.click("#btn-next")
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 31")
    page.select_option("#f-split", "eval")
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 1")
    page.go_back()  # the filter undone: page 2 of everything again
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 31")
    assert page.input_value("#f-split") == "" and page.url.endswith("page=2")
    page.go_back()
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 100")
    assert "/documents/" in page.url and "page=" not in page.url


def test_an_admin_deletes_the_documents_a_filter_lists(page, live_server, world):
    keep = world.document("北京的天气很好。")
    wrong = [world.document(f"导入错了的第{k}句。") for k in range(3)]
    world.project.add_member(world.admin, "admin")
    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/documents/")
    page.wait_for_selector(f"#doc-rows tr[data-doc-id='{keep.pk}']")
    assert page.is_visible("#btn-delete-listed") and page.is_disabled("#btn-delete-listed")
    page.fill("#f-q", "导入错了")
    page.wait_for_function("document.querySelectorAll('#doc-rows tr').length === 3")
    page.wait_for_selector("#btn-delete-listed:not([disabled])")
    page.once("dialog", accept)
    page.click("#btn-delete-listed")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert len(asked) == 1 and "3 篇文档" in asked[0], asked
    assert not Document.objects.filter(pk__in=[d.pk for d in wrong]).exists()
    assert Document.objects.filter(pk=keep.pk).exists()


def test_an_annotator_gets_no_delete_button(page, live_server, world):
    world.document()
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/documents/")
    page.wait_for_selector("#doc-rows tr")
    assert page.is_hidden("#btn-delete-listed")
