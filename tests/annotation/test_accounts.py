"""Accounts for a team: add_users makes them in one go, and each user sets their own password."""

import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from annotation.models import ProjectMembership

pytestmark = pytest.mark.django_db


def test_add_users_creates_accounts_and_adds_them_to_a_project(world, tmp_path):
    listing = tmp_path / "team.csv"
    listing.write_text(
        "username,email\n# the spring intake\nli.lei,li@example.org\n\nhan_mei\nannotator\n",
        encoding="utf-8",
    )
    passwords = tmp_path / "passwords.csv"
    out = StringIO()
    call_command(
        "add_users",
        str(listing),
        "--project",
        str(world.project.pk),
        "--role",
        "annotator",
        "--passwords",
        str(passwords),
        stdout=out,
    )
    assert "2 accounts created, 1 existed and added to project" in out.getvalue()
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    rows = [line.split(",") for line in passwords.read_text().splitlines()]
    assert rows[0] == ["username", "password"] and [r[0] for r in rows[1:]] == ["li.lei", "han_mei"]
    users = get_user_model().objects
    li = users.get(username="li.lei")
    assert li.email == "li@example.org" and li.check_password(rows[1][1])
    assert not li.is_staff and not li.is_superuser
    members = ProjectMembership.objects.filter(project=world.project)
    assert members.get(user=li).role == "annotator"
    assert members.get(user=world.annotator).role == "annotator"  # existed: joins, keeps password
    # without --passwords they are printed
    out = StringIO()
    (tmp_path / "one.txt").write_text("wang.fang\n")
    call_command("add_users", str(tmp_path / "one.txt"), stdout=out)
    assert "wang.fang," in out.getvalue()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("ok_user\nbad user\n", "line 2"),
        ("ok_user\nok_user\n", "listed twice"),
        ("ok_user,not-an-email\n", "line 1"),
        ("a,b@example.org,extra\n", "username[,email]"),
        ("# nobody\n\n", "no usernames"),
    ],
)
def test_add_users_refuses_a_bad_list_and_creates_nothing(world, tmp_path, content, problem):
    listing = tmp_path / "team.txt"
    listing.write_text(content)
    before = get_user_model().objects.count()
    with pytest.raises(CommandError, match=re.escape(problem)):
        call_command("add_users", str(listing), stdout=StringIO())
    assert get_user_model().objects.count() == before


def test_a_user_changes_their_own_password(world):
    world.annotator.set_password("first-password-1")
    world.annotator.save()
    token = Token.objects.create(user=world.annotator)
    browser = Client()
    browser.force_login(world.annotator)
    home = browser.get("/").content.decode()
    assert 'id="account-link"' in home and "/account/password/" in home
    page = browser.get("/account/password/")
    assert page.status_code == 200 and "修改密码" in page.content.decode()
    wrong = browser.post(
        "/account/password/",
        {
            "old_password": "nope",
            "new_password1": "second-pass-2",
            "new_password2": "second-pass-2",
        },
    )
    assert wrong.status_code == 200 and 'id="password-errors"' in wrong.content.decode()
    world.annotator.refresh_from_db()
    assert world.annotator.check_password("first-password-1")  # refused: nothing changed
    done = browser.post(
        "/account/password/",
        {
            "old_password": "first-password-1",
            "new_password1": "second-pass-2",
            "new_password2": "second-pass-2",
        },
    )
    assert done.status_code == 302 and done["Location"] == "/account/password/changed/"
    assert "密码已修改" in browser.get(done["Location"]).content.decode()  # still signed in
    world.annotator.refresh_from_db()
    assert world.annotator.check_password("second-pass-2")
    assert not Token.objects.filter(key=token.key).exists()  # scripts ask for a new one
    assert Client().get("/account/password/").status_code == 302  # to the login page
