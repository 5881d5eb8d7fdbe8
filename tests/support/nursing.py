"""A small home-nursing service for tests: the clinic of ``tests.support.clinic``
plus nurses (qualified, junior, too new), an item offered in 南山区 and a
polygon around 福田 CBD, and helpers to book, pay and approve an order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from clinical_core.adapters.geocoder_sandbox import SandboxGeocoder
from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.services import accounts, nursing_catalogue, nursing_orders
from clinical_core.services.nursing_catalogue import ItemSettings
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, Clinic, build_clinic

# 南山区粤海街道 and its neighbourhood (the sandbox geocodes within ~250 m of these).
YUEHAI = (22.5230, 113.9420)
ADDRESS = "深圳市南山区粤海街道科技园路1号3栋502"
FUTIAN_ADDRESS = "深圳市福田区莲花街道红荔路8号"  # inside the CBD polygon, outside the district list
LUOHU_ADDRESS = "深圳市罗湖区东门街道解放路10号"  # offered nowhere
# A polygon around 福田 CBD / 莲花 (lon, lat).
CBD = ((114.04, 22.54), (114.07, 22.54), (114.07, 22.57), (114.04, 22.57))


@dataclass(frozen=True)
class NursingWorld:
    clinic: Clinic
    senior: Principal  # 主管护师, since 2012, PICC skill, based in 粤海
    nurse: Principal  # 护师, since 2018, based in 粤海
    far_nurse: Principal  # 护师, based in 坪山 (out of reach)
    junior: Principal  # 护士 title: R44 refuses
    new_nurse: Principal  # 护师 since 2024: under 5 years, R44 refuses
    item: str  # 伤口换药 (护师), 南山区 + CBD polygon
    picc: str  # PICC维护 (主管护师, PICC skill), 南山区
    gateway: SandboxPaymentGateway
    geocoder: SandboxGeocoder


def _nurse(c: Container, username: str, title: str, since: date) -> Principal:
    view = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=Role.NURSE, name=f"护士{username[-1].upper()}", title=title,
        licence_no=f"2104403{sum(map(ord, username)):08d}", practising_since=since))
    return Principal(view.public_id, username, Role.NURSE, staff_id=view.staff_id)


def build_nursing(c: Container, clock_now: datetime) -> NursingWorld:
    clinic = build_clinic(c)
    senior = _nurse(c, "nr.s", "主管护师", date(2012, 3, 1))
    nurse = _nurse(c, "nr.n", "护师", date(2018, 3, 1))
    far = _nurse(c, "nr.f", "护师", date(2016, 3, 1))
    junior = _nurse(c, "nr.j", "护士", date(2010, 3, 1))
    new = _nurse(c, "nr.w", "护师", date(2024, 3, 1))
    nursing_catalogue.register_home_nurse(c.uow(), ADMIN, senior.staff_id or "", *YUEHAI, radius_km=8,
                                          skills=("PICC维护",))
    nursing_catalogue.register_home_nurse(c.uow(), ADMIN, nurse.staff_id or "", *YUEHAI, radius_km=8)
    nursing_catalogue.register_home_nurse(c.uow(), ADMIN, far.staff_id or "", 22.69, 114.345, radius_km=8)
    item = nursing_catalogue.configure_item(c.uow(), ADMIN, ItemSettings(
        code="WOUND", name="伤口换药", price_fen=15000, duration_minutes=45, districts=("440305",),
        polygons=(CBD,))).public_id
    picc = nursing_catalogue.configure_item(c.uow(), ADMIN, ItemSettings(
        code="PICC", name="PICC维护", price_fen=30000, duration_minutes=60, min_title="主管护师",
        required_skills=("PICC维护",), districts=("440305",))).public_id
    return NursingWorld(clinic, senior, nurse, far, junior, new, item, picc, SandboxPaymentGateway(c.clock),
                        SandboxGeocoder())


def window(now: datetime, days: int = 1, hour: int = 9, hours: int = 3) -> tuple[datetime, datetime]:
    """A window starting at ``hour`` o'clock in Shenzhen, ``days`` Shenzhen calendar days after ``now``'s
    (so always more than the 2 hours' lead ahead, whatever the time of day: at 23:14 UTC, 07:14 in
    Shenzhen, "tomorrow at 01:00 UTC" would have been 1 h 46 min away)."""
    local_day = now.astimezone(SHANGHAI).date() + timedelta(days=days)
    start = datetime.combine(local_day, time(hour), tzinfo=SHANGHAI).astimezone(UTC)
    return start, start + timedelta(hours=hours)


def book_paid(c: Container, w: NursingWorld, *, item: str | None = None, patient: Principal | None = None,
              address: str = ADDRESS, approve: bool = True, days: int = 1) -> str:
    start, end = window(c.clock.now(), days)
    created = nursing_orders.book_order(c.uow(), patient or w.clinic.patient, w.gateway, w.geocoder,
                                        item or w.item, address, start, end, "术后伤口需要换药，每两天一次")
    headers, body = w.gateway.simulate_payment(created.out_trade_no)
    nursing_orders.handle_paid_notification(c.uow(), w.gateway, headers, body)
    if approve:
        nursing_orders.approve_order(c.uow(), ADMIN, created.order.public_id)
    return created.order.public_id


def assessed(c: Container, w: NursingWorld, order_id: str, nurse: Principal | None = None) -> None:
    nursing_orders.record_assessment(c.uow(), nurse or w.senior, order_id, True, "生命体征平稳，伤口愈合期，适合上门")
