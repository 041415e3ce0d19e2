"""``python -m bench.platform``: the platform's speed on 50,000 generated Chinese documents.

Runs against a throw-away database created next to the one DATABASE_URL names (PostgreSQL
is what the targets are for; SQLite works but is not what they mean), through the real
HTTP stack (Django's test client, token authentication), and one real Celery inference
worker process. Prints one table and writes ``bench/results/platform.json``.

Targets (issue 4) beside Label Studio 1.23.2 measured on this kind of machine (SQLite / PG):
import >= 5,000 docs/s (2,816 / 1,900), export of the whole project <= 10 s in every format
(134 s / 221 s as JSON), list page 1 of 100 <= 0.05 s (0.29 / 0.45 s), submit one annotation
<= 20 ms median (107 / 139 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_REDIS_DB = "15"  # keeps the benchmark's tasks away from a developer's own worker


def isolate_environment() -> None:
    """Before Django starts: a broker of the benchmark's own, the usual default bundle."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nerloop.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("NERLOOP_DEFAULT_BUNDLE", str(ROOT / "var" / "bundles" / "demo"))
    redis = os.environ.get("REDIS_URL")
    if redis:
        base = redis.rsplit("/", 1)[0] if redis.count("/") >= 3 else redis.rstrip("/")
        os.environ["REDIS_URL"] = f"{base}/{BENCH_REDIS_DB}"
    else:
        os.environ["NERLOOP_DATA_DIR"] = tempfile.mkdtemp(prefix="nerloop-bench-")


def generate(count: int, seed: int = 1) -> list[dict]:
    """JSONL records of 20-60 characters; one in ten carries gold spans."""
    from annotation.demo.build_corpus import PLAIN, TEMPLATES, fill

    rng = random.Random(seed)
    records = []
    for index in range(count):
        record = fill(rng.choice(TEMPLATES), rng)
        target = rng.randint(20, 60)
        text = record["text"]
        while len(text) < target:
            text += rng.choice(PLAIN)
        text = text[:target]
        spans = [e for e in record["entities"] if e["end"] <= len(text)]
        entry = {"text": text, "meta": {"n": index}}
        if index % 10 == 0:
            entry["entities"] = spans
        records.append(entry)
    return records


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


class Bench:
    def __init__(self, args):
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token
        from rest_framework.test import APIClient

        from annotation.models import Project, Role

        self.args = args
        self.user = get_user_model().objects.create_user("bench", password=None)
        self.project = Project.objects.create(name="bench")
        self.project.add_member(self.user, Role.ADMIN)
        token = Token.objects.create(user=self.user)
        self.client = APIClient(SERVER_NAME="localhost")
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        self.base = f"/api/v1/projects/{self.project.pk}"
        self.results: dict = {"documents": args.docs}

    def import_documents(self) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile

        records = generate(self.args.docs)
        content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        upload = SimpleUploadedFile("bench.jsonl", content, "application/x-ndjson")
        response, seconds = timed(
            self.client.post, f"{self.base}/documents/upload", {"file": upload}, format="multipart"
        )
        assert response.status_code == 201, response.content[:500]
        assert response.json()["documents"] == self.args.docs
        self.results["import_seconds"] = seconds
        self.results["import_docs_per_s"] = self.args.docs / seconds
        self.results["import_mb"] = len(content) / 1e6

    def export_all(self) -> None:
        from annotation.formats import FORMATS

        exports = {}
        for fmt in sorted(FORMATS):
            started = time.perf_counter()
            response = self.client.get(f"{self.base}/export/{fmt}")
            size = sum(len(chunk) for chunk in response.streaming_content)
            exports[fmt] = {"seconds": time.perf_counter() - started, "mb": size / 1e6}
            assert response.status_code == 200
        self.results["export"] = exports

    def list_page(self, key: str = "list_page1_median_s", repeats: int = 30) -> None:
        url = f"{self.base}/documents?page=1"
        self.client.get(url)  # warm-up
        samples = []
        for _ in range(repeats):
            response, seconds = timed(self.client.get, url)
            assert response.status_code == 200 and len(response.json()["results"]) == 100
            samples.append(seconds)
        self.results[key] = statistics.median(samples)

    def list_sorted(self) -> None:
        url = f"{self.base}/documents?page=1&has_prediction=true&ordering=-uncertainty"
        samples = [timed(self.client.get, url)[1] for _ in range(10)]
        self.results["list_page1_sorted_by_uncertainty_median_s"] = statistics.median(samples)

    def settle(self) -> None:
        """What autovacuum does on its own a little later: after 50,000 prediction updates
        the table holds as many dead rows, and counting them dominates the list request."""
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE annotation_document, annotation_prediction")
        self.list_page("list_page1_settled_median_s")

    def submit(self, count: int = 300) -> None:
        from annotation.models import Document

        ids = list(
            Document.objects.filter(project=self.project, status__in=["new", "predicted"])
            .order_by("id")
            .values_list("id", flat=True)[:count]
        )
        samples = []
        for doc_id in ids:
            body = {"spans": [{"start": 0, "end": 2, "label": "PER"}], "revision": 0}
            response, seconds = timed(
                self.client.post, f"{self.base}/documents/{doc_id}/annotation", body, format="json"
            )
            assert response.status_code == 200, response.content
            samples.append(seconds)
        samples.sort()
        self.results["submit_median_ms"] = statistics.median(samples) * 1000
        self.results["submit_p95_ms"] = samples[int(len(samples) * 0.95)] * 1000

    def queue_next(self, count: int = 100) -> None:
        samples = []
        for _ in range(count):
            response, seconds = timed(self.client.get, f"{self.base}/queue/next")
            assert response.status_code == 200
            doc_id = response.json()["document"]["id"]
            self.client.post(f"{self.base}/queue/{doc_id}/skip")
            samples.append(seconds)
        self.results["queue_next_median_ms"] = statistics.median(samples) * 1000

    def predict_with_worker(self) -> None:
        """Start one inference worker process on the queued import tasks; time it to the end."""
        from django.conf import settings
        from django.db.models import Max, Min

        from annotation.models import Prediction

        database = settings.DATABASES["default"]
        env = {**os.environ, "DATABASE_URL": database_url(database), "NERLOOP_LOG_LEVEL": "WARNING"}
        command = [
            sys.executable, "-m", "celery", "-A", "nerloop", "worker",
            "-Q", "inference", "--concurrency", "1", "-l", "WARNING",
        ]  # fmt: skip
        started = time.perf_counter()
        worker = subprocess.Popen(command, cwd=ROOT, env=env)
        rows = Prediction.objects.filter(document__project=self.project)
        done = 0
        try:
            deadline = started + self.args.predict_timeout
            while done < self.args.docs and time.perf_counter() < deadline:
                time.sleep(1.0)
                done = rows.count()
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited with status {worker.returncode}")
        finally:
            wall = time.perf_counter() - started
            worker.terminate()
            worker.wait(timeout=60)
        span = rows.aggregate(first=Min("created"), last=Max("created"))
        steady = (span["last"] - span["first"]).total_seconds() if done else 0.0
        self.results["predicted"] = done
        self.results["predict_wall_seconds"] = wall
        self.results["predict_docs_per_s_wall"] = done / wall
        self.results["predict_docs_per_s_steady"] = done / steady if steady else None


def database_url(database: dict) -> str:
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database.get("USER") or ""
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgres://{auth}{database.get('HOST') or ''}{port}/{database['NAME']}"


def ensure_bundle() -> str:
    from django.conf import settings

    from annotation.demo.seed import train_demo_bundle

    path = Path(settings.DEFAULT_BUNDLE)
    if not (path / "manifest.json").is_file():
        print(f"no model bundle at {path}: training the demo model first")
        train_demo_bundle(path)
    return str(path)


def purge_queues() -> None:
    from nerloop.celery import app, make_broker_folders

    make_broker_folders()
    with app.connection_for_write() as connection:
        for queue in ("inference", "training"):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception as exc:  # a queue that was never declared has nothing to purge
                print(f"(purging {queue}: {exc})")


ROWS = [
    ("import (docs/s)", "import_docs_per_s", ">= 5,000", "2,816 / 1,900", "{:,.0f}"),
    ("export as JSON lines (s)", ("export", "jsonl", "seconds"), "<= 10", "134 / 221", "{:.2f}"),
    ("export as CLUENER (s)", ("export", "cluener", "seconds"), "<= 10", "", "{:.2f}"),
    ("export as CoNLL (s)", ("export", "conll", "seconds"), "<= 10", "", "{:.2f}"),
    ("export as Label Studio JSON (s)", ("export", "label_studio", "seconds"), "<= 10", "", "{:.2f}"),
    ("list page 1 of 100, after import (s)", "list_page1_median_s", "<= 0.05", "0.29 / 0.45", "{:.4f}"),
    ("  after prediction, before vacuum (s)", "list_page1_predicted_median_s", "<= 0.05", "", "{:.4f}"),
    ("  after VACUUM ANALYZE (s)", "list_page1_settled_median_s", "<= 0.05", "", "{:.4f}"),
    ("  sorted by uncertainty (s)", "list_page1_sorted_by_uncertainty_median_s", "", "", "{:.4f}"),
    ("submit one annotation, median (ms)", "submit_median_ms", "<= 20", "107 / 139", "{:.1f}"),
    ("  submit, 95th percentile (ms)", "submit_p95_ms", "", "", "{:.1f}"),
    ("queue/next, median (ms)", "queue_next_median_ms", "", "", "{:.1f}"),
    ("predict, one worker, wall (docs/s)", "predict_docs_per_s_wall", "", "", "{:,.0f}"),
    ("predict, one worker, steady (docs/s)", "predict_docs_per_s_steady", "", "", "{:,.0f}"),
]  # fmt: skip


def lookup(results: dict, key):
    if isinstance(key, str):
        return results.get(key)
    value = results
    for part in key:
        value = value.get(part, {}) if isinstance(value, dict) else None
    return value if not isinstance(value, dict) else None


def table(results: dict) -> str:
    lines = [f"{'measure':<40} {'nerloop':>12} {'target':>10} {'Label Studio (SQLite/PG)':>26}"]
    lines.append("-" * len(lines[0]))
    for title, key, target, reference, fmt in ROWS:
        value = lookup(results, key)
        shown = fmt.format(value) if value is not None else "-"
        lines.append(f"{title:<40} {shown:>12} {target:>10} {reference:>26}")
    lines.append(
        f"predictions stored: {results.get('predicted', 0):,} of {results['documents']:,}; "
        f"database: {results['database']}; broker: {results['broker']}; "
        f"{results['cpus']} CPUs, load average {results['load_average_before'][0]:.1f} before, "
        f"{results['load_average_after'][0]:.1f} after"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--predict-timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--out", default=str(RESULTS / "platform.json"))
    args = parser.parse_args(argv)

    isolate_environment()
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    vendor = connection.vendor
    if vendor != "postgresql":
        print("warning: DATABASE_URL is not PostgreSQL; the targets are for PostgreSQL")
    ensure_bundle()
    purge_queues()
    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = (
        str(Path(os.environ.get("NERLOOP_DATA_DIR", tempfile.gettempdir())) / "bench.sqlite3")
        if vendor == "sqlite"
        else f"{database['NAME']}_bench"
    )
    old_name = database["NAME"]
    load_before = os.getloadavg()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        bench = Bench(args)
        steps = [
            ("import", bench.import_documents),
            ("list", bench.list_page),
            ("predict", bench.predict_with_worker),
            ("list after prediction", partial(bench.list_page, "list_page1_predicted_median_s")),
            ("vacuum", bench.settle),
            ("list sorted", bench.list_sorted),
            ("export", bench.export_all),
            ("submit", bench.submit),
            ("queue", bench.queue_next),
        ]
        for name, step in steps:
            print(f"[bench] {name} ...", flush=True)
            step()
        results = bench.results
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if Path(settings.DATA_DIR).name.startswith("nerloop-bench-"):
            shutil.rmtree(settings.DATA_DIR, ignore_errors=True)  # the broker folder made above
    results["database"] = vendor
    results["broker"] = settings.CELERY_BROKER_URL.split("://")[0]
    results["cpus"] = os.cpu_count()
    # Other work on the machine slows every figure; the load average says how much there was.
    results["load_average_before"] = load_before
    results["load_average_after"] = os.getloadavg()
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
