"""``python manage.py add_users FILE [--project ID --role ROLE] [--passwords OUT]``: accounts
for a team in one go, instead of one at a time in the Django admin.

FILE has one person a line, ``username`` or ``username,email`` (a header line ``username,...``
is skipped, as are blank lines and ``#`` comments; ``-`` reads standard input). A username
that has no account gets one with a random password; one that has keeps its password. With
``--project``, every listed user joins that project with ``--role`` (annotator by default),
or gets that role if already a member. The new passwords go to ``--passwords`` (a CSV of
``username,password``, readable by its owner only) or, without it, to standard output, so
the operator can hand them out; each user then sets their own at ``/account/password/`` (the
name in the top bar). Nothing is created unless every line is valid.
"""

from __future__ import annotations

import csv
import io
import secrets
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from annotation.models import Project, Role
from nerloop.errors import CodedAPIException


class Command(BaseCommand):
    help = "Create accounts from a list of usernames (and add them to a project)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="one 'username' or 'username,email' a line; - for stdin")
        parser.add_argument("--project", type=int, help="add every listed user to this project")
        parser.add_argument(
            "--role", choices=Role.values, default=Role.ANNOTATOR, help="their role (annotator)"
        )
        parser.add_argument("--passwords", help="write the new accounts' passwords to this CSV")

    def handle(self, *args, **opts):
        people = self.read(opts["file"])
        project = None
        if opts["project"] is not None:
            project = Project.objects.filter(pk=opts["project"]).first()
            if project is None:
                raise CommandError(f"there is no project {opts['project']}")
        users = get_user_model().objects
        created: list[tuple[str, str]] = []
        try:
            with transaction.atomic():
                for username, email in people:
                    user = users.filter(username=username).first()
                    if user is None:
                        password = secrets.token_urlsafe(12)
                        user = users.create_user(username, email, password)
                        created.append((username, password))
                    if project is not None:
                        project.add_member(user, opts["role"])
        except CodedAPIException as exc:  # E107: the project's last admin demoted
            raise CommandError(str(exc.detail)) from None
        kept = len(people) - len(created)
        where = f" and added to project {project.pk} as {opts['role']}" if project else ""
        self.stdout.write(f"{len(created)} accounts created, {kept} existed{where}")
        if created:
            self.write_passwords(created, opts["passwords"])

    def read(self, name: str) -> list[tuple[str, str]]:
        """(username, email) of each line; CommandError naming the first bad line."""
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{name}: cannot be read ({exc})") from None
        field = get_user_model().username_validator
        people: list[tuple[str, str]] = []
        seen: set[str] = set()
        for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
            cells = [cell.strip() for cell in row]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            if number == 1 and cells[0].lower() == "username":
                continue
            if len(cells) > 2:
                raise CommandError(f"{name} line {number}: expected username[,email]")
            username, email = cells[0], cells[1] if len(cells) > 1 else ""
            try:
                field(username)
                if email:
                    validate_email(email)
            except ValidationError as exc:
                raise CommandError(f"{name} line {number}: {' '.join(exc.messages)}") from None
            if username in seen:
                raise CommandError(f"{name} line {number}: {username} is listed twice")
            seen.add(username)
            people.append((username, email))
        if not people:
            raise CommandError(f"{name}: no usernames in it")
        return people

    def write_passwords(self, created: list[tuple[str, str]], path: str | None) -> None:
        if path is None:
            writer = csv.writer(self.stdout)
            writer.writerow(["username", "password"])
            writer.writerows(created)
            return
        target = Path(path)
        target.touch(mode=0o600, exist_ok=True)
        target.chmod(0o600)
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["username", "password"])
            writer.writerows(created)
        self.stdout.write(f"their passwords are in {target} (readable by you only)")
