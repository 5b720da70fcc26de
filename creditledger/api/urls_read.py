"""Read endpoints under /api/v1/ (scope status:read; the ledger's two need only a valid key)."""

from __future__ import annotations

from django.urls import path

from creditledger.api import views_ledger, views_read

urlpatterns = [
    # Before traders/<uscc>, which would otherwise take "lookup" for a code.
    path("traders/lookup", views_read.TraderLookupView.as_view(), name="traders-lookup"),
    path("traders/", views_read.TraderByShopView.as_view(), name="traders-by-shop"),
    path("traders/<str:uscc>", views_read.TraderDetailView.as_view(), name="trader-detail"),
    path("changes/", views_read.ChangesView.as_view(), name="changes"),
    path("ledger/public-key", views_read.PublicKeyView.as_view(), name="ledger-public-key"),
    path(
        "ledger/checkpoints/latest",
        views_read.LatestCheckpointView.as_view(),
        name="ledger-checkpoint-latest",
    ),
    path("ledger/checkpoints/", views_ledger.CheckpointListView.as_view(), name="ledger-checkpoints"),
    path("ledger/proofs/inclusion", views_ledger.InclusionProofView.as_view(), name="ledger-proof-inclusion"),
    path(
        "ledger/proofs/consistency",
        views_ledger.ConsistencyProofView.as_view(),
        name="ledger-proof-consistency",
    ),
]
