"""Witnesses and their cosignatures.

The cosignature -> checkpoint foreign key is created here, NOT DEFERRABLE, rather than by
Django (which makes it DEFERRABLE INITIALLY DEFERRED): a deferred check leaves a pending
trigger event on ledger_checkpoint after any delete there, and ALTER TABLE ... TRIGGER (what
a superuser, and the tamper tests, do around a rewrite) refuses to run while one is pending.
Checked at once, a checkpoint a witness cosigned cannot be deleted before its cosignatures.
"""

import django.db.models.deletion
from django.db import migrations, models

PG_FK = """
ALTER TABLE ledger_cosignature ADD CONSTRAINT ledger_cosignature_checkpoint_fk
    FOREIGN KEY (checkpoint_id) REFERENCES ledger_checkpoint (id) NOT DEFERRABLE
"""


def add_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FK, params=None)


def drop_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ledger_cosignature DROP CONSTRAINT ledger_cosignature_checkpoint_fk")


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0006_merkle_tree'),
    ]

    operations = [
        migrations.CreateModel(
            name='Witness',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, verbose_name='name')),
                ('key_id', models.CharField(max_length=8, verbose_name='key id')),
                ('vkey', models.CharField(max_length=300, verbose_name='verifier key')),
                ('description', models.CharField(blank=True, max_length=200, verbose_name='run by')),
                ('is_active', models.BooleanField(default=True, verbose_name='accepts new cosignatures')),
                ('created_at', models.DateTimeField(verbose_name='registered at')),
            ],
            options={
                'verbose_name': 'witness',
                'verbose_name_plural': 'witnesses',
                'ordering': ['name', 'key_id'],
                'constraints': [models.UniqueConstraint(fields=('name', 'key_id'), name='ledger_witness_key')],
            },
        ),
        migrations.CreateModel(
            name='Cosignature',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('timestamp', models.BigIntegerField(verbose_name='cosigned at (POSIX seconds, as the witness states)')),
                ('signature', models.TextField(verbose_name='signature line')),
                ('note', models.TextField(verbose_name='checkpoint note cosigned')),
                ('received_at', models.DateTimeField(verbose_name='received at')),
                ('checkpoint', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='cosignatures', to='ledger.checkpoint', verbose_name='checkpoint')),
                ('witness', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='cosignatures', to='ledger.witness', verbose_name='witness')),
            ],
            options={
                'verbose_name': 'cosignature',
                'verbose_name_plural': 'cosignatures',
                'ordering': ['checkpoint__seq', 'witness__name'],
                'constraints': [models.UniqueConstraint(fields=('checkpoint', 'witness'), name='ledger_cosignature_once')],
            },
        ),
        migrations.RunPython(add_fk, drop_fk),
    ]
