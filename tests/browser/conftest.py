"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

The browser is Debian's package (/usr/bin/chromium, installed by .ci/run), never one that
Playwright downloads. Without it the tests fail and say how to get it, unless
BROWSER_TESTS=0 switches them off on purpose.

Playwright's sync API keeps an asyncio loop "running" in this thread while it is started,
which makes Django refuse ORM calls (SynchronousOnlyOperation). So Playwright lives for
this package only (started before its first test, stopped after its last), and
DJANGO_ALLOW_ASYNC_UNSAFE is set for exactly that span; the rest of the suite runs with
Django's guard on.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connections

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# Long enough for a page of the live server on a busy 2-core machine, short enough that a
# missing element fails the test quickly.
TIMEOUT_MS = 15_000
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def screenshot_dir() -> Path:
    return Path(settings.VAR_DIR) / "screenshots"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so the page fixture knows the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="package")
def playwright_browser() -> Iterator:
    """One headless Chromium for all browser tests (each test gets its own context)."""
    if os.environ.get("BROWSER_TESTS", "1").strip() == "0":
        pytest.skip("browser tests switched off (BROWSER_TESTS=0)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM}: the browser tests need it. Install it "
            "with `apt-get install chromium` (.ci/run does), or set BROWSER_TESTS=0 to leave the "
            "browser tests out.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Django's connections live in an asgiref Local, which gives a thread with a running
    # event loop its own connection objects: while Playwright runs, this thread's ORM
    # uses new ones. Those lack the migrated reference data that serialized rollback
    # restores after each transactional test's flush, so it is handed over.
    serialized = {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }
    playwright = sync_playwright().start()
    for alias, contents in serialized.items():
        connections[alias]._test_serialized_contents = contents
    try:
        # launch() gives every run a fresh, throw-away profile (user-data-dir).
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        connections.close_all()  # the loop's own connections; the test database is dropped at the end
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Browser:
    """What a test drives: new_page(locale) opens a page in a fresh context (its own cookies),
    shot(page, step) saves a screenshot, url(path) is the live server's."""

    def __init__(self, browser, live_server, request) -> None:
        self.browser = browser
        self.base = live_server.url
        self.name = _slug(request.node.name)
        self.contexts: list = []
        self.pages: list = []
        self.console_errors: list[str] = []
        self.step = 0
        for old in screenshot_dir().glob(f"{self.name}-*"):
            old.unlink()  # a previous run's pictures of this test

    def url(self, path: str) -> str:
        return self.base + path

    def new_page(self, locale: str = "en-US"):
        context = self.browser.new_context(
            locale=locale, viewport={"width": 1400, "height": 1000}, accept_downloads=False
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: self._console(page, msg))
        page.on("response", self._response)
        page.on("pageerror", lambda exc: self.console_errors.append(f"{page.url}: uncaught {exc}"))
        self.pages.append(page)
        return page

    def _console(self, page, msg) -> None:
        # CSP violations are reported as console errors too. A failed request is reported
        # as "Failed to load resource" without its address: _response records it instead.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.console_errors.append(f"{page.url}: {msg.text}")

    def _response(self, response) -> None:
        # The browser asks for /favicon.ico on its own; the site has none, and no page links one.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.console_errors.append(f"{response.request.method} {response.url}: HTTP {response.status}")

    def assert_no_errors(self) -> None:
        """Nothing went wrong in the browser: no script error, failed request or CSP violation."""
        if self.console_errors:
            seen = list(dict.fromkeys(self.console_errors))  # each once, in order
            raise AssertionError("the browser reported errors:\n" + "\n".join(seen))

    def shot(self, page, step: str) -> Path:
        self.step += 1
        path = screenshot_dir() / f"{self.name}-{self.step:02d}-{_slug(step)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self, failed: bool) -> None:
        if failed:
            for n, page in enumerate(self.pages):
                if page.is_closed():
                    continue
                stem = screenshot_dir() / f"{self.name}-FAILED-{n}"
                stem.parent.mkdir(parents=True, exist_ok=True)
                try:
                    page.screenshot(path=f"{stem}.png", full_page=True)
                    Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
                except Exception as exc:  # the page may have crashed; the test's own error matters more
                    print(f"could not save {stem}: {exc}")
        for context in self.contexts:
            context.close()


@pytest.fixture
def browser(playwright_browser, live_server, request) -> Iterator[Browser]:
    driver = Browser(playwright_browser, live_server, request)
    yield driver
    report = getattr(request.node, "rep_call", None)
    driver.close(failed=bool(report and report.failed))


@pytest.fixture
def page(browser):
    """The test's page: an English-speaking browser context of its own."""
    return browser.new_page(locale="en-US")


# --- signing in, per the two-step contract (password, then the second factor) -------------


def _otp_enabled() -> bool:
    return apps.is_installed("django_otp.plugins.otp_totp")


def _ensure_totp_device(user):
    """The user's confirmed TOTP device, created if the user has none."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="browser test", confirmed=True)


def totp_code(user) -> str:
    """A code the user's device accepts now. django-otp refuses a time step it has already
    seen (replay), so a second sign-in within the same 30 s uses the next step, which the
    device's tolerance accepts, or waits for it."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(pk=_ensure_totp_device(user).pk)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    deadline = time.monotonic() + 2 * device.step + 5
    while True:
        for ahead in range(device.tolerance + 1):
            totp.time = time.time() + ahead * device.step
            if device.last_t is None or totp.t() > device.last_t:
                return str(totp.token()).zfill(device.digits)
        if time.monotonic() > deadline:
            raise AssertionError("no TOTP step left that the device has not seen")
        time.sleep(1)


def sign_in(page, base_url: str, user, password: str = PASSWORD, next_path: str = "/admin/") -> None:
    """Sign in through /admin/login/, then the second factor if the site asks for it; the
    browser must end on the staff dashboard (or `next_path`)."""
    if _otp_enabled():
        _ensure_totp_device(user)
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", password)
    page.locator("form#login-form [type=submit], #login-form input[type=submit]").first.click()
    page.wait_for_load_state()
    if page.locator("input[name=otp_token]").count():
        assert _otp_enabled(), f"asked for a second factor at {page.url}, but django-otp is not installed"
        page.fill("input[name=otp_token]", totp_code(user))
        page.locator("input[name=otp_token]").press("Enter")
        page.wait_for_load_state()
    assert page.url == f"{base_url}{next_path}", f"{user.username} ended on {page.url}, not {next_path}"
    if next_path == "/admin/":
        assert page.locator("body.dashboard").count() == 1, "the staff dashboard did not render"


def sign_out(page) -> None:
    # Django's admin logs out by POST (the user tools' form), never by a GET link.
    page.locator("#logout-form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("input[name=username]").count() or "logout" in page.url, page.url


def assert_success(page) -> None:
    """The admin said it saved (a success message), or the test fails with what it said."""
    if not page.locator(".messagelist .success").count():
        said = page.locator(".messagelist li, .errornote, .errorlist li").all_inner_texts()
        raise AssertionError(f"no success message at {page.url}; the page says: {said}")
