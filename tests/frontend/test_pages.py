"""Page shells without a browser: login required, Chinese by default, the language switch,
and the rule that page scripts never build HTML from strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compiled_messages")]

JS_DIR = Path(settings.BASE_DIR) / "frontend" / "static" / "frontend" / "js"


def project_pages(project_id: int) -> list[str]:
    return [
        "/",
        "/playground/",
        f"/projects/{project_id}/annotate/",
        f"/projects/{project_id}/documents/",
        f"/projects/{project_id}/dashboard/",
        f"/projects/{project_id}/settings/",
        f"/projects/{project_id}/import/",
        f"/projects/{project_id}/export/",
    ]


def test_pages_need_login(client, world):
    for url in project_pages(world.project.pk):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


@pytest.mark.parametrize("role", ["admin", "annotator", "client"])
def test_pages_render_for_members(client, world, role):
    client.force_login(world.user(role))
    for url in project_pages(world.project.pk):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
        assert response.status_code == 200, url
        assert b'name="csrf-token"' in response.content


def test_pages_are_chinese_by_default_whatever_the_browser_asks(client, world):
    client.force_login(world.annotator)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response["Content-Language"] == "zh-hans"
    assert "项目" in response.content.decode()


def test_pages_language_switch_to_english_and_back(client, world):
    client.force_login(world.annotator)
    switched = client.post("/i18n/setlang/", {"language": "en", "next": "/playground/"})
    assert switched.status_code == 302 and switched["Location"] == "/playground/"
    page = client.get("/playground/").content.decode()
    assert "Entity playground" in page and "实体识别试验场" not in page
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "实体识别试验场" in client.get("/playground/").content.decode()


def test_pages_javascript_catalog_is_translated(client, world):
    client.force_login(world.annotator)
    catalog = client.get("/jsi18n/").content.decode()
    assert (
        "\\u961f\\u5217\\u5df2\\u7a7a" in catalog or "队列已空" in catalog
    )  # "the queue is empty"


def test_pages_api_keeps_the_browsers_language(client, world):
    """Only pages default to Chinese; API clients still get Django's usual negotiation."""
    response = client.get("/api/v1/projects", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code in (401, 403)
    assert response["Content-Language"] == "en"
    chinese = client.get("/api/v1/projects", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert chinese["Content-Language"] == "zh-hans"
    assert chinese.json()["error"]["message"] == "身份认证信息未提供。"
    # a client that names no language (curl, a script, a code generator) gets English
    bare = client.get("/api/v1/projects")
    assert bare["Content-Language"] == "en"
    assert bare.json()["error"]["message"] == "Authentication credentials were not provided."
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    size = schema["paths"]["/api/v1/projects"]["get"]["parameters"]
    assert all(p["description"].isascii() for p in size if p.get("description"))


def test_pages_scripts_never_build_html_from_strings():
    """User text must only reach the page through textContent / createTextNode."""
    forbidden = re.compile(r"innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(")
    scripts = sorted(JS_DIR.glob("*.js"))
    assert scripts
    for script in scripts:
        assert not forbidden.search(script.read_text("utf-8")), script.name


def test_the_committed_catalogues_are_compiled_from_their_po(tmp_path):
    """The .mo files are in git, so a checkout serves the Chinese UI without gettext; each
    must be what msgfmt makes of its .po as committed (staged), or the UI shows old words."""
    import shutil
    import subprocess

    from django.conf import settings

    if shutil.which("msgfmt") is None or shutil.which("git") is None:
        pytest.skip("needs GNU gettext's msgfmt and git (make test installs gettext)")
    root = Path(settings.BASE_DIR)
    catalogues = sorted((root / "frontend" / "locale").glob("*/LC_MESSAGES/*.po"))
    assert catalogues
    for po in catalogues:
        relative = po.relative_to(root).with_suffix(".mo").as_posix()
        staged = subprocess.run(
            ["git", "show", f":{relative}"], cwd=root, capture_output=True, check=False
        )
        if staged.returncode != 0 and b"not a git repository" in staged.stderr:
            pytest.skip("not a git checkout")
        assert staged.returncode == 0, f"{relative} is not in git: run make messages, add it"
        fresh = tmp_path / po.with_suffix(".mo").name
        subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(po)], check=True)
        assert staged.stdout == fresh.read_bytes(), f"{relative} is stale: run make messages"
