"""factory_boy factories. Rows are created directly (not through services) unless a
test is about a service; ledger entries are only written by services."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model

from penalties.models import Violation, ViolationType
from traders import uscc
from traders.models import Platform, Shop, Trader

REGIONS = ["110105", "310115", "330106", "440305", "350100", "510107"]


def make_uscc(n: int, region: str = "330106") -> str:
    """A valid code: enterprise (91), a region, and an organisation code from n."""
    body = f"91{region}{n:08d}X"
    return uscc.make(body)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class PlatformFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Platform
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"platform{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())


class TraderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trader

    class Params:
        # TraderFactory(in_region="330203") makes a trader registered there.
        in_region = None

    uscc = factory.LazyAttributeSequence(
        lambda o, n: make_uscc(n + 1, o.in_region or REGIONS[n % len(REGIONS)])
    )
    name = factory.Sequence(lambda n: f"测试商贸有限公司{n}")
    kind = factory.LazyAttribute(lambda o: o.uscc[:2])
    region = factory.LazyAttribute(lambda o: o.uscc[2:8])


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop

    trader = factory.SubFactory(TraderFactory)
    platform = factory.SubFactory(PlatformFactory)
    platform_shop_id = factory.Sequence(lambda n: f"shop-{n}")
    name = factory.Sequence(lambda n: f"旗舰店{n}")


def violation_type(code: str = "false-advertising") -> ViolationType:
    return ViolationType.objects.get(code=code)


class ViolationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Violation

    trader = factory.SubFactory(TraderFactory)
    type = factory.LazyFunction(violation_type)
    occurred_on = factory.LazyFunction(lambda: dt.date.today() - dt.timedelta(days=10))
    source = Violation.Source.INSPECTION
    description = "抽查发现商品详情页宣传与实际不符"
