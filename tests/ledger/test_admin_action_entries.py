"""Admin actions outside the add and change forms are in the ledger too (issue #6): API keys
issued and revoked, webhook secrets rotated and retired, deliveries replayed, exports
requested. None of them is a status change, so none is in the platforms' change feed."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.urls import reverse

from creditledger.api.models import WebhookDelivery
from creditledger.api.webhook_services import webhook_secret_retire
from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import KNOWN_ACTIONS
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.selectors import STATUS_ACTIONS, changes_after
from penalties.exports import services as export_services
from penalties.exports import tasks as export_tasks
from tests import factories
from traders.models import ApiKey, WebhookEndpoint
from traders.services import apikey_issue, apikey_revoke

pytestmark = pytest.mark.django_db

NEW_ACTIONS = (
    "apikey.issued",
    "apikey.revoked",
    "webhook.secret_rotated",
    "webhook.secret_retired",
    "webhook.delivery_replayed",
    "export.requested",
)


def _entries(action: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(action=action).order_by("seq"))


@pytest.fixture
def platform():
    return factories.PlatformFactory(code="pdd", name="拼多多")


@pytest.fixture
def endpoint(platform):
    return WebhookEndpoint.objects.create(
        platform=platform,
        url="https://93.184.216.34/hooks",
        secret="whsec_" + "a" * 43,
        previous_secret="whsec_" + "b" * 43,
    )


def test_issuing_a_key_in_the_admin_records_its_prefix_never_the_key(client, supervisor, platform):
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:traders_apikey_add"),
        {"name": "pdd sync", "platform": platform.pk, "scopes": ["status:read", "reports:write"]},
    )
    assert response.status_code == 200
    key = ApiKey.objects.get()
    [entry] = _entries("apikey.issued")
    assert (entry.actor, entry.subject_type, entry.subject_id) == (
        f"user:{supervisor.pk}",
        "apikey",
        key.prefix,
    )
    assert entry.payload == {
        "prefix": key.prefix,
        "name": "pdd sync",
        "platform": "pdd",
        "scopes": ["status:read", "reports:write"],
        "expiry_date": None,
    }
    body = json.dumps(entry.payload) + entry.subject_id
    assert key.hashed_key not in body
    raw = response.content.decode().split('id="api-key"')[1].split(">")[1].split("<")[0]
    assert raw.partition(".")[2] not in body


def test_a_key_refused_by_the_service_writes_nothing(supervisor, platform):
    actor = Actor.for_user(supervisor)
    with pytest.raises(ApplicationError) as caught:
        apikey_issue(actor=actor, platform=platform, name="k", scopes=["everything"])
    assert caught.value.field == "scopes"
    assert not ApiKey.objects.exists() and not _entries("apikey.issued")


def test_officers_may_not_issue_or_revoke_keys(officer, platform):
    key, _ = ApiKey.objects.create_key(name="k", platform=platform, scopes=["status:read"])
    with pytest.raises(PermissionDenied):
        apikey_issue(actor=Actor.for_user(officer), platform=platform, name="k", scopes=["status:read"])
    with pytest.raises(PermissionDenied):
        apikey_revoke(actor=Actor.for_user(officer), keys=[key])
    key.refresh_from_db()
    assert not key.revoked and not LedgerEntry.objects.filter(action__startswith="apikey.").exists()


def test_revoking_in_the_admin_writes_one_entry_per_key_and_none_the_second_time(
    client, supervisor, platform
):
    first, _ = ApiKey.objects.create_key(name="first", platform=platform, scopes=["status:read"])
    second, _ = ApiKey.objects.create_key(name="second", platform=platform, scopes=["status:read"])
    client.force_login(supervisor)
    changelist = reverse("admin:traders_apikey_changelist")
    client.post(changelist, {"action": "revoke", "_selected_action": [first.pk, second.pk]})
    entries = _entries("apikey.revoked")
    assert sorted(entry.subject_id for entry in entries) == sorted([first.prefix, second.prefix])
    assert {entry.payload["name"] for entry in entries} == {"first", "second"}
    assert {entry.actor for entry in entries} == {f"user:{supervisor.pk}"}

    client.post(changelist, {"action": "revoke", "_selected_action": [first.pk]})
    assert len(_entries("apikey.revoked")) == 2


def test_rotating_and_retiring_a_secret_are_recorded_without_any_secret(client, supervisor, endpoint):
    client.force_login(supervisor)
    changelist = reverse("admin:traders_webhookendpoint_changelist")
    client.post(changelist, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    client.post(changelist, {"action": "retire_previous_secret", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    rotated, retired = _entries("webhook.secret_rotated") + _entries("webhook.secret_retired")
    for entry in (rotated, retired):
        assert (entry.subject_type, entry.subject_id) == ("webhookendpoint", str(endpoint.pk))
        assert entry.payload == {"platform": "pdd", "url": "https://93.184.216.34/hooks"}
    assert rotated.seq < retired.seq
    assert endpoint.secret and not endpoint.previous_secret
    for secret in (endpoint.secret, "whsec_" + "a" * 43, "whsec_" + "b" * 43):
        assert secret[6:18] not in json.dumps([rotated.payload, retired.payload])


def test_retiring_when_no_rotation_is_under_way_records_nothing(supervisor, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret="")
    webhook_secret_retire(actor=Actor.for_user(supervisor), endpoint=endpoint)
    assert not _entries("webhook.secret_retired")


def test_replaying_a_delivery_in_the_admin_is_recorded(client, supervisor, endpoint):
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        msg_id="msg_replayed",
        event="restriction.applied",
        ledger_seq=41,
        payload={"type": "restriction.applied"},
        state=WebhookDelivery.State.FAILED,
        attempts=5,
    )
    client.force_login(supervisor)
    with mock.patch("creditledger.api.webhook_services.enqueue_delivery"):
        client.post(
            reverse("admin:api_webhookdelivery_changelist"),
            {"action": "replay", "_selected_action": [delivery.pk]},
        )
    [entry] = _entries("webhook.delivery_replayed")
    assert (entry.subject_type, entry.subject_id) == ("webhookdelivery", str(delivery.pk))
    assert entry.payload == {
        "msg_id": "msg_replayed",
        "event": "restriction.applied",
        "ledger_seq": 41,
        "endpoint": endpoint.pk,
        "previous": {"state": "failed", "attempts": 5},
    }


def test_an_export_request_records_kind_format_filters_and_scope(auditor):
    with mock.patch.object(export_tasks.export_run, "apply_async"):
        export = export_services.export_request(
            actor=Actor.for_user(auditor),
            report="violations",
            file_format="csv",
            filters={"region": "33"},
            language="en",
        )
    [entry] = _entries("export.requested")
    assert (entry.actor, entry.subject_type, entry.subject_id) == (
        f"user:{auditor.pk}",
        "export",
        str(export.pk),
    )
    assert entry.payload == {
        "kind": "violations",
        "format": "csv",
        "filters": {"region": "33"},
        "scope": export.scope,
        "language": "en",
    }


def test_a_refused_export_request_records_nothing(officer):
    with pytest.raises(PermissionDenied):
        export_services.export_request(
            actor=Actor.for_user(officer), report="violations", file_format="csv", filters={}
        )
    assert not _entries("export.requested")


def test_none_of_them_is_in_the_change_feed(supervisor, platform):
    assert not set(NEW_ACTIONS) & set(STATUS_ACTIONS)
    key, _ = apikey_issue(
        actor=Actor.for_user(supervisor), platform=platform, name="k", scopes=["status:read"]
    )
    apikey_revoke(actor=Actor.for_user(supervisor), keys=[key])
    assert _entries("apikey.issued") and _entries("apikey.revoked")
    assert not [entry for entry in changes_after(0, 100) if entry.action in NEW_ACTIONS]


def test_the_ledger_admin_offers_them_as_filters():
    assert set(NEW_ACTIONS) <= set(KNOWN_ACTIONS)
