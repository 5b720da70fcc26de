from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TradersConfig(AppConfig):
    name = "traders"
    verbose_name = _("Traders")
    default_auto_field = "django.db.models.BigAutoField"
