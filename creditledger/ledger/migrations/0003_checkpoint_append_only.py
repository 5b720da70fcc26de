"""Checkpoints are append-only too: a rewritten chain with rewritten checkpoints would
otherwise only be caught by an auditor's copy."""

from __future__ import annotations

from django.db import migrations

PG_INSTALL = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER checkpoint_no_update_delete BEFORE UPDATE OR DELETE ON ledger_checkpoint
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER checkpoint_no_truncate BEFORE TRUNCATE ON ledger_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""
PG_REMOVE = """
DROP TRIGGER IF EXISTS checkpoint_no_truncate ON ledger_checkpoint;
DROP TRIGGER IF EXISTS checkpoint_no_update_delete ON ledger_checkpoint;
"""
SQLITE_INSTALL = [
    """CREATE TRIGGER checkpoint_no_update BEFORE UPDATE ON ledger_checkpoint
       BEGIN SELECT RAISE(ABORT, 'ledger_checkpoint is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER checkpoint_no_delete BEFORE DELETE ON ledger_checkpoint
       BEGIN SELECT RAISE(ABORT, 'ledger_checkpoint is append-only: DELETE refused'); END""",
]
SQLITE_REMOVE = ["DROP TRIGGER IF EXISTS checkpoint_no_update", "DROP TRIGGER IF EXISTS checkpoint_no_delete"]


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_INSTALL, params=None)
    else:
        for statement in SQLITE_INSTALL:
            schema_editor.execute(statement)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REMOVE, params=None)
    else:
        for statement in SQLITE_REMOVE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_append_only_trigger")]
    operations = [migrations.RunPython(install, remove)]
