from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from nerloop import logins

        from . import integrity, tokens

        tokens.connect()
        integrity.connect()
        logins.connect()
