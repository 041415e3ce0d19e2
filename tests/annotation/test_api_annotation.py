"""GET/POST /projects/{id}/documents/{doc}/annotation: validation and stale revisions."""

import pytest

from annotation.models import Annotation, Document
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db

PER = {"start": 0, "end": 2, "label": "PER"}
LOC = {"start": 3, "end": 5, "label": "LOC"}


def url(world, doc) -> str:
    return f"/api/v1/projects/{world.project.pk}/documents/{doc.pk}/annotation"


def submit(world, doc, spans, revision, role="annotator", **extra):
    body = {"spans": spans, "revision": revision, **extra}
    return world.api(role).post(url(world, doc), body, format="json")


@pytest.mark.parametrize("role", ROLES)
def test_annotation_submit_permissions(world, role):
    doc = world.document()
    response = submit(world, doc, [PER], 0, role=role)
    assert response.status_code == expected(("admin", "annotator"), role, 200)
    assert Annotation.objects.filter(document=doc).exists() == (role in ("admin", "annotator"))


@pytest.mark.parametrize("role", ROLES)
def test_annotation_read_permissions(world, role):
    doc = world.document()
    response = world.api(role).get(url(world, doc))
    assert response.status_code == expected(("admin", "annotator"), role, 200)
    if response.status_code == 200:
        assert response.json()["revision"] == 0


def test_annotation_submit_of_another_projects_document_is_not_found(world):
    doc = world.document(project=world.other_project)
    assert submit(world, doc, [PER], 0).status_code == 404
    assert not Annotation.objects.exists()


def test_annotation_submit_stores_validated_spans_and_bumps_revision(world):
    doc = world.document()
    first = submit(world, doc, [LOC, PER], 0)
    assert first.status_code == 200, first.json()
    assert first.json()["revision"] == 1
    assert first.json()["spans"] == [PER, LOC]  # sorted
    assert first.json()["validated"] is True
    second = submit(world, doc, [[0, 2, "ORG"]], 1, role="admin")
    assert second.status_code == 200
    annotation = Annotation.objects.get(document=doc)
    assert annotation.revision == 2
    assert annotation.annotator == world.admin
    assert annotation.spans == [{"start": 0, "end": 2, "label": "ORG"}]
    assert Document.objects.get(pk=doc.pk).status == "validated"


def test_annotation_submit_of_the_same_answer_changes_nothing(world):
    """Reviewing a validated document with Enter keeps its revision, time and annotator, so
    it does not count again for retraining or as the reviewer's work."""
    doc = world.document()
    first = submit(world, doc, [LOC, PER], 0).json()
    same = submit(world, doc, [PER, LOC], 1, role="admin")  # the same spans, in any order
    assert same.status_code == 200
    assert same.json() == first
    annotation = Annotation.objects.get(document=doc)
    assert (annotation.revision, annotation.annotator) == (1, world.annotator)
    # a draft back to validated is a change
    draft = world.document("李四在上海。")
    assert submit(world, draft, [PER], 0, draft=True).json()["revision"] == 1
    assert submit(world, draft, [PER], 1).json()["revision"] == 2


def test_annotation_a_validated_answer_cannot_become_a_draft(world):
    """One click on "Save draft" took validated documents, eval gold included, out of
    training and scoring."""
    doc = world.document(split="eval")
    submit(world, doc, [PER], 0)
    for spans in ([PER], [PER, LOC]):
        refused = submit(world, doc, spans, 1, draft=True, role="admin")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "E109"
    annotation = Annotation.objects.get(document=doc)
    assert (annotation.revision, annotation.validated, annotation.spans) == (1, True, [PER])
    doc.refresh_from_db()
    assert doc.status == "validated"


def test_annotation_submit_with_a_stale_revision_is_a_conflict(world):
    doc = world.document()
    assert submit(world, doc, [PER], 0).status_code == 200
    assert submit(world, doc, [LOC], 1, role="admin").status_code == 200
    stale = submit(world, doc, [], 1)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "E102"
    again_first = submit(world, doc, [], 0)
    assert again_first.status_code == 409
    assert Annotation.objects.get(document=doc).spans == [LOC]


def test_annotation_submit_retried_after_a_lost_response_gets_what_it_made(world):
    """A client that never saw the answer sends the same body again: it gets the annotation
    its first try made, not a conflict; anything else at that revision still conflicts."""
    doc = world.document()
    first = submit(world, doc, [PER], 0)
    retried = submit(world, doc, [PER], 0)
    assert (first.status_code, retried.status_code) == (200, 200)
    assert retried.json()["revision"] == first.json()["revision"] == 1
    assert submit(world, doc, [PER, LOC], 1).json()["revision"] == 2
    assert submit(world, doc, [PER, LOC], 1).json()["revision"] == 2  # the retry again
    assert Annotation.objects.get(document=doc).revision == 2
    # other spans, another state, or another user at the old revision: a conflict
    assert submit(world, doc, [LOC], 1).status_code == 409
    assert submit(world, doc, [PER, LOC], 1, draft=True).status_code == 409
    assert submit(world, doc, [PER, LOC], 1, role="admin").status_code == 409


def test_annotation_submit_draft_is_not_validated(world):
    doc = world.document()
    response = submit(world, doc, [PER], 0, draft=True)
    assert response.status_code == 200
    assert response.json()["validated"] is False
    assert Document.objects.get(pk=doc.pk).status == "annotated"


@pytest.mark.parametrize(
    ("spans", "problem"),
    [
        ([{"start": 0, "end": 99, "label": "PER"}], "outside the text"),
        ([{"start": -1, "end": 1, "label": "PER"}], "outside the text"),
        ([{"start": 0, "end": 2, "label": "GPE"}], "not in the schema"),
        ([PER, {"start": 1, "end": 3, "label": "LOC"}], "overlap"),
        ([{"start": 2, "end": 2, "label": "PER"}], "empty"),
        ([{"start": "0", "end": 2, "label": "PER"}], "integers"),
        ([{"start": 0, "label": "PER"}], "integers"),
        ("PER", "list"),
    ],
)
def test_annotation_submit_rejects_invalid_spans(world, spans, problem):
    doc = world.document()
    submit(world, doc, [PER], 0)
    response = submit(world, doc, spans, 1)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "E101"
    assert problem in response.json()["error"]["detail"]
    annotation = Annotation.objects.get(document=doc)
    assert (annotation.revision, annotation.spans) == (1, [PER])


def test_annotation_submit_refuses_a_span_across_a_line_break(world):
    doc = world.document("我明天去杭州。\n张伟也去。\r\n好")
    for start, end in [(4, 10), (13, 16)]:
        response = submit(world, doc, [{"start": start, "end": end, "label": "LOC"}], 0)
        assert response.status_code == 400
        assert "crosses a line break" in response.json()["error"]["detail"]
    assert not Annotation.objects.filter(document=doc).exists()
    assert submit(world, doc, [{"start": 4, "end": 6, "label": "LOC"}], 0).status_code == 200


def test_annotation_submit_counts_code_points_not_utf16_units(world):
    doc = world.document("😀张三𠮷在北京")
    response = submit(world, doc, [{"start": 1, "end": 3, "label": "PER"}, [5, 7, "LOC"]], 0)
    assert response.status_code == 200, response.json()
    spans = Annotation.objects.get(document=doc).spans
    assert [doc.text[s["start"] : s["end"]] for s in spans] == ["张三", "北京"]


def test_annotation_submit_needs_a_revision(world):
    doc = world.document()
    response = world.api("annotator").post(url(world, doc), {"spans": []}, format="json")
    assert response.status_code == 400
    assert "revision" in response.json()["error"]["detail"]


def test_annotation_submit_ends_the_claim(world):
    doc = world.document()
    assert doc.claim(world.annotator)
    assert submit(world, doc, [PER], 0).status_code == 200
    doc.refresh_from_db()
    assert doc.assignee is None and doc.assigned_until is None
