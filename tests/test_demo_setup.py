from __future__ import annotations

import io
import re
from base64 import b32decode, b32encode

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from penalties.demo.examples import EXAMPLE_SHOP, EXAMPLE_USCC
from penalties.models import Violation
from traders.models import Shop, Trader

pytestmark = pytest.mark.django_db

LOGIN_LINE = re.compile(r"^  (\S+) +(\S+) +(Officer|Supervisor|Auditor) ", re.MULTILINE)
KEY_LINE = re.compile(r"^  (\S+) +key ([A-Z2-7]+) ", re.MULTILINE)
CODES_LINE = re.compile(r"backup codes \(shown once\): ([a-z2-7 ]+)$", re.MULTILINE)
ROLES = {"officer": "Officer", "officer2": "Officer", "supervisor": "Supervisor", "auditor": "Auditor"}


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.DEBUG = True  # what `make run` sets
    settings.VAR_DIR = tmp_path
    # Hashing strength is not under test here; the default hasher makes each login ~0.3 s.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


def demo_setup(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_setup", "--traders", "6", "--violations", "20", *args, stdout=out)
    return out.getvalue()


def printed_logins(output: str) -> dict[str, tuple[str, str]]:
    return {username: (password, role) for username, password, role in LOGIN_LINE.findall(output)}


def test_it_creates_one_staff_login_per_role_in_its_group(demo_settings):
    logins = printed_logins(demo_setup())
    assert {username: role for username, (_, role) in logins.items()} == ROLES
    for username, (password, role) in logins.items():
        user = get_user_model().objects.get(username=username)
        assert user.is_staff and user.is_active and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert authenticate(username=username, password=password) == user


def test_it_seeds_an_empty_database(demo_settings):
    output = demo_setup()
    assert Trader.objects.exclude(uscc=EXAMPLE_USCC).count() == 6
    assert Violation.objects.count() == 20
    assert "seed_demo: 6 traders" in output


def test_it_adds_the_docs_example_trader_and_shop_once(demo_settings):
    output = demo_setup()
    assert (
        f"examples ({EXAMPLE_USCC}, shop {EXAMPLE_SHOP}): trader {EXAMPLE_USCC}, shop taobao/tb-123456"
        in output
    )
    shop = Shop.objects.select_related("trader", "platform").get(platform_shop_id=EXAMPLE_SHOP)
    assert (shop.trader.uscc, shop.platform.code) == ("91350100M000100Y43", "taobao")
    assert "examples (91350100M000100Y43, shop tb-123456): already present" in demo_setup()


def test_it_is_idempotent(demo_settings):
    first = printed_logins(demo_setup())
    users = get_user_model().objects.count()
    output = demo_setup()
    assert printed_logins(output) == first
    assert "no demo data seeded" in output
    assert Trader.objects.count() == 6 + 1  # and the docs' example
    assert get_user_model().objects.count() == users
    assert output.count("[ok]") == len(ROLES)


def test_it_repairs_a_login_someone_changed(demo_settings):
    password = printed_logins(demo_setup())["officer"][0]
    officer = get_user_model().objects.get(username="officer")
    officer.set_password("changed in the admin")
    officer.is_superuser = True
    officer.save()
    officer.groups.clear()
    output = demo_setup()
    assert "[repaired]" in output
    officer.refresh_from_db()
    assert not officer.is_superuser
    assert list(officer.groups.values_list("name", flat=True)) == ["Officer"]
    assert authenticate(username="officer", password=password) == officer


def test_it_keeps_the_logins_in_an_owner_only_file(demo_settings, tmp_path):
    logins = printed_logins(demo_setup())
    path = tmp_path / "demo-logins.txt"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    for username, (password, role) in logins.items():
        assert f"{username}\t{password}\t{role}" in text


def test_it_does_nothing_when_debug_is_off(demo_settings, tmp_path):
    demo_settings.DEBUG = False
    output = demo_setup()
    assert "DEBUG is off" in output and "--force" in output
    assert not get_user_model().objects.filter(username__in=ROLES).exists()
    assert not Trader.objects.exists()
    assert not (tmp_path / "demo-logins.txt").exists()


def test_force_sets_up_the_demo_with_debug_off(demo_settings):
    demo_settings.DEBUG = False
    logins = printed_logins(demo_setup("--force"))
    assert set(logins) == set(ROLES)
    assert Trader.objects.exclude(uscc=EXAMPLE_USCC).count() == 6


def printed_second_factors(output: str) -> dict[str, tuple[str, list[str]]]:
    keys = dict(KEY_LINE.findall(output))
    codes = dict(zip(keys, [line.split() for line in CODES_LINE.findall(output)], strict=False))
    return {username: (key, codes.get(username, [])) for username, key in keys.items()}


def test_each_printed_login_opens_the_admin(demo_settings, client):
    output = demo_setup()
    factors = printed_second_factors(output)
    for username, (password, _) in printed_logins(output).items():
        assert client.login(username=username, password=password), username
        response = client.get("/admin/")
        assert response.status_code == 302 and response["Location"].startswith("/account/two-factor/")
        key, codes = factors[username]
        assert len(codes) == 10, username
        # Half the logins use the app's code for the printed key, half a backup code.
        token = str(TOTP(b32decode(key)).token()).zfill(6) if username.startswith("officer") else codes[0]
        assert client.post("/account/two-factor/", {"otp_token": token}).status_code == 302, username
        assert client.get("/admin/").status_code == 200, username
        client.logout()


def test_it_enrols_each_demo_login_and_prints_the_key_every_time(demo_settings):
    first = printed_second_factors(demo_setup())
    assert set(first) == set(ROLES)
    for username, (key, codes) in first.items():
        device = TOTPDevice.objects.get(user__username=username, confirmed=True)
        assert b32encode(device.bin_key).decode() == key
        assert sorted(
            StaticToken.objects.filter(device__user=device.user).values_list("token", flat=True)
        ) == sorted(codes)
    second = demo_setup()
    assert {u: k for u, (k, _) in printed_second_factors(second).items()} == {
        u: k for u, (k, _) in first.items()
    }
    assert "shown once" not in second and "10 unused" in second
