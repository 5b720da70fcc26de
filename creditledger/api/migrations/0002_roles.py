from __future__ import annotations

from django.db import migrations

from creditledger.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("traders", "0003_apikey_webhookendpoint"),
        ("penalties", "0006_restrictionack"),
    ]
    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
