from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PenaltiesConfig(AppConfig):
    name = "penalties"
    verbose_name = _("Violations and measures")
    default_auto_field = "django.db.models.BigAutoField"
