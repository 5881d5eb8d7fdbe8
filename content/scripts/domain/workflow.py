"""Script review workflow (审核流程): draft → medical review → approved → retired.

One guarded transition per state change; only approved scripts reach agents.
"""

from __future__ import annotations

import enum
import re

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation


class Status(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETIRED = "retired"

    @property
    def label(self) -> str:
        return {"draft": "草稿", "in_review": "医学审核中", "approved": "已通过", "retired": "已停用"}[self.value]


ALLOWED_VARIABLES = ("患者称呼", "医生", "科室")
_VARIABLE = re.compile(r"{{\s*([^{}\s|]+)\s*(?:\|[^{}]*)?}}")


def _guard(current: Status, allowed: tuple[Status, ...], action: str, script_id: str) -> None:
    if current not in allowed:
        raise IllegalTransition("话术", script_id, current.label, action)


def submit_for_review(current: Status, blocking_findings: int, script_id: str = "-") -> Status:
    _guard(current, (Status.DRAFT,), "提交医学审核", script_id)
    if blocking_findings:
        raise RuleViolation("compliance", f"话术有 {blocking_findings} 处合规问题必须修改，不能提交审核")
    return Status.IN_REVIEW


def approve(current: Status, blocking_findings: int, script_id: str = "-") -> Status:
    _guard(current, (Status.IN_REVIEW,), "审核通过", script_id)
    if blocking_findings:
        raise RuleViolation("compliance", f"话术有 {blocking_findings} 处合规问题必须修改，不能通过")
    return Status.APPROVED


def reject(current: Status, note: str, script_id: str = "-") -> Status:
    _guard(current, (Status.IN_REVIEW,), "退回修改", script_id)
    if not note.strip():
        raise InvalidInput("退回修改须写明原因", field="note")
    return Status.DRAFT


def edit(current: Status, script_id: str = "-") -> Status:
    """A new version always starts as a draft; the last approved version keeps serving agents."""
    _guard(current, (Status.DRAFT, Status.IN_REVIEW, Status.APPROVED), "修改", script_id)
    return Status.DRAFT


def retire(current: Status, script_id: str = "-") -> Status:
    _guard(current, (Status.DRAFT, Status.IN_REVIEW, Status.APPROVED), "停用", script_id)
    return Status.RETIRED


def check_variables(body: str) -> list[str]:
    """The variables a body uses; only 患者称呼, 医生 and 科室 exist."""
    used = list(dict.fromkeys(_VARIABLE.findall(body)))
    unknown = [v for v in used if v not in ALLOWED_VARIABLES]
    if unknown:
        raise InvalidInput(f"未知的变量：{'、'.join(unknown)}（可用：{'、'.join(ALLOWED_VARIABLES)}）", field="body")
    return used
