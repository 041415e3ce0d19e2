"""``python manage.py run_embedded`` (``make run``): the whole platform on one machine.

Migrates, creates the admin account, trains a demo model into settings.DEFAULT_BUNDLE when
there is none, creates the demo project, then runs a real Celery worker (both queues), Celery
beat and the Django server as child processes until Ctrl-C, which stops all three. The
broker is Redis when REDIS_URL is set, else kombu's filesystem transport under the data dir.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from annotation.demo import seed
from nerloop.celery import make_broker_folders
from nerloop.tasks import BrokerUnavailable, ensure_broker

ADMIN = "admin"


class Command(BaseCommand):
    help = "Set up the embedded platform (database, admin, demo) and run web, worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port to serve on")
        parser.add_argument("--no-demo", action="store_true", help="skip the demo project/model")
        parser.add_argument(
            "--setup-only", action="store_true", help="prepare everything, start nothing"
        )

    def handle(self, *args, **opts):
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        make_broker_folders()
        self.say("migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        password = self.admin_password()
        if not opts["no_demo"]:
            self.demo()
        if opts["setup_only"]:
            self.banner(opts["addr"], password)
            return
        self.run_processes(opts["addr"], password)

    def say(self, message: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"[nerloop] {message}"))

    def admin_password(self) -> str:
        """Create the admin on first run with a random password kept (0600) in the data dir."""
        users = get_user_model().objects
        stored = Path(settings.DATA_DIR) / "admin-password.txt"
        if users.filter(username=ADMIN).exists() and stored.is_file():
            return stored.read_text().strip()
        password = os.environ.get("NERLOOP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        stored.write_text(password + "\n")
        stored.chmod(0o600)
        user = users.filter(username=ADMIN).first() or users.create_superuser(ADMIN, "", password)
        user.set_password(password)
        user.is_superuser = user.is_staff = True
        user.save()
        self.say("created the admin account")
        return password

    def demo(self) -> None:
        bundle = Path(settings.DEFAULT_BUNDLE)
        if not (bundle / "manifest.json").is_file():
            self.say(f"training the demo model into {bundle} (one or two minutes)")
            seed.train_demo_bundle(bundle, log=lambda line: self.stdout.write(f"  {line}"))
        try:
            ensure_broker()
        except BrokerUnavailable as exc:
            raise CommandError(f"{exc.detail} (REDIS_URL={settings.REDIS_URL or 'unset'})") from exc
        admin = get_user_model().objects.get(username=ADMIN)
        project, created = seed.create_demo_project(admin)
        if created:
            self.say(
                f"created the demo project #{project.pk} ({project.documents.count()} sentences)"
            )

    def banner(self, addr: str, password: str) -> None:
        broker = settings.CELERY_BROKER_URL.split("@")[-1]
        lines = [
            "",
            f"  nerloop is running at   http://{addr}/",
            f"  admin login             {ADMIN} / {password}",
            f"  API docs                http://{addr}/api/docs/",
            f"  Django admin            http://{addr}/admin/",
            f"  database                {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
            f"  broker                  {broker}",
            "  stop with Ctrl-C",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))

    def commands(self, addr: str) -> dict[str, list[str]]:
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "nerloop"]
        return {
            "worker": celery
            + ["worker", "-Q", "control,inference,training", "--concurrency", "2", "-l", "INFO"],
            "beat": celery + ["beat", "-l", "INFO", "--pidfile="],
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
        }

    def run_processes(self, addr: str, password: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in self.commands(addr).items():
                self.say(f"starting {name}: {' '.join(command[1:])}")
                children[name] = subprocess.Popen(
                    command, cwd=settings.BASE_DIR, env=env, start_new_session=True
                )
            time.sleep(2)
            self.banner(addr, password)
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        raise CommandError(f"{name} exited with status {child.returncode}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.say("stopping web, worker and beat")
            shutdown(children)


def shutdown(children: dict[str, subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM each child (a Celery worker then stops its own pool: a warm shutdown); what is
    still alive after ``grace`` seconds is killed with its whole process group."""
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
