"""处方与审方 over HTTP: doctors issue, revise and void; pharmacists review;
patients read their own, pay for the drugs, choose a store, track and confirm
delivery; store pharmacists and administrators dispense and ship. Roles,
ownership and every rule are the services'."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from clinical_core.adapters import rx_pdf
from clinical_core.api.consultations import PaymentsDep
from clinical_core.api.security import PrincipalDep, UowDep
from clinical_core.domain.prescription import RejectReason, RxStatus
from clinical_core.domain.prescription_rules import RULES
from clinical_core.ports.his import HisPort, HisRxPort
from clinical_core.ports.signer import Signer
from clinical_core.services import prescriptions as service
from clinical_core.services import rx_circulation as circulation
from clinical_core.services import rx_print
from clinical_core.services import rx_renewals as renewals

router = APIRouter(prefix="/api/v1", tags=["prescriptions"])


def _his(request: Request) -> Any:
    return request.app.state.his


def _signer(request: Request) -> Any:
    return request.app.state.signer


def _his_rx(request: Request) -> Any:
    """The HIS in integrated mode (RX-5), ``None`` in standalone mode: the same endpoints either way."""
    return request.app.state.container.his_rx_port


HisDep = Annotated[HisPort, Depends(_his)]
SignerDep = Annotated[Signer, Depends(_signer)]
HisRxDep = Annotated[HisRxPort | None, Depends(_his_rx)]
View = service.PrescriptionView


class ItemIn(BaseModel):
    drug_code: str = Field(max_length=30)
    quantity: int
    days_supply: int
    usage: str = Field(max_length=200)


class PrescriptionIn(BaseModel):
    consultation_id: str = Field(max_length=40)
    diagnosis_codes: list[str] = Field(max_length=10)
    items: list[ItemIn] = Field(max_length=20)
    valid_days: int = 1
    long_term_reason: str | None = Field(default=None, max_length=200)
    guardian_present: bool = False

    def command(self) -> service.NewPrescription:
        return service.NewPrescription(
            consultation_id=self.consultation_id, diagnosis_codes=tuple(self.diagnosis_codes),
            items=tuple(service.NewItem(i.drug_code, i.quantity, i.days_supply, i.usage) for i in self.items),
            valid_days=self.valid_days, long_term_reason=self.long_term_reason,
            guardian_present=self.guardian_present)


class ReviewIn(BaseModel):
    approve: bool
    reasons: list[RejectReason] = []
    comment: str | None = Field(default=None, max_length=500)


class VoidIn(BaseModel):
    reason: str = Field(max_length=200)


class RuleOut(BaseModel):
    code: str
    severity: str
    title: str
    source: str


@router.get("/prescription-rules", response_model=list[RuleOut], summary="处方规则（编码、级别、出处）")
def rules(principal: PrincipalDep) -> list[RuleOut]:
    del principal  # any signed-in caller may read the rules
    return [RuleOut(code=r.code, severity=r.severity.value, title=r.title, source=r.source) for r in RULES]


@router.post("/prescriptions", response_model=View, status_code=201, summary="开具处方（医生，复诊咨询内）")
def issue(body: PrescriptionIn, principal: PrincipalDep, uow: UowDep, his: HisDep, signer: SignerDep,
          his_rx: HisRxDep) -> View:
    return service.issue_prescription(uow, principal, his, signer, body.command(), his_rx=his_rx)


@router.put("/prescriptions/{rx_id}", response_model=View, summary="修改被驳回的处方并重新提交审核")
def revise(rx_id: str, body: PrescriptionIn, principal: PrincipalDep, uow: UowDep, his: HisDep,
           signer: SignerDep, his_rx: HisRxDep) -> View:
    return service.revise_prescription(uow, principal, his, signer, rx_id, body.command(), his_rx=his_rx)


@router.get("/prescriptions", response_model=list[View], summary="处方列表（药师、管理员）")
def list_(principal: PrincipalDep, uow: UowDep, status: RxStatus | None = None) -> list[View]:
    return service.list_prescriptions(uow, principal, status=status)


@router.get("/pharmacist/review-queue", response_model=list[View], summary="审方队列（药师）")
def queue(principal: PrincipalDep, uow: UowDep) -> list[View]:
    return service.review_queue(uow, principal)


@router.get("/prescriptions/{rx_id}", response_model=View, summary="处方详情（患者本人、开方医生、药师、管理员）")
def detail(rx_id: str, principal: PrincipalDep, uow: UowDep) -> View:
    return service.get_prescription(uow, principal, rx_id)


@router.get("/prescriptions/{rx_id}/pdf", response_class=Response, summary="打印处方 PDF（患者本人、开方医生、药师、管理员；审核通过后）",
            responses={200: {"content": {"application/pdf": {}}}})
def print_pdf(rx_id: str, principal: PrincipalDep, uow: UowDep, signer: SignerDep) -> Response:
    printout = rx_print.printout(uow, principal, signer, rx_id)
    return Response(rx_pdf.render_pdf(printout), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{rx_id}.pdf"'})


class QrIn(BaseModel):
    qr: str = Field(max_length=4000)


@router.post("/prescriptions/verify-qr", response_model=rx_print.QrCheck, summary="核验处方二维码（药房药师、管理员）")
def verify_qr(body: QrIn, principal: PrincipalDep, uow: UowDep, signer: SignerDep) -> rx_print.QrCheck:
    return rx_print.verify_qr(uow, principal, signer, body.qr)


@router.post("/prescriptions/{rx_id}/review", response_model=View, summary="审方：通过或驳回（药师）")
def review(rx_id: str, body: ReviewIn, principal: PrincipalDep, uow: UowDep, signer: SignerDep) -> View:
    return service.review_prescription(uow, principal, signer, rx_id, approve=body.approve, reasons=tuple(body.reasons),
                                       comment=body.comment)


@router.post("/prescriptions/{rx_id}/void", response_model=View, summary="作废处方（开方医生、管理员）")
def void(rx_id: str, body: VoidIn, principal: PrincipalDep, uow: UowDep, his_rx: HisRxDep) -> View:
    return service.void_prescription(uow, principal, rx_id, body.reason, his_rx=his_rx)


# --- circulation (流转), after approval only ---

Circulation = circulation.CirculationView


class StoreChoiceIn(BaseModel):
    store_code: str = Field(max_length=20)


class ShipIn(BaseModel):
    carrier: str = Field(max_length=40)
    tracking_no: str = Field(max_length=40)


class RefundIn(BaseModel):
    reason: str = Field(max_length=40)


@router.get("/dispensing-stores", response_model=list[circulation.StoreView], summary="可选药房")
def stores(principal: PrincipalDep, uow: UowDep) -> list[circulation.StoreView]:
    return circulation.list_stores(uow, principal)


@router.post("/prescriptions/{rx_id}/payment", response_model=circulation.DrugOrder,
             summary="购药支付（患者本人；仅审核通过的处方，R20）")
def pay(rx_id: str, principal: PrincipalDep, uow: UowDep, payments: PaymentsDep,
        his_rx: HisRxDep) -> circulation.DrugOrder:
    return circulation.pay_for_drugs(uow, principal, payments, rx_id, his=his_rx)


@router.post("/payments/wechat/rx-notify", summary="药费支付结果通知（支付平台回调，签名校验）")
async def rx_paid_notification(request: Request, uow: UowDep, payments: PaymentsDep) -> dict[str, str]:
    body = await request.body()
    await run_in_threadpool(circulation.handle_paid_notification, uow, payments, dict(request.headers), body)
    return {"code": "SUCCESS", "message": "成功"}


@router.put("/prescriptions/{rx_id}/store", response_model=Circulation, summary="选择调配药房（患者本人）")
def choose_store(rx_id: str, body: StoreChoiceIn, principal: PrincipalDep, uow: UowDep) -> Circulation:
    return circulation.choose_store(uow, principal, rx_id, body.store_code)


@router.get("/prescriptions/{rx_id}/circulation", response_model=Circulation,
            summary="流转跟踪：支付、调配、物流（患者本人、药师、管理员）")
def track(rx_id: str, principal: PrincipalDep, uow: UowDep) -> Circulation:
    return circulation.track(uow, principal, rx_id)


@router.post("/prescriptions/{rx_id}/refund", response_model=Circulation, summary="退款（调配前；患者本人、管理员）")
def refund(rx_id: str, body: RefundIn, principal: PrincipalDep, uow: UowDep, payments: PaymentsDep,
           his_rx: HisRxDep) -> Circulation:
    return circulation.refund_drugs(uow, principal, payments, rx_id, body.reason, his=his_rx)


@router.post("/prescriptions/{rx_id}/dispense", response_model=Circulation,
             summary="调配（药房药师、管理员；再次验证医生与药师签名 R41，已用处方不可再用 R54）")
def dispense(rx_id: str, principal: PrincipalDep, uow: UowDep, signer: SignerDep, his_rx: HisRxDep) -> Circulation:
    return circulation.dispense(uow, principal, signer, rx_id, his=his_rx)


@router.post("/prescriptions/{rx_id}/ship", response_model=Circulation, summary="发货（药房药师、管理员）")
def ship(rx_id: str, body: ShipIn, principal: PrincipalDep, uow: UowDep) -> Circulation:
    return circulation.ship(uow, principal, rx_id, body.carrier, body.tracking_no)


@router.post("/prescriptions/{rx_id}/deliver", response_model=Circulation, summary="确认签收（患者本人、管理员）")
def deliver(rx_id: str, principal: PrincipalDep, uow: UowDep) -> Circulation:
    return circulation.confirm_delivery(uow, principal, rx_id)


# --- 快速续方 (fast renewal) ---

Renewal = renewals.RenewalView


class RenewalDecisionIn(BaseModel):
    approve: bool
    reason: str | None = Field(default=None, max_length=200)


@router.post("/prescriptions/{rx_id}/renewals", response_model=Renewal, status_code=201,
             summary="申请快速续方（患者本人；已调配的慢病长期处方）")
def request_renewal(rx_id: str, principal: PrincipalDep, uow: UowDep) -> Renewal:
    return renewals.request_renewal(uow, principal, rx_id)


@router.get("/doctor/renewals", response_model=list[Renewal], summary="待处理的续方申请（原开方医生；含重复用药提示）")
def renewal_queue(principal: PrincipalDep, uow: UowDep) -> list[Renewal]:
    return renewals.renewal_queue(uow, principal)


@router.get("/renewals/{renewal_id}", response_model=Renewal, summary="续方申请详情（患者本人、原开方医生）")
def renewal_detail(renewal_id: str, principal: PrincipalDep, uow: UowDep) -> Renewal:
    return renewals.get_renewal(uow, principal, renewal_id)


@router.post("/renewals/{renewal_id}/decision", response_model=Renewal,
             summary="续方（新处方，重新签名、全部规则与审方）或拒绝并说明原因（原开方医生）")
def decide_renewal(renewal_id: str, body: RenewalDecisionIn, principal: PrincipalDep, uow: UowDep, his: HisDep,
                   signer: SignerDep, his_rx: HisRxDep) -> Renewal:
    return renewals.decide_renewal(uow, principal, his, signer, renewal_id, approve=body.approve, reason=body.reason,
                                   his_rx=his_rx)
