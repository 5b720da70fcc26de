from __future__ import annotations

import pytest
from django.core.cache import cache

from tests import factories

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def _fresh_lockout_counters():
    # axes counts in the shared cache, which outlives each test's database transaction.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return factories.UserFactory(username="alice", is_staff=True)


@pytest.fixture
def bob(db):
    return factories.UserFactory(username="bob", is_staff=True)


def sign_in(client, username: str, password: str, address: str):
    return client.post(
        "/admin/login/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def signed_in_as(client, user) -> bool:
    return client.session.get("_auth_user_id") == str(user.pk)
