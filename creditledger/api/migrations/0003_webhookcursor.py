from __future__ import annotations

from django.db import migrations, models


def start_at_the_head(apps, schema_editor):
    """Endpoints get what happens from now on, not the whole history: a ledger that already
    holds years of entries would otherwise flood every receiver on deploy (receivers
    backfill from the change feed instead)."""
    LedgerEntry = apps.get_model("ledger", "LedgerEntry")
    WebhookCursor = apps.get_model("api", "WebhookCursor")
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    WebhookCursor.objects.get_or_create(name="ledger", defaults={"seq": head})


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_roles"),
        ("ledger", "0002_append_only_trigger"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookCursor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=40, unique=True)),
                ("seq", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.RunPython(start_at_the_head, migrations.RunPython.noop),
    ]
