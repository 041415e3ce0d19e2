"""End a login lockout (nerloop/logins.py) before its window does."""

from django.core.management.base import BaseCommand

from nerloop import logins


class Command(BaseCommand):
    help = (
        "Forget the failed logins from ADDRESS (the client's address as the platform sees it: "
        "behind NERLOOP_TRUSTED_PROXIES, the one the proxy forwarded), for USERNAME with --user."
    )

    def add_arguments(self, parser):
        parser.add_argument("address")
        parser.add_argument("--user", help="the account locked out from that address")

    def handle(self, *args, **opts):
        logins.unlock(opts["address"], opts["user"])
        who = f"{opts['user']} from {opts['address']}" if opts["user"] else opts["address"]
        self.stdout.write(f"failed logins of {who} forgotten")
