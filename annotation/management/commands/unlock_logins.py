"""End a login lockout (nerloop/logins.py) before its window does."""

from django.core.management.base import BaseCommand, CommandError

from nerloop import logins


class Command(BaseCommand):
    help = (
        "Forget the failed logins from ADDRESS (the client's address as the platform sees it: "
        "behind NERLOOP_TRUSTED_PROXIES, the one the proxy forwarded), for USERNAME with --user; "
        "with --user alone, that account's failures from every address."
    )

    def add_arguments(self, parser):
        parser.add_argument("address", nargs="?")
        parser.add_argument("--user", help="the account locked out (from ADDRESS, or anywhere)")

    def handle(self, *args, **opts):
        if not opts["address"] and not opts["user"]:
            raise CommandError("name an ADDRESS, a --user, or both")
        logins.unlock(opts["address"], opts["user"])
        if opts["address"] and opts["user"]:
            who = f"{opts['user']} from {opts['address']}"
        else:
            who = opts["address"] or f"{opts['user']} from every address"
        self.stdout.write(f"failed logins of {who} forgotten")
