"""Two-factor devices in the admin: read-only, with one action, the reset (a lost phone).

django-otp's own device admins would let a superuser add, edit or delete devices with no
ledger entry and show secrets; they are replaced by this list, whose only change goes
through services.otp_reset.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from creditledger.accounts import services
from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor

for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "confirmed",
        "created_at",
        "last_used_at",
        "throttling_failure_count",
        "backup_codes_left",
    )
    list_filter = ("confirmed",)
    search_fields = ("user__username",)
    list_select_related = ("user",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")
    readonly_fields = fields
    actions = ("reset_second_factor",)

    def get_queryset(self, request):
        codes = (
            StaticToken.objects.filter(device__user=OuterRef("user_id"))
            .order_by()
            .values("device__user")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(codes_left=Coalesce(Subquery(codes), 0))

    @admin.display(description=_("backup codes left"), ordering="codes_left")
    def backup_codes_left(self, obj) -> int:
        return obj.codes_left

    def has_add_permission(self, request) -> bool:
        return False  # staff enrol themselves at sign-in

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the reset action removes devices and records it

    def has_reset_permission(self, request) -> bool:
        return request.user.has_perm(services.RESET_PERMISSION)

    @admin.action(description=_("Reset two-factor sign-in (lost phone)"), permissions=["reset"])
    def reset_second_factor(self, request, queryset) -> None:
        actor = Actor.for_user(request.user)
        users = {device.user_id: device.user for device in queryset.select_related("user")}
        done = 0
        for user in users.values():
            try:
                services.otp_reset(actor=actor, user=user, reason="admin")
            except ApplicationError as exc:
                self.message_user(request, f"{user}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            message = ngettext(
                "Reset the second factor of %(count)d user: they set up a new app at their next sign-in.",
                "Reset the second factor of %(count)d users: they set up a new app at their next sign-in.",
                done,
            ) % {"count": done}
            self.message_user(request, message, messages.SUCCESS)
