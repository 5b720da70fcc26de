"""Staff roles as Django groups. The matrix lives here; migrations call sync_roles()."""

from __future__ import annotations

OFFICER = "Officer"
SUPERVISOR = "Supervisor"
AUDITOR = "Auditor"

_VIEW_ALL = [
    "traders.view_platform",
    "traders.view_trader",
    "traders.view_shop",
    "penalties.view_violationtype",
    "penalties.view_violation",
    "penalties.view_evidence",
    "ledger.view_ledgerentry",
    "ledger.view_checkpoint",
]
_OFFICER = _VIEW_ALL + [
    "traders.add_trader",
    "traders.add_shop",
    "penalties.add_violation",
    "penalties.confirm_violation",
    "penalties.add_evidence",
]
_SUPERVISOR = _OFFICER + [
    "traders.override_uscc_check",
    "traders.add_platform",
    "traders.change_platform",
    "penalties.confirm_heavy_violation",
    "penalties.add_violationtype",
    "penalties.change_violationtype",
]

ROLES: dict[str, list[str]] = {
    OFFICER: _OFFICER,
    SUPERVISOR: _SUPERVISOR,
    AUDITOR: list(_VIEW_ALL),
}


def sync_roles(apps, schema_editor=None) -> None:
    """Create the groups and set exactly the permissions of ROLES (idempotent)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; create them now so groups can hold
    # them. The migration state's app configs are stubs without a models module.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            try:
                wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
            except Permission.DoesNotExist as exc:
                raise RuntimeError(f"role {role}: no permission {perm}") from exc
        group.permissions.set(wanted)
