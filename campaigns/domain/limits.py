"""WeChat official-account limits (shared/research/wechat.md §1), enforced before any call
and by the sandbox server. Byte lengths are UTF-8 bytes, as WeChat counts them."""

from __future__ import annotations

from clinical_core.domain.errors import InvalidInput, RuleViolation

# Menus (§1.1)
MENU_TOP_MIN, MENU_TOP_MAX = 1, 3
MENU_SUB_MIN, MENU_SUB_MAX = 1, 5
MENU_TOP_NAME_BYTES = 16
MENU_SUB_NAME_BYTES = 60
MENU_KEY_BYTES = 128
MENU_URL_BYTES = 1024
MENU_TYPES = frozenset({
    "click", "view", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin",
    "location_select", "media_id", "view_limited", "article_id", "article_view_limited", "miniprogram",
})
KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                       "pic_weixin", "location_select"})
MATCHRULE_ALLOWED = frozenset({"tag_id", "client_platform_type"})
MATCHRULE_PRIVACY = frozenset({"sex", "country", "province", "city", "language"})

# QR codes (§1.4)
QR_TEMPORARY_MAX_SECONDS = 2_592_000  # 30 days
QR_TEMPORARY_DEFAULT_SECONDS = 60
QR_PERMANENT_MAX = 100_000
QR_SCENE_STR_MAX = 64
QR_SCENE_ID_PERMANENT_MAX = 100_000

# Messages (§1.2, §1.3)
TEMPLATE_FIELD_CHARS = 20
TEMPLATE_PER_DAY = 100_000  # per account (rises with the follower count)
TEMPLATE_DEDUPE_SECONDS = 600  # client_msg_id: one message per openid within 10 minutes
MASS_OPENIDS_MIN, MASS_OPENIDS_MAX = 2, 10_000
MASS_PER_USER_PER_MONTH = 4  # 服务号
TAGS_MAX = 100
TAG_NAME_BYTES = 30
TAG_BATCH_MAX = 50
TAGS_PER_USER_MAX = 20

# Tokens (§1.6)
TOKEN_LIFETIME_SECONDS = 7200
TOKEN_REFRESH_MARGIN_SECONDS = 300  # a stable token always has ≥300 s left
STABLE_FORCE_REFRESH_PER_DAY = 20
STABLE_FORCE_REFRESH_MIN_GAP_SECONDS = 30

# Error codes (§1.7) with their Chinese meanings.
ERRORS: dict[int, str] = {
    -1: "系统繁忙，请稍后再试",
    40001: "获取 access_token 时 AppSecret 错误，或者 access_token 无效",
    40013: "不合法的 AppID",
    40014: "不合法的 access_token",
    40016: "不合法的按钮个数",
    40017: "不合法的按钮类型",
    40018: "不合法的按钮名字长度",
    40019: "不合法的按钮 KEY 长度",
    40020: "不合法的按钮 URL 长度",
    40023: "不合法的子菜单按钮个数",
    40024: "不合法的子菜单按钮类型",
    40025: "不合法的子菜单按钮名字长度",
    40026: "不合法的子菜单按钮 KEY 长度",
    40027: "不合法的子菜单按钮 URL 长度",
    40003: "不合法的 OpenID",
    40032: "不合法的 openid 列表长度",
    40130: "openid 列表长度不合法，至少需要两个 openid",
    40053: "不合法的 actioninfo",
    41001: "缺少 access_token 参数",
    42001: "access_token 超时",
    43004: "需要接收者关注",
    44002: "POST 的数据包为空",
    45009: "接口调用超过限制（每日调用次数已用完）",
    45011: "API 调用太频繁，请稍候再试",
    45015: "回复时间超过限制（用户未互动或已取消关注）",
    45047: "客服接口下行条数超过上限",
    45056: "创建的标签数过多",
    45157: "标签名非法或与已有标签重名",
    45158: "标签名长度超过 30 个字节",
    45159: "非法的标签",
    45058: "不能修改 0/1/2 这三个系统默认保留的标签",
    45059: "有粉丝身上的标签数已经超过限制",
    46003: "不存在的菜单数据",
    47001: "解析 JSON/XML 内容错误",
    48001: "api 功能未授权",
    65301: "不存在此 menuid 对应的个性化菜单",
    65303: "没有默认菜单，不能创建个性化菜单",
    65304: "MatchRule 信息为空",
    65320: "个性化菜单使用了隐私字段（性别、地区、语言），已不再支持",
    40007: "不合法的媒体文件 id",
    40037: "不合法的模板 id",
    45028: "群发次数已用完（每位用户每月最多 4 条）",
    45065: "相同 clientmsgid 已存在群发记录",
    40008: "不合法的消息类型",
    45163: "永久二维码数量已达上限（100000 个）",
}


def meaning(errcode: int | None) -> str:
    return ERRORS.get(errcode or 0, "微信接口返回错误")


def utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def check_template_data(data: dict[str, dict[str, str]]) -> None:
    """Each template field is shown at ≤20 characters since 2023-05; opsctl refuses longer values
    instead of letting WeChat truncate them silently."""
    for key, field in data.items():
        value = str(field.get("value", ""))
        if len(value) > TEMPLATE_FIELD_CHARS or "\n" in value:
            raise RuleViolation("WX-TPL-20", f"模板消息字段 {key} 超过 {TEMPLATE_FIELD_CHARS} 个字或含换行")


def check_mass_openids(openids: list[str]) -> None:
    if not MASS_OPENIDS_MIN <= len(set(openids)) <= MASS_OPENIDS_MAX:
        raise InvalidInput(f"按 openid 群发需要 {MASS_OPENIDS_MIN} 到 {MASS_OPENIDS_MAX} 个不同的 openid", field="openids")


def check_qr_request(*, permanent: bool, expire_seconds: int | None, scene: str) -> None:
    if not 1 <= len(scene) <= QR_SCENE_STR_MAX:
        raise InvalidInput(f"二维码场景值应为 1 到 {QR_SCENE_STR_MAX} 个字符", field="scene")
    if not permanent and expire_seconds is not None and not 1 <= expire_seconds <= QR_TEMPORARY_MAX_SECONDS:
        raise InvalidInput("临时二维码有效期应在 1 秒到 30 天之间", field="expire_seconds")
