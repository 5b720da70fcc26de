from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from creditledger.ops import health, metrics

# Evidence files are never served from MEDIA_URL: only penalties' download view, which
# checks the permission, hands them out.
# The staff pages' name, in the staff's language (Django's default is "Django administration").
admin.site.site_header = _("Online trader credit records")
admin.site.site_title = _("Trader credit records")

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ledger/", include("creditledger.ledger.urls")),
    path("penalties/", include("penalties.urls")),
    path("api/", include("creditledger.api.urls")),
    path("audit/", include("penalties.exports.urls")),
    path("admin/", admin.site.urls),
    # The second sign-in step (outside the staff gate: the gate sends people here).
    path("account/", include("creditledger.accounts.urls")),
    # Also answered ahead of the host and HTTPS checks by ops.middleware.OpsEndpointsMiddleware.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
