"""Request and response shapes of the read side of the platform API.

Output serializers read rows prepared by creditledger.api.selectors (which attach
`measures` and `platform_shops`); they never query. They are the documented contract (the
OpenAPI schema is built from them); the frequent answers are rendered by the plain
functions at the end of this module, which give the same JSON faster.
"""

from __future__ import annotations

import base64
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from creditledger.ledger import merkle
from creditledger.ledger.models import Checkpoint, LedgerEntry
from penalties.models import Restriction
from traders.models import Shop, Trader

BIGINT_MAX = 2**63 - 1


# --- errors ---------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every 4xx answer (creditledger.exceptions.api_exception_handler)."""

    code = serializers.CharField(help_text="A stable machine-readable name of the rule that failed.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per input field, by dotted path ("codes", "items.3.uscc").',
    )


# --- trader status --------------------------------------------------------------------------


class MeasureSerializer(serializers.ModelSerializer):
    reason_code = serializers.SerializerMethodField(
        help_text="The rule behind the measure (e.g. `grade-C`, `grave-violation`), or `manual`."
    )
    reasons = serializers.DictField(
        read_only=True,
        help_text="The statement of reasons the trader was given: basis, rule, policy version, "
        "score, grade and the violations behind the measure (for a manual measure, the "
        "supervisor's statement).",
    )

    class Meta:
        model = Restriction
        fields = [
            "id",
            "measure",
            "state",
            "basis",
            "reason_code",
            "policy_version",
            "noticed_at",
            "objection_deadline",
            "starts_at",
            "ends_at",
            "reasons",
        ]
        read_only_fields = fields

    def get_reason_code(self, restriction: Restriction) -> str:
        return restriction.rule_code or restriction.basis


class ShopSerializer(serializers.ModelSerializer):
    # Not format "uri": a shop declared without a URL has the empty string.
    url = serializers.CharField(read_only=True, help_text="The shop's URL, or empty.")

    class Meta:
        model = Shop
        fields = ["platform_shop_id", "name", "url", "opened_on", "closed_on"]
        read_only_fields = fields


class TraderStatusSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(read_only=True, help_text="The entity kind, from the code.")
    region_name = serializers.CharField(read_only=True, help_text="The region, from the code.")
    measures = MeasureSerializer(
        many=True, read_only=True, help_text="Proposed and active measures, oldest notice first."
    )
    shops = ShopSerializer(
        many=True,
        read_only=True,
        source="platform_shops",
        help_text="This trader's shops on the caller's platform (never another platform's).",
    )

    class Meta:
        model = Trader
        fields = [
            "uscc",
            "name",
            "kind",
            "kind_label",
            "region",
            "region_name",
            "score",
            "grade",
            "status",
            "version",
            "assessed_at",
            "measures",
            "shops",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "status": {"help_text": "The heaviest measure in force, or `normal`."},
            "version": {"help_text": "Goes up on every change of status, score, grade or measures."},
        }


class ShopQuerySerializer(serializers.Serializer):
    shop = serializers.CharField(max_length=64, help_text="Your platform's id of the shop.")


# --- bulk lookup ----------------------------------------------------------------------------


class StringListField(serializers.ListField):
    """DRF's ListField of CharFields, with a fast path: a list whose items are all plain
    ASCII strings that pass the child's rules is taken as it is (trimmed as the child trims)
    instead of running a CharField's validators on each of 1000 items (13 ms a lookup). Any
    other list goes through DRF's own validation, so its errors are DRF's, item by item."""

    def run_child_validation(self, data):
        child = self.child
        trim, limit, blank_ok = child.trim_whitespace, child.max_length, child.allow_blank
        values = []
        for item in data:
            if type(item) is not str or not item.isascii() or "\x00" in item:
                return super().run_child_validation(data)
            value = item.strip() if trim else item
            if (limit is not None and len(value) > limit) or (not value and not blank_ok):
                return super().run_child_validation(data)
            values.append(value)
        return values


class LookupRequestSerializer(serializers.Serializer):
    """At least one code or shop id, and at most API_BULK_LIMIT (1000) of both together."""

    codes = StringListField(
        child=serializers.CharField(max_length=64, allow_blank=True, trim_whitespace=False),
        required=False,
        default=list,
        max_length=settings.API_BULK_LIMIT,
        help_text="Unified social credit codes; lower case and spaces are accepted.",
    )
    shop_ids = StringListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=settings.API_BULK_LIMIT,
        help_text="Your platform's shop ids.",
    )

    def validate(self, attrs: dict) -> dict:
        total = len(attrs["codes"]) + len(attrs["shop_ids"])
        limit = settings.API_BULK_LIMIT
        field = "codes" if attrs["codes"] else "shop_ids"
        if total == 0:
            raise serializers.ValidationError({"codes": ["Send at least one code or shop id."]}, code="empty")
        if total > limit:
            raise serializers.ValidationError(
                {field: [f"At most {limit} codes and shop ids in one call; got {total}."]}, code="too_many"
            )
        return attrs


class LookupErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The code rule that failed, e.g. `uscc_check`.")
    message = serializers.CharField()


class LookupItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["code", "shop_id"])
    input = serializers.CharField(help_text="The code (normalised when valid) or the shop id.")
    result = serializers.ChoiceField(choices=["found", "not_found", "invalid"])
    trader = TraderStatusSerializer(allow_null=True)
    error = LookupErrorSerializer(allow_null=True)


class LookupResponseSerializer(serializers.Serializer):
    results = LookupItemSerializer(many=True, help_text="One per input: codes first, then shop ids.")
    found = serializers.IntegerField()
    not_found = serializers.IntegerField()
    invalid = serializers.IntegerField()


# --- change feed ----------------------------------------------------------------------------


class ChangesQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=BIGINT_MAX, default=0, help_text="The last seq you have seen (0 to start)."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=1000, default=100, help_text="How many entries at most (1-1000)."
    )


class SubjectSerializer(serializers.Serializer):
    type = serializers.CharField(source="subject_type")
    id = serializers.CharField(source="subject_id")


# Entries that record one platform's own dealings (its shop declarations, its enforcement
# acknowledgements): other platforms see that they happened, not what they say.
PLATFORM_PRIVATE_ACTIONS = frozenset({"shop.registered", "restriction.acknowledged"})


class FeedEntrySerializer(serializers.ModelSerializer):
    """Needs context["platform"]: the caller's Platform."""

    trader = serializers.SerializerMethodField(
        help_text="The trader's code; null for entries about no trader."
    )
    subject = SubjectSerializer(source="*")
    payload = serializers.SerializerMethodField(
        help_text="The entry's payload as it was recorded (and hashed) in the ledger; empty when withheld."
    )
    payload_withheld = serializers.SerializerMethodField(
        help_text="True for another platform's shop declaration or acknowledgement: you see that "
        "it happened, not its content."
    )
    leaf_hash = serializers.SerializerMethodField(
        help_text="The entry's leaf in the ledger's Merkle tree, SHA-256(0x00 ‖ its stored bytes), base64: "
        "check it is included under a signed checkpoint with /ledger/proofs/inclusion."
    )
    payload_redacted = serializers.SerializerMethodField(
        help_text="Payload keys left out because they are the regulator's internal record (which "
        "member of staff decided, the decision's internal note)."
    )

    class Meta:
        model = LedgerEntry
        fields = [
            "seq",
            "at",
            "action",
            "trader",
            "subject",
            "payload",
            "payload_withheld",
            "payload_redacted",
            "leaf_hash",
        ]
        read_only_fields = fields

    def get_trader(self, entry: LedgerEntry) -> str | None:
        return entry.trader_uscc or None

    def get_leaf_hash(self, entry: LedgerEntry) -> str:
        return leaf_hash_of(entry)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, entry: LedgerEntry) -> dict:
        return feed_payload(entry, self.context["platform"]).payload

    def get_payload_withheld(self, entry: LedgerEntry) -> bool:
        return feed_payload(entry, self.context["platform"]).withheld

    def get_payload_redacted(self, entry: LedgerEntry) -> list[str]:
        return feed_payload(entry, self.context["platform"]).redacted


# Keys that name a member of staff (a check-digit override names its supervisor), and the
# internal notes of decisions on violations: the regulator's own record, not part of what
# a platform must enforce.
STAFF_KEYS = frozenset({"decided_by", "overturned_by", "recorded_by", "filed_by", "check_override"})
INTERNAL_NOTE_ACTIONS = frozenset({"violation.confirmed", "violation.overturned"})


class FeedPayload(NamedTuple):
    payload: dict
    withheld: bool
    redacted: list[str]


def feed_payload(entry: LedgerEntry, platform) -> FeedPayload:
    """What a platform sees of an entry's payload."""
    if entry.action in PLATFORM_PRIVATE_ACTIONS and entry.payload.get("platform") != platform.code:
        # Fail closed: such an entry that does not name the caller's platform is withheld.
        return FeedPayload({}, True, [])
    hidden = STAFF_KEYS | ({"note"} if entry.action in INTERNAL_NOTE_ACTIONS else frozenset())
    redacted = sorted(hidden & entry.payload.keys())
    if not redacted:
        return FeedPayload(entry.payload, False, [])
    return FeedPayload({k: v for k, v in entry.payload.items() if k not in hidden}, False, redacted)


class FeedSerializer(serializers.Serializer):
    entries = FeedEntrySerializer(many=True)
    next = serializers.IntegerField(
        help_text="Pass as `after` next time: the last seq returned, or your `after` when none were."
    )
    has_more = serializers.BooleanField(help_text="More entries are waiting: ask again at once.")


# --- ledger ---------------------------------------------------------------------------------


class PublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    public_key = serializers.CharField(help_text="The raw Ed25519 public key, base64.")
    verifier_key = serializers.CharField(help_text="The signed-note verifier key: name+keyhash+base64 key.")
    key_id = serializers.CharField(help_text="The 4-byte key hash, hex.")
    origin = serializers.CharField(help_text="The checkpoint origin line, also the key's name.")
    retired_verifier_keys = serializers.ListField(
        child=serializers.CharField(),
        help_text="Verifier keys retired by a key rotation; the checkpoints they signed remain valid.",
    )


class CosignatureSerializer(serializers.Serializer):
    witness = serializers.CharField(source="witness.name", help_text="The witness's name (its key's name).")
    key_id = serializers.CharField(source="witness.key_id", help_text="The witness key's 4-byte id, hex.")
    timestamp = serializers.IntegerField(
        help_text="When the witness cosigned, POSIX seconds, as it states (and signs)."
    )
    signature = serializers.CharField(
        help_text="The signature line (C2SP tlog-cosignature, cosignature/v1), newline included."
    )


class CheckpointSerializer(serializers.ModelSerializer):
    cosignatures = CosignatureSerializer(
        many=True, read_only=True, help_text="Witnesses' cosignatures of this checkpoint, by witness name."
    )
    cosigned_note = serializers.SerializerMethodField(
        help_text="The signed note with the cosignature lines appended (C2SP signed-note): what a "
        "client that requires witnesses verifies."
    )

    class Meta:
        model = Checkpoint
        fields = [
            "seq",
            "kind",
            "root",
            "hash",
            "at",
            "origin",
            "key_id",
            "note",
            "cosignatures",
            "cosigned_note",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "seq": {"help_text": "The tree size: entries 1..seq are covered."},
            "kind": {
                "help_text": "`tree`: the note signs the Merkle root of entries 1..seq (RFC 6962). "
                "`chain`: signed before the tree existed; the note signs the chain hash of entry seq."
            },
            "root": {"help_text": "The Merkle tree root (hex) the note signs; empty for a chain checkpoint."},
            "hash": {"help_text": "The chain hash of entry `seq` (hex)."},
            "note": {"help_text": "The signed note, byte for byte (C2SP tlog-checkpoint)."},
        }

    def get_cosigned_note(self, checkpoint: Checkpoint) -> str:
        return checkpoint.note + "".join(c.signature for c in checkpoint.cosignatures.all())


class CheckpointsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=BIGINT_MAX, default=0, help_text="Checkpoints of trees larger than this size."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=1000, default=100, help_text="How many checkpoints at most (1-1000)."
    )


class CheckpointPageSerializer(serializers.Serializer):
    checkpoints = CheckpointSerializer(many=True)
    next = serializers.IntegerField(
        help_text="Pass as `after` next time: the last size returned, or your `after`."
    )
    has_more = serializers.BooleanField(help_text="More checkpoints are waiting: ask again at once.")


class InclusionQuerySerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, help_text="The entry (leaf seq - 1).")
    size = serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, help_text="The tree size, as a checkpoint states it; at least seq."
    )

    def validate(self, data):
        if data["size"] < data["seq"]:
            raise serializers.ValidationError(
                {"size": f"must be at least seq ({data['seq']}), got {data['size']}"}
            )
        return data


class InclusionProofSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField(help_text="seq - 1: the leaf's index in the tree.")
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField(help_text="SHA-256(0x00 ‖ the entry's stored bytes), base64.")
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="The audit path (RFC 9162 §2.1.3), leaf side first, base64."
    )


class ConsistencyQuerySerializer(serializers.Serializer):
    old = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, help_text="The older tree size.")
    new = serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, help_text="The newer tree size; at least old."
    )

    def validate(self, data):
        if data["new"] < data["old"]:
            raise serializers.ValidationError(
                {"new": f"must be at least old ({data['old']}), got {data['new']}"}
            )
        return data


class ConsistencyProofSerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="The consistency proof (RFC 9162 §2.1.4), base64."
    )


# --- the hot paths --------------------------------------------------------------------------
# Status lookups and feed pages are the API's most frequent answers. Building a
# ModelSerializer's fields costs more than the lookup's queries, so these functions render
# the same JSON directly. tests/api/test_read.py checks them against the serializers
# above, and the schemathesis test checks every answer against the schema.

_DATETIME = serializers.DateTimeField()  # the same formatting and time zone as the serializers


def _when(value, tz=None) -> str | None:
    """As DRF's DateTimeField writes it (tests hold the two equal): in the current time zone,
    isoformat, "Z" for UTC. `tz`: the zone, looked up once by a caller rendering many
    (a lookup per value was a fifth of a 1000-trader lookup's time)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return _DATETIME.to_representation(value)
    text = value.astimezone(tz or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _day(value) -> str | None:
    return None if value is None else value.isoformat()


def measure_data(restriction: Restriction, tz=None) -> dict:
    r = restriction
    return {
        "id": r.pk,
        "measure": r.measure,
        "state": r.state,
        "basis": r.basis,
        "reason_code": r.rule_code or r.basis,
        "policy_version": r.policy_version,
        "noticed_at": _when(r.noticed_at, tz),
        "objection_deadline": _when(r.objection_deadline, tz),
        "starts_at": _when(r.starts_at, tz),
        "ends_at": _when(r.ends_at, tz),
        "reasons": r.reasons,
    }


def shop_data(shop: Shop) -> dict:
    return {
        "platform_shop_id": shop.platform_shop_id,
        "name": shop.name,
        "url": shop.url,
        "opened_on": _day(shop.opened_on),
        "closed_on": _day(shop.closed_on),
    }


def trader_status_data(trader: Trader, tz=None) -> dict:
    t = trader
    tz = tz or timezone.get_current_timezone()
    return {
        "uscc": t.uscc,
        "name": t.name,
        "kind": t.kind,
        "kind_label": t.kind_label,
        "region": t.region,
        "region_name": t.region_name,
        "score": t.score,
        "grade": t.grade,
        "status": t.status,
        "version": t.version,
        "assessed_at": _when(t.assessed_at, tz),
        "measures": [measure_data(r, tz) for r in t.measures],
        "shops": [shop_data(s) for s in t.platform_shops],
    }


def lookup_item_data(item, tz=None) -> dict:
    """A selectors.LookupItem."""
    return {
        "kind": item.kind,
        "input": item.input,
        "result": item.result,
        "trader": None if item.trader is None else trader_status_data(item.trader, tz),
        "error": item.error,
    }


def feed_entry_data(entry: LedgerEntry, platform) -> dict:
    payload, withheld, redacted = feed_payload(entry, platform)
    return {
        "seq": entry.seq,
        "at": _when(entry.at),
        "action": entry.action,
        "trader": entry.trader_uscc or None,
        "subject": {"type": entry.subject_type, "id": entry.subject_id},
        "payload": payload,
        "payload_withheld": withheld,
        "payload_redacted": redacted,
        "leaf_hash": leaf_hash_of(entry),
    }


def leaf_hash_of(entry: LedgerEntry) -> str:
    """base64 of the entry's leaf hash: computed by the database (selectors.feed) or here."""
    leaf = getattr(entry, "leaf", None)
    if leaf is None:
        leaf = merkle.leaf_hash(bytes(entry.body))
    return base64.b64encode(bytes(leaf)).decode("ascii")
