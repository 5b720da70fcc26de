"""System checks of the platform API's webhooks (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register("webhooks", deploy=True)
def webhook_guard_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Production sends notices over HTTPS to public addresses only. WEBHOOK_ALLOW_LOOPBACK
    (which also admits http:// to loopback) and WEBHOOK_ALLOW_PRIVATE are for tests,
    development and closed networks; on a deployment they are worth a second look."""
    found = []
    if settings.WEBHOOK_ALLOW_LOOPBACK:
        found.append(
            checks.Warning(
                "WEBHOOK_ALLOW_LOOPBACK is on: webhook endpoints may point at this machine, over plain http://.",
                hint="Leave it off in production; it is for tests and a developer's machine.",
                id="api.W001",
            )
        )
    if settings.WEBHOOK_ALLOW_PRIVATE:
        found.append(
            checks.Warning(
                "WEBHOOK_ALLOW_PRIVATE is on: webhook endpoints may point into private networks.",
                hint="Only for a closed network whose platforms' receivers are private; see docs/deploy.md.",
                id="api.W002",
            )
        )
    return found
