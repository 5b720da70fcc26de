from __future__ import annotations

import socket

import pytest
from django.db import connections
from django.utils import timezone

from creditledger.ops import heartbeats


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def background_alive(db, settings):
    """Recent heartbeats from a worker on every queue and from beat."""
    now = timezone.now()
    for queue in settings.HEALTH_WORKER_QUEUES:
        heartbeats.stamp(heartbeats.worker_name(queue), at=now)
    heartbeats.stamp(heartbeats.BEAT, at=now)


@pytest.fixture(scope="session")
def replica_alias(django_db_setup, django_db_blocker):
    """A "replica" alias on the test database — a TEST MIRROR of default, as settings makes
    it when DATABASE_REPLICA_URL is set. Session-scoped so that it exists before a test's
    database guard looks at its `databases`; unused by any test that does not ask for it
    (API reads go to it only with the `replica` fixture)."""
    mirror = {**connections["default"].settings_dict}
    mirror["TEST"] = {**mirror.get("TEST", {}), "MIRROR": "default"}
    connections.settings["replica"] = mirror
    yield "replica"
    with django_db_blocker.unblock():
        connections["replica"].close()
    del connections["replica"]
    del connections.settings["replica"]


@pytest.fixture
def replica(replica_alias, settings):
    """API reads sent to the replica alias. Use with
    django_db(transaction=True, databases=["default", "replica"]): the replica's own
    connection sees only committed rows, as a real replica would."""
    settings.API_READ_DATABASE = replica_alias
    return replica_alias
