import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nerloop.settings")
application = get_wsgi_application()

# A serving process loads the default model now rather than on the first predict request.
from inference.registry import preload_default  # noqa: E402 (needs Django set up)

preload_default()
