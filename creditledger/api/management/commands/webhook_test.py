"""manage.py webhook_test ENDPOINT: send a signed `ping` to a webhook endpoint now and print
how it answered (status and latency). Writes nothing; exits 1 unless the answer is a 2xx."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from creditledger.api.webhook_services import describe, webhook_ping
from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from traders.models import WebhookEndpoint


class Command(BaseCommand):
    help = (
        "Send a signed test notice (type ping) to the webhook endpoint with this id, synchronously, "
        "and print the HTTP status and latency. Disabled endpoints are pinged too. Exit status 1 "
        "unless the receiver answered 2xx."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "endpoint", type=int, help="the endpoint's id (the admin's webhook endpoints list)"
        )

    def handle(self, *args, endpoint: int, **options) -> None:
        found = WebhookEndpoint.objects.select_related("platform").filter(pk=endpoint).first()
        if found is None:
            raise CommandError(f"endpoint: no webhook endpoint with the id {endpoint}")
        try:
            ping = webhook_ping(actor=Actor.system("manage.webhook_test"), endpoint=found)
        except ApplicationError as exc:
            raise CommandError(f"{exc.field or 'endpoint'}: {exc.message}") from exc
        state = "" if found.is_active else " (the endpoint is disabled)"
        line = f"POST {ping.url} ({found.platform.code}){state}: {describe(ping)}; webhook-id {ping.msg_id}"
        if not ping.response.ok:
            raise CommandError(line)
        self.stdout.write(line)
