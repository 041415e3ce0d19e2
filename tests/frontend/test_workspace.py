"""The annotator workspace in a real browser: mouse and keyboard annotation, submission,
the time to the next document, errors in words, code-point offsets and text-only rendering."""

from __future__ import annotations

import statistics

import pytest

from annotation.models import Annotation, Document
from tests.base import wait_for
from tests.frontend.conftest import login, make_version, queue_document, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_workspace(page, live_server, world, username="annotator"):
    login(page, live_server, username)
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/")
    page.wait_for_selector("#doc-view[data-doc-id]:not([data-doc-id=''])")


def shown_doc(page) -> int:
    return int(page.get_attribute("#doc-view", "data-doc-id"))


def stored_spans(document) -> list[tuple]:
    annotation = Annotation.objects.get(document=document)
    return [(s["start"], s["end"], s["label"]) for s in annotation.spans]


def drag_select(page, needle: str) -> None:
    """Select ``needle`` in the document with a real mouse drag.

    The glyph positions come from the DOM's own UTF-16 indexOf, independently of the app's
    code-point conversion, so a conversion bug shows up as a wrong stored span.
    """
    box = page.evaluate(
        """(needle) => {
            const view = document.getElementById('doc-view');
            const walker = document.createTreeWalker(view, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const at = node.data.indexOf(needle);
                if (at < 0) continue;
                const first = document.createRange();
                first.setStart(node, at);
                first.setEnd(node, at + 1);
                const last = document.createRange();
                last.setStart(node, at + needle.length - 1);
                last.setEnd(node, at + needle.length);
                const a = first.getBoundingClientRect(), b = last.getBoundingClientRect();
                return {x0: a.left + a.width * 0.2, x1: b.right - b.width * 0.2,
                        y: a.top + a.height / 2};
            }
            return null;
        }""",
        needle,
    )
    assert box is not None, f"{needle!r} is not plain text in the document"
    page.mouse.move(box["x0"], box["y"])
    page.mouse.down()
    page.mouse.move(box["x1"], box["y"], steps=6)
    page.mouse.up()


@pytest.fixture
def model(world):
    return make_version(world.project, "v1", status="active", metrics={"f1": 0.5})


def test_workspace_annotate_by_mouse_and_submit(page, live_server, world, model):
    text = "张三在北京的清华大学工作。"
    doc = queue_document(
        world.project, model, text, [{"start": 0, "end": 2, "label": "PER", "score": 0.97}], 0.9
    )
    second = queue_document(world.project, model, "李四去了上海。", [], 0.1)
    open_workspace(page, live_server, world)
    assert shown_doc(page) == doc.pk
    assert page.inner_text("mark.ent.suggested").startswith("张三")

    drag_select(page, "清华大学")
    page.click(".label-btn[data-label='ORG']")
    assert page.locator("mark.ent[data-label='ORG']").inner_text().startswith("清华大学")
    # Click a span: change its label, delete it, and undo both.
    page.click("#doc-view mark.ent[data-label='ORG']")
    page.click("#span-menu .label-btn:text-is('LOC')")
    assert page.locator("mark.ent[data-label='LOC']").inner_text().startswith("清华大学")
    page.click("#doc-view mark.ent[data-label='LOC']")
    page.click("#menu-delete")
    assert page.locator("mark.ent").count() == 1
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert page.locator("mark.ent[data-label='ORG']").inner_text().startswith("清华大学")
    drag_select(page, "北京")
    page.keyboard.press("2")
    page.hover("mark.ent[data-label='PER']")
    assert "0.970" in page.inner_text("#tooltip")
    shot(page, "workspace")

    page.click("#btn-submit")
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId === '{second.pk}'")
    assert stored_spans(doc) == [(0, 2, "PER"), (3, 5, "LOC"), (6, 10, "ORG")]
    assert Annotation.objects.get(document=doc).annotator == world.annotator
    assert Document.objects.get(pk=doc.pk).status == Document.Status.VALIDATED


def test_workspace_whole_flow_from_the_keyboard(page, live_server, world, model):
    text = "王小明在上海工作。"
    wrong = {"start": 6, "end": 8, "label": "ORG", "score": 0.31}
    doc = queue_document(world.project, model, text, [wrong], 0.8)
    open_workspace(page, live_server, world)

    keys = page.keyboard
    for _ in range(3):
        keys.press("Shift+ArrowRight")
    keys.press("1")  # 王小明 -> PER
    keys.press("ArrowRight")  # caret after 在
    keys.press("Shift+ArrowRight")
    keys.press("Shift+ArrowRight")
    keys.press("3")  # 上海 -> ORG (wrong) ...
    keys.press("2")  # ... relabelled LOC while still focused
    assert page.locator("mark.ent[data-label='LOC']").count() == 1
    keys.press("Control+z")
    assert page.locator("mark.ent[data-label='LOC']").count() == 0
    keys.press("Control+Shift+Z")
    assert page.locator("mark.ent[data-label='LOC']").count() == 1
    # Tab walks the spans in text order; the third is the model's wrong suggestion.
    for _ in range(3):
        keys.press("Tab")
    assert page.locator("mark.ent.focused").get_attribute("data-label") == "ORG"
    keys.press("Delete")
    assert page.locator("mark.ent").count() == 2
    keys.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert stored_spans(doc) == [(0, 3, "PER"), (4, 6, "LOC")]
    page.wait_for_function("document.getElementById('stat-left').textContent === '0'")


def test_workspace_enter_accepts_the_pre_annotation_and_threshold_control(
    page, live_server, world, model
):
    spans = [
        {"start": 0, "end": 2, "label": "PER", "score": 0.95},
        {"start": 3, "end": 5, "label": "LOC", "score": 0.42},
    ]
    first = queue_document(world.project, model, "张三在北京。", spans, 0.9)
    second = queue_document(world.project, model, "李四在杭州。", spans, 0.5)
    open_workspace(page, live_server, world)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")  # one keystroke: the pre-annotation as it is
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId === '{second.pk}'")
    assert stored_spans(first) == [(0, 2, "PER"), (3, 5, "LOC")]

    page.eval_on_selector(  # keep the 0.95 suggestion, drop the 0.42 one
        "#threshold", "(el) => { el.value = '0.9'; el.dispatchEvent(new Event('input')); }"
    )
    page.focus("#doc-view")
    page.keyboard.press("a")
    assert page.locator("mark.ent").count() == 1
    assert page.locator("mark.ent.suggested").count() == 0
    page.keyboard.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert stored_spans(second) == [(0, 2, "PER")]


def test_workspace_next_document_within_200ms(page, live_server, world, model):
    """Submit -> next document on screen, measured from the keydown to the frame after the
    swap. The next item was fetched ahead (queue/next?exclude=...), so the only request on
    that path is the submission itself: none to queue/next may start in between."""
    docs = [
        queue_document(
            world.project,
            model,
            f"第{i}条：张三在北京工作。",
            [{"start": 4, "end": 6, "label": "PER", "score": 0.9}],
            1.0 - i / 100,
        )
        for i in range(8)
    ]
    open_workspace(page, live_server, world)
    timings = []
    for _ in range(7):
        before = shown_doc(page)
        page.wait_for_timeout(300)  # an annotator's glance; also past the double-press guard
        page.evaluate(
            """() => {
                const view = document.getElementById('doc-view');
                const from = view.dataset.docId;
                window.__swap = new Promise((resolve) => {
                    let t0 = null;
                    window.addEventListener('keydown', () => { t0 = performance.now(); },
                                            {once: true, capture: true});
                    new MutationObserver((_, observer) => {
                        if (view.dataset.docId && view.dataset.docId !== from) {
                            observer.disconnect();
                            const t1 = performance.now();
                            const asked = performance.getEntriesByType('resource').filter(
                                (e) => e.name.includes('/queue/next') &&
                                       e.startTime >= t0 && e.startTime <= t1).length;
                            requestAnimationFrame(() => resolve(
                                {ms: performance.now() - t0, queueRequests: asked}));
                        }
                    }).observe(view, {attributes: true, attributeFilter: ['data-doc-id']});
                });
            }"""
        )
        page.keyboard.press("Enter")
        swap = page.evaluate("window.__swap")
        assert swap["queueRequests"] == 0, "the next document was not fetched ahead"
        timings.append(swap["ms"])
        assert shown_doc(page) != before
    print(
        "\nsubmit -> next document on screen (ms): "
        + ", ".join(f"{t:.1f}" for t in timings)
        + f"; median {statistics.median(timings):.1f}, max {max(timings):.1f}"
    )
    assert Annotation.objects.filter(document__in=docs).count() == 7
    page.wait_for_function("document.getElementById('stat-done-today').textContent === '7'")


def test_workspace_holds_the_next_item_ahead_and_no_more(page, live_server, world, model):
    first, second, third = (
        queue_document(world.project, model, text, [], 0.9 - i / 10)
        for i, text in enumerate(["张三在北京。", "李四在上海。", "王五在杭州。"])
    )

    def held() -> list[int]:
        rows = Document.objects.filter(assignee=world.annotator).order_by("id")
        return list(rows.values_list("pk", flat=True))

    open_workspace(page, live_server, world)
    assert shown_doc(page) == first.pk
    wait_for(lambda: held() == [first.pk, second.pk], timeout=5)
    page.wait_for_function("document.getElementById('stat-done-today').textContent === '0'")
    page.wait_for_timeout(300)
    page.keyboard.press("s")  # skipping moves on to the item held ahead as well
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId === '{second.pk}'")
    wait_for(lambda: held() == [second.pk, third.pk], timeout=5)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId === '{third.pk}'")
    page.wait_for_function("document.getElementById('stat-done-today').textContent === '1'")
    wait_for(lambda: held() == [third.pk], timeout=5)  # nothing left to fetch ahead


def test_workspace_gives_the_item_held_ahead_back_when_the_page_is_left(
    page, live_server, world, model
):
    first, second = (
        queue_document(world.project, model, text, [], 0.9 - i / 10)
        for i, text in enumerate(["张三在北京。", "李四在上海。"])
    )

    def held() -> list[int]:
        rows = Document.objects.filter(assignee=world.annotator).order_by("id")
        return list(rows.values_list("pk", flat=True))

    open_workspace(page, live_server, world)
    wait_for(lambda: held() == [first.pk, second.pk], timeout=5)
    page.goto(f"{live_server.url}/")  # leaving the page: only the shown item stays held
    wait_for(lambda: held() == [first.pk], timeout=5)
    open_workspace(page, live_server, world)  # coming back resumes it
    assert shown_doc(page) == first.pk
    wait_for(lambda: held() == [first.pk, second.pk], timeout=5)


def test_workspace_offers_no_suggestion_with_a_label_the_project_lacks(
    page, live_server, world, model
):
    """The model still predicts FAC, a label the project has since removed: Enter must not
    try to submit it."""
    spans = [
        {"start": 0, "end": 2, "label": "PER", "score": 0.9},
        {"start": 3, "end": 7, "label": "FAC", "score": 0.9},
    ]
    doc = queue_document(world.project, model, "张三在首都机场。", spans, 0.9)
    open_workspace(page, live_server, world)
    assert page.locator("mark.ent.suggested").count() == 1
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(document=doc).exists(), timeout=5)
    assert stored_spans(doc) == [(0, 2, "PER")]


def test_workspace_conflict_and_validation_errors_in_words(page, live_server, world, model):
    spans = [{"start": 0, "end": 2, "label": "PER", "score": 0.9}]
    doc = queue_document(world.project, model, "张三在北京。", spans, 0.9)
    open_workspace(page, live_server, world)
    drag_select(page, "北京")
    page.keyboard.press("2")

    # Someone else saves the document meanwhile: our revision is stale (409).
    Annotation.submit(doc, world.admin, [(0, 2, "PER")], revision=0)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-status.error")
    message = page.inner_text("#ws-status")
    assert "Conflict" in message or "冲突" in message, message
    assert shown_doc(page) == doc.pk
    assert page.locator("mark.ent").count() == 2  # the annotator's work is still there
    shot(page, "workspace-conflict")

    # The admin drops the LOC label from the schema: the submission is now invalid (400).
    world.project.refresh_from_db()
    world.project.set_labels([lab for lab in world.project.labels if lab["name"] != "LOC"])
    world.project.save()
    Annotation.objects.filter(document=doc).delete()
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('ws-status').textContent.includes('LOC')")
    assert "schema" in page.inner_text("#ws-status")
    assert page.locator("mark.ent").count() == 2
    assert not Annotation.objects.filter(document=doc).exists()


def test_workspace_goes_on_after_the_item_was_saved_in_another_tab(page, live_server, world, model):
    """Two tabs of one annotator show the same item; once one saves it, the other says so
    and offers the next document (Enter), or moves on by itself (S)."""
    first = queue_document(world.project, model, "张三在北京。", [], 0.9)
    second = queue_document(world.project, model, "李四在上海。", [], 0.8)
    third = queue_document(world.project, model, "王五在杭州。", [], 0.7)
    open_workspace(page, live_server, world)
    other = page.context.new_page()
    other.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/")
    other.wait_for_selector(f"#doc-view[data-doc-id='{first.pk}']")
    other.wait_for_timeout(300)
    other.keyboard.press("Enter")  # saved in the other tab
    other.wait_for_selector(f"#doc-view[data-doc-id='{second.pk}']")
    other.close()

    page.bring_to_front()
    page.wait_for_timeout(300)
    # other spans than the other tab saved (the same ones would simply be saved again)
    drag_select(page, "张三")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#btn-next-item")
    assert "另一个标签页" in page.inner_text("#ws-status")
    page.click("#btn-next-item")
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId !== '{first.pk}'")
    shown = shown_doc(page)
    assert shown in (second.pk, third.pk)

    # Its claim lapsed and someone else took it: S goes on instead of a dead end.
    Document.objects.filter(pk=shown).update(assignee=world.admin)
    page.keyboard.press("s")
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId !== '{shown}'")
    assert "不再由你审阅" in page.inner_text("#ws-status")


def test_workspace_claims_nothing_for_a_mangled_document_link(page, live_server, world, model):
    queue_document(world.project, model, "张三在北京。", [], 0.9)
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/?document=abc")
    page.wait_for_selector("#ws-status.error")
    assert "没有文档" in page.inner_text("#ws-status")
    assert not Document.objects.filter(assignee=world.annotator).exists()


def test_workspace_double_enter_submits_once(page, live_server, world, model):
    first = queue_document(world.project, model, "张三在北京。", [], 0.9)
    second = queue_document(world.project, model, "李四在上海。", [], 0.5)
    open_workspace(page, live_server, world)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId === '{second.pk}'")
    page.wait_for_timeout(400)
    assert Annotation.objects.filter(document=first).count() == 1
    assert not Annotation.objects.filter(document=second).exists()
    assert page.inner_text("#flash")  # the second press was explained, not silent


def test_workspace_enter_submits_after_a_button_was_clicked(page, live_server, world, model):
    """A clicked button keeps no focus: Enter after a click on Undo submits, not undoes."""
    doc = queue_document(world.project, model, "张三在北京的清华大学。", [], 0.9)
    open_workspace(page, live_server, world)
    drag_select(page, "张三")
    page.keyboard.press("1")
    drag_select(page, "北京")
    page.keyboard.press("2")
    page.click("#btn-undo")  # takes 北京 back off
    assert page.locator("mark.ent").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert stored_spans(doc) == [(0, 2, "PER")]


def test_workspace_saves_after_logging_in_again_in_another_tab(page, live_server, world, model):
    """The page's advice on an ended session works: log in again in another tab, come back,
    and the work on this page is saved (the renewed CSRF token is used, not the old one)."""
    doc = queue_document(world.project, model, "张三在北京。", [], 0.9)
    open_workspace(page, live_server, world)
    drag_select(page, "张三")
    page.keyboard.press("1")
    other = page.context.new_page()
    other.goto(f"{live_server.url}/")
    other.click("#logout-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-status:has-text('登录')")
    login(other, live_server, "annotator")
    other.close()
    page.bring_to_front()
    page.keyboard.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert stored_spans(doc) == [(0, 2, "PER")]


def test_workspace_moving_the_caret_does_not_redraw_a_long_text(page, live_server, world, model):
    """A long document with thousands of spans stays usable from the keyboard: the caret and
    selection move without rebuilding the text (it is redrawn when the spans change)."""
    text = "张三在北京工作。" * 400
    spans = [{"start": i, "end": i + 2, "label": "PER", "score": 0.9} for i in range(0, 3200, 8)]
    doc = queue_document(world.project, model, text, spans, 0.9)
    open_workspace(page, live_server, world)
    page.evaluate("document.querySelector('#doc-view mark').dataset.probe = 'kept'")
    page.click("#doc-view")
    for _ in range(5):
        page.keyboard.press("Shift+ArrowRight")
    assert page.evaluate("document.querySelector('#doc-view mark').dataset.probe") == "kept"
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert len(stored_spans(doc)) == 400


def test_workspace_offsets_after_characters_outside_the_bmp(page, live_server, world, model):
    text = "𠮷😀张三在北京工作，🎉去了杭州。"
    assert len(text.encode("utf-16-le")) // 2 > len(text)  # JS and Python lengths differ
    per = {"start": text.index("张三"), "end": text.index("张三") + 2, "label": "PER", "score": 0.9}
    doc = queue_document(world.project, model, text, [per], 0.9)
    open_workspace(page, live_server, world)
    assert page.locator("mark.ent[data-label='PER']").inner_text().startswith("张三")

    drag_select(page, "北京")
    page.keyboard.press("2")
    drag_select(page, "杭州")
    page.keyboard.press("2")
    assert page.locator("mark.ent[data-label='LOC']").nth(1).inner_text().startswith("杭州")
    page.keyboard.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    start_bj, start_hz = text.index("北京"), text.index("杭州")
    assert stored_spans(doc) == [
        (2, 4, "PER"),
        (start_bj, start_bj + 2, "LOC"),
        (start_hz, start_hz + 2, "LOC"),
    ]
    annotation = Annotation.objects.get(document=doc)
    assert [text[s["start"] : s["end"]] for s in annotation.spans] == ["张三", "北京", "杭州"]


def test_workspace_renders_markup_as_text(page, live_server, world, model):
    text = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">张三<b>粗</b>'
    start = text.index("张三")
    doc = queue_document(
        world.project,
        model,
        text,
        [{"start": start, "end": start + 2, "label": "PER", "score": 0.9}],
        0.9,
    )
    open_workspace(page, live_server, world)
    assert shown_doc(page) == doc.pk
    assert page.text_content("#doc-view") == text
    assert page.locator("#doc-view script, #doc-view img, #doc-view b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.inner_text("#span-list li span") == "张三"
    shot(page, "workspace-xss")


def test_workspace_keyboard_steps_over_whole_characters(page, live_server, world, model):
    """A family emoji (five code points joined by ZWJ) is one step of the caret, and a
    selection never cuts it: the span stored is the whole emoji, not a joiner."""
    text = "👨‍👩‍👧李明来了。"
    doc = queue_document(world.project, model, text, [], 0.9)
    open_workspace(page, live_server, world)
    keys = page.keyboard
    keys.press("Home")
    keys.press("ArrowRight")  # after the whole family
    keys.press("Shift+ArrowRight")
    keys.press("Shift+ArrowRight")
    keys.press("1")  # 李明 -> PER
    assert page.inner_text("#ws-status").startswith("已添加 PER")
    keys.press("Home")
    keys.press("Shift+ArrowRight")
    keys.press("3")
    keys.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert stored_spans(doc) == [(0, 5, "ORG"), (5, 7, "PER")]


def test_workspace_says_what_each_key_did_and_names_spans(page, live_server, world, model):
    text = "王小明在上海工作。"
    queue_document(
        world.project, model, text, [{"start": 0, "end": 3, "label": "PER", "score": 0.9}], 0.9
    )
    open_workspace(page, live_server, world)
    assert page.get_attribute("mark.ent", "aria-label") == "PER: 王小明 (模型建议)"
    assert page.get_attribute("#span-list button", "aria-label") == "删除 PER 王小明"
    keys = page.keyboard
    keys.press("Tab")
    keys.press("3")
    assert page.inner_text("#ws-status") == "PER 王小明 已改为 ORG。"
    keys.press("Delete")
    assert page.inner_text("#ws-status") == "已删除 ORG 王小明（按 Ctrl+Z 可撤销）。"
    keys.press("Control+z")
    assert page.inner_text("#ws-status") == "已撤销。"
    keys.press("Control+Shift+Z")
    assert page.inner_text("#ws-status") == "已重做。"
    # the threshold slider keeps its arrows, and the workspace keys work while it has focus
    page.focus("#threshold")
    before = page.input_value("#threshold")
    keys.press("ArrowLeft")
    assert page.input_value("#threshold") != before
    keys.press("Control+z")
    assert page.inner_text("#ws-status") == "已撤销。"


def test_workspace_warns_before_unsaved_spans_are_lost(page, live_server, world, model):
    queue_document(world.project, model, "王小明在上海工作。", [], 0.9)
    open_workspace(page, live_server, world)
    asked = []

    def answer(dialog):
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    page.click("nav a[href='/']", no_wait_after=True)
    wait_for(lambda: asked == ["beforeunload"], timeout=10)
    assert page.locator("mark.ent").count() == 1  # still here, spans kept
    page.keyboard.press("Control+z")  # nothing left unsaved: leaving asks nothing
    page.click("nav a[href='/']")
    page.wait_for_url(f"{live_server.url}/")
    assert asked == ["beforeunload"]


def test_workspace_document_mode_conflict_offers_the_saved_version(page, live_server, world, model):
    doc = queue_document(world.project, model, "王小明在上海工作。", [], 0.9)
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/?document={doc.pk}")
    page.wait_for_selector(f"#doc-view[data-doc-id='{doc.pk}']")
    Annotation.submit(doc, world.admin, [{"start": 4, "end": 6, "label": "LOC"}], 0)  # elsewhere
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.click("#btn-load-saved")
    page.wait_for_function("document.querySelector('mark.ent[data-label=\"LOC\"]') !== null")
    assert page.locator("mark.ent").count() == 1
    page.keyboard.press("Control+z")  # mine back, to save over the other version
    assert page.locator("mark.ent[data-label='PER']").count() == 1
    page.keyboard.press("Enter")
    wait_for(lambda: stored_spans(doc) == [(0, 1, "PER")])


def test_workspace_queue_conflict_opens_the_saved_version_with_mine_one_undo_away(
    page, live_server, world, model
):
    doc = queue_document(world.project, model, "王小明在上海工作。", [], 0.9)
    open_workspace(page, live_server, world)
    assert shown_doc(page) == doc.pk
    Annotation.submit(doc, world.admin, [{"start": 4, "end": 6, "label": "LOC"}], 0)  # elsewhere
    drag_select(page, "王小明")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#btn-open-saved")
    shot(page, "workspace-queue-conflict")
    page.click("#btn-open-saved")
    page.wait_for_url(f"**/annotate/?document={doc.pk}&back=queue")
    page.wait_for_selector("mark.ent[data-label='LOC']")
    assert "Ctrl+Z" in page.inner_text("#ws-status")
    page.keyboard.press("Control+z")  # mine back, to save over the other version
    assert page.locator("mark.ent[data-label='PER']").count() == 1
    assert page.locator("mark.ent[data-label='LOC']").count() == 0
    page.keyboard.press("Enter")
    wait_for(lambda: stored_spans(doc) == [(0, 3, "PER")])


def test_workspace_empty_queue_says_why_and_disables_its_buttons(page, live_server, world, model):
    world.project.add_member(world.admin, "admin")
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/")
    page.wait_for_selector("#empty-import")
    assert page.inner_text("#doc-empty").startswith("此项目还没有文档。")
    assert page.is_disabled("#btn-submit") and page.is_disabled("#btn-skip")
    queue_document(world.project, model, "王小明在上海工作。", [], 0.9)
    page.reload()
    page.wait_for_selector("#doc-view[data-doc-id]:not([data-doc-id=''])")
    page.keyboard.press("s")
    page.wait_for_function("document.getElementById('doc-empty').textContent.includes('跳过')")
    assert page.is_disabled("#btn-submit")


def test_workspace_span_menu_from_the_keyboard(page, live_server, world, model):
    queue_document(
        world.project,
        model,
        "王小明在上海工作。",
        [{"start": 4, "end": 6, "label": "PER", "score": 0.4}],
        0.9,
    )
    open_workspace(page, live_server, world)
    assert page.inner_text("#help-label-keys") == "1 2 3"  # the project's own keys
    keys = page.keyboard
    keys.press("Tab")  # the span 上海
    keys.press("Shift+F10")
    page.wait_for_selector("#span-menu:not([hidden])")
    assert page.evaluate("document.activeElement.closest('#span-menu') !== null")
    focused = "document.activeElement.textContent"
    keys.press("ArrowUp")  # wraps round to the last item
    assert page.evaluate("document.activeElement.id") == "menu-delete"
    keys.press("Home")
    assert page.evaluate(focused) == "PER"
    keys.press("Escape")  # closes the menu, back to the text
    assert page.is_hidden("#span-menu")
    assert page.evaluate("document.activeElement.id") == "doc-view"
    keys.press("Shift+F10")
    keys.press("ArrowDown")  # the second label, LOC
    assert page.evaluate(focused) == "LOC"
    keys.press("Enter")
    assert page.locator("mark.ent").get_attribute("data-label") == "LOC"
    assert page.is_hidden("#span-menu")
    assert page.evaluate("document.activeElement.id") == "doc-view"


def test_workspace_keyboard_selection_is_trimmed_and_a_replacement_is_said(
    page, live_server, world, model
):
    doc = queue_document(
        world.project,
        model,
        "我见了 王小明 。",
        [{"start": 4, "end": 6, "label": "LOC", "score": 0.4}],
        0.9,
    )
    open_workspace(page, live_server, world)
    keys = page.keyboard
    keys.press("Home")
    for _ in range(3):
        keys.press("ArrowRight")  # before the space
    for _ in range(5):
        keys.press("Shift+ArrowRight")  # " 王小明 "
    keys.press("1")
    assert page.inner_text("#ws-status") == "已添加 PER。它替换了 LOC 王小（按 Ctrl+Z 可撤销）。"
    keys.press("Enter")
    page.wait_for_selector("#doc-empty:not([hidden])")
    assert stored_spans(doc) == [(4, 7, "PER")]


def script_select(page, needle: str) -> None:
    """Select ``needle`` as a touch screen's long press and handles leave it: a DOM selection
    and no mouse event at all."""
    page.evaluate(
        """(needle) => {
            const view = document.getElementById('doc-view');
            const walker = document.createTreeWalker(view, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const at = node.data.indexOf(needle);
                if (at < 0) continue;
                const range = document.createRange();
                range.setStart(node, at);
                range.setEnd(node, at + needle.length);
                getSelection().removeAllRanges();
                getSelection().addRange(range);
                return;
            }
            throw new Error('not found');
        }""",
        needle,
    )


def test_workspace_a_selection_without_a_mouse_is_labelled_not_the_span_picked_before(
    page, live_server, world, model
):
    doc = queue_document(
        world.project,
        model,
        "王小明在上海工作。",
        [{"start": 4, "end": 6, "label": "LOC", "score": 0.9}],
        0.9,
    )
    open_workspace(page, live_server, world)
    page.click("mark.ent")  # the span 上海 is picked (its menu opens) ...
    page.wait_for_selector("#span-menu:not([hidden])")
    script_select(page, "王小明")  # ... then a selection is made by touch
    page.wait_for_selector("#span-menu", state="hidden")
    page.click("#label-bar .label-btn[data-label='PER']")
    page.wait_for_selector("mark.ent[data-label='PER']")
    assert page.locator("mark.ent[data-label='LOC']").count() == 1  # 上海 kept its label
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(document=doc).exists())
    assert sorted(stored_spans(doc)) == [(0, 3, "PER"), (4, 6, "LOC")]


def test_workspace_keyboard_deletes_in_the_span_list_and_undo_keep_focus_off_the_page(
    page, live_server, world, model
):
    doc = queue_document(
        world.project,
        model,
        "王小明和李四在上海工作。",
        [
            {"start": 0, "end": 3, "label": "PER", "score": 0.9},
            {"start": 4, "end": 6, "label": "PER", "score": 0.9},
            {"start": 7, "end": 9, "label": "LOC", "score": 0.9},
        ],
        0.9,
    )
    open_workspace(page, live_server, world)
    page.focus("#span-list li:first-child button")
    page.keyboard.press("Enter")  # deletes 王小明
    page.wait_for_function("document.querySelectorAll('mark.ent').length === 2")
    assert page.evaluate("document.activeElement.closest('#span-list') !== null")
    page.keyboard.press("Enter")  # the next one, 李四: not a submission
    page.wait_for_function("document.querySelectorAll('mark.ent').length === 1")
    assert shown_doc(page) == doc.pk and not Annotation.objects.filter(document=doc).exists()
    page.focus("#btn-undo")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # both deletions undone: Undo is disabled now
    page.wait_for_function("document.querySelectorAll('mark.ent').length === 3")
    assert page.evaluate("document.activeElement.id") == "btn-redo"
    assert not Annotation.objects.filter(document=doc).exists()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_workspace_fits_a_phone_without_scrolling_sideways(
    live_server, world, model, language, page
):
    queue_document(
        world.project,
        model,
        "阿里巴巴集团的王小明在上海工作。",
        [{"start": 0, "end": 6, "label": "ORG", "score": 0.9}],
        0.9,
    )
    page.set_viewport_size({"width": 360, "height": 740})
    page.context.add_cookies(
        [{"name": "django_language", "value": language, "url": live_server.url}]
    )
    open_workspace(page, live_server, world)
    page.click("mark.ent")  # the span menu stays inside the screen too
    page.wait_for_selector("#span-menu:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, f"workspace-phone-{language}")


def test_workspace_gives_a_finger_targets_it_can_hit(browser, live_server, world, model):
    """On a touch screen (coarse pointer) the span list's delete buttons and the labels are
    44 px high at least."""
    queue_document(
        world.project,
        model,
        "王小明在上海工作。",
        [{"start": 4, "end": 6, "label": "LOC", "score": 0.9}],
        0.9,
    )
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    try:
        open_workspace(page, live_server, world)
        assert page.evaluate("matchMedia('(pointer: coarse)').matches")
        for selector in ("#span-list button", "#label-bar .label-btn", "#btn-submit"):
            box = page.locator(selector).first.bounding_box()
            assert box["height"] >= 44 and box["width"] >= 44, (selector, box)
    finally:
        context.close()


def test_workspace_saves_a_draft_that_opens_again_with_its_spans(page, live_server, world, model):
    doc = queue_document(world.project, model, "王小明在上海工作。", [], 0.9)
    open_workspace(page, live_server, world)
    drag_select(page, "王小明")
    page.keyboard.press("1")
    page.click("#btn-draft")
    page.wait_for_function("document.getElementById('ws-status').textContent.includes('草稿')")
    wait_for(lambda: Annotation.objects.filter(document=doc).exists())
    annotation = Annotation.objects.get(document=doc)
    assert not annotation.validated and stored_spans(doc) == [(0, 3, "PER")]
    assert Document.objects.get(pk=doc.pk).status == Document.Status.ANNOTATED
    # not handed straight back to its author; another annotator gets it with its spans
    page.wait_for_selector("#empty-import, #doc-empty:not([hidden])")
    other = make_user_in(world, "annotator2")
    page.context.clear_cookies()  # logged out
    open_workspace(page, live_server, world, username=other.username)
    page.wait_for_selector(f"#doc-view[data-doc-id='{doc.pk}'] mark.ent[data-label='PER']")
    # ... and is told they are someone's draft, not checked spans
    assert page.inner_text("#stat-doc") == f"#{doc.pk} · annotator 的草稿"


def test_workspace_offers_no_draft_of_a_validated_document(page, live_server, world, model):
    doc = world.document("王小明在上海工作。", split="eval")
    Annotation.submit(doc, world.admin, [{"start": 0, "end": 3, "label": "PER"}], 0)
    login(page, live_server, "annotator")
    page.goto(f"{live_server.url}/projects/{world.project.pk}/annotate/?document={doc.pk}")
    page.wait_for_selector(f"#doc-view[data-doc-id='{doc.pk}']")
    assert page.is_disabled("#btn-draft")
    assert "Enter" in page.get_attribute("#btn-draft", "title")
    assert Annotation.objects.get(document=doc).validated


def test_workspace_skip_asks_again_before_dropping_changes(page, live_server, world, model):
    doc = queue_document(world.project, model, "王小明在上海工作。", [], 0.9)
    queue_document(world.project, model, "李四去了北京。", [], 0.5)
    open_workspace(page, live_server, world)
    assert shown_doc(page) == doc.pk
    drag_select(page, "王小明")
    page.keyboard.press("1")
    page.keyboard.press("s")
    assert "再按一次 S" in page.inner_text("#ws-status")
    page.wait_for_timeout(300)
    assert shown_doc(page) == doc.pk and page.locator("mark.ent[data-label='PER']").count() == 1
    page.keyboard.press("s")  # asked and answered: dropped, and on to the next
    page.wait_for_function(f"document.getElementById('doc-view').dataset.docId !== '{doc.pk}'")
    assert not Annotation.objects.filter(document=doc).exists()


def make_user_in(world, username: str):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username)
    world.project.add_member(user, "annotator")
    return user
