from django.apps import AppConfig


class LearnerConfig(AppConfig):
    name = "learner"
    default_auto_field = "django.db.models.BigAutoField"
