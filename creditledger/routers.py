"""Database routing: a read replica for the platform API's read-only lookups and feed.

Nothing is routed implicitly: the API's read selectors ask for `read_db()` with an
explicit `.using(...)`, and everything else — every write, every read that precedes a
write, the admin — stays on the primary. Implicit routing would send a service's own
reads to a replica that has not yet replayed its writes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"


def read_db() -> str:
    """'replica' when DATABASE_REPLICA_URL is set (settings.API_READ_DATABASE), else 'default'."""
    return settings.API_READ_DATABASE


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        return None  # the caller's .using(), or the instance's own database, or default

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # Both aliases hold the same data, so a replica row may point at a primary one.
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # the replica follows by replication
