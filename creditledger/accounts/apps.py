from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Staff sign-in's second step: TOTP enrolment, verification and backup codes."""

    name = "creditledger.accounts"
    label = "accounts"
    verbose_name = _("Staff accounts")


class StaffAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with a site that also wants a verified second factor.

    Listed in INSTALLED_APPS in place of django.contrib.admin (see settings.py).
    """

    default = False
    default_site = "creditledger.accounts.admin_site.StaffAdminSite"
