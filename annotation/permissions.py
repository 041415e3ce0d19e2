"""Per-project roles for the API: admin, annotator, client (predict only).

Views under ``/projects/{project_id}/`` name the roles they accept with one of the classes
below. A user with no role in the project gets 404, as if the project did not exist; a
member whose role is not enough gets 403. Superusers act as admins of every project.
The membership is looked up once per request and left on the view as ``view.project`` and
``view.role``, so views do not query it again. ``inference`` and ``learner`` reuse these.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission

from .models import Project, ProjectMembership, Role


def project_and_role(user, project_id) -> tuple[Project, str]:
    """The project and the user's role in it; NotFound when the user has none."""
    if not user or not user.is_authenticated:
        raise NotFound("no such project")
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        raise NotFound("no such project") from None
    if user.is_superuser:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise NotFound("no such project")
        return project, Role.ADMIN
    membership = (
        ProjectMembership.objects.select_related("project")
        .filter(project_id=project_id, user=user)
        .first()
    )
    if membership is None:
        raise NotFound("no such project")
    return membership.project, membership.role


class ProjectRole(BasePermission):
    """Allow members of the URL's project whose role is in ``roles``."""

    roles: tuple[str, ...] = ()
    message = "your role in this project does not allow this"

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        project_id = view.kwargs.get("project_id")
        if project_id is None:
            return True
        if getattr(view, "project", None) is None:
            view.project, view.role = project_and_role(request.user, project_id)
        return view.role in self.roles


class IsProjectMember(ProjectRole):
    roles = (Role.ADMIN, Role.ANNOTATOR, Role.CLIENT)


class IsProjectAnnotator(ProjectRole):
    """Annotators and admins: everyone who works on the documents."""

    roles = (Role.ADMIN, Role.ANNOTATOR)


class IsProjectAdmin(ProjectRole):
    roles = (Role.ADMIN,)


IsProjectManager = IsProjectAdmin
