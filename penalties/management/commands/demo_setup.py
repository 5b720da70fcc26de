"""manage.py demo_setup: what `make run` needs to show the system. Safe to run every time."""

from __future__ import annotations

import os
import secrets
from base64 import b32encode
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from creditledger import roles
from creditledger.accounts.services import backup_codes_left, confirmed_totp, otp_enrol_for_demo
from creditledger.ledger.actors import Actor
from penalties import demo
from penalties.demo.examples import EXAMPLE_SHOP, EXAMPLE_USCC, ensure_examples
from traders.jurisdiction import NATIONAL, scope_of
from traders.models import Trader
from traders.services import jurisdiction_set

# username, role (a group from creditledger/roles.py), what the login is for
DEMO_LOGINS = (
    ("officer", roles.OFFICER, "records violations; confirms minor and general ones"),
    ("officer2", roles.OFFICER, "a second officer, for four-eyes demos"),
    ("supervisor", roles.SUPERVISOR, "confirms serious and grave violations; edits the catalog"),
    ("auditor", roles.AUDITOR, "reads everything, changes nothing"),
)


class Command(BaseCommand):
    help = (
        "Seed demo data when the database has no traders, add docs/api.md's example trader and "
        "shop if missing, and make sure there is one demo staff "
        "login per role (passwords kept in VAR_DIR/demo-logins.txt). Idempotent. Does nothing "
        "when DEBUG is off unless --force is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--traders", type=int, default=300, help="demo traders (default 300)")
        parser.add_argument("--violations", type=int, default=1500, help="demo violations (default 1500)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--force", action="store_true", help="run even though DEBUG is off (never on production)"
        )

    def handle(self, *args, traders: int, violations: int, seed: int, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            # Demo logins with known passwords and invented traders must never reach production.
            self.stdout.write(
                self.style.WARNING(
                    "demo_setup: DEBUG is off, so no demo data is seeded and no demo logins are "
                    "created (a production safety). Pass --force to do it on a non-production database."
                )
            )
            return
        existing = Trader.objects.count()
        if existing:
            self.stdout.write(f"demo_setup: {existing} traders already present; no demo data seeded.")
        else:
            try:
                result = demo.seed(traders=traders, violations=violations, seed=seed)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(result.summary())
        self._examples()
        path = Path(settings.VAR_DIR) / "demo-logins.txt"
        logins = ensure_demo_logins(path)
        self.stdout.write(f"Demo logins (also in {path}):")
        for username, password, role, note, state in logins:
            self.stdout.write(f"  {username:<11} {password:<14} {role:<11} {note} [{state}]")
        self._second_factors([username for username, *_rest in logins])

    def _examples(self) -> None:
        """docs/api.md's trader and shop, so its curl lines answer as printed."""
        added = ensure_examples()
        what = ", ".join(added) if added else "already present"
        self.stdout.write(f"docs/api.md examples ({EXAMPLE_USCC}, shop {EXAMPLE_SHOP}): {what}")

    def _second_factors(self, usernames: list[str]) -> None:
        """Staff sign in with a password and a second factor. A demo login without one is
        enrolled here and its backup codes printed this once; its key is printed every
        time, to add to an authenticator app (or compute codes: oathtool --totp -b KEY)."""
        self.stdout.write(
            "Two-factor sign-in: after the password, enter the code an authenticator app shows for "
            "the key below, or one of the backup codes (each works once). `manage.py otp_reset "
            "USERNAME` and another demo_setup give a login a new key and new codes."
        )
        actor = Actor.system("manage.demo_setup")
        for username in usernames:
            user = get_user_model().objects.get(username=username)
            codes: list[str] = []
            device = confirmed_totp(user)
            if device is None:
                device, codes = otp_enrol_for_demo(actor=actor, user=user)
            key = b32encode(device.bin_key).decode("ascii")
            self.stdout.write(f"  {username:<11} key {key}  {device.config_url}")
            if codes:
                self.stdout.write(f"  {'':<11} backup codes (shown once): {' '.join(codes)}")
            else:
                self.stdout.write(
                    f"  {'':<11} backup codes: {backup_codes_left(user)} unused, printed when issued"
                )


def ensure_demo_logins(path: Path) -> list[tuple[str, str, str, str, str]]:
    """Create or repair each demo login; reuse the passwords stored in `path`, so the logins
    printed last time keep working. Returns (username, password, role, note, state)."""
    stored = _read_passwords(path)
    out = []
    with transaction.atomic():
        for username, role, note in DEMO_LOGINS:
            password = stored.get(username) or secrets.token_urlsafe(9)
            out.append((username, password, role, note, _ensure_user(username, role, password)))
    _write_passwords(path, out)
    return out


def _ensure_user(username: str, role: str, password: str) -> str:
    try:
        group = Group.objects.get(name=role)
    except Group.DoesNotExist as exc:
        raise CommandError(f"no group {role!r}: run `manage.py migrate` first") from exc
    user, created = get_user_model().objects.get_or_create(username=username)
    changed = created
    if not user.is_staff or not user.is_active or user.is_superuser:
        user.is_staff, user.is_active, user.is_superuser = True, True, False
        changed = True
    if list(user.groups.values_list("name", flat=True)) != [role]:
        user.groups.set([group])
        user.user_permissions.clear()  # the role alone decides what a demo login may do
        changed = True
    # Someone may have changed it in the admin; the printed login must work.
    if not user.check_password(password):
        user.set_password(password)
        changed = True
    if changed:
        user.save()
    # Jurisdiction is deny-by-default; the demo logins see the whole (invented) market.
    if scope_of(user) != NATIONAL:
        jurisdiction_set(actor=Actor.system("demo_setup"), user=user, national=True)
        changed = True
    return "created" if created else ("repaired" if changed else "ok")


def _read_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and not line.startswith("#") and parts[1]:
            found[parts[0]] = parts[1]
    return found


def _write_passwords(path: Path, logins) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# creditledger demo logins (DEBUG only): username, password, role"]
    lines += [f"{username}\t{password}\t{role}" for username, password, role, _, _ in logins]
    # Owner-only: these are working staff passwords, if only for a demo.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed
