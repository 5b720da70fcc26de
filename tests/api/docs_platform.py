"""A platform that follows docs/api.md ("Keeping in sync", "The rules", webhooks' "Ordering,
duplicates and backfill") to the letter, over the real API; and a random history for it
to keep up with. Used by the sync tests (test_sync_feed.py, test_sync_webhooks.py).

The platform holds only what the docs tell it to hold and applies only what the rules say;
anything it does beyond that would make the tests prove less than they claim.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from penalties.models import UNLIFTED_STATES, Restriction, Violation, ViolationType
from penalties.services import (
    restriction_impose,
    restriction_lift,
    restriction_withdraw,
    trader_reassess,
    violation_confirm,
    violation_overturn,
    violation_record,
)
from tests import factories
from traders.models import Trader

OPEN = ("proposed", "active")


@dataclass
class HeldMeasure:
    seq: int  # of the entry its fields came with
    measure: str
    state: str
    ends_at: str | None = None


@dataclass
class HeldTrader:
    status: str = "normal"
    status_version: int = 0
    grade: str = "A"
    score: int = 1000
    grade_version: int = 0
    measures: dict[int, HeldMeasure] = field(default_factory=dict)  # lifted ones too: their seq guards


class DocsPlatform:
    """One platform's copy of its sellers' credit status, kept by the documented rules."""

    def __init__(self, client: APIClient, code: str) -> None:
        self.client = client
        self.code = code
        self.cursor = 0
        self.traders: dict[str, HeldTrader] = {}
        self.enforced: set[int] = set()  # measures enforced on our shops right now
        self.acked: set[int] = set()
        self.applied = 0  # entries and notices applied (for the test's figures)

    # --- declaring shops and bootstrapping ------------------------------------------------

    def declare_shops(self, codes: list[str]) -> None:
        for start in range(0, len(codes), 1000):
            items = [
                {
                    "platform_shop_id": f"{self.code}-{code[-8:]}",
                    "trader_uscc": code,
                    "trader_name": f"店主{code[-6:]}",
                    "shop_name": f"{code[-6:]}旗舰店",
                }
                for code in codes[start : start + 1000]
            ]
            response = self.client.put("/api/v1/shops/", {"items": items}, format="json")
            assert response.status_code == 200, response.content

    def bootstrap_by_replay(self) -> None:
        """Keeping in sync, 1, first way: replay the feed from after=0 to the end."""
        self.cursor = 0
        self.follow()

    def bootstrap_by_lookup(self, codes: list[str]) -> None:
        """Keeping in sync, 1, second way: note the latest checkpoint's seq (or 0), bulk look
        up the sellers, and follow the feed from the noted seq."""
        response = self.client.get("/api/v1/ledger/checkpoints/latest")
        noted = response.json()["seq"] if response.status_code == 200 else 0
        for start in range(0, len(codes), 1000):
            response = self.client.post(
                "/api/v1/traders/lookup", {"codes": codes[start : start + 1000]}, format="json"
            )
            assert response.status_code == 200, response.content
            for item in response.json()["results"]:
                trader = item["trader"]
                held = self.traders.setdefault(trader["uscc"], HeldTrader())
                held.status, held.status_version = trader["status"], trader["version"]
                held.grade, held.score, held.grade_version = (
                    trader["grade"],
                    trader["score"],
                    trader["version"],
                )
                for m in trader["measures"]:  # "as if it came with the noted seq"
                    self._measure(trader["uscc"], noted, m["id"], m)
        self.cursor = noted

    # --- the feed -----------------------------------------------------------------------

    def follow(self) -> int:
        """Keeping in sync, 2: poll from the cursor, again at once while has_more."""
        pages = 0
        while True:
            response = self.client.get(f"/api/v1/changes/?after={self.cursor}&limit=1000")
            assert response.status_code == 200, response.content
            page = response.json()
            for entry in page["entries"]:
                if entry["seq"] <= self.cursor:
                    continue  # dedupe by seq
                self.apply_entry(entry)
            self.cursor = page["next"]  # with the page, as one transaction would
            pages += 1
            if not page["has_more"]:
                return pages

    def apply_entry(self, entry: dict) -> None:
        action, uscc, p, seq = entry["action"], entry["trader"], entry["payload"], entry["seq"]
        if action == "trader.registered":
            # "a new trader: score 1000, grade A, status normal, version 1"
            self._status(uscc, "normal", 1)
            self._grade(uscc, "A", 1000, 1)
        elif action == "score.changed":
            self._grade(uscc, p["grade"], p["score"], p["version"])
            self._status(uscc, p["status"], p["version"])
        elif action.startswith("restriction.") and action != "restriction.acknowledged":
            self._measure(uscc, seq, p["restriction"], p)
            self._status(uscc, p["status"], p["version"])
        elif action == "trader.status_changed":
            self._status(uscc, p["status"], p["version"])
        else:
            return  # shop declarations, acknowledgements, violations: nothing to hold
        self.applied += 1

    # --- webhooks -----------------------------------------------------------------------

    def apply_notice(self, notice: dict) -> None:
        """A verified notice, by the same rules; deduped by webhook-id by the caller."""
        data = notice["data"]
        uscc = data["trader"]
        if notice["type"] == "grade.changed":
            self._grade(uscc, data["grade"], data["score"], data["version"])
        else:
            self._measure(uscc, data["seq"], data["restriction"], data)
        self._status(uscc, data["status"], data["version"])
        self.applied += 1

    # --- the rules ----------------------------------------------------------------------

    def _status(self, uscc: str, status: str, version: int) -> None:
        held = self.traders.setdefault(uscc, HeldTrader())
        if version > held.status_version:
            held.status, held.status_version = status, version

    def _grade(self, uscc: str, grade: str, score: int, version: int) -> None:
        held = self.traders.setdefault(uscc, HeldTrader())
        if version > held.grade_version:
            held.grade, held.score, held.grade_version = grade, score, version

    def _measure(self, uscc: str, seq: int, restriction: int, fields: dict) -> None:
        held = self.traders.setdefault(uscc, HeldTrader())
        known = held.measures.get(restriction)
        if known is not None and seq <= known.seq:
            return  # a late retry or a replay: this measure has moved on
        held.measures[restriction] = HeldMeasure(
            seq, fields["measure"], fields["state"], fields.get("ends_at")
        )
        if fields["state"] == "active" and restriction not in self.enforced:
            self.enforced.add(restriction)
            self._ack(restriction)
        elif fields["state"] not in OPEN:
            self.enforced.discard(restriction)

    def _ack(self, restriction: int) -> None:
        response = self.client.post(
            f"/api/v1/restrictions/{restriction}/ack",
            {"enforced_at": timezone.now().isoformat()},
            format="json",
        )
        if response.status_code in (200, 201):
            self.acked.add(restriction)
            return
        # "refused with after_lift or not_in_force: ... there is nothing to enforce"
        assert response.status_code == 400, response.content
        assert response.json()["code"] in ("after_lift", "not_in_force"), response.content


# --- the server's side, to compare with ---------------------------------------------------------


def server_state(codes: list[str]) -> dict[str, dict]:
    traders = {t.uscc: t for t in Trader.objects.filter(uscc__in=codes)}
    measures: dict[int, dict[int, tuple]] = {t.pk: {} for t in traders.values()}
    for r in Restriction.objects.filter(trader__in=traders.values(), state__in=UNLIFTED_STATES):
        measures[r.trader_id][r.pk] = (r.measure, r.state, r.ends_at)
    return {
        code: {
            "status": t.status,
            "grade": t.grade,
            "score": t.score,
            "version": t.version,
            "measures": measures[t.pk],
        }
        for code, t in traders.items()
    }


def held_state(platform: DocsPlatform, codes: list[str]) -> dict[str, dict]:
    out = {}
    for code in codes:
        held = platform.traders.get(code, HeldTrader())
        out[code] = {
            "status": held.status,
            "grade": held.grade,
            "score": held.score,
            "version": max(held.status_version, held.grade_version),
            "measures": {
                pk: (m.measure, m.state, parse_datetime(m.ends_at) if m.ends_at else None)
                for pk, m in held.measures.items()
                if m.state in OPEN
            },
        }
    return out


def active_ids(codes: list[str]) -> set[int]:
    return set(
        Restriction.objects.filter(trader__uscc__in=codes, state=Restriction.State.ACTIVE).values_list(
            "pk", flat=True
        )
    )


# --- a random history -----------------------------------------------------------------------


TYPES = (
    "absolute-terms-advertising",
    "refused-returns",
    "false-advertising",
    "substandard-goods",
    "unlicensed-operation",
    "counterfeit-goods",
    "parallel-trading",
    "unsafe-goods",
    "counterfeit-large-scale",
)
TYPE_WEIGHTS = (14, 12, 14, 12, 8, 12, 6, 4, 2)


class History:
    """Violations recorded and confirmed (four eyes), reassessments, proposals taking effect
    as days pass, overturned violations, measures imposed, lifted and withdrawn by hand: the
    services' own writes, with the clock moving from 60 days ago towards today (acks may not
    predate a notice, so the history stays in the past)."""

    def __init__(self, codes: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.codes = codes
        self.ids = dict(Trader.objects.filter(uscc__in=codes).values_list("uscc", "pk"))
        self.clock = timezone.now() - dt.timedelta(days=60)
        self.recorder = Actor.for_user(
            factories.UserFactory(username="h-rec", is_staff=True, is_superuser=True)
        )
        self.decider = Actor.for_user(
            factories.UserFactory(username="h-dec", is_staff=True, is_superuser=True)
        )
        self.types = {t.code: t for t in ViolationType.objects.filter(code__in=TYPES)}
        self.counts: dict[str, int] = {}

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def round(self, steps: int) -> None:
        """A day or three pass, then `steps` things happen, then the nightly reassessment."""
        self.clock += dt.timedelta(days=self.rng.choice((1, 1, 2, 3)), minutes=self.rng.randrange(600))
        for _ in range(steps):
            self.clock += dt.timedelta(seconds=self.rng.randrange(1, 600))
            kind = self.rng.choices(
                ("violation", "overturn", "lift", "withdraw", "impose"), (70, 8, 9, 7, 6)
            )[0]
            getattr(self, f"_{kind}")()
        self._nightly()

    def _violation(self) -> None:
        code = self.rng.choice(self.codes)
        kind = self.rng.choices(TYPES, TYPE_WEIGHTS)[0]
        occurred = timezone.localdate(self.clock) - dt.timedelta(days=self.rng.randrange(0, 20))
        violation = violation_record(
            actor=self.recorder,
            trader=Trader.objects.get(pk=self.ids[code]),
            type=self.types[kind],
            occurred_on=occurred,
            source=Violation.Source.INSPECTION,
            description="抽查发现",
        )
        violation_confirm(actor=self.decider, violation=violation)
        trader_reassess(trader=self.ids[code], now=self.clock)
        self._count("violations")

    def _overturn(self) -> None:
        violation = self._pick(Violation.objects.filter(trader_id__in=self.ids.values(), status="confirmed"))
        if violation is None:
            return
        violation_overturn(actor=self.decider, violation=violation, note="复议撤销")
        trader_reassess(trader=violation.trader_id, now=self.clock)
        self._count("overturned")

    def _lift(self) -> None:
        measure = self._pick(self._open().filter(state="active"))
        if measure is not None:
            restriction_lift(actor=self.decider, restriction=measure, note="整改完成", now=self.clock)
            self._count("lifted by hand")

    def _withdraw(self) -> None:
        measure = self._pick(self._open().filter(state="proposed"))
        if measure is not None:
            restriction_withdraw(actor=self.decider, restriction=measure, note="陈述申辩成立", now=self.clock)
            self._count("withdrawn")

    def _impose(self) -> None:
        code = self.rng.choice(self.codes)
        measure = self.rng.choice(("warning", "listing_restricted"))
        try:
            restriction_impose(
                actor=self.decider,
                trader=Trader.objects.get(pk=self.ids[code]),
                measure=measure,
                reason="约谈后仍未整改",
                duration_days=self.rng.choice((2, 5, 30)),
                now=self.clock,
            )
        except ApplicationError as exc:
            assert exc.code == "duplicate", exc  # holds it already: refused, nothing written
            return
        self._count("imposed")

    def _nightly(self) -> None:
        """Reassess whoever is flagged or holds an open measure (proposals take effect,
        measures end), as the nightly job would."""
        due = set(
            Trader.objects.filter(pk__in=self.ids.values(), needs_reassessment=True).values_list(
                "pk", flat=True
            )
        )
        due |= set(self._open().values_list("trader_id", flat=True))
        for pk in sorted(due):
            trader_reassess(trader=pk, now=self.clock)
        self._count("nightly reassessments")

    def _open(self):
        return Restriction.objects.filter(trader_id__in=self.ids.values(), state__in=UNLIFTED_STATES)

    def _pick(self, queryset):
        pks = list(queryset.order_by("pk").values_list("pk", flat=True))
        return queryset.model.objects.get(pk=self.rng.choice(pks)) if pks else None
