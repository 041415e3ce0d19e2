"""Page routes. Every page is a shell; the data comes from /api/v1/ through fetch()."""

from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from django.views.i18n import JavaScriptCatalog

from frontend import views
from frontend.forms import LoginForm

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="frontend/login.html", authentication_form=LoginForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="frontend:login"), name="logout"),
    # every user sets their own password (an operator hands out a first one: add_users)
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(
            template_name="frontend/password_change.html",
            success_url=reverse_lazy("frontend:password_changed"),
        ),
        name="password_change",
    ),
    path(
        "account/password/changed/",
        auth_views.PasswordChangeDoneView.as_view(template_name="frontend/password_changed.html"),
        name="password_changed",
    ),
    path("playground/", views.playground, name="playground"),
    path("projects/<int:project_id>/annotate/", views.workspace, name="workspace"),
    path("projects/<int:project_id>/documents/", views.documents, name="documents"),
    path("projects/<int:project_id>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="settings"),
    path("projects/<int:project_id>/import/", views.import_page, name="import"),
    path("projects/<int:project_id>/export/", views.export_page, name="export"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["frontend"]), name="jsi18n"),
]
