"""manage.py assign_jurisdiction: set staff members' jurisdictions from the command line.

The admin (superusers) is the usual place; this is for bootstrapping and upgrades, since
jurisdiction is deny-by-default: after the upgrade that introduces it, staff see no trader
until assigned. `--unassigned --national` gives every staff member without an assignment
national scope, i.e. what they saw before. Each change goes through jurisdiction_set, so it
is in the ledger (actor system:assign_jurisdiction).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from traders.jurisdiction import clean_prefixes
from traders.services import jurisdiction_set

ACTOR = Actor.system("assign_jurisdiction")


class Command(BaseCommand):
    help = "Set staff members' jurisdiction: national, region-code prefixes, or none."

    def add_arguments(self, parser) -> None:
        parser.add_argument("usernames", nargs="*", help="staff usernames")
        parser.add_argument(
            "--unassigned",
            action="store_true",
            help="also every active staff member with no jurisdiction yet",
        )
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--national", action="store_true", help="sees every trader")
        scope.add_argument("--regions", nargs="+", metavar="PREFIX", help="2, 4 or 6 digits, e.g. 33 3301")
        scope.add_argument("--none", action="store_true", help="sees no trader")

    def handle(self, *args, usernames, unassigned, national, regions, none, **options) -> None:
        try:
            regions = clean_prefixes(regions or ())  # a bad prefix stops us before any change
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        User = get_user_model()
        users = list(User.objects.filter(username__in=usernames))
        missing = sorted(set(usernames) - {u.get_username() for u in users})
        if missing:
            raise CommandError(f"no such user: {', '.join(missing)}")
        if unassigned:
            users += list(User.objects.filter(is_staff=True, is_active=True, jurisdiction__isnull=True))
        if not users:
            raise CommandError("name at least one user, or pass --unassigned")
        for user in {u.pk: u for u in users}.values():
            row = jurisdiction_set(actor=ACTOR, user=user, national=national, regions=regions)
            scope = "national" if row.national else (" ".join(row.regions) or "none")
            self.stdout.write(f"{user.get_username()}: {scope}")
