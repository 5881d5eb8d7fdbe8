"""互联网+护理服务 over HTTP: patients find items at their address, book, pay,
cancel and review; nurses grab from the service hall, assess, check in and out,
report their trail and call for help; administrators manage items, nurses,
the blacklist, order review and the alarm queue. Roles and ownership are
checked by the services; the routes only parse and call them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from clinical_core.api.security import PrincipalDep, UowDep
from clinical_core.domain.nursing import NursingStatus
from clinical_core.domain.nursing_alarm import AlarmStatus, ResponseStats
from clinical_core.domain.time import SHANGHAI
from clinical_core.ports.geocoder import Geocoder
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import (
    nursing_alarms,
    nursing_catalogue,
    nursing_hall,
    nursing_orders,
    nursing_visits,
)
from clinical_core.services.nursing_catalogue import ItemSettings

router = APIRouter(prefix="/api/v1", tags=["nursing"])
N = "/nursing"


def _port(name: str) -> Any:
    def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)
    return dependency


PaymentsDep = Annotated[PaymentGateway, Depends(_port("payments"))]
GeocoderDep = Annotated[Geocoder, Depends(_port("geocoder"))]
Orders = list[nursing_orders.NursingOrderView]


def _aware(value: datetime) -> datetime:
    """A time without an offset is the hospital's local time."""
    return value.replace(tzinfo=SHANGHAI).astimezone(UTC) if value.tzinfo is None else value.astimezone(UTC)


class Window(BaseModel):
    address: str = Field(max_length=200)
    window_start: datetime
    window_end: datetime


class NewOrder(Window):
    item_id: str = Field(max_length=40)
    condition: str = Field(max_length=4000)


class ItemIn(BaseModel):
    code: str = Field(max_length=20)
    name: str = Field(max_length=60)
    price_fen: int
    duration_minutes: int
    min_title: str = "护师"
    required_skills: list[str] = []
    districts: list[str] = []
    polygons: list[list[tuple[float, float]]] = []
    description: str = Field(default="", max_length=400)
    enabled: bool = True


class NurseIn(BaseModel):
    staff_id: str
    base_lat: float
    base_lon: float
    radius_km: float = 10.0
    skills: list[str] = []


class Reason(BaseModel):
    reason: str = Field(default="", max_length=200)


class Review(BaseModel):
    rating: int
    comment: str | None = Field(default=None, max_length=1000)


class Assign(BaseModel):
    staff_id: str
    reason: str = Field(default="", max_length=200)


class Assessment(BaseModel):
    suitable: bool
    findings: str = Field(max_length=4000)


class Location(BaseModel):
    lat: float
    lon: float


class CheckOut(Location):
    notes: str = Field(max_length=4000)


class Note(BaseModel):
    notes: str = Field(max_length=4000)


class Override(BaseModel):
    event: str
    reason: str = Field(max_length=200)


class Point(Location):
    recorded_at: datetime
    accuracy_m: float | None = None


class Track(BaseModel):
    points: list[Point] = Field(max_length=500)


class Sos(Location):
    order_id: str | None = None


class Notes(BaseModel):
    notes: str = Field(max_length=1000)


class BlacklistIn(BaseModel):
    patient_id: str
    reason: str = Field(max_length=200)


# --- items, nurses, blacklist ---


@router.get(f"{N}/items", response_model=list[nursing_catalogue.ItemView], summary="护理项目")
def items(principal: PrincipalDep, uow: UowDep, include_disabled: bool = False) -> list[nursing_catalogue.ItemView]:
    return nursing_catalogue.list_items(uow, principal, include_disabled=include_disabled)


@router.put(f"{N}/items", response_model=nursing_catalogue.ItemView, summary="新建或修改护理项目（管理员）")
def configure_item(body: ItemIn, principal: PrincipalDep, uow: UowDep) -> nursing_catalogue.ItemView:
    data = body.model_dump()
    data["required_skills"], data["districts"] = tuple(data["required_skills"]), tuple(data["districts"])
    data["polygons"] = tuple(tuple(tuple(v) for v in p) for p in data["polygons"])
    return nursing_catalogue.configure_item(uow, principal, ItemSettings(**data))


@router.post(f"{N}/offers", response_model=nursing_catalogue.OfferedItems, summary="按地址与时间查可预约项目")
def offers(body: Window, principal: PrincipalDep, uow: UowDep, geocoder: GeocoderDep) -> nursing_catalogue.OfferedItems:
    return nursing_catalogue.offered_items(uow, principal, geocoder, body.address, _aware(body.window_start),
                                           _aware(body.window_end))


@router.get(f"{N}/nurses", response_model=list[nursing_catalogue.HomeNurseView], summary="上门护士")
def nurses(principal: PrincipalDep, uow: UowDep) -> list[nursing_catalogue.HomeNurseView]:
    return nursing_catalogue.list_home_nurses(uow, principal)


@router.put(f"{N}/nurses", response_model=nursing_catalogue.HomeNurseView, summary="护士准入（R44）")
def register_nurse(body: NurseIn, principal: PrincipalDep, uow: UowDep) -> nursing_catalogue.HomeNurseView:
    return nursing_catalogue.register_home_nurse(uow, principal, body.staff_id, body.base_lat, body.base_lon,
                                                 body.radius_km, tuple(body.skills))


@router.get(f"{N}/blacklist", response_model=list[nursing_catalogue.BlacklistEntry], summary="服务对象黑名单")
def blacklist(principal: PrincipalDep, uow: UowDep) -> list[nursing_catalogue.BlacklistEntry]:
    return nursing_catalogue.blacklist_list(uow, principal)


@router.post(f"{N}/blacklist", response_model=nursing_catalogue.BlacklistEntry, status_code=201,
             summary="列入黑名单（R49）")
def blacklist_add(body: BlacklistIn, principal: PrincipalDep, uow: UowDep) -> nursing_catalogue.BlacklistEntry:
    return nursing_catalogue.blacklist_add(uow, principal, body.patient_id, body.reason)


@router.delete(f"{N}/blacklist/{{patient_id}}", status_code=204, summary="移出黑名单")
def blacklist_remove(patient_id: str, principal: PrincipalDep, uow: UowDep) -> None:
    nursing_catalogue.blacklist_remove(uow, principal, patient_id)


# --- orders ---


@router.post(f"{N}/orders", response_model=nursing_orders.CreatedNursingOrder, status_code=201, summary="预约上门护理")
def book(body: NewOrder, principal: PrincipalDep, uow: UowDep, payments: PaymentsDep,
         geocoder: GeocoderDep) -> nursing_orders.CreatedNursingOrder:
    return nursing_orders.book_order(uow, principal, payments, geocoder, body.item_id, body.address,
                                     _aware(body.window_start), _aware(body.window_end), body.condition)


@router.post("/payments/wechat/nursing-notify", summary="护理费支付结果通知（支付平台回调，签名校验）")
async def paid_notification(request: Request, uow: UowDep, payments: PaymentsDep) -> dict[str, str]:
    body = await request.body()
    nursing_orders.handle_paid_notification(uow, payments, dict(request.headers), body)
    return {"code": "SUCCESS", "message": "成功"}


@router.get(f"{N}/orders", response_model=Orders, summary="护理订单（患者：本人；护士：本人承接；管理：全部）")
def orders(principal: PrincipalDep, uow: UowDep, status: NursingStatus | None = None, limit: int = 50,
           offset: int = 0) -> Orders:
    return nursing_orders.list_orders(uow, principal, status=status, limit=min(max(limit, 1), 500),
                                      offset=max(offset, 0))


@router.get(f"{N}/orders/{{order_id}}", response_model=nursing_orders.NursingOrderDetail, summary="订单详情")
def detail(order_id: str, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderDetail:
    return nursing_orders.get_order(uow, principal, order_id)


@router.post(f"{N}/orders/{{order_id}}/cancel", response_model=nursing_orders.NursingOrderView, summary="取消订单")
def cancel(order_id: str, body: Reason, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_orders.cancel_order(uow, principal, order_id, body.reason)


@router.post(f"{N}/orders/{{order_id}}/review", response_model=nursing_orders.NursingOrderView, summary="服务评价")
def review(order_id: str, body: Review, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_orders.review_order(uow, principal, order_id, body.rating, body.comment)


@router.post(f"{N}/orders/{{order_id}}/approve", response_model=nursing_orders.NursingOrderView, summary="审核通过")
def approve(order_id: str, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_orders.approve_order(uow, principal, order_id)


@router.post(f"{N}/orders/{{order_id}}/reject", response_model=nursing_orders.NursingOrderView, summary="审核驳回")
def reject(order_id: str, body: Reason, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_orders.reject_order(uow, principal, order_id, body.reason)


@router.post(f"{N}/orders/{{order_id}}/assign", response_model=nursing_orders.NursingOrderView, summary="派单/改派")
def assign(order_id: str, body: Assign, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_orders.assign_order(uow, principal, order_id, body.staff_id, body.reason)


@router.post(f"{N}/orders/{{order_id}}/assessment", response_model=nursing_orders.AssessmentView, status_code=201,
             summary="首诊评估（R46）")
def assess(order_id: str, body: Assessment, principal: PrincipalDep, uow: UowDep) -> nursing_orders.AssessmentView:
    return nursing_orders.record_assessment(uow, principal, order_id, body.suitable, body.findings)


# --- nurse: hall and on site ---


@router.get(f"{N}/hall", response_model=list[nursing_hall.HallOrder], summary="服务大厅（可抢订单）")
def hall(principal: PrincipalDep, uow: UowDep) -> list[nursing_hall.HallOrder]:
    return nursing_hall.service_hall(uow, principal)


@router.post(f"{N}/orders/{{order_id}}/grab", response_model=nursing_orders.NursingOrderView, summary="抢单")
def grab(order_id: str, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_hall.grab_order(uow, principal, order_id)


@router.post(f"{N}/orders/{{order_id}}/check-in", response_model=nursing_orders.NursingOrderView, summary="签到")
def check_in(order_id: str, body: Location, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_visits.check_in(uow, principal, order_id, body.lat, body.lon)


@router.post(f"{N}/orders/{{order_id}}/check-out", response_model=nursing_orders.NursingOrderView, summary="签退")
def check_out(order_id: str, body: CheckOut, principal: PrincipalDep, uow: UowDep) -> nursing_orders.NursingOrderView:
    return nursing_visits.check_out(uow, principal, order_id, body.lat, body.lon, body.notes)


@router.post(f"{N}/orders/{{order_id}}/notes", response_model=nursing_visits.VisitEntry, status_code=201,
             summary="服务过程记录")
def note(order_id: str, body: Note, principal: PrincipalDep, uow: UowDep) -> nursing_visits.VisitEntry:
    return nursing_visits.add_note(uow, principal, order_id, body.notes)


@router.post(f"{N}/orders/{{order_id}}/track", response_model=nursing_visits.TrackResult, summary="轨迹上报")
def track(order_id: str, body: Track, principal: PrincipalDep, uow: UowDep) -> nursing_visits.TrackResult:
    points = [nursing_visits.TrackPoint(p.lat, p.lon, _aware(p.recorded_at), p.accuracy_m) for p in body.points]
    return nursing_visits.record_track(uow, principal, order_id, points)


@router.get(f"{N}/orders/{{order_id}}/track", response_model=list[nursing_visits.TrackPoint], summary="服务轨迹")
def trajectory(order_id: str, principal: PrincipalDep, uow: UowDep) -> list[nursing_visits.TrackPoint]:
    return nursing_visits.trajectory(uow, principal, order_id)


@router.get(f"{N}/orders/{{order_id}}/visit-record", response_model=nursing_visits.VisitRecord,
            summary="服务记录与防篡改校验")
def visit_record(order_id: str, principal: PrincipalDep, uow: UowDep) -> nursing_visits.VisitRecord:
    return nursing_visits.visit_record(uow, principal, order_id)


@router.post(f"{N}/orders/{{order_id}}/geofence-override", response_model=nursing_visits.VisitEntry,
             status_code=201, summary="电子围栏放行（管理员）")
def override(order_id: str, body: Override, principal: PrincipalDep, uow: UowDep) -> nursing_visits.VisitEntry:
    return nursing_visits.override_geofence(uow, principal, order_id, body.event, body.reason)


# --- alarms ---


@router.post(f"{N}/alarms", response_model=nursing_alarms.AlarmView, status_code=201, summary="一键呼叫")
def sos(body: Sos, principal: PrincipalDep, uow: UowDep) -> nursing_alarms.AlarmView:
    return nursing_alarms.raise_sos(uow, principal, body.lat, body.lon, body.order_id)


@router.get(f"{N}/alarms", response_model=list[nursing_alarms.AlarmView], summary="报警队列")
def alarms(principal: PrincipalDep, uow: UowDep, status: AlarmStatus | None = None,
           open_only: bool = False) -> list[nursing_alarms.AlarmView]:
    return nursing_alarms.list_alarms(uow, principal, status=status, open_only=open_only)


@router.post(f"{N}/alarms/{{alarm_id}}/acknowledge", response_model=nursing_alarms.AlarmView, summary="响应报警")
def acknowledge(alarm_id: str, principal: PrincipalDep, uow: UowDep) -> nursing_alarms.AlarmView:
    return nursing_alarms.acknowledge_alarm(uow, principal, alarm_id)


@router.post(f"{N}/alarms/{{alarm_id}}/close", response_model=nursing_alarms.AlarmView, summary="关闭报警")
def close(alarm_id: str, body: Notes, principal: PrincipalDep, uow: UowDep) -> nursing_alarms.AlarmView:
    return nursing_alarms.close_alarm(uow, principal, alarm_id, body.notes)


@router.get(f"{N}/alarm-stats", response_model=ResponseStats, summary="报警响应时间统计")
def alarm_stats(principal: PrincipalDep, uow: UowDep, since: datetime, until: datetime) -> ResponseStats:
    return nursing_alarms.response_times(uow, principal, _aware(since), _aware(until))
