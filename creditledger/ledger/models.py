from __future__ import annotations

import json

from django.db import models
from django.utils.translation import gettext_lazy as _


class LedgerEntry(models.Model):
    """One state change. Append-only: a database trigger refuses UPDATE, DELETE, TRUNCATE.

    `body` holds the exact canonical bytes that were hashed; the other columns are an
    index over them (verify_ledger checks that they agree).
    """

    seq = models.BigIntegerField(_("sequence number"), primary_key=True)
    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.CharField(_("actor"), max_length=100)
    action = models.CharField(_("action"), max_length=64)
    subject_type = models.CharField(_("subject type"), max_length=40)
    subject_id = models.CharField(_("subject id"), max_length=64)
    trader_uscc = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    body = models.BinaryField(_("hashed body (canonical JSON)"))
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        ordering = ["seq"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        # Every index slows every append (which holds the ledger lock): only what the
        # admin filters, the trader trail and the change feed need.
        indexes = [
            models.Index(fields=["subject_type", "subject_id"], name="ledger_subject_idx"),
            models.Index(fields=["trader_uscc", "seq"], name="ledger_trader_seq_idx"),
            models.Index(fields=["action", "seq"], name="ledger_action_seq_idx"),
            models.Index(fields=["actor", "seq"], name="ledger_actor_seq_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject_type}:{self.subject_id}"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8")

    @property
    def body_pretty(self) -> str:
        return json.dumps(json.loads(self.body_text), ensure_ascii=False, indent=2, sort_keys=True)


class Checkpoint(models.Model):
    """A signed statement of the chain head (seq, hash), as a transparency-log note."""

    seq = models.BigIntegerField(_("sequence number"), unique=True)
    hash = models.CharField(_("hash"), max_length=64)
    at = models.DateTimeField(_("at"))
    origin = models.CharField(_("origin"), max_length=200)
    key_id = models.CharField(_("key id"), max_length=8)
    note = models.TextField(_("signed note"), help_text=_("The signed note, byte for byte as issued."))

    class Meta:
        ordering = ["-seq"]
        get_latest_by = "seq"
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")

    def __str__(self) -> str:
        return f"checkpoint {self.seq} {self.hash[:12]}"
