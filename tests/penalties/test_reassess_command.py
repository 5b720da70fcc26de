from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from creditledger.ledger.actors import Actor
from penalties.models import Restriction, ViolationType
from penalties.services import violation_confirm, violation_record
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db


def _confirmed(trader, officer, code="false-advertising", days_ago=5):
    actor = Actor.for_user(officer)
    violation = violation_record(
        actor=actor,
        trader=trader,
        type=ViolationType.objects.get(code=code),
        occurred_on=timezone.localdate() - timezone.timedelta(days=days_ago),
        source="inspection",
        description="x",
    )
    return violation_confirm(actor=actor, violation=violation)


def test_it_reassesses_the_named_traders(officer, capsys):
    first, second = factories.TraderFactory(), factories.TraderFactory()
    for trader in (first, second):
        _confirmed(trader, officer)
    call_command("reassess", first.uscc.lower())
    assert Trader.objects.get(pk=first.pk).score == 940
    assert Trader.objects.get(pk=second.pk).score == 1000  # not named
    assert "1 changed" in capsys.readouterr().out


def test_all_and_as_of_move_time_forward(officer, capsys):
    trader = factories.TraderFactory()
    for code in ("unlicensed-operation", "unlicensed-operation", "false-advertising"):
        _confirmed(trader, officer, code=code, days_ago=1)  # 100 + 150 (repeat) + 60 → 690, grade C
    call_command("reassess", "--all")
    assert Trader.objects.get(pk=trader.pk).grade == "C"
    later = (timezone.localdate() + timezone.timedelta(days=4)).isoformat()
    call_command("reassess", "--all", "--as-of", later)
    assert Restriction.objects.get(trader=trader, measure="listing_restricted").state == "active"


def test_due_takes_what_the_nightly_job_takes(officer):
    trader = factories.TraderFactory()
    _confirmed(trader, officer)
    call_command("reassess", "--due")
    assert Trader.objects.get(pk=trader.pk).score == 940


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name traders"),
        (("91350100M000100Y43",), "unknown trader"),
        (("--all", "--as-of", "next tuesday"), "--as-of"),
        (("--all", "--as-of", "2026-02-30"), "--as-of"),
    ],
)
def test_bad_arguments_say_what_is_wrong(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("reassess", *args)
