"""The embedded run's demo corpus, demo project and process commands."""

import json
import os
import random

import pytest

from annotation.demo import build_corpus, seed
from annotation.management.commands.run_embedded import Command
from annotation.models import Annotation, Document
from annotation.spans import validate_spans


def test_demo_corpus_file_is_what_the_builder_writes():
    lines = build_corpus.CORPUS.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == build_corpus.build()


def test_demo_corpus_spans_are_valid_and_cover_three_types():
    data = seed.corpus()
    assert 200 <= len(data["train"]) + len(data["eval"]) <= 400
    assert len(data["eval"]) >= 50
    labels = set()
    for example in data["train"] + data["eval"]:
        assert 5 <= len(example.text) <= 60
        validate_spans(example.text, example.spans, ["PER", "LOC", "ORG"])
        labels.update(span.label for span in example.spans)
    assert labels == {"PER", "LOC", "ORG"}
    texts = [ex.text for ex in data["train"] + data["eval"]]
    assert len(texts) == len(set(texts))


def test_demo_model_never_sees_the_demo_projects_texts():
    data = seed.demo_splits()
    seen = {ex.text for ex in data["model"] + data["model_dev"]}
    assert not seen & {ex.text for ex in data["pool"] + data["eval"]}
    assert not {ex.text for ex in data["model"]} & {ex.text for ex in data["model_dev"]}
    assert len(data["pool"]) >= 100 and len(data["model_dev"]) >= 20
    assert len(data["model"]) + len(data["model_dev"]) + len(data["pool"]) == len(
        seed.corpus()["train"]
    )


def test_demo_corpus_slots_land_on_their_names():
    record = build_corpus.fill("{PER}在{LOC.city}的{ORG.school}读书。", random.Random(3))
    spans = [(e["start"], e["end"], e["label"]) for e in record["entities"]]
    assert [label for _, _, label in spans] == ["PER", "LOC", "ORG"]
    city = record["text"][spans[1][0] : spans[1][1]]
    school = record["text"][spans[2][0] : spans[2][1]]
    assert city in build_corpus.CITIES and school in build_corpus.SCHOOLS


@pytest.mark.django_db
def test_demo_project_has_an_unlabelled_pool_and_a_gold_eval_split(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project, created = seed.create_demo_project(world.admin)
    assert created and callbacks  # prediction of the pool is queued
    data = seed.demo_splits()
    documents = Document.objects.filter(project=project)
    assert documents.filter(split="train", status="new").count() == len(data["pool"])
    assert documents.filter(split="eval", status="validated").count() == len(data["eval"])
    assert Annotation.objects.filter(document__project=project).count() == len(data["eval"])
    assert project.label_names() == ["PER", "LOC", "ORG"]
    assert project.role_of(world.admin) == "admin"
    again, created_again = seed.create_demo_project(world.admin)
    assert again == project and not created_again


def test_run_embedded_starts_web_a_worker_for_each_kind_of_queue_and_beat():
    commands = Command().commands("127.0.0.1:8000")
    assert set(commands) == {"web", "worker", "trainer", "beat"}
    worker, trainer = commands["worker"], commands["trainer"]
    assert worker[worker.index("-Q") + 1] == "control,inference"
    assert trainer[trainer.index("-Q") + 1] == "training"
    assert trainer[trainer.index("--concurrency") + 1] == "1"  # one run at a time
    assert worker[worker.index("-n") + 1] != trainer[trainer.index("-n") + 1]
    assert commands["beat"][3:6] == ["-A", "nerloop", "beat"]
    assert commands["web"][1:4] == ["manage.py", "runserver", "127.0.0.1:8000"]


class _Exited:
    returncode = -9

    def poll(self):
        return self.returncode


class _Running:
    returncode = None

    def poll(self):
        return None


def test_run_embedded_starts_an_exited_child_again_and_gives_up_on_a_loop(settings, tmp_path):
    import io

    from django.core.management.base import CommandError

    folder = tmp_path / "broker"
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(folder)}
    folder.mkdir()
    (folder / "1_junk.inference.msg").write_text("not json")
    (folder / "2_good.inference.msg").write_text('{"body": ""}')
    command = Command(stdout=io.StringIO())
    started = []
    children = {"worker": _Exited(), "web": _Running(), "beat": _Running()}
    exits = {name: [] for name in children}

    def start(name):
        started.append(name)
        return _Exited() if name == "worker" else _Running()

    command.restart_exited(children, exits, start)
    assert started == ["worker"]  # only the dead one; the web server kept serving
    assert not (folder / "1_junk.inference.msg").exists()
    assert (folder / "rejected" / "1_junk.inference.msg").exists()  # set aside, not lost
    assert (folder / "2_good.inference.msg").exists()
    for _ in range(3):
        command.restart_exited(children, exits, start)
    with pytest.raises(CommandError, match="worker exited with status -9 5 times"):
        command.restart_exited(children, exits, start)


def test_run_embedded_refuses_a_data_folder_another_instance_holds(settings, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from annotation.management.commands.run_embedded import hold_data_dir

    settings.DATA_DIR = tmp_path
    held = hold_data_dir(tmp_path)  # what a running instance holds
    try:
        with pytest.raises(CommandError, match=rf"pid {os.getpid()}\) is already running on"):
            call_command("run_embedded", "--setup-only", "--no-demo")
    finally:
        held.close()


@pytest.mark.django_db
def test_run_embedded_keeps_an_existing_admins_password(settings, tmp_path, monkeypatch):
    """A database restored without its data folder (or shared with another one) keeps its
    admin's password and tokens; NERLOOP_ADMIN_PASSWORD changes it on purpose."""
    from io import StringIO

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    monkeypatch.delenv("NERLOOP_ADMIN_PASSWORD", raising=False)
    settings.DATA_DIR = tmp_path / "first"
    settings.DATA_DIR.mkdir()
    call_command("run_embedded", "--setup-only", "--no-demo", stdout=StringIO())
    password = (settings.DATA_DIR / "admin-password.txt").read_text().strip()
    admin = get_user_model().objects.get(username="admin")
    token = Token.objects.create(user=admin)

    settings.DATA_DIR = tmp_path / "restored"  # no admin-password.txt here
    settings.DATA_DIR.mkdir()
    out = StringIO()
    call_command("run_embedded", "--setup-only", "--no-demo", stdout=out)
    admin.refresh_from_db()
    assert admin.check_password(password) and Token.objects.filter(key=token.key).exists()
    assert "password is unchanged" in out.getvalue() and "created" not in out.getvalue()

    monkeypatch.setenv("NERLOOP_ADMIN_PASSWORD", "chosen-on-purpose-1")
    call_command("run_embedded", "--setup-only", "--no-demo", stdout=StringIO())
    admin.refresh_from_db()
    assert admin.check_password("chosen-on-purpose-1")

    # a Docker secret names a file instead
    monkeypatch.delenv("NERLOOP_ADMIN_PASSWORD")
    secret = tmp_path / "admin-secret"
    secret.write_text("from-a-secret-file-2\n")
    monkeypatch.setenv("NERLOOP_ADMIN_PASSWORD_FILE", str(secret))
    call_command("run_embedded", "--setup-only", "--no-demo", stdout=StringIO())
    admin.refresh_from_db()
    assert admin.check_password("from-a-secret-file-2")

    # changed since in the admin site: the stored password would mislead, so it goes
    monkeypatch.delenv("NERLOOP_ADMIN_PASSWORD_FILE")
    admin.set_password("changed-in-the-admin-3")
    admin.save()
    out = StringIO()
    call_command("run_embedded", "--setup-only", "--no-demo", stdout=out)
    said = out.getvalue()
    assert "was changed since it was stored" in said and "from-a-secret-file-2" not in said
    assert not (settings.DATA_DIR / "admin-password.txt").exists()
    assert "nothing was started" in said and "is running at" not in said


def test_run_embedded_children_die_with_it(tmp_path):
    """A run_embedded killed with -9 leaves no web, worker or beat running (they held the
    port, and a second start then failed on it)."""
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "from annotation.management.commands.run_embedded import die_with_parent\n"
            "child = subprocess.Popen(['sleep', '60'], preexec_fn=die_with_parent,"
            " start_new_session=True)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "nerloop.settings", "SECRET_KEY": "x"},
    )
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:  # a dead child may stay a zombie until its new parent (init) reaps it
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().split(")")[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")
