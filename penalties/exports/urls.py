from __future__ import annotations

from django.urls import path

from penalties.exports import views

app_name = "audit"
urlpatterns = [
    path("", views.index, name="index"),
    path("reports/<slug:name>/", views.request_export, name="request"),
    path("exports/<int:pk>/download", views.download, name="download"),
    path("exports/<int:pk>/manifest", views.download_manifest, name="manifest"),
]
