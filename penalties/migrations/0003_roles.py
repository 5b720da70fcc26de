from __future__ import annotations

from django.db import migrations

from creditledger.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("ledger", "0002_append_only_trigger"),
        ("traders", "0001_initial"),
        ("penalties", "0002_seed_catalog"),
    ]
    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
