from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "creditledger.api"
    label = "api"
    verbose_name = _("Platform API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from creditledger.api import checks  # noqa: F401  (registers the system checks)
