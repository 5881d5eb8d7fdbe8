"""Custom menus: every WeChat limit checked before any call (shared/research/wechat.md §1.1).

The structure is WeChat's own (``button``/``sub_button``/``type``/``name``/``key``/``url``...),
so a JSON menu copied from WeChat's documentation is valid input. ``problems`` lists one
Chinese line per broken limit, naming the button, with WeChat's error code for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaigns.domain import limits as L


@dataclass(frozen=True, slots=True)
class MenuProblem:
    errcode: int
    button: str  # path such as 「服务」/「预约挂号」
    message: str

    def __str__(self) -> str:
        return f"{self.button}：{self.message}（{self.errcode}）"


def _name(button: Any, index: int) -> str:
    if isinstance(button, dict) and isinstance(button.get("name"), str) and button["name"]:
        return button["name"]
    return f"第{index + 1}个按钮"


def _check_action(button: dict[str, Any], path: str, sub: bool, out: list[MenuProblem]) -> None:
    kind = button.get("type")
    if kind not in L.MENU_TYPES:
        out.append(MenuProblem(40024 if sub else 40017, path, f"按钮类型 {kind!r} 不被微信支持"))
        return
    if kind in L.KEY_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not key:
            out.append(MenuProblem(40026 if sub else 40019, path, "缺少 key"))
        elif L.utf8_len(key) > L.MENU_KEY_BYTES:
            out.append(MenuProblem(40026 if sub else 40019, path, f"key 超过 {L.MENU_KEY_BYTES} 字节"))
    if kind in ("view", "miniprogram"):
        url = button.get("url")
        if not isinstance(url, str) or not url:
            out.append(MenuProblem(40027 if sub else 40020, path, "缺少 url"))
        elif L.utf8_len(url) > L.MENU_URL_BYTES:
            out.append(MenuProblem(40027 if sub else 40020, path, f"url 超过 {L.MENU_URL_BYTES} 字节"))
    if kind == "miniprogram" and not (button.get("appid") and button.get("pagepath")):
        out.append(MenuProblem(40024 if sub else 40017, path, "小程序按钮需要 appid 和 pagepath"))
    if kind in ("media_id", "view_limited") and not button.get("media_id"):
        out.append(MenuProblem(40007, path, "缺少 media_id"))
    if kind in ("article_id", "article_view_limited") and not button.get("article_id"):
        out.append(MenuProblem(40007, path, "缺少 article_id"))


def problems(menu: Any) -> list[MenuProblem]:
    """Every broken limit of a menu (default or conditional), in button order. Empty: valid."""
    out: list[MenuProblem] = []
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not L.MENU_TOP_MIN <= len(buttons) <= L.MENU_TOP_MAX:
        count = len(buttons) if isinstance(buttons, list) else 0
        out.append(MenuProblem(40016, "菜单", f"一级菜单应为 {L.MENU_TOP_MIN} 到 {L.MENU_TOP_MAX} 个，现有 {count} 个"))
        buttons = buttons if isinstance(buttons, list) else []
    for i, top in enumerate(buttons):
        path = f"「{_name(top, i)}」"
        if not isinstance(top, dict):
            out.append(MenuProblem(40017, path, "按钮应为对象"))
            continue
        name = top.get("name")
        if not isinstance(name, str) or not name:
            out.append(MenuProblem(40018, path, "缺少名称"))
        elif L.utf8_len(name) > L.MENU_TOP_NAME_BYTES:
            out.append(MenuProblem(40018, path, f"一级菜单名称 {L.utf8_len(name)} 字节，超过 {L.MENU_TOP_NAME_BYTES} 字节"))
        subs = top.get("sub_button")
        if subs is None or (isinstance(subs, list) and not subs and "type" in top):
            _check_action(top, path, False, out)
            continue
        if not isinstance(subs, list) or not L.MENU_SUB_MIN <= len(subs) <= L.MENU_SUB_MAX:
            count = len(subs) if isinstance(subs, list) else 0
            out.append(MenuProblem(40023, path, f"子菜单应为 {L.MENU_SUB_MIN} 到 {L.MENU_SUB_MAX} 个，现有 {count} 个"))
            subs = subs if isinstance(subs, list) else []
        for j, sub in enumerate(subs):
            sub_path = f"{path}/「{_name(sub, j)}」"
            if not isinstance(sub, dict):
                out.append(MenuProblem(40024, sub_path, "按钮应为对象"))
                continue
            sub_name = sub.get("name")
            if not isinstance(sub_name, str) or not sub_name:
                out.append(MenuProblem(40025, sub_path, "缺少名称"))
            elif L.utf8_len(sub_name) > L.MENU_SUB_NAME_BYTES:
                out.append(MenuProblem(40025, sub_path,
                                       f"子菜单名称 {L.utf8_len(sub_name)} 字节，超过 {L.MENU_SUB_NAME_BYTES} 字节"))
            _check_action(sub, sub_path, True, out)
    if isinstance(menu, dict) and "matchrule" in menu:
        rule = menu["matchrule"]
        if not isinstance(rule, dict) or not any(rule.get(k) not in (None, "") for k in rule):
            out.append(MenuProblem(65304, "匹配规则", "个性化菜单的匹配规则为空"))
        else:
            privacy = sorted(k for k in rule if k in L.MATCHRULE_PRIVACY and rule[k] not in (None, ""))
            if privacy:
                out.append(MenuProblem(65320, "匹配规则", f"使用了已停用的隐私字段：{'、'.join(privacy)}"))
            unknown = sorted(k for k in rule if k not in L.MATCHRULE_ALLOWED | L.MATCHRULE_PRIVACY)
            if unknown:
                out.append(MenuProblem(65304, "匹配规则", f"未知的匹配字段：{'、'.join(unknown)}"))
    return out


def normalise(menu: dict[str, Any]) -> dict[str, Any]:
    """The menu as WeChat stores and returns it, for diffing: only WeChat's keys, stable order."""
    keep = ("type", "name", "key", "url", "media_id", "appid", "pagepath", "article_id")

    def button(b: dict[str, Any]) -> dict[str, Any]:
        out = {k: b[k] for k in keep if k in b}
        if b.get("sub_button"):
            out["sub_button"] = [button(s) for s in b["sub_button"]]
        return out

    result: dict[str, Any] = {"button": [button(b) for b in menu.get("button", [])]}
    if menu.get("matchrule"):
        result["matchrule"] = {k: str(v) for k, v in sorted(menu["matchrule"].items()) if v not in (None, "")}
    return result


def diff(current: dict[str, Any] | None, wanted: dict[str, Any]) -> list[str]:
    """Human-readable differences, one Chinese line each, between two normalised menus."""
    lines: list[str] = []
    cur = {b["name"]: b for b in (current or {}).get("button", [])}
    new = {b["name"]: b for b in wanted.get("button", [])}
    for name in new:
        if name not in cur:
            lines.append(f"+ 新增一级菜单「{name}」")
        elif cur[name] != new[name]:
            old_subs = {s["name"]: s for s in cur[name].get("sub_button", [])}
            new_subs = {s["name"]: s for s in new[name].get("sub_button", [])}
            for s in new_subs:
                if s not in old_subs:
                    lines.append(f"+ 「{name}」新增子菜单「{s}」")
                elif old_subs[s] != new_subs[s]:
                    lines.append(f"~ 「{name}」/「{s}」内容变更")
            for s in old_subs:
                if s not in new_subs:
                    lines.append(f"- 「{name}」删除子菜单「{s}」")
            if {k: v for k, v in cur[name].items() if k != "sub_button"} != {
                    k: v for k, v in new[name].items() if k != "sub_button"}:
                lines.append(f"~ 一级菜单「{name}」内容变更")
    for name in cur:
        if name not in new:
            lines.append(f"- 删除一级菜单「{name}」")
    if list(cur) != list(new) and set(cur) == set(new):
        lines.append("~ 一级菜单顺序变更")
    return lines
