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
    "penalties.view_policy",
    "penalties.view_restriction",
    "penalties.view_scorehistory",
    "ledger.view_ledgerentry",
    "ledger.view_checkpoint",
    "penalties.view_restrictionack",
    "traders.view_webhookendpoint",
    "api.view_webhookdelivery",
    "api.view_webhookattempt",
    "penalties.view_objection",
    "penalties.view_appeal",
    "penalties.view_repairapplication",
]
_OFFICER = _VIEW_ALL + [
    "traders.add_trader",
    "traders.add_shop",
    "penalties.add_violation",
    "penalties.confirm_violation",
    "penalties.add_evidence",
    # Officers enter the trader's objections, appeals and repair applications.
    "penalties.add_objection",
    "penalties.add_appeal",
    "penalties.add_repairapplication",
]
_SUPERVISOR = _OFFICER + [
    "traders.override_uscc_check",
    "traders.add_platform",
    "traders.change_platform",
    "penalties.confirm_heavy_violation",
    "penalties.add_violationtype",
    "penalties.change_violationtype",
    "penalties.impose_restriction",
    "penalties.lift_restriction",
    "penalties.withdraw_restriction",
    "penalties.add_policy",
    "penalties.change_policy",
    "penalties.activate_policy",
    "traders.view_apikey",
    "traders.add_apikey",
    "traders.change_apikey",
    "traders.add_webhookendpoint",
    "traders.change_webhookendpoint",
    "api.change_webhookdelivery",
    "penalties.export_report",
    "penalties.decide_objection",
    "penalties.decide_appeal",
    "penalties.decide_repair",
]

ROLES: dict[str, list[str]] = {
    OFFICER: _OFFICER,
    SUPERVISOR: _SUPERVISOR,
    AUDITOR: _VIEW_ALL + ["penalties.export_report"],
}


def sync_roles(apps, schema_editor=None) -> None:
    """Create the groups and set the permissions of ROLES that exist yet (idempotent)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; create them now so groups can hold
    # them. The migration state's app configs are stubs without a models module.
    for app_config in apps.get_app_configs():
        stub = getattr(app_config, "models_module", None) is None
        if stub:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        if stub:
            app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            found = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            # An earlier migration runs before later models exist; the migration that
            # adds them calls sync_roles again (a test pins the final matrix).
            if found is not None:
                wanted.append(found)
        group.permissions.set(wanted)
