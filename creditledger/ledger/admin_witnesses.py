"""Witnesses and cosignatures in the admin. Registering and retiring a witness go through
witness_services (each a ledger entry); cosignatures are evidence, never edited here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Max
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import ReadOnlyAdminMixin, ServiceAdminMixin, ServiceForm
from creditledger.ledger.models import Cosignature, Witness
from creditledger.ledger.witness_services import witness_register, witness_retire


class WitnessRegisterForm(ServiceForm):
    class Meta:
        model = Witness
        fields = ("vkey", "description")
        help_texts = {
            "vkey": _(
                "The witness's verifier key as `manage.py ledger_witness --generate` printed it: "
                "name+key id+base64 key (cosignature/v1). Take it from the witness itself."
            )
        }

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Witness:
        return witness_register(actor=actor, vkey=data["vkey"], description=data.get("description", ""))


@admin.register(Witness)
class WitnessAdmin(ServiceAdminMixin, admin.ModelAdmin):
    add_form = WitnessRegisterForm
    list_display = ("name", "key_id", "description", "is_active", "created_at", "cosigned", "newest")
    list_filter = ("is_active",)
    search_fields = ("name", "=key_id")
    readonly_fields = ("name", "key_id", "vkey", "description", "is_active", "created_at")
    actions = ["retire"]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(cosigned_count=Count("cosignatures"), newest_seq=Max("cosignatures__checkpoint__seq"))
        )

    def get_fields(self, request: HttpRequest, obj: Witness | None = None):
        return ("vkey", "description") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Witness | None = None):
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its cosignatures must stay checkable: retire it instead

    @admin.display(description=_("cosignatures"), ordering="cosigned_count")
    def cosigned(self, obj: Witness) -> int:
        return obj.cosigned_count

    @admin.display(description=_("newest checkpoint cosigned"), ordering="newest_seq")
    def newest(self, obj: Witness) -> int | None:
        return obj.newest_seq

    @admin.action(description=_("Retire the selected witnesses (accept no new cosignatures)"))
    def retire(self, request: HttpRequest, queryset) -> None:
        actor = Actor.for_user(request.user)
        for witness in queryset:
            witness_retire(actor=actor, witness=witness)
        messages.success(request, _("Retired %(count)d witness(es).") % {"count": len(queryset)})


@admin.register(Cosignature)
class CosignatureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("checkpoint_seq", "witness", "cosigned_at", "received_at")
    list_filter = ("witness",)
    list_select_related = ("checkpoint", "witness")
    search_fields = ("=checkpoint__seq",)
    ordering = ("-checkpoint__seq", "witness__name")
    show_full_result_count = False
    fields = ("checkpoint", "witness", "cosigned_at", "received_at", "signature_display", "note_display")
    readonly_fields = fields

    @admin.display(description=_("checkpoint"), ordering="checkpoint__seq")
    def checkpoint_seq(self, obj: Cosignature) -> int:
        return obj.checkpoint.seq

    @admin.display(description=_("cosigned at (as the witness states)"), ordering="timestamp")
    def cosigned_at(self, obj: Cosignature) -> dt.datetime:
        return dt.datetime.fromtimestamp(obj.timestamp, dt.UTC)

    @admin.display(description=_("signature line"))
    def signature_display(self, obj: Cosignature) -> str:
        return format_html('<pre class="wrapped" translate="no">{}</pre>', obj.signature)

    @admin.display(description=_("checkpoint note cosigned"))
    def note_display(self, obj: Cosignature) -> str:
        return format_html('<pre class="wrapped" translate="no">{}</pre>', obj.note)


__all__ = ["CosignatureAdmin", "WitnessAdmin"]
