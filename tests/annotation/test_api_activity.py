"""GET /projects/{id}/activity: validated annotations per annotator per day, 30 days."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from annotation import progress
from annotation.models import Annotation
from tests.base import ROLES, expected, make_user

pytestmark = pytest.mark.django_db


def url(world) -> str:
    return f"/api/v1/projects/{world.project.pk}/activity"


def annotate(world, user, when, validated=True, project=None):
    """A validated annotation by ``user`` last submitted at ``when``."""
    doc = world.document(f"{user}在{when:%m月%d日}标注。", project=project)
    annotation = Annotation.objects.create(document=doc, annotator=user, validated=validated)
    Annotation.objects.filter(pk=annotation.pk).update(updated=when)  # auto_now sets "now"
    return annotation


def days_ago(n: int, hour: int = 12):
    """``hour`` o'clock, ``n`` days before today, in the server's time zone."""
    return progress.day_start(timezone.localdate() - timedelta(days=n)) + timedelta(hours=hour)


@pytest.mark.parametrize("role", ROLES)
def test_activity_permissions(world, role):
    annotate(world, world.annotator, days_ago(0))
    response = world.api(role).get(url(world))
    assert response.status_code == expected(("admin", "annotator"), role, 200)


def test_activity_counts_per_annotator_per_day_for_admins(world):
    today, yesterday = timezone.localdate(), timezone.localdate() - timedelta(days=1)
    for hour in (9, 10, 11):
        annotate(world, world.annotator, days_ago(0, hour))
    annotate(world, world.annotator, days_ago(1))
    annotate(world, world.admin, days_ago(1))
    data = world.api("admin").get(url(world)).json()
    assert data == [
        {"annotator": "admin", "day": yesterday.isoformat(), "count": 1},
        {"annotator": "annotator", "day": yesterday.isoformat(), "count": 1},
        {"annotator": "annotator", "day": today.isoformat(), "count": 3},
    ]


def test_activity_annotators_see_only_their_own_rows(world):
    annotate(world, world.annotator, days_ago(0))
    annotate(world, world.admin, days_ago(0))
    annotate(world, make_user("colleague"), days_ago(2))
    data = world.api("annotator").get(url(world)).json()
    assert [row["annotator"] for row in data] == ["annotator"]
    assert len(world.api("admin").get(url(world)).json()) == 3


def test_activity_leaves_out_drafts_other_projects_and_older_days(world):
    annotate(world, world.annotator, days_ago(0))
    annotate(world, world.annotator, days_ago(0), validated=False)
    annotate(world, world.annotator, days_ago(0), project=world.other_project)
    annotate(world, world.annotator, days_ago(29, hour=0))  # the first of the 30 days
    annotate(world, world.annotator, days_ago(30, hour=23))  # the day before them
    data = world.api("admin").get(url(world)).json()
    oldest = (timezone.localdate() - timedelta(days=29)).isoformat()
    assert [(row["day"], row["count"]) for row in data] == [
        (oldest, 1),
        (timezone.localdate().isoformat(), 1),
    ]


def test_activity_days_are_in_the_server_time_zone(world, settings):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: local midnight is 16:00 UTC the day before
    midnight = progress.day_start(timezone.localdate())
    annotate(world, world.annotator, midnight - timedelta(minutes=30))
    annotate(world, world.annotator, midnight + timedelta(minutes=30))
    assert (midnight - timedelta(minutes=30)).astimezone(UTC).date() == (
        midnight + timedelta(minutes=30)
    ).astimezone(UTC).date()  # one UTC day, two local days
    data = world.api("admin").get(url(world)).json()
    today = timezone.localdate()
    assert [(row["day"], row["count"]) for row in data] == [
        ((today - timedelta(days=1)).isoformat(), 1),
        (today.isoformat(), 1),
    ]


def test_activity_is_one_query(world, django_assert_num_queries):
    for n in range(5):
        annotate(world, world.annotator, days_ago(n))
        annotate(world, world.admin, days_ago(n))
    with django_assert_num_queries(1):
        rows = progress.activity(world.project)
    assert sum(row["count"] for row in rows) == 10
