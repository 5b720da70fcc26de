from __future__ import annotations

from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "creditledger.guard"
    label = "guard"
    verbose_name = "Sign-in guard"

    def ready(self) -> None:
        from creditledger.guard import receivers

        receivers.connect()
