from __future__ import annotations

from django.urls import path

from creditledger.accounts import views

urlpatterns = [
    path("two-factor/", views.verify, name="otp-verify"),
    path("two-factor/setup/", views.setup, name="otp-setup"),
    path("two-factor/backup-codes/", views.backup_codes, name="otp-backup-codes"),
]
