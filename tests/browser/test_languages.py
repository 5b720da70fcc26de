"""The main staff pages in the browser's language: in Chinese no English staff-facing
string is left untranslated; in English the same pages are in English.

The Chinese check reads what a person sees (`document.body.innerText`), takes every word
in Latin letters and fails on any that is not on the short list below of things that are
legitimately Latin in a Chinese page. Machine codes are left out by their form: anything
with a digit (USCCs, ids, dates, versions, hashes), dotted or colon identifiers (ledger
actions and actors such as `violation.confirmed`, `system:reassess`), MIME types, text
inside <code>/<kbd>/<samp>, and the data's own rule and violation-type codes wherever
they are shown.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.utils import timezone

from creditledger.ledger.actors import Actor
from penalties.models import Restriction, ViolationType
from penalties.services import (
    appeal_file,
    evidence_attach,
    objection_record,
    repair_apply,
    trader_reassess,
    violation_confirm,
    violation_record,
)
from tests import factories
from tests.browser.conftest import sign_in

live_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)

# Latin words that belong on a Chinese page, and why. Compared ignoring case, since the
# admin's CSS upper-cases some headings (innerText returns them upper-cased).
ALLOWED = {
    word.lower()
    for word in (
        # File formats, algorithms, a currency code: named so in Chinese too.
        "CSV",
        "XLSX",
        "PDF",
        "PNG",
        "JSON",
        "SVG",
        "SHA",
        "TOTP",
        "CNY",
        # Technical terms Chinese staff use as they are.
        "API",
        "URL",
        "Webhook",
        # Django's own Chinese catalogue keeps its name ("Django 站点管理员").
        "Django",
        # The language switch names each language in itself.
        "English",
        # Data, not interface: the test's usernames and the factories' platform name.
        "officer",
        "supervisor",
        "Taobao",
    )
}
# Case matters for these: the grades are the letters A-D in Chinese practice too, and
# Django's Chinese catalogue keeps the column "ID"; "a" or "id" would be English words.
ALLOWED_EXACT = {"A", "B", "C", "D", "ID"}
CODE_LIKE = [
    re.compile(r"\d"),  # USCCs, ids (#12), dates, times, versions (v1), sizes, hashes
    re.compile(r"^[a-z_]+(?:[.:][a-z0-9_-]+)+$"),  # violation.confirmed, system:reassess
    re.compile(r"^[a-z]+/[a-z0-9.+-]+$"),  # image/png
]
WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")

# The visible text, less code-like elements. They are hidden through the CSSOM (which a
# Content-Security-Policy allows, unlike an injected <style>) and shown again after, so
# innerText keeps its notion of what is rendered.
VISIBLE_TEXT_JS = """() => {
    const codes = [...document.querySelectorAll('code, kbd, samp, [translate=no]')];
    const before = codes.map(el => [
        el.style.getPropertyValue('display'), el.style.getPropertyPriority('display'),
    ]);
    codes.forEach(el => el.style.setProperty('display', 'none', 'important'));
    const text = document.body.innerText;
    codes.forEach((el, i) => el.style.setProperty('display', ...before[i]));
    return text;
}"""


def latin_words(text: str, identifiers: frozenset[str] = frozenset()) -> set[str]:
    """The Latin-letter words of `text` that are neither allowed nor part of a code.
    `identifiers` are the data's own codes (rule codes such as `grade-C`), shown as they are."""
    words = set()
    for chunk in text.split():
        chunk = chunk.strip("()[]{}<>,;:!?\"'“”‘’…·—–|/*«»").strip(".")
        if not chunk or chunk in identifiers or any(pattern.search(chunk) for pattern in CODE_LIKE):
            continue
        words.update(
            word for word in WORD.findall(chunk) if word not in ALLOWED_EXACT and word.lower() not in ALLOWED
        )
    return words


def test_latin_words_skips_codes_and_keeps_english():
    text = "违法行为 #12 violation.confirmed system:reassess image/png 91330106MA2KXXXX1A 等级 C Save a"
    assert latin_words(text) == {"Save", "a"}
    assert latin_words("欢迎，SUPERVISOR。 导出 CSV 文件") == set()
    assert latin_words("规则 grade-C", identifiers=frozenset({"grade-C"})) == set()
    assert latin_words("拟采取的措施 listing restricted (proposed)") == {"listing", "restricted", "proposed"}


def _case(officer, supervisor, recorder, decider) -> dict[str, int]:
    """One trader with something on every page: a measure in force with a repair
    application, a proposed measure with an objection, an appeal, and a violation pending
    review with its evidence."""
    platform = factories.PlatformFactory(code="taobao", name="Taobao")
    trader = factories.TraderFactory()
    factories.ShopFactory(trader=trader, platform=platform)
    record, confirm = Actor.for_user(recorder), Actor.for_user(decider)
    entry = Actor.for_user(officer)

    def confirmed(code: str, days_ago: int):
        violation = violation_record(
            actor=record,
            trader=trader,
            type=ViolationType.objects.get(code=code),
            occurred_on=timezone.localdate() - dt.timedelta(days=days_ago),
            source="inspection",
            description="执法检查记录",
        )
        return violation_confirm(actor=confirm, violation=violation, note="事实清楚，证据确凿")

    confirmed("unsafe-goods", 20)
    trader_reassess(trader=trader)
    warning = Restriction.objects.get(trader=trader, state=Restriction.State.ACTIVE)
    repair_apply(actor=entry, restriction=warning, grounds="已完成整改并提交整改报告")
    counterfeit = confirmed("counterfeit-goods", 5)
    trader_reassess(trader=trader)
    proposed = Restriction.objects.get(trader=trader, state=Restriction.State.PROPOSED)
    objection_record(actor=entry, restriction=proposed, grounds="商品为正品，有授权书")
    appeal_file(actor=entry, violation=counterfeit, grounds="认定事实有误")
    pending = violation_record(
        actor=Actor.for_user(supervisor),
        trader=trader,
        type=ViolationType.objects.get(code="false-advertising"),
        occurred_on=timezone.localdate(),
        source="complaint",
        description="消费者投诉虚假宣传",
    )
    evidence_attach(
        actor=Actor.for_user(supervisor),
        violation=pending,
        upload=io.BytesIO(PNG),
        name="现场照片.png",
        content_type="image/png",
    )
    return {"trader": trader.pk, "pending": pending.pk, "measure": proposed.pk}


def _pages(ids: dict[str, int]) -> list[str]:
    return [
        "/admin/",
        "/admin/traders/trader/",
        f"/admin/traders/trader/{ids['trader']}/change/",
        "/admin/penalties/violation/",
        "/admin/penalties/violation/add/",
        f"/admin/penalties/violation/{ids['pending']}/change/",
        "/admin/penalties/violation/queue/",
        "/admin/penalties/restriction/",
        f"/admin/penalties/restriction/{ids['measure']}/change/",
        "/admin/penalties/objection/",
        "/admin/penalties/objection/add/",
        "/admin/penalties/appeal/",
        "/admin/penalties/appeal/add/",
        "/admin/penalties/repairapplication/",
        "/admin/penalties/repairapplication/add/",
        "/audit/",
    ]


@pytest.fixture
def case(officer, supervisor, other_officer, other_supervisor):
    return _case(officer, supervisor, other_officer, other_supervisor)


def _visit(browser, page, path: str):
    response = page.goto(browser.url(path))
    assert response.status == 200, f"{path}: HTTP {response.status}"
    return page.evaluate(VISIBLE_TEXT_JS)


@live_db
def test_the_main_pages_in_chinese_leave_no_english_untranslated(browser, case, supervisor):
    page = browser.new_page(locale="zh-CN")
    sign_in(page, browser.base, supervisor)
    # The measures' rule codes and the catalogue's type codes are data, shown as recorded.
    identifiers = frozenset(Restriction.objects.values_list("rule_code", flat=True)) | frozenset(
        ViolationType.objects.values_list("code", flat=True)
    )
    untranslated: dict[str, list[str]] = {}
    for path in _pages(case):
        text = _visit(browser, page, path)
        assert page.locator("html").get_attribute("lang") == "zh-hans", path
        browser.shot(page, f"zh{path}")
        words = latin_words(text, identifiers)
        if words:
            # Each word with the line it stands in, so a failure says where to look.
            lines = text.splitlines()
            untranslated[path] = [
                f"{word} in {next((ln.strip() for ln in lines if word in ln), '')!r}"
                for word in sorted(words)
            ]
    report = "\n".join(f"  {path}: {'; '.join(words)}" for path, words in untranslated.items())
    assert not untranslated, f"English words on the Chinese pages:\n{report}"
    browser.assert_no_errors()


@live_db
def test_the_main_pages_in_english_are_in_english(browser, case, supervisor):
    page = browser.new_page(locale="en-US")
    sign_in(page, browser.base, supervisor)
    for path in _pages(case):
        _visit(browser, page, path)
        assert page.locator("html").get_attribute("lang") == "en", path
        assert page.locator("#logout-form button").inner_text().strip().lower() == "log out", path
    browser.shot(page, "en-trader-page")
    browser.assert_no_errors()
