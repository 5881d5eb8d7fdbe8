"""Port for the hospital information system (HIS): the patient's offline record.

The real HIS answers over its own interface; ``clinical_core.adapters.his_fake``
serves the seeded ``his_visits`` and ``his_results`` tables for the demo and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from clinical_core.domain.errors import ExternalServiceError


@dataclass(frozen=True, slots=True)
class HisDiagnosis:
    code: str  # ICD-10
    name: str


@dataclass(frozen=True, slots=True)
class HisVisit:
    """线下就诊记录."""

    visit_no: str
    visited_at: datetime
    visit_type: str  # outpatient | inpatient | emergency
    department: str
    doctor: str | None
    diagnoses: tuple[HisDiagnosis, ...]


@dataclass(frozen=True, slots=True)
class HisLabItem:
    code: str
    name: str
    value: str
    unit: str
    reference_range: str
    flag: str  # "" normal | "H" high | "L" low


@dataclass(frozen=True, slots=True)
class HisResult:
    """检验/检查报告 of an offline visit."""

    report_no: str
    visit_no: str
    kind: str  # lab | exam
    name: str
    reported_at: datetime
    items: tuple[HisLabItem, ...]  # lab results
    findings: str | None  # exam: 检查所见
    conclusion: str | None  # exam: 诊断意见

    @property
    def abnormal(self) -> bool:
        return any(i.flag for i in self.items)


class HisPort(Protocol):
    def visits(self, patient_id: str, *, limit: int = 50) -> list[HisVisit]:
        """The patient's offline visits (newest first), by the patient's public id."""
        ...

    def results(self, patient_id: str, *, limit: int = 50) -> list[HisResult]:
        """The patient's lab and exam reports (newest first), by the patient's public id."""
        ...


# --- 集成模式 (RX-5): the HIS's pharmacy and billing, for prescriptions ---------------------------------
#
# In integrated mode the HIS owns the drug catalogue and the diagnosis library, registers (and voids)
# the prescription, charges and refunds it through its own billing, and dispenses it at the hospital
# pharmacy. Every call that changes something carries an idempotency key: the HIS treats a repeated key
# as the same request and answers with the first result, so a retry after a timeout never registers
# or charges twice. ``lookup`` answers what the HIS did under a key (the reconciliation job's question
# when a call's outcome is unknown).
#
# Errors: ``HisRefused`` (the HIS answered no; nothing happened) and ``ServiceUnavailable`` (no answer:
# timeout or connection; the request may or may not have been carried out).


@dataclass(frozen=True, slots=True)
class HisDrug:
    """药品字典 entry of the HIS, with the codes of ``clinical_core.domain.drug_catalogue``."""

    code: str
    generic_name: str
    trade_name: str | None
    specification: str
    dosage_form: str
    unit: str
    price_fen: int
    category: str  # western | chinese_patent | herbal_pieces
    control_class: str  # none | narcotic | psychotropic_1 | ... (regulatory class)
    prescription_only: bool
    active: bool  # False: withdrawn (停用) by the HIS


@dataclass(frozen=True, slots=True)
class HisRxLine:
    drug_code: str
    quantity: int
    price_fen: int


@dataclass(frozen=True, slots=True)
class HisRxOrder:
    """What is registered with the HIS: our prescription id and version, the patient and doctor by their
    public ids (the HIS maps them to its own), diagnoses and lines."""

    prescription_id: str
    version: int
    patient_id: str
    doctor_id: str
    diagnosis_codes: tuple[str, ...]
    lines: tuple[HisRxLine, ...]

    @property
    def amount_fen(self) -> int:
        return sum(line.price_fen * line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class HisReceipt:
    """The HIS's answer to one request: its own number for what it did (处方号, 收费单号, 退费单号, 发药单号)."""

    kind: str  # register | void | charge | refund | dispense
    number: str
    amount_fen: int = 0  # charge and refund
    at: datetime | None = None


class HisRefused(ExternalServiceError):
    """The HIS answered and refused the request; nothing was carried out."""

    title = "HIS 拒绝了请求"


class HisRxPort(Protocol):
    def drug_catalogue(self) -> list[HisDrug]:
        """The whole drug dictionary, withdrawn drugs included (``active`` False)."""
        ...

    def diagnoses(self, codes: tuple[str, ...]) -> dict[str, str]:
        """诊断库: ICD-10 code → standard name, for those of ``codes`` the HIS knows and has not retired."""
        ...

    def register(self, key: str, order: HisRxOrder) -> HisReceipt:
        """处方登记. The HIS refuses a withdrawn or unknown drug or an unknown diagnosis."""
        ...

    def void(self, key: str, rx_no: str, reason: str) -> HisReceipt:
        """处方作废 (only before it is charged)."""
        ...

    def charge(self, key: str, rx_no: str, amount_fen: int) -> HisReceipt:
        """收费: the HIS bills the registered prescription; a different amount is refused."""
        ...

    def refund(self, key: str, charge_no: str, amount_fen: int, reason: str) -> HisReceipt:
        """退费 of a charge not yet dispensed."""
        ...

    def dispense(self, key: str, rx_no: str, store_code: str) -> HisReceipt:
        """院内药房发药 of a charged prescription; never twice."""
        ...

    def lookup(self, key: str) -> HisReceipt | None:
        """What the HIS did under ``key`` (None: it never carried that request out)."""
        ...
