"""Staff, roles and the qualifications the regulatory rules need.

Rules (see ``shared/research/clinical_rules.md``):

- R07: an online doctor needs a practice licence, at least 3 years of
  independent clinical practice and the filing (备案) of the internet hospital.
- R10/R03: only a doctor with prescribing rights (处方权) may prescribe; a
  prescription takes effect only after a pharmacist approves it.
- R44: a home-nursing nurse needs at least 5 years of clinical nursing and at
  least the 护师 title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clinical_core.domain.errors import RuleViolation


class Role(StrEnum):
    """Roles of accounts. Staff roles plus the patient."""

    DOCTOR = "doctor"
    PHARMACIST = "pharmacist"
    NURSE = "nurse"
    ADMIN = "admin"
    OPERATIONS = "operations"
    CUSTOMER_SERVICE = "customer_service"
    PATIENT = "patient"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.DOCTOR: "医生",
    Role.PHARMACIST: "药师",
    Role.NURSE: "护士",
    Role.ADMIN: "管理员",
    Role.OPERATIONS: "运营",
    Role.CUSTOMER_SERVICE: "客服",
    Role.PATIENT: "患者",
}

STAFF_ROLES = frozenset(Role) - {Role.PATIENT}
CLINICAL_ROLES = frozenset({Role.DOCTOR, Role.PHARMACIST, Role.NURSE})


class FilingStatus(StrEnum):
    """互联网医院执业备案状态."""

    FILED = "filed"
    PENDING = "pending"
    NONE = "none"


# Title → (role, rank). Rank orders titles within a role (higher is senior).
TITLES: dict[str, tuple[Role, int]] = {
    "住院医师": (Role.DOCTOR, 1),
    "主治医师": (Role.DOCTOR, 2),
    "副主任医师": (Role.DOCTOR, 3),
    "主任医师": (Role.DOCTOR, 4),
    "药士": (Role.PHARMACIST, 1),
    "药师": (Role.PHARMACIST, 2),
    "主管药师": (Role.PHARMACIST, 3),
    "副主任药师": (Role.PHARMACIST, 4),
    "主任药师": (Role.PHARMACIST, 5),
    "护士": (Role.NURSE, 1),
    "护师": (Role.NURSE, 2),
    "主管护师": (Role.NURSE, 3),
    "副主任护师": (Role.NURSE, 4),
    "主任护师": (Role.NURSE, 5),
}

MIN_ONLINE_DOCTOR_YEARS = 3  # R07
MIN_HOME_NURSE_YEARS = 5  # R44
MIN_HOME_NURSE_TITLE = "护师"  # R44


@dataclass(frozen=True, slots=True)
class Qualification:
    """执业资质: what the rules ask of a clinician."""

    role: Role
    title: str | None
    licence_no: str | None
    practising_since: date | None  # start of independent practice
    filing: FilingStatus
    may_prescribe: bool

    def years_of_practice(self, today: date) -> int:
        if self.practising_since is None:
            return 0
        start = self.practising_since
        years = today.year - start.year
        if (today.month, today.day) < (start.month, start.day):
            years -= 1
        return max(years, 0)

    def title_rank(self) -> int:
        role_rank = TITLES.get(self.title or "")
        return role_rank[1] if role_rank and role_rank[0] == self.role else 0


def check_title(role: Role, title: str | None) -> None:
    """A title, when given, must belong to the role's ladder."""
    if title is None:
        return
    entry = TITLES.get(title)
    if entry is None or entry[0] != role:
        allowed = "、".join(t for t, (r, _) in TITLES.items() if r == role) or "无"
        raise RuleViolation("STAFF-TITLE", f"职称「{title}」不属于{role.label}系列", hint=f"可选：{allowed}")


def ensure_may_consult_online(q: Qualification, today: date) -> None:
    """R07: licensed, ≥3 years of independent practice, filed for online practice."""
    if q.role is not Role.DOCTOR:
        raise RuleViolation("R07", "只有医生可以提供在线诊疗")
    if not q.licence_no:
        raise RuleViolation("R07", "医生缺少执业证书编号，不能提供在线诊疗")
    years = q.years_of_practice(today)
    if years < MIN_ONLINE_DOCTOR_YEARS:
        raise RuleViolation(
            "R07", f"医生独立执业 {years} 年，不足 {MIN_ONLINE_DOCTOR_YEARS} 年，不能提供在线诊疗"
        )
    if q.filing is not FilingStatus.FILED:
        raise RuleViolation("R07", "医生尚未完成互联网医院执业备案", hint="请先在管理端完成备案")


def ensure_may_prescribe(q: Qualification, today: date) -> None:
    """R03/R10: an online prescriber is an online doctor with prescribing rights."""
    ensure_may_consult_online(q, today)
    if not q.may_prescribe:
        raise RuleViolation("R03", "医生未获得处方权，不能开具处方")


def ensure_may_review_prescriptions(q: Qualification) -> None:
    """R10: prescriptions are reviewed by a licensed pharmacist (药师 or above)."""
    if q.role is not Role.PHARMACIST:
        raise RuleViolation("R10", "只有药师可以审核处方")
    if q.title_rank() < TITLES["药师"][1]:
        raise RuleViolation("R10", "审方需药师及以上职称")


def ensure_may_nurse_at_home(q: Qualification, today: date) -> None:
    """R44: ≥5 years of clinical nursing and at least the 护师 title."""
    if q.role is not Role.NURSE:
        raise RuleViolation("R44", "只有护士可以提供上门护理")
    years = q.years_of_practice(today)
    if years < MIN_HOME_NURSE_YEARS:
        raise RuleViolation("R44", f"护士执业 {years} 年，不足 {MIN_HOME_NURSE_YEARS} 年，不能上门服务")
    if q.title_rank() < TITLES[MIN_HOME_NURSE_TITLE][1]:
        raise RuleViolation("R44", f"上门护理需{MIN_HOME_NURSE_TITLE}及以上职称")
