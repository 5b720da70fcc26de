"""The violation-type catalog. Supervisors edit it in the admin afterwards."""

from __future__ import annotations

from django.db import migrations

CATALOG = [
    # code, name, category, severity, points, validity_days, legal basis
    ("counterfeit-goods", "销售假冒注册商标的商品", "counterfeit", "serious", 150, 1095,
     "《中华人民共和国商标法》第五十七条、第六十条；《中华人民共和国电子商务法》第十三条"),
    ("counterfeit-large-scale", "大规模制售假冒商品（涉嫌犯罪移送）", "counterfeit", "grave", 400, 1825,
     "《中华人民共和国商标法》第六十七条；《中华人民共和国刑法》第二百一十四条"),
    ("substandard-goods", "销售不合格产品、以次充好", "substandard", "general", 80, 730,
     "《中华人民共和国产品质量法》第三十九条、第五十条"),
    ("unsafe-goods", "销售不符合保障人体健康和人身、财产安全标准的产品", "substandard", "serious", 200, 1095,
     "《中华人民共和国产品质量法》第十三条、第四十九条"),
    ("false-advertising", "虚假或者引人误解的商业宣传", "false_advertising", "general", 60, 730,
     "《中华人民共和国反不正当竞争法》第八条、第二十条；《中华人民共和国广告法》第二十八条、第五十五条"),
    ("absolute-terms-advertising", "广告使用“国家级”“最高级”“最佳”等用语", "false_advertising", "minor", 20, 365,
     "《中华人民共和国广告法》第九条、第五十七条"),
    ("parallel-trading", "销售走私或未经检验检疫的进口商品（水货）", "parallel_trading", "serious", 150, 1095,
     "《中华人民共和国海关法》第八十二条；《中华人民共和国进出口商品检验法》第三十三条"),
    ("unlicensed-operation", "未依法取得营业执照或行政许可从事经营", "unlicensed", "general", 100, 730,
     "《无证无照经营查处办法》第二条、第十三条；《中华人民共和国电子商务法》第十二条"),
    ("unlicensed-food", "未取得食品经营许可从事食品经营", "unlicensed", "serious", 150, 1095,
     "《中华人民共和国食品安全法》第三十五条、第一百二十二条"),
    ("refused-returns", "拒不履行七日无理由退货等法定退货义务", "consumer_rights", "minor", 30, 365,
     "《中华人民共和国消费者权益保护法》第二十五条、第五十六条"),
    ("obstructing-inspection", "拒绝、阻碍依法进行的监督检查", "obstruction", "general", 100, 730,
     "《中华人民共和国产品质量法》第五十六条；《中华人民共和国电子商务法》第七十五条"),
]


def seed(apps, schema_editor):
    ViolationType = apps.get_model("penalties", "ViolationType")
    for code, name, category, severity, points, validity, basis in CATALOG:
        ViolationType.objects.update_or_create(
            code=code,
            defaults={"name": name, "category": category, "severity": severity, "points": points,
                      "validity_days": validity, "legal_basis": basis, "is_active": True},
        )


def unseed(apps, schema_editor):
    ViolationType = apps.get_model("penalties", "ViolationType")
    ViolationType.objects.filter(code__in=[row[0] for row in CATALOG], violations__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("penalties", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
