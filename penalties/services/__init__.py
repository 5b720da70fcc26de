"""Writes for violations, evidence, policies and measures: each function one transaction
that writes its ledger entry. Split by concern; import from here."""

from __future__ import annotations

from penalties.services.acks import restriction_acknowledge
from penalties.services.policies import active_policy, policy_activate, policy_create
from penalties.services.reports import report_submit
from penalties.services.restrictions import (
    restriction_impose,
    restriction_lift,
    restriction_withdraw,
    trader_reassess,
)
from penalties.services.violations import (
    evidence_attach,
    violation_confirm,
    violation_payload,
    violation_record,
    violation_reject,
)

__all__ = [
    "active_policy",
    "evidence_attach",
    "policy_activate",
    "policy_create",
    "report_submit",
    "restriction_acknowledge",
    "restriction_impose",
    "restriction_lift",
    "restriction_withdraw",
    "trader_reassess",
    "violation_confirm",
    "violation_payload",
    "violation_record",
    "violation_reject",
]
