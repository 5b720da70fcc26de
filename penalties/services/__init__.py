"""Writes for violations, evidence, policies and measures: each function one transaction
that writes its ledger entry. Split by concern; import from here."""

from __future__ import annotations

from penalties.services.acks import restriction_acknowledge
from penalties.services.appeals import (
    appeal_decide,
    appeal_file,
    objection_decide,
    objection_record,
    repair_apply,
    repair_decide,
)
from penalties.services.policies import active_policy, policy_activate, policy_create
from penalties.services.reassessment import trader_reassess, traders_reassess
from penalties.services.reports import report_submit
from penalties.services.restrictions import restriction_impose, restriction_lift, restriction_withdraw
from penalties.services.violations import (
    evidence_attach,
    evidence_orphans_sweep,
    violation_confirm,
    violation_overturn,
    violation_payload,
    violation_record,
    violation_reject,
)

__all__ = [
    "active_policy",
    "appeal_decide",
    "appeal_file",
    "evidence_attach",
    "evidence_orphans_sweep",
    "objection_decide",
    "objection_record",
    "policy_activate",
    "policy_create",
    "repair_apply",
    "repair_decide",
    "report_submit",
    "restriction_acknowledge",
    "restriction_impose",
    "restriction_lift",
    "restriction_withdraw",
    "trader_reassess",
    "traders_reassess",
    "violation_confirm",
    "violation_overturn",
    "violation_payload",
    "violation_record",
    "violation_reject",
]
