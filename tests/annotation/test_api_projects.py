from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Annotation, Project, Role
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db


def url(project) -> str:
    return f"/api/v1/projects/{project.pk}"


def test_projects_list_shows_only_the_callers_projects(world):
    response = world.api("annotator").get("/api/v1/projects")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["name"], row["role"]) for row in rows] == [("A", "annotator")]


def test_projects_list_needs_authentication(world):
    response = world.api("anonymous").get("/api/v1/projects")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_projects_create_makes_the_caller_admin(world):
    body = {"name": "新项目", "labels": [{"name": "PER"}, {"name": "ORG", "hotkey": "o"}]}
    response = world.api("outsider").post("/api/v1/projects", body, format="json")
    assert response.status_code == 201, response.json()
    project = Project.objects.get(pk=response.json()["id"])
    assert project.role_of(world.outsider) == Role.ADMIN
    assert response.json()["role"] == "admin"
    assert project.label_names() == ["PER", "ORG"]
    assert all(label["color"].startswith("#") for label in project.labels)
    assert project.selection_strategy == "entropy_kmeans"


def test_projects_labels_without_colours_never_share_one(world):
    names = [{"name": f"T{i}"} for i in range(14)]
    body = {"name": "十四类", "labels": [{"name": "X", "color": "#A78BFA"}, *names]}
    response = world.api("admin").post("/api/v1/projects", body, format="json")
    colours = [label["color"] for label in response.json()["labels"]]
    assert colours[0] == "#a78bfa"  # its own, which no other label then gets
    assert len(set(colours)) == 15
    assert all(len(c) == 7 and c.startswith("#") for c in colours)


def test_projects_labels_without_hotkeys_get_free_digits(world):
    names = [f"T{i}" for i in range(11)]
    body = {"name": "十一类", "labels": [{"name": "T0", "hotkey": "2"}, *names[1:]]}
    response = world.api("admin").post("/api/v1/projects", body, format="json")
    assert response.status_code == 201, response.json()
    hotkeys = [label["hotkey"] for label in response.json()["labels"]]
    assert hotkeys == ["2", "1", "3", "4", "5", "6", "7", "8", "9", "0", ""]


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ([{"name": "PER"}, {"name": "PER"}], "duplicate"),
        ([{"name": "B-X Y"}], "invalid name"),
        ([{"name": "X" * 60}], "(60 characters; at most 50)"),
        (["PER", "O"], "O is the tag of no entity"),
        ([{"name": "PER", "color": "red"}], "colour"),
        ([{"name": "PER", "hotkey": "1"}, {"name": "LOC", "hotkey": "1"}], "hotkey"),
        ([{"name": "PER", "hotkey": "s"}], "hotkey 's' is the workspace's skip key"),
        ([{"name": "PER", "hotkey": "A"}], "hotkey 'A' is the workspace's keep-suggestions key"),
        ([{"name": "PER", "hotkey": " "}], "hotkey must be one character"),
        ([{"name": "PER", "hotkey": "中"}], "hotkey '中' is not a key"),
        (
            [{"name": "PER"}, {"name": "LOC"}, {"name": ""}],
            "label 3: invalid name '' (a name is needed)",
        ),
        ("PER", "list"),
    ],
)
def test_projects_create_rejects_a_bad_label_schema(world, labels, problem):
    response = world.api("admin").post(
        "/api/v1/projects", {"name": "x", "labels": labels}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "E106"
    assert problem in response.json()["error"]["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 100_000_000}, "batch_size"),
        ({"batch_size": None}, "batch_size"),
        ({"retrain_threshold": -5}, "retrain_threshold"),
        ({"retrain_threshold": None}, "retrain_threshold"),
        ({"promotion_tolerance": None}, "promotion_tolerance"),
    ],
)
def test_projects_settings_refuse_out_of_range_numbers(world, change, field):
    response = world.api("admin").patch(url(world.project), change, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["detail"]
    world.project.refresh_from_db()
    assert (world.project.batch_size, world.project.retrain_threshold) == (20, 50)


def test_projects_refuse_unknown_fields_and_ignore_read_only_ones(world):
    admin = world.api("admin")
    typo = admin.post("/api/v1/projects", {"name": "x", "batchsize": 5}, format="json")
    assert typo.status_code == 400
    assert "batchsize" in typo.json()["error"]["detail"]
    assert "batch_size" in typo.json()["error"]["message"]  # what the body takes
    url = f"/api/v1/projects/{world.project.pk}"
    fetched = admin.get(url).json()
    assert admin.patch(url, {"threshold": 0}, format="json").status_code == 400
    # a project fetched and sent back (id, created and role included) is fine
    back = admin.patch(url, {**fetched, "batch_size": 7}, format="json")
    assert back.status_code == 200, back.json()
    assert admin.put(url, {**fetched, "batch_size": 9}, format="json").status_code == 405
    world.project.refresh_from_db()
    assert (world.project.batch_size, world.project.retrain_threshold) == (7, 50)


def test_projects_create_rejects_an_unknown_strategy(world):
    body = {"name": "x", "selection_strategy": "psychic"}
    response = world.api("admin").post("/api/v1/projects", body, format="json")
    assert response.status_code == 400
    assert "selection_strategy" in response.json()["error"]["detail"]


def test_projects_names_are_unique_among_the_callers_projects(world):
    admin = world.api("admin")
    response = admin.post("/api/v1/projects", {"name": " a "}, format="json")
    assert response.status_code == 400
    assert "“a”" in response.json()["error"]["detail"]["name"][0]
    assert Project.objects.count() == 2
    response = admin.patch(url(world.project), {"name": "a"}, format="json")
    assert response.status_code == 200  # its own name, in another case
    response = admin.patch(url(world.project), {"name": "B"}, format="json")
    assert response.status_code == 200  # B is someone else's project
    # ... and the outsider, who has a B, may still call a new one A
    response = world.api("outsider").post("/api/v1/projects", {"name": "A"}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("role", ROLES)
def test_projects_read_permissions(world, role):
    response = world.api(role).get(url(world.project))
    assert response.status_code == expected(("admin", "annotator", "client"), role, 200)
    if response.status_code == 200:
        assert response.json()["labels"][0]["name"] == "PER"
        assert response.json()["role"] == role


@pytest.mark.parametrize("role", ROLES)
def test_projects_update_permissions(world, role):
    body = {"retrain_threshold": 7, "promotion_tolerance": 0.02, "batch_size": 5}
    response = world.api(role).patch(url(world.project), body, format="json")
    assert response.status_code == expected(("admin",), role, 200)
    world.project.refresh_from_db()
    assert (world.project.retrain_threshold == 7) == (role == "admin")


def test_projects_update_adds_and_reorders_labels(world):
    labels = [
        {"name": "ORG"},
        {"name": "PER", "color": "#000000"},
        {"name": "LOC"},
        {"name": "TIME"},
    ]
    response = world.api("admin").patch(url(world.project), {"labels": labels}, format="json")
    assert response.status_code == 200
    world.project.refresh_from_db()
    assert world.project.label_names() == ["ORG", "PER", "LOC", "TIME"]
    assert world.project.labels[1]["color"] == "#000000"


def test_projects_update_refuses_removing_a_used_label(world):
    doc = world.document()
    Annotation.objects.create(document=doc, spans=[{"start": 0, "end": 2, "label": "PER"}])
    labels = [{"name": "LOC"}, {"name": "ORG"}]
    response = world.api("admin").patch(url(world.project), {"labels": labels}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "E104"
    assert "PER" in response.json()["error"]["detail"]
    world.project.refresh_from_db()
    assert world.project.label_names() == ["PER", "LOC", "ORG"]


def test_projects_update_allows_removing_an_unused_label(world):
    doc = world.document()
    Annotation.objects.create(document=doc, spans=[{"start": 0, "end": 2, "label": "PER"}])
    response = world.api("admin").patch(
        url(world.project), {"labels": [{"name": "PER"}]}, format="json"
    )
    assert response.status_code == 200
    world.project.refresh_from_db()
    assert world.project.label_names() == ["PER"]


@pytest.mark.parametrize("role", ROLES)
def test_projects_members_permissions(world, role):
    response = world.api(role).get(f"{url(world.project)}/members")
    assert response.status_code == expected(("admin",), role, 200)
    if role == "admin":
        assert {row["username"]: row["role"] for row in response.json()} == {
            "admin": "admin",
            "annotator": "annotator",
            "client": "client",
        }


@pytest.mark.parametrize("role", ROLES)
def test_projects_members_add_permissions(world, role):
    body = {"username": "outsider", "role": "annotator"}
    response = world.api(role).post(f"{url(world.project)}/members", body, format="json")
    assert response.status_code == expected(("admin",), role, 201)
    assert (world.project.role_of(world.outsider) == "annotator") == (role == "admin")


def test_projects_members_add_changes_an_existing_role(world):
    body = {"username": "client", "role": "annotator"}
    response = world.api("admin").post(f"{url(world.project)}/members", body, format="json")
    assert response.status_code == 200  # changed, not created
    assert world.project.role_of(world.client) == "annotator"
    assert world.project.memberships.count() == 3


@pytest.mark.parametrize("role", ROLES)
def test_projects_members_remove_permissions(world, role):
    response = world.api(role).delete(f"{url(world.project)}/members/client")
    assert response.status_code == expected(("admin",), role, 204)
    assert (world.project.role_of(world.client) is None) == (role == "admin")


def test_projects_members_remove_gives_back_held_documents(world):
    doc = world.document(
        assignee=world.annotator, assigned_until=timezone.now() + timedelta(hours=1)
    )
    response = world.api("admin").delete(f"{url(world.project)}/members/annotator")
    assert response.status_code == 204
    doc.refresh_from_db()
    assert doc.assignee is None and doc.assigned_until is None
    assert world.api("annotator").get(url(world.project)).status_code == 404
    again = world.api("admin").delete(f"{url(world.project)}/members/annotator")
    assert again.status_code == 404
    assert world.api("admin").delete(f"{url(world.project)}/members/nobody").status_code == 404


@pytest.mark.parametrize(("role", "released"), [("client", True), ("admin", False)])
def test_projects_members_role_change_to_client_gives_back_held_documents(world, role, released):
    """A client cannot annotate (nor release what it held), so its claims must not wait out
    their time-out; a role that can still annotate keeps them."""
    doc = world.document(
        assignee=world.annotator, assigned_until=timezone.now() + timedelta(hours=1)
    )
    body = {"username": "annotator", "role": role}
    response = world.api("admin").post(f"{url(world.project)}/members", body, format="json")
    assert response.status_code == 200
    doc.refresh_from_db()
    assert (doc.assignee is None) == released


def test_projects_keep_at_least_one_admin(world):
    api = world.api("admin")
    members = f"{url(world.project)}/members"
    demote = api.post(members, {"username": "admin", "role": "annotator"}, format="json")
    assert demote.status_code == 409
    assert demote.json()["error"]["code"] == "E107"
    assert api.delete(f"{members}/admin").json()["error"]["code"] == "E107"
    assert world.project.role_of(world.admin) == "admin"
    # With a second admin, the first may step down.
    api.post(members, {"username": "annotator", "role": "admin"}, format="json")
    assert (
        api.post(members, {"username": "admin", "role": "annotator"}, format="json").status_code
        == 200
    )
    assert world.project.role_of(world.admin) == "annotator"


def test_projects_superuser_is_admin_everywhere(world):
    world.outsider.is_superuser = True
    world.outsider.save()
    response = world.api("outsider").get(url(world.project))
    assert response.json()["role"] == "admin"


@pytest.mark.parametrize("role", ROLES)
def test_projects_delete_only_by_its_admins(world, role):
    response = world.api(role).delete(f"/api/v1/projects/{world.project.pk}")
    assert response.status_code == expected(("admin",), role, 204)
    assert Project.objects.filter(pk=world.project.pk).exists() == (role != "admin")


def test_projects_delete_takes_everything_with_it(
    world, settings, tmp_path, django_capture_on_commit_callbacks
):
    from annotation.models import Annotation, Document
    from learner.models import ModelVersion, TrainingRun

    settings.BUNDLE_DIR = tmp_path
    bundles = tmp_path / f"project-{world.project.pk}"
    (bundles / "v1").mkdir(parents=True)
    doc = world.document()
    Annotation.objects.create(document=doc, spans=[], validated=True)
    version = ModelVersion.objects.create(
        project=world.project, version="v1", bundle_path=str(bundles / "v1")
    )
    run = TrainingRun.objects.create(project=world.project, model_version=version, state="running")
    api = world.api("admin")
    busy = api.delete(f"/api/v1/projects/{world.project.pk}")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "E108"
    TrainingRun.objects.filter(pk=run.pk).update(state="succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/projects/{world.project.pk}").status_code == 204
    assert not Document.objects.filter(pk=doc.pk).exists()
    assert not ModelVersion.objects.filter(pk=version.pk).exists()
    assert not bundles.exists()
    assert Project.objects.filter(pk=world.other_project.pk).exists()


@pytest.mark.parametrize("role", ["annotator", "client"])
def test_projects_create_needs_the_permission(world, role):
    """A predict-only pipeline account (or an annotator) cannot make itself a project's
    admin, and with it start training runs on the shared workers."""
    response = world.api(role).post("/api/v1/projects", {"name": "mine"}, format="json")
    assert response.status_code == 403
    assert "Can add project" in response.json()["error"]["detail"]
    assert not Project.objects.filter(name="mine").exists()
    # bad input from one who may not create is refused for the permission, not the body
    response = world.api(role).post("/api/v1/projects", {"name": ""}, format="json")
    assert response.status_code == 403


def test_projects_create_is_open_to_superusers(world):
    boss = get_user_model().objects.create_superuser("boss")
    client = APIClient()
    client.force_authenticate(boss)
    assert client.post("/api/v1/projects", {"name": "top"}, format="json").status_code == 201
