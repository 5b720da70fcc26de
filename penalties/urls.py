from __future__ import annotations

from django.urls import path

from penalties import views

app_name = "penalties"
urlpatterns = [
    path("evidence/<int:pk>/download", views.evidence_download, name="evidence-download"),
]
