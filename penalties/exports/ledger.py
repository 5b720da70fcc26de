"""The ledger extract: entries as they were hashed, so an auditor can recompute the chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from django.utils.translation import gettext_lazy as _

from creditledger.ledger.models import LedgerEntry
from penalties.exports.base import DATETIME, INT, Column, Exporter, Filter, FilterError


class LedgerExtract(Exporter):
    """Entries in seq order with the exact bytes that were hashed, so anyone can recompute
    hash = sha256("creditledger-ledger/v1\\n" ‖ prev_hash ‖ body) row by row."""

    name = "ledger"
    title = _("Ledger extract")
    description = _(
        "Ledger entries in a range of sequence numbers, with the hashed bytes and the hash chain."
    )
    filters = (
        Filter("seq_from", _("from sequence number"), kind="int", minimum=1),
        Filter("seq_to", _("to sequence number"), kind="int", minimum=1),
        Filter(
            "trader",
            _("trader (unified social credit code)"),
            pattern=r"[0-9A-HJ-NPQRTUWXY]{18}",
            pattern_message=_("Give an 18-character unified social credit code."),
        ),
        Filter(
            "action", _("action"), pattern=r"[a-z_]+\.[a-z_]+", pattern_message=_("e.g. violation.confirmed")
        ),
    )
    columns = (
        Column("seq", _("sequence number"), INT, 10),
        Column("at", _("at"), DATETIME, 17),
        Column("actor", _("actor"), width=16),
        Column("action", _("action"), width=22),
        Column("subject_type", _("subject type"), width=12),
        Column("subject_id", _("subject id"), width=10),
        Column("trader", _("trader"), width=20),
        Column("prev_hash", _("previous hash"), width=66),
        Column("hash", _("hash"), width=66),
        Column("body", _("hashed body (canonical JSON)"), width=80),
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "at",
        "actor",
        "action",
        "subject_type",
        "subject_id",
        "trader_uscc",
        "prev_hash",
        "hash",
        "body",
    )

    @classmethod
    def check(cls, values: dict) -> None:
        if values["seq_from"] and values["seq_to"] and values["seq_to"] < values["seq_from"]:
            raise FilterError(
                str(_("The end of the range comes before its start.")), field="seq_to", code="invalid_range"
            )

    def queryset(self):
        v = self.values
        qs = LedgerEntry.objects.all()
        if not self.jurisdiction.national:
            # Entries about the scope's traders only (none about no trader, such as a
            # policy's activation).
            qs = qs.filter(self.jurisdiction.uscc_q("trader_uscc"))
        if v["seq_from"]:
            qs = qs.filter(seq__gte=v["seq_from"])
        if v["seq_to"]:
            qs = qs.filter(seq__lte=v["seq_to"])
        if v["trader"]:
            qs = qs.filter(trader_uscc=v["trader"])
        if v["action"]:
            qs = qs.filter(action=v["action"])
        return qs

    def count(self) -> int:
        return self.queryset().count()

    def rows(self) -> Iterator[tuple]:
        rows = self.queryset().order_by("seq").values_list(*self.FIELDS)
        for r in rows.iterator(chunk_size=self.chunk_size):
            yield (*r[:9], bytes(r[9]).decode("utf-8"))
