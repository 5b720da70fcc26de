from __future__ import annotations

import json

from django.db import models
from django.utils.translation import gettext_lazy as _

# The actions that change what a platform must know about a trader: the change feed
# carries these and nothing else.
STATUS_ACTIONS = (
    "trader.registered",
    "shop.registered",
    "violation.confirmed",
    "violation.overturned",
    "score.changed",
    "trader.status_changed",
    "restriction.proposed",
    "restriction.applied",
    "restriction.withdrawn",
    "restriction.lifted",
    "restriction.acknowledged",
    "policy.activated",
)


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
            # The change feed: the status entries after a seq, in seq order.
            models.Index(
                fields=["seq"], condition=models.Q(action__in=STATUS_ACTIONS), name="ledger_feed_idx"
            ),
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
    """A signed statement of the ledger's first `seq` entries, as a C2SP tlog-checkpoint.

    A tree checkpoint signs the Merkle root of entries 1..seq (`root`, which is what its note
    states); `hash` is the chain hash of entry `seq` at the time, kept so the chain can be
    checked against it too. Chain checkpoints were signed before the tree existed: their
    note states the chain hash, and they stay verifiable as such.
    """

    class Kind(models.TextChoices):
        TREE = "tree", _("Merkle tree root")
        CHAIN = "chain", _("chain head (before the tree)")

    seq = models.BigIntegerField(_("sequence number"), unique=True)
    hash = models.CharField(_("hash"), max_length=64)
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices, default=Kind.TREE)
    root = models.CharField(_("tree root"), max_length=64, blank=True)
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


class LedgerTile(models.Model):
    """One tile of the Merkle tree over the entries (C2SP tlog-tiles, height 8): up to 256
    hashes of tree level 8·level, 32 bytes each, for leaves from 256·index on (level 0:
    the leaf hashes). A tile only grows at its end until full; a trigger refuses any other
    change. See creditledger/ledger/merkle/ for the layout and the proofs read from it."""

    level = models.SmallIntegerField(_("level"))
    index = models.BigIntegerField(_("index"))
    hashes = models.BinaryField(_("hashes"))

    class Meta:
        verbose_name = _("ledger tile")
        verbose_name_plural = _("ledger tiles")
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="ledger_tile_position")]

    def __str__(self) -> str:
        return f"tile {self.level}/{self.index} ({len(self.hashes) // 32})"


class PendingEntry(models.Model):
    """An entry written by a change's own transaction and not yet sealed (given its seq,
    chain hash and tree position) by the sealer. Nothing that did not commit ever gets
    here; the sealer moves each committed row to LedgerEntry exactly once.

    `head` and `tail` are the entry's canonical bytes on either side of its seq (see
    canonical.BodyParts); `payload` is the normalised payload, as the JSON text hashed.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(_("at"))
    actor = models.CharField(_("actor"), max_length=100)
    action = models.CharField(_("action"), max_length=64)
    subject_type = models.CharField(_("subject type"), max_length=40)
    subject_id = models.CharField(_("subject id"), max_length=64)
    trader_uscc = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    head = models.BinaryField(_("bytes before the seq"))
    tail = models.BinaryField(_("bytes after the seq"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("pending ledger entry")
        verbose_name_plural = _("pending ledger entries")

    def __str__(self) -> str:
        return f"queued {self.id} {self.action} {self.subject_type}:{self.subject_id}"


class Witness(models.Model):
    """A witness whose cosignatures the ledger accepts: an auditor or a platform that runs
    `manage.py ledger_witness` on its own machine with its own Ed25519 key. Admins register
    its public verifier key (C2SP tlog-cosignature, cosignature/v1); the private key never
    comes here. A signature line names its key by (name, key id), hence the unique pair."""

    name = models.CharField(_("name"), max_length=100)
    key_id = models.CharField(_("key id"), max_length=8)
    vkey = models.CharField(_("verifier key"), max_length=300)
    description = models.CharField(_("run by"), max_length=200, blank=True)
    is_active = models.BooleanField(_("accepts new cosignatures"), default=True)
    created_at = models.DateTimeField(_("registered at"))

    class Meta:
        ordering = ["name", "key_id"]
        verbose_name = _("witness")
        verbose_name_plural = _("witnesses")
        constraints = [models.UniqueConstraint(fields=["name", "key_id"], name="ledger_witness_key")]

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id}"


class Cosignature(models.Model):
    """A witness's cosignature of one checkpoint: it had checked that the checkpoint's tree
    extends every tree it cosigned before. `note` is the checkpoint note as it was cosigned
    (the log's signature included), so the evidence stands on its own even if the
    checkpoint row were rewritten; `signature` is the witness's signature line."""

    # The constraint is migration 0007's, checked at once (NOT DEFERRABLE): see its docstring.
    checkpoint = models.ForeignKey(
        Checkpoint,
        models.PROTECT,
        related_name="cosignatures",
        verbose_name=_("checkpoint"),
        db_constraint=False,
    )
    witness = models.ForeignKey(
        Witness, models.PROTECT, related_name="cosignatures", verbose_name=_("witness")
    )
    timestamp = models.BigIntegerField(_("cosigned at (POSIX seconds, as the witness states)"))
    signature = models.TextField(_("signature line"))
    note = models.TextField(_("checkpoint note cosigned"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["checkpoint__seq", "witness__name"]
        verbose_name = _("cosignature")
        verbose_name_plural = _("cosignatures")
        constraints = [
            models.UniqueConstraint(fields=["checkpoint", "witness"], name="ledger_cosignature_once"),
        ]

    def __str__(self) -> str:
        return f"{self.witness_id} on checkpoint {self.checkpoint_id}"
