"""Simplified Chinese and English: complete catalogues, the language choice, the switch,
localised dates, exports in the requester's language, and an English platform API.

The rest of the suite runs in English (tests/conftest.py); these tests choose their language.
"""

from __future__ import annotations

import csv
import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone, translation

from creditledger.ledger.actors import Actor
from penalties.exports import services as export_services
from penalties.exports import tasks as export_tasks
from penalties.models import Export, Violation
from tests import factories

ROOT = Path(settings.BASE_DIR)
LOCALE = ROOT / "locale"
CATALOGUES = {"zh_Hans": LOCALE / "zh_Hans" / "LC_MESSAGES", "en": LOCALE / "en" / "LC_MESSAGES"}
# What `make messages` leaves out (tests/ may hold English-only test strings).
MAKEMESSAGES_IGNORE = [".venv", "var", "bench", "tests", "docs", "locale"]


# --- a minimal .po reader (the standard library reads only compiled catalogues) -------------


def _unquote(lines: list[str]) -> str:
    text = "".join(re.fullmatch(r'\s*"(.*)"\s*', line).group(1) for line in lines)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}[m.group(1)], text)


def read_po(path: Path) -> list[dict]:
    """Entries as {"msgctxt", "msgid", "msgid_plural", "msgstr": [...], "flags": set}."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, list[str]] = {}
        flags: set[str] = set()
        current = None
        for line in block.strip("\n").splitlines():
            if line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#~"):
                current = None  # an obsolete entry: not part of the catalogue
            elif line.startswith("#"):
                continue
            elif match := re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line):
                current = match.group(1)
                fields[current] = [match.group(2)]
            elif line.startswith('"') and current:
                fields[current].append(line)
        if "msgid" not in fields:
            continue
        entries.append(
            {
                "msgctxt": _unquote(fields["msgctxt"]) if "msgctxt" in fields else None,
                "msgid": _unquote(fields["msgid"]),
                "msgid_plural": _unquote(fields["msgid_plural"]) if "msgid_plural" in fields else None,
                "msgstr": [_unquote(v) for k, v in sorted(fields.items()) if k.startswith("msgstr")],
                "flags": flags,
            }
        )
    return entries


def _keys(entries: list[dict]) -> set[tuple]:
    return {(e["msgctxt"], e["msgid"], e["msgid_plural"]) for e in entries if e["msgid"]}


# --- the catalogues -------------------------------------------------------------------------


def test_the_chinese_catalogue_translates_every_string_and_has_no_fuzzy_entry():
    entries = read_po(CATALOGUES["zh_Hans"] / "django.po")
    assert len(entries) > 600
    header = entries[0]
    assert header["msgid"] == "" and "Plural-Forms: nplurals=1; plural=0;" in header["msgstr"][0]
    assert [e["msgid"] for e in entries if "fuzzy" in e["flags"]] == []
    untranslated = [e["msgid"] for e in entries[1:] if not all(s.strip() for s in e["msgstr"])]
    assert untranslated == [], "translate these in locale/zh_Hans/LC_MESSAGES/django.po, then `make messages`"
    # nplurals=1: one form only, and it must carry the count where the English does.
    for e in entries:
        if e["msgid_plural"]:
            assert len(e["msgstr"]) == 1, e["msgid"]


def test_the_english_catalogue_exists_and_keeps_the_source_strings():
    entries = read_po(CATALOGUES["en"] / "django.po")
    assert _keys(entries) == _keys(read_po(CATALOGUES["zh_Hans"] / "django.po"))
    assert [e["msgid"] for e in entries[1:] if any(e["msgstr"])] == []
    assert [e["msgid"] for e in entries if "fuzzy" in e["flags"]] == []


@pytest.mark.skipif(not shutil.which("msgfmt"), reason="needs GNU gettext's msgfmt")
@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_the_committed_mo_file_is_the_compiled_po_file(language, tmp_path):
    """The .mo files are committed (a server may lack gettext); they must not lag the .po."""
    compiled = tmp_path / "django.mo"
    # --check: placeholders in each translation agree with the source's (python-format).
    result = subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(CATALOGUES[language] / "django.po")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    with open(compiled, "rb") as fresh, open(CATALOGUES[language] / "django.mo", "rb") as committed:
        fresh_catalog = gettext.GNUTranslations(fresh)._catalog
        committed_catalog = gettext.GNUTranslations(committed)._catalog
    assert committed_catalog == fresh_catalog, "run `make messages` and commit the .mo files"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext's xgettext")
def test_makemessages_finds_no_string_missing_from_the_catalogue(tmp_path):
    """A string wrapped for translation but not yet in locale/ fails here: run `make messages`
    and translate it."""
    copy = tmp_path / "src"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "tests", "bench", "docs", "media", "node_modules", "__pycache__",
            "*.pyc", "*.mo", ".*_cache", ".hypothesis",
        ),
    )  # fmt: skip
    ignore = [f"--ignore={name}" for name in MAKEMESSAGES_IGNORE if name != "locale"]
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            "-l",
            "zh_Hans",
            "--add-location=never",
            "--no-obsolete",
        ]
        + ignore,
        cwd=copy,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = _keys(read_po(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    committed = _keys(read_po(CATALOGUES["zh_Hans"] / "django.po"))
    assert sorted(found - committed, key=str) == [], "new strings: run `make messages` and translate them"


# --- the language of a page -----------------------------------------------------------------


@pytest.fixture
def site_language(settings):
    """The site's own default (conftest switches the suite to English)."""
    settings.LANGUAGE_CODE = "zh-hans"
    translation.deactivate()
    return settings


def _lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


@pytest.mark.parametrize(
    ("accept", "language"),
    [
        (None, "zh-hans"),  # the browser names none: Simplified Chinese
        ("zh-CN,zh;q=0.9", "zh-hans"),
        ("zh-Hans", "zh-hans"),
        ("zh", "zh-hans"),
        ("fr", "zh-hans"),  # a language the site lacks
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "en"),  # the first one the site has
        ("en;q=0.5,zh-CN;q=0.9", "zh-hans"),
    ],
)
def test_the_browsers_preferred_language_decides(client, officer, site_language, accept, language):
    client.force_login(officer)
    headers = {"accept-language": accept} if accept else {}
    response = client.get("/admin/", headers=headers)
    assert response.status_code == 200
    assert _lang(response) == language
    assert response["Content-Language"] == language
    body = response.content.decode()
    if language == "zh-hans":
        assert "审核队列" in body and "Review queue" not in body
    else:
        assert "Review queue" in body and "审核队列" not in body


def test_the_sign_in_page_follows_the_browser_too(client, site_language):
    assert "用户名" in client.get("/admin/login/").content.decode()
    assert "Username" in client.get("/admin/login/", headers={"accept-language": "en"}).content.decode()


def test_the_platform_api_answers_in_english_whatever_the_client_asks(platform_client, site_language):
    response = platform_client.get("/api/v1/traders/NOT-A-CODE", headers={"accept-language": "zh-CN"})
    assert response.status_code == 400
    assert response["Content-Language"] == "en"
    body = response.json()
    assert body["code"].startswith("uscc_")
    assert "must be 18 characters" in body["message"]
    assert not re.search(r"[\u4e00-\u9fff]", response.content.decode())


def test_a_service_error_reaches_staff_in_their_language(client, supervisor, site_language):
    violation = factories.ViolationFactory(status=Violation.Status.CONFIRMED, decided_at=timezone.now())
    client.force_login(supervisor)
    response = client.post(
        "/admin/penalties/violation/",
        {"action": "confirm_selected", "_selected_action": [violation.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("状态为已确认的违法行为不能变为已确认" in m for m in messages), messages


# --- the language switch --------------------------------------------------------------------


def test_every_admin_page_has_a_language_switch_that_returns_to_it(client, officer, site_language):
    client.force_login(officer)
    page = client.get("/admin/penalties/violation/?status__exact=pending").content.decode()
    form = re.search(r'<form id="language-switch" action="([^"]+)" method="post">(.*?)</form>', page, re.S)
    assert form and form.group(1) == "/i18n/setlang/"
    assert 'name="next" value="/admin/penalties/violation/?status__exact=pending"' in form.group(2)
    assert re.search(r'<option value="zh-hans"[^>]*selected>简体中文</option>', form.group(2))
    assert '<option value="en" lang="en">English</option>' in form.group(2)


def test_the_switch_sets_the_language_over_the_browsers_choice(client, officer, site_language):
    client.force_login(officer)
    response = client.post(
        "/i18n/setlang/",
        {"language": "en", "next": "/admin/penalties/violation/"},
        headers={"accept-language": "zh-CN"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/penalties/violation/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = client.get("/admin/penalties/violation/", headers={"accept-language": "zh-CN"})
    assert _lang(page) == "en"
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    assert _lang(client.get("/admin/", headers={"accept-language": "en"})) == "zh-hans"


def test_the_sign_in_page_has_the_switch(client, site_language):
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert 'id="language-switch"' in page
    assert 'name="next" value="/admin/login/?next=/admin/"' in page


# --- dates and numbers ----------------------------------------------------------------------


def test_dates_on_the_trader_page_follow_the_language(client, supervisor, site_language):
    day = timezone.localdate().replace(day=1)
    violation = factories.ViolationFactory(
        status=Violation.Status.CONFIRMED, occurred_on=day, decided_at=timezone.now()
    )
    client.force_login(supervisor)
    url = f"/admin/traders/trader/{violation.trader.pk}/change/"
    chinese = client.get(url).content.decode()
    english = client.get(url, headers={"accept-language": "en"}).content.decode()
    assert f"<td>{day.year}年{day.month}月{day.day}日</td>" in chinese
    assert f"<td>{day.isoformat()}</td>" in english
    # Ids stay plain digits in links whatever the language.
    assert f"#{violation.pk}<" in chinese


# --- exports --------------------------------------------------------------------------------


def _export(auditor, language: str | None) -> Export:
    with translation.override(language or "en"):
        return export_services.export_request(
            actor=Actor.for_user(auditor), report="violations", file_format="csv", filters={}
        )


@pytest.mark.parametrize(
    ("requested_in", "header_word"), [("zh-hans", "违法行为编号"), ("en", "violation no.")]
)
def test_an_export_is_written_in_the_requesters_language(db, auditor, requested_in, header_word):
    factories.ViolationFactory(status=Violation.Status.CONFIRMED, decided_at=timezone.now())
    export = _export(auditor, requested_in)
    assert export.language == requested_in
    # The worker runs in whatever language it was started with.
    with translation.override("en" if requested_in == "zh-hans" else "zh-hans"):
        assert export_tasks.export_run(export.pk) == Export.State.DONE
    export.refresh_from_db()
    with export.file.open("rb") as handle:
        header = next(csv.reader(handle.read().decode("utf-8-sig").splitlines()))
    assert header_word in header


def test_export_report_writes_the_language_it_is_given(db, tmp_path):
    from django.core.management import call_command

    factories.ViolationFactory(status=Violation.Status.CONFIRMED, decided_at=timezone.now())
    for language, header_word in (("zh-hans", "违法行为编号"), ("en", "violation no.")):
        target = tmp_path / f"violations-{language}.csv"
        call_command(
            "export_report", "violations", "--language", language, "-o", str(target), "--no-progress"
        )
        header = next(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
        assert header_word in header, language


def test_the_export_page_records_the_language_the_auditor_reads(client, auditor, site_language):
    client.force_login(auditor)
    response = client.post("/audit/reports/violations/", {"format": "csv"}, headers={"accept-language": "en"})
    assert response.status_code == 302
    assert Export.objects.get().language == "en"


# --- no English left on the main pages in Chinese --------------------------------------------

PAGES = [
    "/admin/",
    "/admin/penalties/violation/",
    "/admin/penalties/violation/?status__exact=pending",
    "/admin/penalties/violation/add/",
    "/admin/penalties/restriction/",
    "/admin/penalties/objection/",
    "/admin/penalties/appeal/",
    "/admin/penalties/repairapplication/",
    "/admin/penalties/policy/",
    "/admin/traders/trader/",
    "/admin/ledger/ledgerentry/",
    "/audit/",
]


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<(textarea|pre|code)\b.*?</\1>", " ", html, flags=re.S)  # user data, JSON
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_main_pages_in_chinese_show_none_of_the_english_source_strings(client, supervisor, site_language):
    violation = factories.ViolationFactory(status=Violation.Status.CONFIRMED, decided_at=timezone.now())
    factories.ViolationFactory(trader=violation.trader)
    # Whole source strings, of two words at least (single words such as "PDF" may be names).
    english = sorted(
        {
            e["msgid"]
            for e in read_po(CATALOGUES["zh_Hans"] / "django.po")
            if " " in e["msgid"] and "%" not in e["msgid"]
        },
        key=len,
        reverse=True,
    )
    client.force_login(supervisor)
    pages = [
        *PAGES,
        f"/admin/traders/trader/{violation.trader.pk}/change/",
        f"/admin/penalties/violation/{violation.pk}/change/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        text = _visible_text(response.content.decode())
        assert re.search(r"[\u4e00-\u9fff]", text), url
        assert [s for s in english if s in text] == [], url
