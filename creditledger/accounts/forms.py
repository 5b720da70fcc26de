from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class OTPTokenForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code"),
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false", "size": 12}
        ),
    )
