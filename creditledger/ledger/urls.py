from __future__ import annotations

from django.urls import path

from creditledger.ledger import views

app_name = "ledger"
urlpatterns = [
    path("public-key", views.public_key, name="public-key"),
    path("checkpoints/latest", views.latest_checkpoint, name="checkpoint-latest"),
]
