"""The ledger table refuses UPDATE, DELETE and TRUNCATE, whoever asks (bar a superuser
who disables the trigger: the chain and the signed checkpoints catch that)."""

from __future__ import annotations

from django.db import migrations

PG_INSTALL = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_no_update_delete BEFORE UPDATE OR DELETE ON ledger_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""
PG_REMOVE = """
DROP TRIGGER IF EXISTS ledger_no_truncate ON ledger_ledgerentry;
DROP TRIGGER IF EXISTS ledger_no_update_delete ON ledger_ledgerentry;
DROP FUNCTION IF EXISTS ledger_refuse_change();
"""
# SQLite has no TRUNCATE; its DELETE without WHERE goes through the row trigger.
SQLITE_INSTALL = [
    """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger_ledgerentry is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger_ledgerentry is append-only: DELETE refused'); END""",
]
SQLITE_REMOVE = ["DROP TRIGGER IF EXISTS ledger_no_update", "DROP TRIGGER IF EXISTS ledger_no_delete"]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_INSTALL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_INSTALL:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"no append-only trigger for database vendor {vendor}")


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = [PG_REMOVE] if vendor == "postgresql" else SQLITE_REMOVE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
