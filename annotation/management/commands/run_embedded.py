"""``python manage.py run_embedded`` (``make run``): the whole platform on one machine.

Migrates, creates the admin account, trains a demo model into settings.DEFAULT_BUNDLE when
there is none, creates the demo project, then runs a real Celery worker (every queue), Celery
beat and the Django server as child processes until Ctrl-C, which stops all three. A child
that exits is started again (the worker after unreadable broker messages are set aside), so
a killed worker does not take the web server down with it; one that keeps exiting, five times
within a minute, stops the platform. The broker is Redis when REDIS_URL is set, else kombu's
filesystem transport under the data dir.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
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
from nerloop.settings import env_raw
from nerloop.tasks import BrokerUnavailable, ensure_broker

ADMIN = "admin"
PR_SET_PDEATHSIG = 1  # prctl(2)
RESTARTS = 5  # exits of one child within RESTART_WINDOW seconds before the platform gives up
RESTART_WINDOW = 60.0


def die_with_parent() -> None:
    """In a child, before it runs: SIGTERM when this process dies (Linux's parent-death
    signal), so a run_embedded killed with -9 leaves no web, worker or beat behind holding
    the port and the data folder that the next start takes."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: children may outlive it
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def hold_data_dir(folder: Path):
    """Lock the data folder for this process (released when it exits): two platforms on one
    folder would share its database, broker and bundles and trip over each other."""
    handle = open(folder / "run_embedded.lock", "a+")  # noqa: SIM115 (held while running)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise CommandError(
            f"another nerloop (pid {holder}) is already running on {folder}; stop it first, "
            "or set NERLOOP_DATA_DIR to another folder"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


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
        self.lock = hold_data_dir(Path(settings.DATA_DIR))
        make_broker_folders()
        self.say("migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        static = Path(settings.STATIC_ROOT)
        if not settings.DEBUG and os.access(static if static.exists() else static.parent, os.W_OK):
            # with DEBUG off only WhiteNoise serves /static/, from STATIC_ROOT as it was when
            # the web process started (an image that collected them at build is read-only)
            self.say(f"collecting static files into {static}")
            call_command("collectstatic", interactive=False, verbosity=0)
        password = self.admin_password()
        if not opts["no_demo"]:
            self.demo()
        if opts["setup_only"]:
            self.banner(opts["addr"], password, running=False)
            return
        self.run_processes(opts["addr"], password)

    def say(self, message: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"[nerloop] {message}"))

    def admin_password(self) -> str | None:
        """Create the admin on first run with a random password (or NERLOOP_ADMIN_PASSWORD)
        kept (0600) in the data dir. An admin that exists keeps its password unless
        NERLOOP_ADMIN_PASSWORD asks for another: a database restored without its data folder,
        or shared with another one, must not have it changed (and its tokens revoked) behind
        its users' backs. None when the password is not known here."""
        users = get_user_model().objects
        stored = Path(settings.DATA_DIR) / "admin-password.txt"
        wanted = env_raw("NERLOOP_ADMIN_PASSWORD")  # or NERLOOP_ADMIN_PASSWORD_FILE
        user = users.filter(username=ADMIN).first()
        if user is not None and not wanted:
            if stored.is_file():
                kept = stored.read_text().strip()
                if user.check_password(kept):
                    return kept
                # changed since (changepassword, the admin site): the file would mislead
                stored.unlink()
                self.say(f"the {ADMIN} password was changed since it was stored; removed {stored}")
                return None
            self.say(
                f"the {ADMIN} account exists; its password is unchanged (set "
                f"NERLOOP_ADMIN_PASSWORD, or run manage.py changepassword {ADMIN}, to change it)"
            )
            return None
        password = wanted or secrets.token_urlsafe(12)
        if user is not None and user.check_password(password):
            return password
        stored.write_text(password + "\n")
        stored.chmod(0o600)
        if user is None:
            user = users.create_superuser(ADMIN, "", password)
            self.say("created the admin account")
        else:
            self.say("set the admin password from NERLOOP_ADMIN_PASSWORD")
        user.set_password(password)
        user.is_superuser = user.is_staff = True
        user.save()
        return password

    def demo(self) -> None:
        bundle = Path(settings.DEFAULT_BUNDLE)
        if not (bundle / "manifest.json").is_file():
            self.say(f"training the demo model into {bundle} (seconds; at most two minutes)")
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

    def banner(self, addr: str, password: str | None, running: bool = True) -> None:
        broker = settings.CELERY_BROKER_URL.split("@")[-1]
        first = (
            f"  nerloop is running at   http://{addr}/"
            if running
            else "  nerloop is set up (database, static files, admin): nothing was started"
        )
        last = (
            "  stop with Ctrl-C"
            if running
            else "  start it with run_embedded, or its processes (docs/platform.md)"
        )
        lines = [
            "",
            first,
            f"  admin login             {ADMIN} / {password or '(unchanged, not stored here)'}",
            f"  API docs                http://{addr}/api/docs/",
            f"  Django admin            http://{addr}/admin/",
            f"  database                {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
            f"  broker                  {broker}",
            last,
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))

    def commands(self, addr: str) -> dict[str, list[str]]:
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "nerloop"]
        # Two workers, as docker-compose has: training runs one at a time on its own, and a
        # run never holds the slot predictions and bookkeeping need (with one worker of two
        # slots on every queue, two runs left new documents unpredicted for minutes).
        worker = ["worker", "--concurrency", "1", "-l", "INFO"]
        return {
            "worker": celery + [*worker, "-Q", "control,inference", "-n", "inference@%h"],
            "trainer": celery + [*worker, "-Q", "training", "-n", "training@%h"],
            "beat": celery + ["beat", "-l", "INFO", "--pidfile="],
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
        }

    def run_processes(self, addr: str, password: str | None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        commands = self.commands(addr)

        def start(name: str) -> subprocess.Popen:
            self.say(f"starting {name}: {' '.join(commands[name][1:])}")
            return subprocess.Popen(
                commands[name],
                cwd=settings.BASE_DIR,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

        exits: dict[str, list[float]] = {name: [] for name in commands}
        try:
            for name in commands:
                children[name] = start(name)
            time.sleep(2)
            self.banner(addr, password)
            while not stopping:
                self.restart_exited(children, exits, start)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.say("stopping web, worker and beat")
            shutdown(children)

    def restart_exited(self, children: dict, exits: dict[str, list[float]], start) -> None:
        """Start again each child that has exited; CommandError for one that exited RESTARTS
        times within RESTART_WINDOW seconds (something that a restart does not fix)."""
        now = time.monotonic()
        for name, child in list(children.items()):
            if child.poll() is None:
                continue
            recent = [t for t in exits[name] if now - t < RESTART_WINDOW] + [now]
            exits[name] = recent
            if len(recent) >= RESTARTS:
                raise CommandError(
                    f"{name} exited with status {child.returncode} {len(recent)} times within "
                    f"{RESTART_WINDOW:.0f}s; stopping (see its output above)"
                )
            self.say(f"{name} exited with status {child.returncode}; starting it again")
            if name in ("worker", "trainer"):
                self.set_aside_unreadable_messages()
            children[name] = start(name)

    def set_aside_unreadable_messages(self) -> None:
        """The filesystem broker's worker dies on a message file that is not JSON (and on a
        missing folder): recreate the folders and move such files to ``rejected/``."""
        make_broker_folders()
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
        if not settings.CELERY_BROKER_URL.startswith("filesystem") or not folder:
            return
        rejected = Path(folder) / "rejected"
        for path in Path(folder).glob("*.msg"):
            try:
                json.loads(path.read_text("utf-8"))
            except FileNotFoundError:
                continue  # taken meanwhile
            except (ValueError, UnicodeDecodeError):
                rejected.mkdir(exist_ok=True)
                path.replace(rejected / path.name)
                self.say(f"set aside an unreadable broker message: {rejected / path.name}")


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
