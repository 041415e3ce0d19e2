"""The ``nerloop`` console script: the offline tools without the web platform's set-up.

``nerloop train ...`` and ``nerloop simulate_al ...`` are ``manage.py train`` and
``manage.py simulate_al``. They sign nothing and serve nothing, so unlike the web process they
do not need a configured SECRET_KEY: a throwaway one is made for the run when none is set.
"""

from __future__ import annotations

import os
import secrets
import sys

COMMANDS = ("train", "simulate_al")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help") or args[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        print(f"usage: nerloop {{{known}}} [options]  (nerloop COMMAND --help for options)")
        return 0 if not args or args[0] in ("-h", "--help", "help") else 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nerloop.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # as manage.py: no exporter noise
    from django.core.management import execute_from_command_line

    execute_from_command_line(["nerloop", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
