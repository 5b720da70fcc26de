"""The credit record on the trader's admin page: why the score is what it is.

The trader admin lives in `traders`, which may not import `penalties`; its change-form
template loads this library instead (`{% load credit_record %}`), so the page joins the
two apps the way the site's templates are allowed to. A constant number of queries:
policy, confirmed violations, score history, unlifted and past measures, and one each
for the objections, appeals and credit repair applications.

The page itself is reached only through TraderAdmin's queryset, which is limited to the
viewer's jurisdiction; everything here is of that one trader.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from penalties import selectors
from penalties.admin.display import reasons_context, score_chart
from traders.models import Trader

register = template.Library()


@register.inclusion_tag("admin/penalties/credit_record.html", takes_context=True)
def credit_record(context: template.Context, trader: Trader) -> dict[str, Any]:
    user = context["request"].user
    data: dict[str, Any] = {"trader": trader}
    if user.has_perm("penalties.view_violation"):
        breakdown = selectors.trader_breakdown(trader)
        data["breakdown"] = breakdown
        data["stale"] = (breakdown.score, breakdown.grade) != (trader.score, trader.grade)
        if user.has_perm("penalties.view_scorehistory"):
            history = selectors.trader_score_history(trader)
            data["history_count"] = len(history)
            data["chart"] = score_chart(history, breakdown.rules.cutoffs)
    if user.has_perm("penalties.view_restriction"):
        measures = selectors.trader_measures(trader)
        data["measures"] = [
            (_("Proposed measures"), "proposed", _describe(measures.proposed)),
            (_("Measures in force"), "active", _describe(measures.active)),
            (_("Past measures"), "past", _describe(measures.past)),
        ]
        data["more_past"] = measures.more_past
        data["can_impose"] = user.has_perm("penalties.impose_restriction")
    kinds = {
        "objections": user.has_perm("penalties.view_objection"),
        "appeals": user.has_perm("penalties.view_appeal"),
        "repairs": user.has_perm("penalties.view_repairapplication"),
    }
    if any(kinds.values()):
        data["remedies"] = selectors.trader_remedies(trader, **kinds)
        data["remedy_kinds"] = kinds
    return data


def _describe(restrictions) -> list[tuple[Any, dict[str, Any]]]:
    return [(r, reasons_context(r.reasons)) for r in restrictions]
