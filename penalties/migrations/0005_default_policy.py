"""The default policy (version 1, active) and the roles' new permissions.

Version 1 is part of the schema; later versions are activated through policy_activate,
which writes `policy.activated` to the ledger.
"""

from __future__ import annotations

from django.db import migrations
from django.utils import timezone

from creditledger.roles import sync_roles
from penalties.policy import PolicyRules


def seed(apps, schema_editor):
    Policy = apps.get_model("penalties", "Policy")
    if not Policy.objects.exists():
        Policy.objects.create(version=1, name="默认信用政策", rules=PolicyRules().as_dict(), is_active=True,
                              activated_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("penalties", "0004_policy_restrictions")]
    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
