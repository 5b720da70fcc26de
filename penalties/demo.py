"""Demo data: realistic, reproducible and fast. `seed_demo` and `demo_setup` are thin wrappers.

One random.Random(seed) drives every choice, so the same seed on an empty database gives the
same codes, names, shops and violations. Rows go in with bulk_create a chunk of traders at a
time; each chunk is one transaction that also appends its ledger entries, built with the
services' own payload functions, so a demo database verifies like a real one.

Times: violations are backdated over the last two years (occurred, recorded, decided), while
the ledger entries carry the time the seed actually ran: the ledger records when the system
learned a fact, and its times must not run backwards.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import reset_queries, transaction
from django.utils import timezone

from creditledger import roles
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append_many
from penalties.models import HEAVY_SEVERITIES, Violation, ViolationType
from penalties.services import violation_payload
from traders import uscc
from traders.models import Platform, Shop, Trader
from traders.regions import DIVISIONS
from traders.services import shop_payload, trader_payload

ACTOR = Actor.system("seed_demo")
CHUNK = 2000  # traders per transaction: bounded memory, and the ledger lock is never held long
BATCH = 2000  # rows per INSERT

PLATFORMS = (
    ("taobao", "淘宝"),
    ("tmall", "天猫"),
    ("jd", "京东"),
    ("pinduoduo", "拼多多"),
    ("douyin", "抖音电商"),
)
PLATFORM_WEIGHTS = {"taobao": 30, "tmall": 15, "jd": 15, "pinduoduo": 25, "douyin": 15}
# (first id, number of ids) per platform; douyin ids are letters, the others numbers.
SHOP_ID_SPACE = {
    "taobao": (100_000_000, 900_000_000),
    "tmall": (1_000_000_000, 9_000_000_000),
    "jd": (1_000_000, 9_000_000),
    "pinduoduo": (100_000_000, 900_000_000),
    "douyin": (0, 52**7),
}
SHOP_URLS = {
    "taobao": "https://shop{}.taobao.com",
    "tmall": "https://store.tmall.com/shop/view_shop.htm?user_number_id={}",
    "jd": "https://mall.jd.com/index-{}.html",
    "pinduoduo": "https://mobile.yangkeduo.com/mall_page.html?mall_id={}",
    "douyin": "https://haohuo.jinritemai.com/views/shop/index?id={}",
}
SHOP_SUFFIXES = {
    "taobao": "小店 的店 优选 精品店 工厂店 企业店".split(),
    "tmall": "旗舰店 专营店 专卖店".split(),
    "jd": "旗舰店 专营店 官方旗舰店".split(),
    "pinduoduo": "百货 工厂店 优选 特卖 官方店".split(),
    "douyin": "官方旗舰店 好物 严选 直播间".split(),
}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙"
    "史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华建国红玉春梅兰飞鹏辉斌宁婷雪琳莉浩宇"
    "轩欣怡梓涵晨诺佳俊思雨博文嘉志海峰波丹萍鑫琴云秀"
)
BRAND_WORDS = (
    "鑫源 华盛 恒泰 瑞祥 宏达 佳美 优品 汇联 创博 锦润 嘉诚 云星 辰明 亿众 天晟 悦百 金鼎 银河 东方 新禾 "
    "万家 千度 蓝海 青松 盈丰 德信 永辉 和美 安然 启航 乐购 美途 尚品 智联 鼎盛 富源 康达 君越 星火 禾田"
).split()
INDUSTRIES = (
    "贸易 电子商务 网络科技 科技 服饰 食品 日用品 化妆品 母婴用品 数码科技 家居用品 进出口 供应链管理 "
    "文化传媒 生物科技 酒业 茶业 鞋业 箱包 玩具"
).split()
SOLE_TRADES = (
    "百货商行 日用品商行 服装店 电子产品经营部 食品店 化妆品店 网店 母婴用品店 五金店 茶叶店 玩具店 饰品店"
).split()
ROADS = (
    "人民路 解放路 中山路 建设路 新华路 学院路 科技路 创业路 工业园路 商城大道 江南大道 滨江大道 文三路 "
    "世纪大道 长江路 黄河路 环城北路 东风路 胜利路"
).split()
PRODUCTS = (
    "运动鞋 女士手提包 手机充电器 婴儿奶粉 保湿面霜 口红 电热水壶 儿童玩具 蓝牙耳机 保健食品 白酒 茶叶 "
    "羽绒服 电动车头盔 插线板 智能手表 洗发水 儿童服装 床上四件套 蜂蜜"
).split()
MARKS = "耐克 阿迪达斯 香奈儿 华为 茅台 五粮液 小米 雅诗兰黛 兰蔻 迪奥 路易威登 安踏 李宁 飞利浦 戴森".split()
TEST_ITEMS = "标签标识 甲醛含量 纤维成分含量 绝缘电阻 重金属含量 微生物指标 pH值 耐磨性能".split()
CLAIMS = ("国家级产品", "全网销量第一", "七天美白", "根治失眠", "最高级工艺", "100%纯天然")
DESCRIPTIONS = {
    "counterfeit": (
        "店铺销售的{product}使用“{mark}”注册商标，经商标权利人鉴定为假冒。",
        "执法检查发现标有“{mark}”商标的{product}{qty}件，当事人无法提供授权及进货凭证。",
    ),
    "substandard": (
        "监督抽检的{product}经检验{item}项目不合格。",
        "销售的{product}以次充好，实际成分与标注不符。",
    ),
    "false_advertising": (
        "商品详情页宣称{product}“{claim}”，当事人无法提供依据。",
        "直播推广中称{product}“{claim}”，构成引人误解的商业宣传。",
    ),
    "parallel_trading": ("销售未经检验检疫的进口{product}{qty}件，无法提供报关单及检验检疫证明。",),
    "unlicensed": (
        "未取得相应许可即在网店销售{product}。",
        "网店未公示营业执照信息，经查未办理登记从事{product}经营。",
    ),
    "consumer_rights": ("消费者购买{product}后申请七日无理由退货被拒，投诉属实。",),
    "obstruction": ("执法人员依法检查{product}经营情况时，当事人拒不提供进货台账和销售记录。",),
}
CONFIRM_NOTES = ("经核查，违法事实清楚，证据确凿，予以确认。", "当事人对违法事实无异议，予以确认。", "")
REJECT_NOTES = (
    "证据不足，不予认定。",
    "经核查，所涉商品为正品，不予认定。",
    "举报内容与事实不符，不予认定。",
)
OVERTURN_NOTES = (
    "申诉成立：补充提交的进货凭证证明商品来源合法，撤销原认定。",
    "复核认为原认定证据不足，撤销原认定。",
)

SEVERITY_WEIGHTS = {"minor": 6.0, "general": 4.0, "serious": 1.5, "grave": 0.3}
SOURCES = tuple(Violation.Source.values)
SOURCE_WEIGHTS = (25, 15, 25, 25, 10)  # inspection, sampling, complaint, platform_report, referral
STATUSES = tuple(Violation.Status.values)  # pending, confirmed, rejected, overturned
SEED_STAFF = (
    ("seed-officer-1", roles.OFFICER),
    ("seed-officer-2", roles.OFFICER),
    ("seed-officer-3", roles.OFFICER),
    ("seed-supervisor-1", roles.SUPERVISOR),
    ("seed-supervisor-2", roles.SUPERVISOR),
)


@dataclass
class SeedResult:
    seed: int
    traders: int = 0
    shops: int = 0
    violations: int = 0
    ledger_entries: int = 0
    skipped_codes: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        statuses = ", ".join(f"{self.statuses[s]} {s}" for s in STATUSES)
        return (
            f"seed_demo: {self.traders} traders, {self.shops} shops, {self.violations} violations "
            f"({statuses}), {self.ledger_entries} ledger entries, {self.skipped_codes} existing codes "
            f"skipped, seed {self.seed}, {self.seconds:.1f} s"
        )


def seed(*, traders: int, violations: int, seed: int = 1, progress=None) -> SeedResult:
    """Add `traders` new traders and `violations` violations spread over them (skewed: most
    traders are clean, a few collect many). Existing rows are kept; codes that exist are skipped."""
    if traders < 0 or violations < 0:
        raise ValueError("counts cannot be negative")
    if violations and not traders:
        raise ValueError("violations are spread over the new traders; ask for at least one trader")
    return _Seeder(seed, progress).run(traders, violations)


def seed_staff() -> tuple[list, list]:
    """The officers and supervisors the demo violations are recorded and decided by.

    They hold the real roles (so every decision respects the role matrix) but have no
    usable password: nobody signs in as them.
    """
    User = get_user_model()
    officers, supervisors = [], []
    for username, role in SEED_STAFF:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "first_name": "演示数据"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
        (supervisors if role == roles.SUPERVISOR else officers).append(user)
    return officers, supervisors


def ensure_platforms() -> dict[str, Platform]:
    found = {}
    for code, name in PLATFORMS:
        found[code], _ = Platform.objects.get_or_create(code=code, defaults={"name": name})
    return found


def _spread(span: int) -> int:
    """A multiplier coprime with `span` near span/φ: consecutive indexes land far apart."""
    mult = int(span * 0.6180339887) | 1
    while math.gcd(mult, span) != 1:
        mult += 2
    return mult


class _Permutation:
    """index -> (index * mult + key) mod span: a bijection, so ids never repeat within one
    seed, and the key (drawn from the seed) makes different seeds give different ids."""

    def __init__(self, span: int, key: int) -> None:
        self.span, self.key, self.mult = span, key % span, _spread(span)

    def __call__(self, index: int) -> int:
        return (index * self.mult + self.key) % self.span


def _base(value: int, alphabet: str, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, len(alphabet))
        out.append(alphabet[digit])
    return "".join(reversed(out))


@contextmanager
def _explicit_recorded_at():
    """Let bulk_create store our backdated recorded_at instead of auto_now_add's "now".

    Flips the field flag for the duration; seeding runs in its own process (or a test).
    """
    recorded_at = Violation._meta.get_field("recorded_at")
    saved = recorded_at.auto_now_add
    recorded_at.auto_now_add = False
    try:
        yield
    finally:
        recorded_at.auto_now_add = saved


class _Seeder:
    def __init__(self, seed: int, progress) -> None:
        self.rng = random.Random(seed)
        self.result = SeedResult(seed=seed)
        self.progress = progress
        self.now = timezone.now()
        self.tz = timezone.get_current_timezone()
        self.today = timezone.localdate(self.now)
        # Existing rows only matter on a database that is not empty (an extra query a chunk).
        self.check_existing = Trader.objects.exists() or Shop.objects.exists()
        self.platforms = [p for p in ensure_platforms().values() if p.is_active]
        if not self.platforms:
            raise ValueError("no active platform to open demo shops on")
        self.platform_cum = list(
            itertools.accumulate(PLATFORM_WEIGHTS.get(p.code, 10) for p in self.platforms)
        )
        self.types = list(ViolationType.objects.filter(is_active=True).order_by("code"))
        if not self.types:
            raise ValueError("the violation-type catalog has no active type")
        self.type_cum = list(itertools.accumulate(SEVERITY_WEIGHTS.get(t.severity, 1.0) for t in self.types))
        self.officers, self.supervisors = seed_staff()
        self.divisions = sorted(DIVISIONS.items())
        # Online trade concentrates in a few places; weight them up.
        hubs = ("杭州", "义乌", "深圳", "广州", "上海", "东莞")
        self.division_cum = list(
            itertools.accumulate(4 if name.startswith(hubs) else 1 for _, name in self.divisions)
        )
        self.org_code = _Permutation(31**9, self.rng.randrange(31**9))
        self.shop_ids = {
            p.code: _Permutation(SHOP_ID_SPACE.get(p.code, (0, 10**10))[1], self.rng.randrange(10**12))
            for p in self.platforms
        }
        self.next_trader = Trader.objects.count()
        self.next_shop = {p.code: Shop.objects.filter(platform=p).count() for p in self.platforms}
        self.violation_index = 0

    # --- the run ------------------------------------------------------------------------------

    def run(self, n_traders: int, n_violations: int) -> SeedResult:
        started = time.monotonic()
        done = 0
        while done < n_traders:
            want = min(CHUNK, n_traders - done)
            traders = [self._trader() for _ in range(want)]
            if self.check_existing:
                traders = self._drop_existing_codes(traders)
            # Spread the violations in proportion, so the total is exact whatever was skipped.
            count = n_violations * (done + len(traders)) // n_traders - n_violations * done // n_traders
            self._chunk(traders, count)
            done += len(traders)
            if settings.DEBUG:
                reset_queries()  # DEBUG keeps every query in memory otherwise
            if self.progress:
                self.progress(self.result, time.monotonic() - started)
        self.result.seconds = time.monotonic() - started
        return self.result

    def _drop_existing_codes(self, traders: list[Trader]) -> list[Trader]:
        taken = set(Trader.objects.filter(uscc__in=[t.uscc for t in traders]).values_list("uscc", flat=True))
        self.result.skipped_codes += len(taken)
        return [t for t in traders if t.uscc not in taken]

    def _chunk(self, traders: list[Trader], n_violations: int) -> None:
        shops = {id(t): self._shops(t) for t in traders}
        if self.check_existing:
            self._drop_existing_shops(shops)
        cum = self._exposure(len(traders))
        violations, later = [], []
        for _ in range(n_violations):
            trader = self.rng.choices(traders, cum_weights=cum)[0]
            violation, overturn = self._violation(trader, shops[id(trader)])
            violations.append(violation)
            if overturn:
                later.append((violation, *overturn))
            if violation.status == Violation.Status.CONFIRMED:
                trader.needs_reassessment = True  # the scoring sweep picks these up
        all_shops = [s for trader_shops in shops.values() for s in trader_shops]
        with transaction.atomic():
            Trader.objects.bulk_create(traders, batch_size=BATCH)
            Shop.objects.bulk_create(all_shops, batch_size=BATCH)
            with _explicit_recorded_at():
                Violation.objects.bulk_create(violations, batch_size=BATCH)
            entries = self._entries(traders, all_shops, violations, later)
            ledger_append_many(actor=ACTOR, entries=entries)
        result = self.result
        result.traders += len(traders)
        result.shops += len(all_shops)
        result.violations += len(violations)
        result.ledger_entries += len(entries)
        result.statuses.update(v.status for v in violations)

    def _exposure(self, count: int) -> list[float]:
        """Cumulative weights for picking a violation's trader: most traders stay clean, and
        among the others a heavy tail collects many violations."""
        rng = self.rng
        weights = [0.0 if rng.random() < 0.6 else min(rng.paretovariate(1.1), 100.0) for _ in range(count)]
        if not any(weights):
            weights = [1.0] * count
        return list(itertools.accumulate(weights))

    def _drop_existing_shops(self, shops: dict[int, list[Shop]]) -> None:
        keys = {(s.platform_id, s.platform_shop_id) for group in shops.values() for s in group}
        taken = set(
            Shop.objects.filter(platform_shop_id__in={k[1] for k in keys}).values_list(
                "platform_id", "platform_shop_id"
            )
        )
        for key, group in shops.items():
            shops[key] = [s for s in group if (s.platform_id, s.platform_shop_id) not in taken]

    def _entries(self, traders, shops, violations, overturns) -> list[Entry]:
        """The entries the services would have written, in the order they would have."""
        entries = [Entry("trader.registered", "trader", t.pk, t.uscc, trader_payload(t)) for t in traders]
        entries += [Entry("shop.registered", "shop", s.pk, s.trader.uscc, shop_payload(s)) for s in shops]
        decisions = []
        for v in violations:
            payload = violation_payload(v)
            payload["status"] = Violation.Status.PENDING  # as it was when recorded
            entries.append(Entry("violation.recorded", "violation", v.pk, v.trader.uscc, payload))
            if v.status != Violation.Status.PENDING:
                first = v.status if v.status == Violation.Status.REJECTED else Violation.Status.CONFIRMED
                decisions.append((v.decided_at, 0, v, first, v.decided_by_id, v.decision_note))
        decisions += [(at, 1, v, Violation.Status.OVERTURNED, by.pk, note) for v, by, at, note in overturns]
        decisions.sort(key=lambda d: (d[0], d[1]))
        for at, _, v, status, by, note in decisions:
            entries.append(
                Entry(
                    f"violation.{status}",
                    "violation",
                    v.pk,
                    v.trader.uscc,
                    _decision(v, status, by, at, note),
                )
            )
        return entries

    # --- one trader, its shops, one violation ---------------------------------------------------

    def _person(self) -> str:
        rng = self.rng
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        return rng.choice(SURNAMES) + given

    def _trader(self) -> Trader:
        rng = self.rng
        region, division = rng.choices(self.divisions, cum_weights=self.division_cum)[0]
        kind = "91" if rng.random() < 0.6 else "92"
        code = uscc.make(kind + region + _base(self.org_code(self.next_trader), uscc.ALPHABET, 9))
        self.next_trader += 1
        person = self._person()
        brand = rng.choice(BRAND_WORDS) + (rng.choice(BRAND_WORDS) if rng.random() < 0.3 else "")
        if kind == "91":
            city = division.split("市", 1)[0]
            city += "市" if rng.random() < 0.3 else ""
            name = (
                f"{city}{brand}{rng.choice(INDUSTRIES)}{'有限公司' if rng.random() < 0.9 else '有限责任公司'}"
            )
        else:
            name = f"{division}{person if rng.random() < 0.6 else brand}{rng.choice(SOLE_TRADES)}"
        address = f"{division}{rng.choice(ROADS)}{rng.randint(1, 999)}号"
        if rng.random() < 0.6:
            address += f"{rng.randint(1, 12)}幢{rng.randint(1, 30)}{rng.randint(1, 20):02d}室"
        trader = Trader(
            uscc=code, name=name, kind=kind, region=region, legal_representative=person, address=address
        )
        trader.brand = brand  # for the shop names; not a model field
        return trader

    def _shops(self, trader: Trader) -> list[Shop]:
        rng = self.rng
        count = rng.choices((1, 2, 3), (55, 30, 15))[0]
        platforms = rng.choices(self.platforms, cum_weights=self.platform_cum, k=count)
        shops = []
        for platform in platforms:
            first, _ = SHOP_ID_SPACE.get(platform.code, (0, 0))
            number = self.shop_ids[platform.code](self.next_shop[platform.code])
            self.next_shop[platform.code] += 1
            shop_id = _base(number, LETTERS, 7) if platform.code == "douyin" else str(first + number)
            opened = self.today - dt.timedelta(days=rng.randint(730, 3000))
            closed = self.today - dt.timedelta(days=rng.randint(0, 60)) if rng.random() < 0.04 else None
            shops.append(
                Shop(
                    trader=trader,
                    platform=platform,
                    platform_shop_id=shop_id,
                    name=trader.brand + rng.choice(SHOP_SUFFIXES.get(platform.code, ("店",))),
                    url=SHOP_URLS.get(platform.code, "https://{}.example.com").format(shop_id),
                    opened_on=opened,
                    closed_on=closed,
                )
            )
        # Platform-declared traders name the platform that declared them.
        source = rng.choices(Trader.Source.values, (60, 30, 10))[0]
        trader.source = source
        if source == Trader.Source.PLATFORM and shops:
            trader.source_platform = shops[0].platform
        elif source == Trader.Source.OFFICER:
            trader.registered_by = rng.choice(self.officers)
        else:
            trader.source = Trader.Source.IMPORT
        return shops

    def _violation(self, trader: Trader, shops: list[Shop]):
        rng, index = self.rng, self.violation_index
        self.violation_index += 1
        vtype = rng.choices(self.types, cum_weights=self.type_cum)[0]
        age = int(rng.triangular(0, 730, 0))  # recent violations are the most common
        occurred = self.today - dt.timedelta(days=age)
        # The first few of a run cover every status and source, so even a tiny demo shows them.
        source = SOURCES[index] if index < len(SOURCES) else rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
        status = STATUSES[index] if index < len(STATUSES) else self._status(age)
        shop = rng.choice(shops) if shops and (source == "platform_report" or rng.random() < 0.7) else None
        if shop is not None and shop.closed_on and shop.closed_on < occurred:
            shop = None
        if source == "platform_report" and shop is None:
            source = "complaint"  # a platform reports about one of its own shops
        if source == "platform_report":
            recorder = None
        else:
            recorder = rng.choice(self.supervisors if rng.random() < 0.1 else self.officers)
        recorded_at = min(
            self._office_time(occurred + dt.timedelta(days=rng.randint(0, min(age, 10)))), self.now
        )
        violation = Violation(
            trader=trader,
            shop=shop,
            type=vtype,
            occurred_on=occurred,
            source=source,
            reporting_platform=shop.platform if source == "platform_report" else None,
            recorded_by_id=recorder.pk if recorder else None,  # the payload needs only the id
            recorded_at=recorded_at,
            description=self._description(vtype.category),
            goods_value=self._goods_value(vtype.category),
            status=status,
        )
        overturn = None
        if status != Violation.Status.PENDING:
            overturn = self._decide(violation, vtype.severity in HEAVY_SEVERITIES)
        return violation, overturn

    def _status(self, age: int) -> str:
        if age < 30:
            return self.rng.choices(STATUSES[:3], (55, 35, 10))[0]
        return self.rng.choices(STATUSES, (3, 70, 18, 9))[0]

    def _decide(self, violation: Violation, heavy: bool):
        """Set the decision; return (who, when, note) of the overturn for an overturned one.

        Four eyes: a serious or grave violation is decided by a supervisor who did not record it.
        """
        rng = self.rng
        recorder_id = violation.recorded_by_id
        if heavy:
            deciders = [u for u in self.supervisors if u.pk != recorder_id]
        else:
            deciders = self.officers * 3 + self.supervisors
        violation.decided_by_id = rng.choice(deciders).pk
        decided = violation.recorded_at + dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 8))
        violation.decided_at = min(decided, self.now)
        rejected = violation.status == Violation.Status.REJECTED
        violation.decision_note = rng.choice(REJECT_NOTES if rejected else CONFIRM_NOTES)
        if violation.status != Violation.Status.OVERTURNED:
            return None
        # An appeal is decided by a supervisor other than the one who confirmed.
        judge = rng.choice([u for u in self.supervisors if u.pk != violation.decided_by_id])
        at = min(violation.decided_at + dt.timedelta(days=rng.randint(15, 90)), self.now)
        return judge, at, rng.choice(OVERTURN_NOTES)

    def _office_time(self, day: dt.date) -> dt.datetime:
        rng = self.rng
        moment = dt.time(rng.randint(8, 17), rng.randrange(60), rng.randrange(60))
        return dt.datetime.combine(day, moment, tzinfo=self.tz)

    def _description(self, category: str) -> str:
        rng = self.rng
        template = rng.choice(
            DESCRIPTIONS.get(category, ("经营{product}过程中存在违法行为，详见检查记录。",))
        )
        return template.format(
            product=rng.choice(PRODUCTS),
            mark=rng.choice(MARKS),
            item=rng.choice(TEST_ITEMS),
            claim=rng.choice(CLAIMS),
            qty=rng.randint(3, 2000),
        )

    def _goods_value(self, category: str) -> Decimal | None:
        if category in ("unlicensed", "consumer_rights", "obstruction") and self.rng.random() < 0.5:
            return None
        cents = min(int(self.rng.lognormvariate(8.0, 1.6) * 100), 10**11)
        return Decimal(cents).scaleb(-2)  # exactly two places, like the service stores it


def _decision(violation: Violation, status: str, by: int, at: dt.datetime, note: str) -> dict:
    """The payload penalties.services._decide writes for a decision."""
    vtype = violation.type
    return {
        "violation": violation.pk,
        "type": vtype.code,
        "severity": vtype.severity,
        "points": vtype.points,
        "occurred_on": violation.occurred_on,
        "status": status,
        "decided_by": by,
        "decided_at": at,
        "note": note,
    }
