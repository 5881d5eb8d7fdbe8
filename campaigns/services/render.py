"""Template-message fields rendered with jinja2 from patient and doctor variables.

Staff write the fields (``{{ patient.salutation }}，您的复诊提醒``); rendering is sandboxed and
strict: an unknown variable is an error, never an empty string. Each rendered field must fit
WeChat's 20-character rule (WX-TPL-20) — opsctl refuses instead of letting WeChat truncate.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from campaigns.domain import limits as L
from campaigns.persistence.pushes import DeliveryRow, PushRow, ShortLinkRow
from campaigns.services.links import recipient_token
from clinical_core.domain.errors import InvalidInput, RuleViolation
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import DepartmentRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)

SAMPLE = {
    "patient": {"name": "王小明", "surname": "王", "salutation": "王先生"},
    "doctor": {"name": "李医生", "title": "主任医师", "department": "心血管内科"},
    "push": {"link": "http://127.0.0.1:8700/l/abcdEFGH"},
}


@lru_cache(maxsize=256)
def _compiled(source: str):  # noqa: ANN202 - a jinja2 Template
    return _ENV.from_string(source)


@lru_cache(maxsize=256)
def _names(source: str) -> frozenset[str]:
    """The top-level variables a field uses (``patient``, ``doctor``, ``push``)."""
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))


def recipient_names(fields: dict[str, str]) -> frozenset[str]:
    """Which recipient variables (``patient`` / ``doctor``) the fields use; an unparsable field
    counts as using them (rendering it per recipient reports the error)."""
    names: set[str] = set()
    for source in fields.values():
        try:
            names |= _names(source)
        except TemplateError:
            return frozenset({"patient", "doctor"})
    return frozenset(names - {"push"})


def render_fields(fields: dict[str, str], variables: dict[str, Any]) -> dict[str, str]:
    """Render every field; raises InvalidInput (unknown variable / syntax) or RuleViolation (20 chars)."""
    out: dict[str, str] = {}
    for key, source in fields.items():
        try:
            out[key] = _compiled(source).render(**variables).strip()
        except UndefinedError:
            raise InvalidInput(f"模板字段 {key} 使用了不存在的变量", field=key) from None
        except TemplateError:
            raise InvalidInput(f"模板字段 {key} 的写法有误", field=key) from None
    L.check_template_data({k: {"value": v} for k, v in out.items()})
    return out


def check_fields(fields: dict[str, str], template_fields: list[str]) -> None:
    """At creation: only the template's own fields, each renderable from the sample variables."""
    unknown = sorted(set(fields) - set(template_fields))
    if unknown:
        raise InvalidInput(f"模板没有字段：{'、'.join(unknown)}", field="fields")
    render_fields(fields, SAMPLE)


def _salutation(name: str, sex: str) -> str:
    return name[:1] + ("先生" if sex == "M" else "女士" if sex == "F" else "")


def variables_for(uow: UnitOfWork, rows: list[DeliveryRow]) -> dict[int, dict[str, Any]]:
    """Per delivery row: patient (decrypted only here, in memory) and the last consultation's doctor."""
    patient_ids = {r.patient_id for r in rows if r.patient_id}
    patients = {p.id: p for p in uow.session.scalars(select(PatientRow).where(PatientRow.id.in_(patient_ids)))} \
        if patient_ids else {}
    doctors: dict[int, dict[str, str]] = {}
    if patient_ids:
        last = (select(ConsultationRow.patient_id, StaffRow.name, StaffRow.title, DepartmentRow.name.label("dept"))
                .join(StaffRow, StaffRow.id == ConsultationRow.doctor_id)
                .outerjoin(DepartmentRow, DepartmentRow.id == StaffRow.department_id)
                .where(ConsultationRow.patient_id.in_(patient_ids))
                .order_by(ConsultationRow.patient_id, ConsultationRow.created_at))
        for patient_id, name, title, dept in uow.session.execute(last):
            doctors[patient_id] = {"name": name, "title": title or "", "department": dept or ""}
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        variables: dict[str, Any] = {}
        patient = patients.get(row.patient_id or 0)
        if patient is not None:
            name = uow.vault.decrypt(patient.name_enc)
            variables["patient"] = {"name": name, "surname": name[:1], "salutation": _salutation(name, patient.sex)}
        if row.patient_id in doctors:
            variables["doctor"] = doctors[row.patient_id or 0]
        out[row.id] = variables
    return out


def link_for(uow: UnitOfWork, push: PushRow, variant: str, base_url: str) -> str | None:
    code = uow.session.scalar(select(ShortLinkRow.code).where(ShortLinkRow.push_id == push.id,
                                                              ShortLinkRow.variant == variant))
    return None if code is None else f"{base_url.rstrip('/')}/l/{code}"


def make_renderer(base_url: str):  # noqa: ANN201 - returns delivery.Renderer
    """The worker's renderer: {delivery id: {"data": fields, "url": link}} or {"error": rule}."""

    def render(uow: UnitOfWork, push: PushRow, rows: list[DeliveryRow]) -> dict[int, dict[str, Any]]:
        # fields that use no recipient variable are rendered once per variant, and patients are
        # decrypted only when a field uses them
        personal = {v: recipient_names((push.variants.get(v) or {}).get("fields") or {}) for v in {r.variant for r in rows}}
        variables = variables_for(uow, [r for r in rows if personal[r.variant]]) if any(personal.values()) else {}
        out: dict[int, dict[str, Any]] = {}
        links: dict[str, str | None] = {}
        shared: dict[str, dict[str, Any]] = {}
        for row in rows:
            content = push.variants.get(row.variant) or {}
            if "data" in content:  # a follow-up step: fields already written and checked, never jinja
                out[row.id] = {"data": dict(content["data"]), "url": content.get("url")}
                continue
            if row.variant not in links:
                links[row.variant] = link_for(uow, push, row.variant, base_url)
            link = links[row.variant]
            url = f"{link}?u={recipient_token(uow, row.id)}" if link else content.get("url")
            if not personal[row.variant] and row.variant in shared:
                result = shared[row.variant]
            else:
                context = dict(variables.get(row.id) or {}, push={"link": link or ""})
                try:
                    result = {"data": render_fields(content.get("fields") or {}, context)}
                except RuleViolation as exc:
                    result = {"error": exc.rule}
                except InvalidInput:
                    result = {"error": "missing_variable"}
                if not personal[row.variant]:
                    shared[row.variant] = result
            out[row.id] = result if "error" in result else {"data": result["data"], "url": url}
        return out

    return render
