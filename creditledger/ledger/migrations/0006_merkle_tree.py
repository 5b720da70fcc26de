"""The Merkle tree: its tiles, the sealer's queue, tree checkpoints, the feed's partial index.

Checkpoints signed before this migration stated the chain head: they become kind "chain"
and stay verifiable as such; new ones state the tree root. The tree over the existing
entries is built by the sealer before it seals anything new (`manage.py ledger_seal
--catch-up` does it on its own), in batches, each its own transaction.

Tiles only grow: a trigger refuses an UPDATE that does not keep the stored hashes as the
new value's prefix, and any DELETE or TRUNCATE.
"""

from django.db import migrations, models

PG_INSTALL = """
CREATE OR REPLACE FUNCTION ledger_tile_grow_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.level = OLD.level AND NEW.index = OLD.index
            AND length(NEW.hashes) >= length(OLD.hashes)
            AND substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) = OLD.hashes THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger_ledgertile only grows: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_tile_grow_only BEFORE UPDATE OR DELETE ON ledger_ledgertile
    FOR EACH ROW EXECUTE FUNCTION ledger_tile_grow_only();
CREATE TRIGGER ledger_tile_no_truncate BEFORE TRUNCATE ON ledger_ledgertile
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""
PG_REMOVE = """
DROP TRIGGER IF EXISTS ledger_tile_no_truncate ON ledger_ledgertile;
DROP TRIGGER IF EXISTS ledger_tile_grow_only ON ledger_ledgertile;
DROP FUNCTION IF EXISTS ledger_tile_grow_only();
"""
SQLITE_INSTALL = [
    """CREATE TRIGGER ledger_tile_grow_only BEFORE UPDATE ON ledger_ledgertile
       WHEN NOT (NEW.level = OLD.level AND NEW."index" = OLD."index"
                 AND substr(NEW.hashes, 1, length(OLD.hashes)) = OLD.hashes)
       BEGIN SELECT RAISE(ABORT, 'ledger_ledgertile only grows: UPDATE refused'); END""",
    """CREATE TRIGGER ledger_tile_no_delete BEFORE DELETE ON ledger_ledgertile
       BEGIN SELECT RAISE(ABORT, 'ledger_ledgertile only grows: DELETE refused'); END""",
]
SQLITE_REMOVE = ["DROP TRIGGER IF EXISTS ledger_tile_grow_only", "DROP TRIGGER IF EXISTS ledger_tile_no_delete"]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_INSTALL, params=None)
    else:
        for statement in SQLITE_INSTALL:
            schema_editor.execute(statement)


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in [PG_REMOVE] if vendor == "postgresql" else SQLITE_REMOVE:
        schema_editor.execute(statement)



class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0005_verbose_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='LedgerTile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('level', models.SmallIntegerField(verbose_name='level')),
                ('index', models.BigIntegerField(verbose_name='index')),
                ('hashes', models.BinaryField(verbose_name='hashes')),
            ],
            options={
                'verbose_name': 'ledger tile',
                'verbose_name_plural': 'ledger tiles',
            },
        ),
        migrations.CreateModel(
            name='PendingEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('at', models.DateTimeField(verbose_name='at')),
                ('actor', models.CharField(max_length=100, verbose_name='actor')),
                ('action', models.CharField(max_length=64, verbose_name='action')),
                ('subject_type', models.CharField(max_length=40, verbose_name='subject type')),
                ('subject_id', models.CharField(max_length=64, verbose_name='subject id')),
                ('trader_uscc', models.CharField(blank=True, max_length=18, verbose_name='unified social credit code')),
                ('payload', models.JSONField(default=dict, verbose_name='payload')),
                ('head', models.BinaryField(verbose_name='bytes before the seq')),
                ('tail', models.BinaryField(verbose_name='bytes after the seq')),
            ],
            options={
                'verbose_name': 'pending ledger entry',
                'verbose_name_plural': 'pending ledger entries',
                'ordering': ['id'],
            },
        ),
        migrations.AddField(
            model_name='checkpoint',
            name='kind',
            # Every checkpoint there is was signed over the chain; new ones default to tree.
            field=models.CharField(choices=[('tree', 'Merkle tree root'), ('chain', 'chain head (before the tree)')], default='chain', max_length=5, verbose_name='kind'),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name='checkpoint',
            name='kind',
            field=models.CharField(choices=[('tree', 'Merkle tree root'), ('chain', 'chain head (before the tree)')], default='tree', max_length=5, verbose_name='kind'),
        ),
        migrations.AddField(
            model_name='checkpoint',
            name='root',
            field=models.CharField(blank=True, max_length=64, verbose_name='tree root'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('action__in', ('trader.registered', 'shop.registered', 'violation.confirmed', 'violation.overturned', 'score.changed', 'trader.status_changed', 'restriction.proposed', 'restriction.applied', 'restriction.withdrawn', 'restriction.lifted', 'restriction.acknowledged', 'policy.activated'))), fields=['seq'], name='ledger_feed_idx'),
        ),
        migrations.AddConstraint(
            model_name='ledgertile',
            constraint=models.UniqueConstraint(fields=('level', 'index'), name='ledger_tile_position'),
        ),
        migrations.RunPython(install, remove),
    ]
