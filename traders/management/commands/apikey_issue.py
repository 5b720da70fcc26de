"""manage.py apikey_issue PLATFORM --scopes status:read,...: issue a platform API key from
the shell, as the admin does (traders.services.apikey_issue: the `apikey.issued` ledger
entry, only the hash kept). The key goes to stdout alone, so a script can capture it; what
was issued goes to stderr."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from traders.models import ApiKey, Platform
from traders.services import apikey_issue


class Command(BaseCommand):
    help = (
        "Issue an API key to a platform and print it once (stdout: the key alone; stderr: its "
        "prefix, scopes and expiry). The key is not stored, only its hash: keep it now. "
        "Writes the same apikey.issued ledger entry as the admin."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("platform", help="the platform's code, e.g. taobao")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"comma-separated, from {', '.join(ApiKey.Scope.values)}",
        )
        parser.add_argument("--name", default="", help="what the key is for (default: '<platform> key')")
        parser.add_argument("--expires", default="", help="YYYY-MM-DD: the key stops working that day")
        parser.add_argument(
            "--as",
            dest="username",
            default="",
            help="a staff user allowed to issue keys, recorded as the actor (default: system)",
        )

    def handle(self, *args, platform: str, scopes: str, name: str, expires: str, username: str, **options):
        found = Platform.objects.filter(code=platform.strip()).first()
        if found is None:
            known = ", ".join(Platform.objects.order_by("code").values_list("code", flat=True)) or "none"
            raise CommandError(f"platform: no platform with the code {platform!r} (known: {known})")
        try:
            key, raw = apikey_issue(
                actor=self._actor(username),
                platform=found,
                name=name or f"{found.code} key",
                scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
                expiry_date=self._expiry(expires),
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.field or 'key'}: {exc.message}") from exc
        expiry = timezone.localdate(key.expiry_date).isoformat() if key.expiry_date else "never"
        self.stderr.write(
            f"Issued key {key.prefix} to {found.code} ({found.name}): scopes {', '.join(key.scopes)}, "
            f"expires {expiry}. It is shown this once; send it as 'Authorization: Api-Key <key>'."
        )
        self.stdout.write(raw)

    def _actor(self, username: str) -> Actor:
        if not username:
            return Actor.system("manage.apikey_issue")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"as: no active user {username!r}")
        return Actor.for_user(user)

    def _expiry(self, text: str) -> dt.datetime | None:
        if not text:
            return None
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as exc:
            raise CommandError(f"expires: {text!r} is not a date (YYYY-MM-DD)") from exc
        if day <= timezone.localdate():
            raise CommandError(f"expires: {text} is not in the future")
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
