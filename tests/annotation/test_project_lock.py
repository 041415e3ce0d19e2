"""Requests that read the label schema and write on the strength of it work on the stored
project under its row lock, not on the copy their request loaded: two admins' edits both land,
an import adds its labels to those added meanwhile, and a label removed meanwhile is refused.
(Each test replays the interleaving of a race with a stale object, as the walkers' threads
hit it.)"""

import pytest
from django.utils import translation

from annotation.formats import Example, Span
from annotation.importing import Entry, import_entries
from annotation.models import Annotation, Project
from annotation.serializers import ProjectSerializer
from nerloop.errors import CodedAPIException

pytestmark = pytest.mark.django_db


def _stale(project) -> Project:
    return Project.objects.get(pk=project.pk)


def test_two_edits_from_stale_copies_both_land(world):
    first, second = _stale(world.project), _stale(world.project)
    one = ProjectSerializer(first, data={"batch_size": 7}, partial=True)
    one.is_valid(raise_exception=True)
    one.save()
    other = ProjectSerializer(second, data={"retrain_threshold": 0}, partial=True)
    other.is_valid(raise_exception=True)
    saved = other.save()
    stored = _stale(world.project)
    assert (stored.batch_size, stored.retrain_threshold) == (7, 0)
    assert (saved.batch_size, saved.retrain_threshold) == (7, 0)  # what the answer shows


def test_an_edit_from_a_stale_copy_keeps_a_label_added_meanwhile(world):
    stale = _stale(world.project)
    fresh = _stale(world.project)
    fresh.labels = [*fresh.labels, {"name": "TIME"}]
    fresh.save()
    edit = ProjectSerializer(stale, data={"batch_size": 10}, partial=True)
    edit.is_valid(raise_exception=True)
    edit.save()
    assert "TIME" in _stale(world.project).label_names()


def _entries(label: str, n: int = 3) -> list[Entry]:
    return [Entry(Example(f"第{i}个句子。", [Span(0, 1, label)], {}), gold=True) for i in range(n)]


def test_imports_from_stale_copies_add_both_their_labels(world):
    first, second = _stale(world.project), _stale(world.project)
    import_entries(first, _entries("BBB"), extend_labels=True)
    result = import_entries(second, _entries("CCC"), extend_labels=True)
    assert result.labels_added == ["CCC"]
    assert {"BBB", "CCC"} <= set(_stale(world.project).label_names())
    assert {"BBB", "CCC"} <= set(second.label_names())  # the caller's copy is told


def test_a_submission_with_a_label_removed_meanwhile_is_refused(world):
    world.project.labels = [*world.project.labels, {"name": "CCC"}]
    world.project.save()
    document = world.document()
    document.project  # the request's copy, loaded before the removal  # noqa: B018
    remover = _stale(world.project)
    remover.set_labels([label for label in remover.labels if label["name"] != "CCC"])
    remover.save()
    with pytest.raises(CodedAPIException) as refused:
        Annotation.submit(document, world.annotator, [{"start": 0, "end": 2, "label": "CCC"}], 0)
    assert refused.value.code == "E101"
    assert not Annotation.objects.filter(document=document).exists()


def test_a_stale_revision_says_which_is_current(world):
    document = world.document()
    spans = [{"start": 0, "end": 2, "label": "PER"}]
    Annotation.submit(document, world.annotator, spans, 0)
    for wrong in (0, 5):
        with pytest.raises(CodedAPIException) as stale:
            Annotation.submit(document, world.admin, [], wrong)
        assert stale.value.code == "E102" and stale.value.status_code == 409
        # in the default language, Chinese (the UI shows it next to the catalogue's title)
        assert f"你提交的是第 {wrong} 版，而该文档的标注现在是第 1 版" in str(stale.value.detail)
    with translation.override("en"), pytest.raises(CodedAPIException) as stale:
        Annotation.submit(document, world.admin, [], 0)
    assert "revision 0 is not the current one" in str(stale.value.detail)
    assert "at revision 1" in str(stale.value.detail)
