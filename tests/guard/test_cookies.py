"""Session and CSRF cookies: attributes from settings, names with __Host- when secure."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.guard.conftest import PASSWORD, sign_in
from tests.test_settings import _start

pytestmark = pytest.mark.django_db


def test_the_sign_in_cookies_carry_their_attributes(alice, settings):
    client = Client()
    page = client.get("/admin/login/")
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["samesite"] == "Lax" and csrf["httponly"] is True and csrf["path"] == "/"

    sign_in(client, "alice", PASSWORD, "10.0.0.1")
    session = client.cookies[settings.SESSION_COOKIE_NAME]
    assert session["samesite"] == "Lax" and session["httponly"] is True
    # A browser-session cookie: gone when the browser closes (the server still ends it
    # after SESSION_COOKIE_AGE).
    assert not session["expires"] and not session["max-age"]


def test_secure_cookies_are_named_with_the_host_prefix_and_sent_over_https_only(settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.CSRF_COOKIE_NAME = "__Host-csrftoken"
    response = Client().get("/admin/login/", secure=True)
    cookie = response.cookies["__Host-csrftoken"]
    assert cookie["secure"] is True and cookie["path"] == "/" and not cookie["domain"]


def test_a_production_environment_gets_host_prefixed_names(tmp_path):
    result = _start(
        tmp_path,
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME, s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_HTTPONLY, "
        "s.SESSION_EXPIRE_AT_BROWSER_CLOSE)",
        DEBUG="0",
        SECRET_KEY="k" * 50,
        ALLOWED_HOSTS="creditledger.example.gov.cn",
        SESSION_COOKIE_SAMESITE="Strict",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["__Host-sessionid", "__Host-csrftoken", "Strict", "True", "True"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSION_COOKIE_SAMESITE", "Sometimes"),
        ("CSRF_COOKIE_SAMESITE", "None"),  # needs Secure, which DEBUG turns off
        ("SESSION_COOKIE_NAME", "__Host-sessionid"),  # needs Secure
        ("AXES_FAILURE_LIMIT", "0"),
        ("AXES_COOLOFF", "a while"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_a_bad_security_value_stops_start_up_naming_the_variable(tmp_path, variable, value):
    result = _start(tmp_path, DEBUG="1", **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
