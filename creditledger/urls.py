from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

# Evidence files are never served from MEDIA_URL: only penalties' download view, which
# checks the permission, hands them out.
urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ledger/", include("creditledger.ledger.urls")),
    path("penalties/", include("penalties.urls")),
    path("api/", include("creditledger.api.urls")),
    path("admin/", admin.site.urls),
]
