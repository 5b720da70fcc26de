"""Input and output shapes of the platform API's writes: reports, shops, acknowledgements."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from penalties.models import Evidence, RestrictionAck, Violation, ViolationType
from traders import uscc as uscc_rules
from traders.models import Shop, Trader

# --- reports -------------------------------------------------------------------------------


class ReportInputSerializer(serializers.Serializer):
    """A suspected violation. Name the trader by code, or by one of your shops, or both."""

    trader = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text=_("The trader's unified social credit code."),
    )
    shop = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text=_("Your platform's id of the shop the violation happened in."),
    )
    type = serializers.CharField(max_length=48, help_text=_("A violation type code from the catalogue."))
    occurred_on = serializers.DateField(help_text=_("When it happened; not in the future."))
    description = serializers.CharField(max_length=10_000)
    goods_value = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text=_("Value of the goods concerned, in CNY."),
    )

    def validate_trader(self, value: str) -> Trader | None:
        if not value:
            return None
        try:
            code = uscc_rules.parse(value, allow_bad_check=True).code
        except uscc_rules.USCCError as exc:
            raise serializers.ValidationError(
                _("Invalid unified social credit code: %s.") % exc.message
            ) from exc
        trader = Trader.objects.filter(uscc=code).first()
        if trader is None:
            raise serializers.ValidationError(_("No trader with this code is registered."))
        return trader

    def validate_shop(self, value: str) -> Shop | None:
        if not value:
            return None
        shop = (
            Shop.objects.select_related("trader", "platform")
            .filter(platform=self.context["platform"], platform_shop_id=value.strip())
            .first()
        )
        if shop is None:
            raise serializers.ValidationError(_("Your platform has declared no shop with this id."))
        return shop

    def validate_type(self, value: str) -> ViolationType:
        vtype = ViolationType.objects.filter(code=value.strip()).first()
        if vtype is None:
            raise serializers.ValidationError(_("Unknown violation type."))
        return vtype

    def validate(self, attrs: dict) -> dict:
        trader, shop = attrs.get("trader"), attrs.get("shop")
        if trader is None and shop is None:
            raise serializers.ValidationError({"trader": [_("Name the trader, or the shop, or both.")]})
        if trader is None:
            attrs["trader"] = shop.trader
        elif shop is not None and shop.trader_id != trader.pk:
            raise serializers.ValidationError({"shop": [_("This shop is not operated by this trader.")]})
        return attrs


class ReportMultipartSerializer(ReportInputSerializer):
    """The multipart form of a report: the same fields, and the evidence files."""

    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text=_("Evidence files (repeat the field); each at most EVIDENCE_MAX_BYTES."),
    )


class EvidenceSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")

    class Meta:
        model = Evidence
        fields = ["name", "sha256", "size", "content_type", "uploaded_at"]


class ReportLinksSerializer(serializers.Serializer):
    self = serializers.CharField()


class ReportSerializer(serializers.ModelSerializer):
    """A report's state: pending until reviewed, then confirmed or rejected; a confirmed one
    may later be overturned on appeal. Only a confirmed violation counts for the score."""

    trader = serializers.CharField(source="trader.uscc")
    shop = serializers.CharField(source="shop.platform_shop_id", allow_null=True, default=None)
    type = serializers.CharField(source="type.code")
    received_at = serializers.DateTimeField(source="recorded_at")
    evidence = EvidenceSerializer(many=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Violation
        fields = [
            "id",
            "status",
            "trader",
            "shop",
            "type",
            "occurred_on",
            "description",
            "goods_value",
            "received_at",
            "decided_at",
            "decision_note",
            "evidence",
            "links",
        ]

    @extend_schema_field(ReportLinksSerializer)
    def get_links(self, obj: Violation) -> dict:
        return {"self": reverse("api:report-detail", args=[obj.pk])}


# --- shops ---------------------------------------------------------------------------------


class ShopItemSerializer(serializers.Serializer):
    platform_shop_id = serializers.CharField(max_length=64)
    trader_uscc = serializers.CharField(
        max_length=32, help_text=_("The operator's unified social credit code.")
    )
    trader_name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text=_("Required when the code is not registered yet: the trader is registered under it."),
    )
    shop_name = serializers.CharField(max_length=200)
    url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    opened_on = serializers.DateField(required=False, allow_null=True)
    closed_on = serializers.DateField(required=False, allow_null=True)


class ShopsDeclareSerializer(serializers.Serializer):
    items = ShopItemSerializer(many=True, allow_empty=False, max_length=settings.API_BULK_LIMIT)


class ShopDeclaredSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    platform_shop_id = serializers.CharField(source="shop.platform_shop_id")
    trader_uscc = serializers.CharField(source="shop.trader.uscc")
    result = serializers.ChoiceField(choices=["created", "updated", "unchanged"])
    trader_registered = serializers.BooleanField()
    changes = serializers.DictField(help_text=_('Per changed field: {"from": old, "to": new}.'))


class ShopsDeclaredSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    traders_registered = serializers.IntegerField()
    items = ShopDeclaredSerializer(many=True)


# --- acknowledgements ----------------------------------------------------------------------


class OffsetDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that states its UTC offset: a time without one is ambiguous (the
    platform's clock or ours?) and is refused rather than read in the server's zone."""

    default_error_messages = {
        "offset_required": _("State the UTC offset (e.g. 2026-11-14T10:00:00+08:00 or ...Z)."),
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = parse_datetime(value.strip())
            if parsed is not None and parsed.tzinfo is None:
                self.fail("offset_required")
        return super().to_internal_value(value)


class AckInputSerializer(serializers.Serializer):
    enforced_at = OffsetDateTimeField(
        help_text=_("When your platform enforced the measure (ISO 8601 with offset); not in the future.")
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AckSerializer(serializers.ModelSerializer):
    restriction = serializers.IntegerField(source="restriction.pk")
    trader = serializers.CharField(source="restriction.trader.uscc")
    measure = serializers.CharField(source="restriction.measure")
    state = serializers.CharField(source="restriction.state")
    platform = serializers.CharField(source="platform.code")

    class Meta:
        model = RestrictionAck
        fields = [
            "id",
            "restriction",
            "trader",
            "measure",
            "state",
            "platform",
            "enforced_at",
            "acknowledged_at",
            "note",
        ]


# --- witnesses' cosignatures ------------------------------------------------------------------


class CosignatureInputSerializer(serializers.Serializer):
    size = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text=_("The size of the checkpoint cosigned (its `seq`).")
    )
    cosignature = serializers.CharField(
        max_length=512,
        trim_whitespace=False,
        help_text=_(
            "The witness's signature line for that checkpoint: `— <name> <base64(key id ‖ timestamp ‖ "
            "signature)>` (C2SP tlog-cosignature, cosignature/v1)."
        ),
    )


class CosignatureRecordedSerializer(serializers.Serializer):
    checkpoint = serializers.IntegerField(help_text=_("The size of the checkpoint cosigned."))
    witness = serializers.CharField(help_text=_("The witness: name+key id."))
    timestamp = serializers.IntegerField(help_text=_("The time the witness stated, POSIX seconds."))
