"""Menus as code: a file in WeChat's own structure, validated against every limit before any
call, diffed against what WeChat has, then published (default menu, then conditional ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaigns.domain.menu import MenuProblem, diff, normalise, problems
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.staff import Role
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

OPERATORS = frozenset({Role.ADMIN, Role.OPERATIONS})


@dataclass(frozen=True, slots=True)
class MenuSet:
    default: dict[str, Any]
    conditional: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PublishResult:
    changes: list[str]
    published: bool
    conditional_ids: list[str]


def parse_menu_set(data: Any) -> MenuSet:
    """A file holds ``{"button": [...]}`` (WeChat's shape, as its documentation shows it) and may add
    ``conditional: [{button, matchrule}, ...]``; ``{"menu": ..., "conditionalmenu": ...}`` (what
    menu/get returns) is accepted too, so a pulled menu can be published back."""
    if not isinstance(data, dict):
        raise InvalidInput("菜单文件应为一个对象（含 button）")
    if "menu" in data:
        return MenuSet(data["menu"], list(data.get("conditionalmenu") or []))
    return MenuSet({"button": data.get("button")}, list(data.get("conditional") or []))


def validate(menus: MenuSet) -> list[MenuProblem]:
    found = problems(menus.default)
    for i, menu in enumerate(menus.conditional, start=1):
        found += [MenuProblem(p.errcode, f"个性化菜单{i}{p.button}", p.message)
                  for p in problems({**menu, "matchrule": menu.get("matchrule", {})})]
    return found


def current(wechat: Any) -> MenuSet | None:
    data = wechat.menu.get()
    return None if data is None else parse_menu_set(data)


def publish(uow: UnitOfWork, principal: Principal, wechat: Any, menus: MenuSet, *, dry_run: bool) -> PublishResult:
    ensure_role(principal, OPERATORS)
    found = validate(menus)
    if found:
        raise InvalidInput("菜单不符合微信限制：" + "；".join(str(p) for p in found))
    live = current(wechat)
    changes = diff(normalise(live.default) if live else None, normalise(menus.default))
    live_conditional = [normalise(m) for m in (live.conditional if live else [])]
    wanted_conditional = [normalise(m) for m in menus.conditional]
    if live_conditional != wanted_conditional:
        changes.append(f"~ 个性化菜单：{len(live_conditional)} 个 → {len(wanted_conditional)} 个（整体重新发布）")
    if dry_run or not changes:
        return PublishResult(changes, False, [])
    wechat.menu.create(menus.default)  # replaces everything, conditional menus included
    ids = [str(wechat.menu.add_conditional(m)["menuid"]) for m in menus.conditional]
    with uow:
        audit.record(uow, principal.actor, "wechat.menu.publish", "wechat_menu", "default",
                     buttons=len(menus.default.get("button") or []), conditional=len(ids))
        uow.commit()
    return PublishResult(changes, True, ids)
