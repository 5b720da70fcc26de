"""manage.py staff_unlock USERNAME [ADDRESS ...]: lift a sign-in lockout, on the record."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from creditledger import roles
from creditledger.guard import services
from creditledger.ledger.actors import Actor


class Command(BaseCommand):
    help = (
        "Unlock a staff username locked after failed sign-ins. Without addresses, unlocks it "
        "from every address the ledger shows it locked from within the cool-off. Writes a "
        "staff.unlocked ledger entry."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("addresses", nargs="*", help="the client addresses to unlock it from")
        parser.add_argument(
            "--by", metavar="USERNAME", help="the supervisor or superuser who asked (recorded as the actor)"
        )

    def handle(self, *args, username: str, addresses: list[str], by: str | None, **options) -> None:
        actor = Actor.system("staff_unlock")
        if by:
            User = get_user_model()
            user = User._default_manager.filter(**{User.USERNAME_FIELD: by}, is_active=True).first()
            if user is None or not (user.is_superuser or user.groups.filter(name=roles.SUPERVISOR).exists()):
                raise CommandError(f"--by {by}: not an active supervisor or superuser")
            actor = Actor.for_user(user)
        if not addresses:
            since = timezone.now() - settings.AXES_COOLOFF_TIME
            addresses = services.recent_lockout_addresses(username=username, since=since)
            if not addresses and settings.AXES_HANDLER.endswith("AxesCacheHandler"):
                raise CommandError(
                    f"No lockout of {username!r} in the ledger within the cool-off; give the address "
                    "(see the staff.locked_out entries)"
                )
        entry = services.staff_unlock(actor=actor, username=username, addresses=addresses)
        where = ", ".join(addresses) if addresses else "every address"
        recorded = f"ledger #{entry.seq}" if entry.seq else "recorded in the ledger"  # seq: once sealed
        self.stdout.write(f"Unlocked {username} from {where} ({recorded}).")
