"""nerloop: active-learning annotation platform for Chinese NER.

The Django project package is called ``nerloop`` rather than ``platform``: a package named
``platform`` would shadow the standard-library module that ``uuid`` imports on Linux.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
