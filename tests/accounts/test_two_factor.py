from __future__ import annotations

import html
import re
from base64 import b32decode
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.urls import get_resolver, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from creditledger.accounts import services
from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from tests.conftest import totp_device
from traders.models import Trader

pytestmark = pytest.mark.django_db

VERIFY = "/account/two-factor/"
SETUP = "/account/two-factor/setup/"
BACKUP = "/account/two-factor/backup-codes/"
STAFF_NAMESPACES = ("admin", "audit", "penalties")


def code_for(device: TOTPDevice) -> str:
    token = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    return str(token).zfill(device.digits)


def wrong_code_for(device: TOTPDevice) -> str:
    right = code_for(device)
    return "000000" if right != "000000" else "111111"


def actions(user) -> list[str]:
    return list(
        LedgerEntry.objects.filter(subject_type="user", subject_id=str(user.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def is_verified_session(client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


# --- the gate --------------------------------------------------------------------------------


def _sample(param: str) -> str:
    return "penalties" if param == "app_label" else "1"


def staff_urls() -> list[str]:
    """One concrete path for every named URL of the admin, the audit pages and penalties."""
    resolver = get_resolver()
    paths = set()
    for namespace in STAFF_NAMESPACES:
        prefix, sub = resolver.namespace_dict[namespace]
        for name, possibilities in sub.reverse_dict.lists():
            if not isinstance(name, str):
                continue
            for bits, _pattern, _defaults, _converters in possibilities:
                for template, params in bits:
                    paths.add("/" + prefix + template % {p: _sample(p) for p in params})
    return sorted(paths)


def test_the_staff_url_list_covers_the_admin_the_audit_pages_and_evidence():
    urls = staff_urls()
    assert len(urls) > 100
    assert {"/admin/", "/admin/penalties/violation/", "/audit/", "/penalties/evidence/1/download"} <= set(
        urls
    )


def test_no_staff_url_serves_a_session_without_a_verified_second_factor(
    unverified_client, officer, supervisor
):
    totp_device(supervisor)  # enrolled but not verified in this session
    for user, target in ((officer, SETUP), (supervisor, VERIFY)):
        unverified_client.force_login(user)
        assert not is_verified_session(unverified_client)
        for url in staff_urls():
            if url in ("/admin/login/", "/admin/logout/"):
                continue
            response = unverified_client.get(url)
            assert response.status_code == 302, url
            location = urlsplit(response["Location"])
            assert location.path == target, url
            assert parse_qs(location.query)["next"] == [url], url
            assert unverified_client.head(url).status_code == 302, url
            assert unverified_client.post(url, {}).status_code == 403, url
        unverified_client.logout()


def test_a_refused_post_changes_nothing(unverified_client, officer):
    unverified_client.force_login(officer)
    response = unverified_client.post(
        "/admin/traders/trader/add/", {"uscc": "91350100M000100Y43", "name": "Gate test"}
    )
    assert response.status_code == 403
    assert not Trader.objects.exists()


def test_the_admin_site_refuses_an_unverified_session_even_without_the_gate(
    settings, unverified_client, officer
):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "StaffTwoFactorMiddleware" not in m]
    totp_device(officer)
    unverified_client.force_login(officer)
    for url in ("/admin/", "/admin/penalties/violation/", "/admin/traders/trader/add/"):
        response = unverified_client.get(url)
        assert response.status_code == 302, url
        assert urlsplit(response["Location"]).path == "/admin/login/", url


def test_open_pages_stay_open_for_an_unverified_session(unverified_client, officer):
    unverified_client.force_login(officer)
    assert unverified_client.get("/admin/login/").status_code == 200
    assert unverified_client.get(SETUP).status_code == 200
    assert unverified_client.get("/ledger/checkpoints/latest").status_code != 302
    # The platform API authenticates by key, not by session: no detour to the staff pages.
    api = unverified_client.get("/api/v1/traders/91350100M000100Y43")
    assert api.status_code in (401, 403) and api["Content-Type"].startswith("application/json")


def test_anonymous_visitors_still_go_to_the_password_page(client):
    response = client.get("/admin/penalties/violation/")
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/admin/login/"


def test_force_login_in_tests_gives_a_verified_session(client, officer):
    client.force_login(officer)
    assert is_verified_session(client)
    home = client.get("/admin/")
    assert home.status_code == 200
    assert f'href="{BACKUP}"' in home.content.decode()  # the way to new backup codes


# --- enrolment -------------------------------------------------------------------------------


def test_enrolment_end_to_end_with_a_real_code(unverified_client, officer):
    unverified_client.force_login(officer)
    first = unverified_client.get("/admin/penalties/violation/")
    assert first.status_code == 302 and first["Location"].startswith(SETUP)

    page = unverified_client.get(first["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', body).group(1)
    assert "<svg" in body and "otpauth://totp/" in html.unescape(body)
    assert unverified_client.get(first["Location"]).content.decode().count(secret) >= 1  # same key on reload
    assert TOTPDevice.objects.filter(user=officer, confirmed=False).count() == 1

    key = b32decode(secret)
    code = str(TOTP(key, 30, 0, 6, 0).token()).zfill(6)
    done = unverified_client.post(
        first["Location"], {"otp_token": code, "next": "/admin/penalties/violation/"}
    )
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'href="/admin/penalties/violation/"' in done.content.decode()
    assert done["Cache-Control"].startswith("max-age=0") or "no-store" in done["Cache-Control"]

    device = TOTPDevice.objects.get(user=officer)
    assert device.confirmed and device.bin_key == key
    assert sorted(StaticToken.objects.filter(device__user=officer).values_list("token", flat=True)) == sorted(
        codes
    )
    assert is_verified_session(unverified_client)
    assert unverified_client.get("/admin/penalties/violation/").status_code == 200
    assert actions(officer) == [
        "staff.otp_enrolment_started",
        "staff.otp_enrolled",
        "staff.backup_codes_issued",
    ]
    # No secret and no code in the ledger.
    ledger_text = " ".join(bytes(e.body).decode() for e in LedgerEntry.objects.all())
    assert secret not in ledger_text and device.key not in ledger_text
    assert not any(c in ledger_text for c in codes)


def test_enrolment_refuses_a_wrong_code_and_counts_it(unverified_client, officer):
    unverified_client.force_login(officer)
    unverified_client.get(SETUP)
    device = TOTPDevice.objects.get(user=officer)
    response = unverified_client.post(SETUP, {"otp_token": wrong_code_for(device)})
    assert response.status_code == 200
    assert "The code is not valid" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed and device.throttling_failure_count == 1
    assert not StaticDevice.objects.filter(user=officer).exists()
    assert not is_verified_session(unverified_client)


def test_the_setup_page_is_closed_once_enrolled(unverified_client, officer):
    totp_device(officer)
    unverified_client.force_login(officer)
    response = unverified_client.get(SETUP + "?next=/audit/")
    assert response.status_code == 302 and response["Location"] == VERIFY + "?next=%2Faudit%2F"
    with pytest.raises(ApplicationError):
        services.otp_enrol_start(user=officer)


# --- verification ----------------------------------------------------------------------------


def test_it_verifies_with_a_totp_code_and_returns_to_next(unverified_client, officer):
    device = totp_device(officer)
    unverified_client.force_login(officer)
    redirect = unverified_client.get("/admin/")
    assert redirect["Location"] == VERIFY + "?next=%2Fadmin%2F"
    assert unverified_client.get(redirect["Location"]).status_code == 200
    key_before = unverified_client.session.session_key

    response = unverified_client.post(VERIFY, {"otp_token": code_for(device), "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert is_verified_session(unverified_client)
    assert unverified_client.session.session_key != key_before  # a new session key on elevation
    assert unverified_client.get("/admin/").status_code == 200
    entry = LedgerEntry.objects.get(action="staff.otp_verified")
    assert entry.actor == f"user:{officer.pk}" and entry.payload["method"] == "totp"


def test_a_code_with_spaces_is_accepted(unverified_client, officer):
    device = totp_device(officer)
    unverified_client.force_login(officer)
    code = code_for(device)
    response = unverified_client.post(VERIFY, {"otp_token": f" {code[:3]} {code[3:]} "})
    assert response.status_code == 302


def test_a_backup_code_works_once(unverified_client, officer):
    totp_device(officer)
    codes = services.backup_codes_issue(actor=Actor.system("test"), user=officer)
    unverified_client.force_login(officer)
    response = unverified_client.post(VERIFY, {"otp_token": codes[3].upper(), "next": "/audit/"})
    assert response.status_code == 302 and response["Location"] == "/audit/"
    assert LedgerEntry.objects.get(action="staff.otp_verified").payload["backup_codes_left"] == 9
    assert StaticToken.objects.filter(device__user=officer).count() == 9

    unverified_client.logout()
    unverified_client.force_login(officer)
    again = unverified_client.post(VERIFY, {"otp_token": codes[3]})
    assert again.status_code == 200
    assert "The code is not valid" in again.content.decode()
    assert not is_verified_session(unverified_client)
    assert unverified_client.get("/admin/").status_code == 302


def test_a_wrong_code_is_refused_and_throttling_stays_on(unverified_client, officer):
    device = totp_device(officer)
    unverified_client.force_login(officer)
    response = unverified_client.post(VERIFY, {"otp_token": wrong_code_for(device)})
    assert response.status_code == 200 and "The code is not valid" in response.content.decode()
    assert not is_verified_session(unverified_client)
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert LedgerEntry.objects.get(action="staff.otp_failed").payload["failures"] == 1
    # Right after a failure, even the right code waits (django-otp's exponential back-off).
    throttled = unverified_client.post(VERIFY, {"otp_token": code_for(device)})
    assert throttled.status_code == 200 and "Too many wrong codes" in throttled.content.decode()
    assert not is_verified_session(unverified_client)


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/admin/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_next_never_leaves_the_site(unverified_client, officer, next_url):
    device = totp_device(officer)
    unverified_client.force_login(officer)
    response = unverified_client.post(VERIFY, {"otp_token": code_for(device), "next": next_url})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    # Already verified: the page sends the user on, still never off-site.
    again = unverified_client.get(VERIFY, {"next": next_url})
    assert again["Location"] == "/admin/"


def test_the_two_factor_pages_want_the_password_step_first(client):
    for url in (VERIFY, SETUP, BACKUP):
        response = client.get(url)
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == reverse("admin:login")


# --- backup codes ----------------------------------------------------------------------------


def test_new_backup_codes_after_a_fresh_totp_code(client, officer):
    client.force_login(officer)
    device = totp_device(officer)
    old = services.backup_codes_issue(actor=Actor.system("test"), user=officer)
    assert client.get(BACKUP).status_code == 200
    refused = client.post(BACKUP, {"otp_token": old[0]})  # a backup code does not renew backup codes
    assert refused.status_code == 200 and not re.search(r"<li><code>", refused.content.decode())
    response = client.post(BACKUP, {"otp_token": code_for(device)})
    assert response.status_code == 200
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert set(StaticToken.objects.filter(device__user=officer).values_list("token", flat=True)) == set(new)
    assert actions(officer)[-1] == "staff.backup_codes_issued"


def test_backup_codes_page_wants_a_verified_session(unverified_client, officer):
    totp_device(officer)
    unverified_client.force_login(officer)
    response = unverified_client.get(BACKUP)
    assert response["Location"] == VERIFY + "?next=%2Faccount%2Ftwo-factor%2Fbackup-codes%2F"


def test_backup_codes_need_an_authenticator_first(officer):
    with pytest.raises(ApplicationError):
        services.backup_codes_issue(actor=Actor.system("test"), user=officer)


# --- reset -----------------------------------------------------------------------------------


def test_otp_reset_removes_the_devices_and_ends_verified_sessions(client, officer):
    client.force_login(officer)
    services.backup_codes_issue(actor=Actor.system("test"), user=officer)
    assert client.get("/admin/").status_code == 200
    call_command("otp_reset", "officer", "--reason", "lost phone, ticket 42")
    assert not TOTPDevice.objects.filter(user=officer).exists()
    assert not StaticDevice.objects.filter(user=officer).exists()
    entry = LedgerEntry.objects.get(action="staff.otp_reset")
    assert entry.actor == "system:manage.otp_reset"
    assert entry.payload == {"username": "officer", "devices_removed": 2, "reason": "lost phone, ticket 42"}
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(SETUP)


def test_otp_reset_names_an_unknown_user():
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("otp_reset", "nobody")


def test_only_a_superuser_resets_a_second_factor(officer, supervisor):
    totp_device(officer)
    with pytest.raises(PermissionDenied):
        services.otp_reset(actor=Actor.for_user(supervisor), user=officer)
    assert TOTPDevice.objects.filter(user=officer).exists()


def test_a_superuser_resets_a_second_factor_from_the_admin(client, officer):
    from tests import factories

    boss = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    device = totp_device(officer)
    services.backup_codes_issue(actor=Actor.system("test"), user=officer)
    listing = client.get("/admin/otp_totp/totpdevice/")
    assert listing.status_code == 200
    assert device.key not in listing.content.decode()
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 200  # read-only view
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    response = client.post(
        "/admin/otp_totp/totpdevice/",
        {"action": "reset_second_factor", "_selected_action": [device.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=officer).exists()
    assert not StaticDevice.objects.filter(user=officer).exists()
    entry = LedgerEntry.objects.get(action="staff.otp_reset")
    assert entry.actor == f"user:{boss.pk}" and entry.subject_id == str(officer.pk)


def test_staff_roles_cannot_see_or_reset_devices(client, supervisor):
    client.force_login(supervisor)
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 403


def test_only_demo_setup_enrols_a_device_without_a_code(officer, supervisor):
    with pytest.raises(PermissionDenied):
        services.otp_enrol_for_demo(actor=Actor.for_user(supervisor), user=officer)
    assert not TOTPDevice.objects.filter(user=officer).exists()


def test_the_verify_page_sends_a_user_without_a_device_to_set_up(unverified_client, officer):
    unverified_client.force_login(officer)
    response = unverified_client.get(VERIFY, {"next": "/audit/"})
    assert response["Location"] == SETUP + "?next=%2Faudit%2F"


def test_settings_put_the_gate_after_authentication_and_swap_in_the_staff_admin_site():
    from django.conf import settings
    from django.contrib import admin

    from creditledger.accounts.admin_site import StaffAdminSite

    middleware = list(settings.MIDDLEWARE)
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    otp = middleware.index("django_otp.middleware.OTPMiddleware")
    gate = middleware.index("creditledger.accounts.middleware.StaffTwoFactorMiddleware")
    assert auth < otp < gate
    assert "django.contrib.admin" not in settings.INSTALLED_APPS
    assert isinstance(admin.site, StaffAdminSite)


def test_an_unverified_session_can_sign_out(unverified_client, officer):
    totp_device(officer)
    unverified_client.force_login(officer)
    page = unverified_client.get(VERIFY)
    assert 'action="/admin/logout/"' in page.content.decode()
    response = unverified_client.post("/admin/logout/")
    assert response.status_code == 200  # the admin's "logged out" page
    assert "_auth_user_id" not in unverified_client.session
    assert urlsplit(unverified_client.get("/admin/")["Location"]).path == "/admin/login/"
