"""The write side of /api/v1/: reports, shop declarations, acknowledgements."""

from __future__ import annotations

from django.urls import path

from creditledger.api import views_ledger, views_write

urlpatterns = [
    path("reports/", views_write.ReportCreateApi.as_view(), name="report-create"),
    path("reports/<int:pk>", views_write.ReportDetailApi.as_view(), name="report-detail"),
    path("shops/", views_write.ShopsDeclareApi.as_view(), name="shops-declare"),
    path("restrictions/<int:pk>/ack", views_write.RestrictionAckApi.as_view(), name="restriction-ack"),
    path(
        "ledger/cosignatures/", views_ledger.CosignatureCreateApi.as_view(), name="ledger-cosignature-create"
    ),
]
