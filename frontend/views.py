"""Views that only render page shells.

The pages fetch their data from the REST API with the session cookie, so permissions are
enforced in one place (the API) and the browser sees exactly what a REST client would. The
only server-side context is static choice lists (registered formats and strategies), so
the forms offer exactly what the API accepts.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext as _


def _page(template: str, section: str, extra=None):
    @login_required
    def view(request, project_id: int | None = None):
        context = {"section": section, "project_id": project_id}
        if extra is not None:
            context.update(extra())
        return render(request, f"frontend/{template}", context)

    view.__name__ = section
    return view


def _formats() -> dict:
    from annotation.formats import FORMATS
    from annotation.importing import GOLD_MODES
    from annotation.tags import SCHEMES

    # descriptions in the page's language (frontend/locale), the registry's English otherwise
    formats = [(name, _(fmt.description)) for name, fmt in sorted(FORMATS.items())]
    return {"formats": formats, "schemes": SCHEMES, "gold_modes": GOLD_MODES}


def _upload_formats() -> dict:
    """The export formats, and plain text (one document per line), which only imports."""
    from annotation.formats import PLAIN_TEXT

    choices = _formats()
    choices["formats"] = sorted([*choices["formats"], (PLAIN_TEXT.name, _(PLAIN_TEXT.description))])
    return choices


def _settings_choices() -> dict:
    from annotation.models import Role
    from learner.selection import STRATEGIES

    roles = [(value, _(name)) for value, name in Role.choices]
    return {"strategies": sorted(STRATEGIES), "roles": roles}


def _statuses() -> dict:
    from annotation.models import Document

    return {"statuses": Document.Status.choices}


home = _page("home.html", "home")
playground = _page("playground.html", "playground")
workspace = _page("workspace.html", "workspace")
documents = _page("documents.html", "documents", _statuses)
dashboard = _page("dashboard.html", "dashboard")
project_settings = _page("settings.html", "settings", _settings_choices)
import_page = _page("import.html", "import", _upload_formats)
export_page = _page("export.html", "export", _formats)
