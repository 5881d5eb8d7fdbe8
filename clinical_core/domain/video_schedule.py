"""网络门诊排班: online sessions cut into slots, the rows of a schedule workbook,
and the fused view of online and offline (HIS outpatient) slots (VC-3).

Pure standard library. A doctor is one person: an online slot and an offline
slot of the same doctor that overlap in time are the same time of that doctor
(号源共享), so a slot taken on either side is gone from both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.time import SHANGHAI
from clinical_core.domain.video_visit import MAX_PRICE_FEN

MIN_SLOT_MINUTES, MAX_SLOT_MINUTES = 5, 60
MAX_SESSION = timedelta(hours=8)
MAX_DAYS_AHEAD = 60  # sessions are published at most two months ahead


@dataclass(frozen=True, slots=True)
class SlotTime:
    starts_at: datetime
    ends_at: datetime


def check_session(starts_at: datetime, ends_at: datetime, slot_minutes: int, price_fen: int,
                  now: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidInput("排班时间须带时区", field="starts_at")
    if not MIN_SLOT_MINUTES <= slot_minutes <= MAX_SLOT_MINUTES:
        raise InvalidInput(f"每号时长应在 {MIN_SLOT_MINUTES} 到 {MAX_SLOT_MINUTES} 分钟之间", field="slot_minutes")
    if ends_at <= starts_at or ends_at - starts_at > MAX_SESSION:
        raise InvalidInput("出诊结束时间须晚于开始时间，且单次出诊不超过 8 小时", field="ends_at")
    if (ends_at - starts_at) < timedelta(minutes=slot_minutes):
        raise InvalidInput("出诊时长不足一个号", field="ends_at")
    if starts_at <= now:
        raise InvalidInput("不能为已经开始的时段排班", field="starts_at")
    if starts_at - now > timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput(f"排班最多提前 {MAX_DAYS_AHEAD} 天", field="starts_at")
    if not 0 <= price_fen <= MAX_PRICE_FEN:
        raise InvalidInput(f"挂号费应在 0 到 {MAX_PRICE_FEN // 100} 元之间", field="price_fen")


def cut_slots(starts_at: datetime, ends_at: datetime, slot_minutes: int) -> list[SlotTime]:
    """The session's slots, back to back; a remainder shorter than one slot is left unused."""
    step = timedelta(minutes=slot_minutes)
    slots, at = [], starts_at
    while at + step <= ends_at:
        slots.append(SlotTime(at, at + step))
        at += step
    return slots


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


# --- Schedule workbook (排班导入) ---


class ScheduleRejected(InvalidInput):
    """The whole import is refused; ``row_errors`` lists every problem found."""

    def __init__(self, row_errors: list[str]) -> None:
        super().__init__(f"排班表有 {len(row_errors)} 处错误，未导入任何排班", field="file")
        self.row_errors = row_errors


HEADER = {"医生工号": "employee_no", "日期": "date", "开始时间": "start", "结束时间": "end",
          "每号分钟": "slot_minutes", "挂号费（元）": "price_yuan"}
HEADER_ALIASES = {"挂号费(元)": "price_yuan", "挂号费": "price_yuan"}


def check_header(cells: list[Any]) -> dict[str, int]:
    """Column positions by field; missing columns are one error naming them all."""
    positions: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = str(cell or "").strip()
        key = HEADER.get(name) or HEADER_ALIASES.get(name)
        if key:
            positions[key] = i
    missing = [label for label, key in HEADER.items() if key not in positions]
    if missing:
        raise ScheduleRejected([f"表头缺少列：{'、'.join(missing)}（应为：{'、'.join(HEADER)}）"])
    return positions


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    """One validated row of the workbook."""

    row: int
    employee_no: str
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int
    price_fen: int


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip().replace("/", "-").replace(".", "-")
    try:
        year, month, day = (int(part) for part in text.split("-"))
        return date(year, month, day)
    except ValueError:
        raise ValueError("日期格式应为 2026-11-02") from None


def _as_time(value: Any, label: str) -> time:
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, time):
        return value
    text = str(value or "").strip().replace("：", ":")
    try:
        return time.fromisoformat(text if len(text) > 4 else text.zfill(5))
    except ValueError:
        raise ValueError(f"{label}格式应为 08:30") from None


def _as_fen(value: Any) -> int:
    try:
        yuan = float(str(value).strip())
    except ValueError:
        raise ValueError("挂号费应为数字（元）") from None
    fen = round(yuan * 100)
    if abs(yuan * 100 - fen) > 1e-6:
        raise ValueError("挂号费最多精确到分")
    return fen


def parse_rows(rows: Iterable[tuple[int, Mapping[str, Any]]], now: datetime) -> tuple[list[ScheduleLine], list[str]]:
    """Every row checked; returns the lines and one Chinese error per bad row (never stops at the first)."""
    lines: list[ScheduleLine] = []
    errors: list[str] = []
    seen: dict[tuple[str, datetime], int] = {}
    for number, values in rows:
        try:
            employee_no = str(values.get("employee_no") or "").strip()
            if not employee_no:
                raise ValueError("医生工号不能为空")
            day = _as_date(values.get("date"))
            start = datetime.combine(day, _as_time(values.get("start"), "开始时间"), tzinfo=SHANGHAI).astimezone(UTC)
            end = datetime.combine(day, _as_time(values.get("end"), "结束时间"), tzinfo=SHANGHAI).astimezone(UTC)
            raw_minutes = values.get("slot_minutes")
            try:
                minutes = int(str(raw_minutes).strip())
            except ValueError:
                raise ValueError("每号分钟应为整数") from None
            price = _as_fen(values.get("price_yuan"))
            try:
                check_session(start, end, minutes, price, now)
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
            key = (employee_no, start)
            if key in seen:
                raise ValueError(f"与第 {seen[key]} 行重复")
            seen[key] = number
            lines.append(ScheduleLine(number, employee_no, start, end, minutes, price))
        except ValueError as exc:
            errors.append(f"第 {number} 行：{exc}")
    for a in lines:  # sessions of one doctor in the file must not overlap each other
        for b in lines:
            if a.row < b.row and a.employee_no == b.employee_no and overlaps(a.starts_at, a.ends_at, b.starts_at,
                                                                            b.ends_at):
                errors.append(f"第 {b.row} 行：与第 {a.row} 行的出诊时间重叠")
    return lines, errors


# --- The fused view (VC-3) ---


@dataclass(frozen=True, slots=True)
class OnlineSlot:
    slot_id: str
    doctor_id: str
    starts_at: datetime
    ends_at: datetime
    taken: bool
    price_fen: int


@dataclass(frozen=True, slots=True)
class OfflineSlot:
    slot_no: str
    doctor_id: str
    starts_at: datetime
    ends_at: datetime
    taken: bool


@dataclass(frozen=True, slots=True)
class FusedSlot:
    """One time of one doctor, offered online, offline or both."""

    doctor_id: str
    starts_at: datetime
    ends_at: datetime
    online_slot_id: str | None
    offline_slot_nos: tuple[str, ...]
    taken: bool
    price_fen: int | None

    @property
    def channels(self) -> str:
        online, offline = self.online_slot_id is not None, bool(self.offline_slot_nos)
        return "both" if online and offline else "online" if online else "offline"


def fuse(online: Iterable[OnlineSlot], offline: Iterable[OfflineSlot]) -> list[FusedSlot]:
    """Online slots with the offline slots they overlap; offline slots with no online twin on their own.
    A time is taken when any slot in it is taken, on either side."""
    offline = list(offline)
    used: set[str] = set()
    fused: list[FusedSlot] = []
    for slot in online:
        twins = [o for o in offline if o.doctor_id == slot.doctor_id
                 and overlaps(slot.starts_at, slot.ends_at, o.starts_at, o.ends_at)]
        used.update(o.slot_no for o in twins)
        fused.append(FusedSlot(slot.doctor_id, slot.starts_at, slot.ends_at, slot.slot_id,
                               tuple(o.slot_no for o in twins), slot.taken or any(o.taken for o in twins),
                               slot.price_fen))
    for o in offline:
        if o.slot_no not in used:
            fused.append(FusedSlot(o.doctor_id, o.starts_at, o.ends_at, None, (o.slot_no,), o.taken, None))
    fused.sort(key=lambda f: (f.doctor_id, f.starts_at))
    return fused
