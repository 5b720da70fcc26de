"""manage.py otp_reset USERNAME: a staff member lost the phone (and the backup codes)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from creditledger.accounts.services import otp_reset
from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor


class Command(BaseCommand):
    help = (
        "Remove a user's two-factor devices (authenticator app and backup codes). The user sets "
        "up a new app at the next sign-in. Writes a staff.otp_reset ledger entry."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", default="", help="why, for the ledger (e.g. the ticket number)")

    def handle(self, *args, username: str, reason: str, **options) -> None:
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user {username!r}") from exc
        try:
            removed = otp_reset(actor=Actor.system("manage.otp_reset"), user=user, reason=reason)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"otp_reset: removed {removed} device(s) of {username}; they set up a new "
            "authenticator app at their next sign-in."
        )
