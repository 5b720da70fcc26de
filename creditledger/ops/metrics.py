"""/metrics for Prometheus: the process instruments (instruments.py) plus gauges computed at
scrape time with a few cheap queries — queue lengths, pending reviews, measures not yet
acknowledged by platforms, the ledger head and the age of the last checkpoint.

Access: a bearer token (METRICS_TOKEN) or a client address (METRICS_ALLOWED_IPS); with
neither set the endpoint does not exist (404), and anyone else gets 403.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from creditledger.ops import instruments

log = logging.getLogger(__name__)

QUEUES = ("celery", "scoring", "webhooks", "exports")
# kombu's Redis transport keeps a message with priority p in the list "<queue>\x06\x16<p>"
# (p = 3, 6, 9; priority 0 is the bare queue name).
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)


class ScrapeCollector:
    """Gauges read from the database and the broker when Prometheus asks."""

    def collect(self):
        up = GaugeMetricFamily(
            "creditledger_scrape_source_up",
            "1 when this scrape could read the source (database, broker), else 0.",
            labels=["source"],
        )
        for source, read in (("database", self._database), ("broker", self._broker)):
            try:
                families = list(read())
            except Exception:
                log.warning("metrics: reading %s failed", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    # --- database ----------------------------------------------------------------------

    def _database(self):
        from creditledger.ledger.models import LedgerEntry
        from creditledger.ledger.selectors import latest_checkpoint
        from penalties.models import Violation

        pending = Violation.objects.filter(status=Violation.Status.PENDING).count()
        yield GaugeMetricFamily(
            "creditledger_pending_reviews", "Violations waiting for an officer's decision.", value=pending
        )

        unacked = GaugeMetricFamily(
            "creditledger_unacknowledged_measures",
            "Active measures on traders with a shop on the platform that the platform has not "
            "acknowledged, by platform.",
            labels=["platform"],
        )
        for platform, count in _unacknowledged_by_platform():
            unacked.add_metric([platform], count)
        yield unacked

        head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        yield GaugeMetricFamily("creditledger_ledger_head_seq", "The ledger's last seq.", value=head)

        age = GaugeMetricFamily(
            "creditledger_ledger_checkpoint_age_seconds",
            "Seconds since the last signed checkpoint (absent before the first).",
        )
        checkpoint = latest_checkpoint()
        if checkpoint is not None:
            age.add_metric([], (timezone.now() - checkpoint.at).total_seconds())
        yield age
        if checkpoint is not None:
            yield GaugeMetricFamily(
                "creditledger_ledger_checkpoint_seq",
                "The seq the last checkpoint signed.",
                value=checkpoint.seq,
            )

    # --- broker --------------------------------------------------------------------------

    def _broker(self):
        lengths = _queue_lengths()
        if lengths is None:
            return
        family = GaugeMetricFamily(
            "creditledger_queue_length", "Messages waiting in the broker, by queue.", labels=["queue"]
        )
        for queue, length in lengths.items():
            family.add_metric([queue], length)
        yield family


def _unacknowledged_by_platform() -> list[tuple[str, int]]:
    """One statement: (active measure, platform) pairs where the trader has a shop on the
    platform (as the acknowledgement rule has it) and the platform has not acknowledged."""
    from penalties.models import Restriction, RestrictionAck
    from traders.models import Platform, Shop

    r, s = Restriction._meta.db_table, Shop._meta.db_table
    a, p = RestrictionAck._meta.db_table, Platform._meta.db_table
    sql = f"""
        SELECT p.code, COUNT(*) FROM (
            SELECT DISTINCT r.id AS restriction_id, s.platform_id
            FROM {r} r JOIN {s} s ON s.trader_id = r.trader_id
            WHERE r.state = %s AND NOT EXISTS (
                SELECT 1 FROM {a} a WHERE a.restriction_id = r.id AND a.platform_id = s.platform_id
            )
        ) pairs JOIN {p} p ON p.id = pairs.platform_id
        WHERE p.is_active
        GROUP BY p.code ORDER BY p.code
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, [Restriction.State.ACTIVE])
        return [(code, int(count)) for code, count in cursor.fetchall()]


def _queue_lengths() -> dict[str, int] | None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        client = _redis(url)
        pipe = client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{REDIS_PRIORITY_SEP}{step}")
        counts = pipe.execute()
        per = 1 + len(REDIS_PRIORITY_STEPS)
        return {queue: sum(counts[i * per : (i + 1) * per]) for i, queue in enumerate(QUEUES)}
    if url.startswith("filesystem://"):
        # make run: one file per message, named "<stamp>_<id>.<queue>.msg".
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        names = [path.name for path in folder.glob("*.msg")] if folder.is_dir() else []
        return {queue: sum(name.endswith(f".{queue}.msg") for name in names) for queue in QUEUES}
    return None  # another transport: nothing cheap to ask


@functools.lru_cache(maxsize=2)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


# --- the view ----------------------------------------------------------------------------


def allowed(request) -> bool:
    """A matching bearer token, or a client address in METRICS_ALLOWED_IPS. REMOTE_ADDR only:
    a forwarded-for header is the client's to write."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        if hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode()):
            return True
    networks = allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in networks)
    return False


@functools.lru_cache(maxsize=4)
def allowed_networks(values: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def exposition() -> bytes:
    if instruments.MULTIPROCESS:
        from prometheus_client import multiprocess

        process_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY
    scrape_registry = CollectorRegistry(auto_describe=False)
    scrape_registry.register(ScrapeCollector())
    return generate_latest(process_registry) + generate_latest(scrape_registry)


@never_cache
def metrics(request):
    if not (settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS):
        # A plain 404, not Http404: the debug 404 page would look up the (probe's) host.
        return HttpResponseNotFound("metrics are not enabled\n", content_type="text/plain")
    if not allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
