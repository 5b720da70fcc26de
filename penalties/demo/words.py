"""The demo's vocabulary: platforms, names, places, products, and how often each kind of thing happens."""

from __future__ import annotations

from penalties.models import Violation

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
