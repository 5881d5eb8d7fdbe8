"""Statistics exported by the platforms (Excel/CSV), read into plain records.

The operations team downloads them from 抖音创作者服务中心 (作品数据 / 直播数据),
视频号助手 (视频数据 / 直播数据) and 企业微信 (客户群统计). Headers are Chinese and
differ by platform and by export version, so each kind of export names every
header it accepts for a field. Numbers come as the platforms print them:
``12,345``, ``1.2万``, ``3.4w``, ``1.1亿``, ``--`` (none), percentages.

Validation is all-or-nothing: every row is checked and every problem is
listed (``第 N 行：…``); one bad row refuses the whole file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.time import SHANGHAI

MAX_ROWS = 20_000
MAX_COUNT = 10**11


class ExportKind(StrEnum):
    VIDEO = "video"  # 作品/视频数据
    LIVE = "live"  # 直播数据
    COMMUNITY = "community"  # 客户群统计

    @property
    def label(self) -> str:
        return {"video": "作品数据", "live": "直播数据", "community": "社群数据"}[self.value]


class ExportRejected(InvalidInput):
    """The whole file is refused; ``row_errors`` lists every problem."""

    def __init__(self, row_errors: list[str], what: str = "导出文件") -> None:
        super().__init__(f"{what}有 {len(row_errors)} 处错误，未导入任何数据", field="file")
        self.row_errors = row_errors


@dataclass(frozen=True)
class Field:
    name: str
    headers: tuple[str, ...]
    kind: str  # text | count | datetime | date | minutes
    required: bool = True


# Headers as the platforms' export files spell them (several versions each).
FIELDS: dict[tuple[str, ExportKind], tuple[Field, ...]] = {
    ("douyin", ExportKind.VIDEO): (
        Field("title", ("作品名称", "作品标题", "视频标题", "作品描述"), "text"),
        Field("published_at", ("发布时间", "发布日期"), "datetime"),
        Field("plays", ("播放量", "播放次数", "总播放量"), "count"),
        Field("likes", ("点赞量", "点赞数", "点赞"), "count"),
        Field("comments", ("评论量", "评论数", "评论"), "count"),
        Field("shares", ("分享量", "分享数", "分享"), "count"),
        Field("followers", ("粉丝增量", "涨粉量", "新增粉丝", "新增粉丝数"), "count"),
        Field("external_id", ("作品ID", "作品id", "视频ID"), "text", required=False),
    ),
    ("channels", ExportKind.VIDEO): (
        Field("title", ("视频描述", "动态描述", "作品描述", "视频标题"), "text"),
        Field("published_at", ("发表时间", "发布时间"), "datetime"),
        Field("plays", ("播放量", "播放次数", "浏览次数"), "count"),
        Field("likes", ("喜欢", "点赞", "点赞量", "点赞数"), "count"),
        Field("comments", ("评论", "评论量", "评论数"), "count"),
        Field("shares", ("转发", "分享", "分享量", "转发次数"), "count"),
        Field("followers", ("新增关注", "关注", "涨粉数"), "count"),
        Field("external_id", ("视频ID", "动态ID"), "text", required=False),
    ),
    ("douyin", ExportKind.LIVE): (
        Field("title", ("直播标题", "直播主题", "标题"), "text"),
        Field("started_at", ("开播时间", "直播开始时间"), "datetime"),
        Field("minutes", ("直播时长", "直播时长(分钟)", "直播时长（分钟）"), "minutes"),
        Field("viewers", ("累计观看人数", "观看人数", "场观"), "count"),
        Field("views", ("累计观看人次", "观看人次", "观看次数"), "count", required=False),
        Field("peak_online", ("最高在线人数", "最高在线", "在线人数峰值"), "count"),
        Field("likes", ("点赞次数", "点赞数", "点赞量"), "count"),
        Field("comments", ("评论次数", "评论数", "评论人数"), "count"),
        Field("shares", ("分享次数", "分享数"), "count", required=False),
        Field("followers", ("新增粉丝数", "新增粉丝", "涨粉数"), "count"),
    ),
    ("channels", ExportKind.LIVE): (
        Field("title", ("直播主题", "直播标题", "直播描述"), "text"),
        Field("started_at", ("开播时间", "直播开始时间"), "datetime"),
        Field("minutes", ("直播时长", "直播时长(分钟)", "直播时长（分钟）"), "minutes"),
        Field("viewers", ("观看人数", "累计观看人数"), "count"),
        Field("views", ("观看次数", "观看人次"), "count", required=False),
        Field("peak_online", ("最高在线", "最高在线人数", "同时在线峰值"), "count"),
        Field("likes", ("喝彩", "点赞", "点赞数"), "count"),
        Field("comments", ("评论数", "评论次数", "评论"), "count"),
        Field("shares", ("分享次数", "转发次数", "分享"), "count", required=False),
        Field("followers", ("新增关注", "新增关注数"), "count"),
    ),
    ("wecom", ExportKind.COMMUNITY): (
        Field("group", ("群名称", "客户群名称", "群聊名称"), "text"),
        Field("day", ("日期", "统计日期"), "date"),
        Field("members", ("群成员总数", "群总人数", "成员总数"), "count"),
        Field("joined", ("新增成员数", "新增成员", "入群人数"), "count"),
        Field("left", ("退群成员数", "退群成员", "退群人数"), "count"),
        Field("active", ("发言成员数", "发言人数"), "count"),
        Field("messages", ("群聊消息数", "消息数", "发言条数"), "count"),
    ),
}

SOURCES = {kind: sorted({p for p, k in FIELDS if k is kind}) for kind in ExportKind}

_UNITS = {"万": Decimal(10_000), "w": Decimal(10_000), "W": Decimal(10_000), "亿": Decimal(100_000_000),
          "k": Decimal(1000), "K": Decimal(1000), "千": Decimal(1000)}
_NONE = {"", "-", "--", "—", "/", "暂无", "无"}
_COUNT = re.compile(r"^([0-9][0-9,，]*(?:\.[0-9]+)?)\s*([万wW亿kK千]?)\+?$")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                 "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d")
_EXCEL_EPOCH = datetime(1899, 12, 30)


def parse_count(raw: Any) -> int:
    """``12,345`` → 12345, ``1.2万`` → 12000, ``3.4w`` → 34000, ``--`` → 0."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        if math.isnan(raw) or raw < 0:
            raise ValueError(raw)
        value = Decimal(str(raw))
    else:
        text = str(raw if raw is not None else "").strip()
        if text in _NONE:
            return 0
        match = _COUNT.match(text)
        if not match:
            raise ValueError(text)
        try:
            value = Decimal(match.group(1).replace(",", "").replace("，", "")) * _UNITS.get(match.group(2), Decimal(1))
        except InvalidOperation as exc:
            raise ValueError(text) from exc
    if value < 0 or value > MAX_COUNT:
        raise ValueError(raw)
    return int(value.to_integral_value())


def parse_minutes(raw: Any) -> int:
    """``90`` / ``1小时30分`` / ``01:30:00`` / ``1h30m`` → minutes."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return parse_count(raw)
    text = str(raw or "").strip()
    if re.fullmatch(r"\d{1,2}:\d{2}:\d{2}", text):
        h, m, s = (int(x) for x in text.split(":"))
        return h * 60 + m + (s >= 30)
    match = re.fullmatch(r"(?:(\d+)\s*(?:小时|时|h))?\s*(?:(\d+)\s*(?:分钟|分|min|m))?\s*(?:(\d+)\s*(?:秒|s))?", text)
    if text and match and any(match.groups()):
        h, m, s = (int(g or 0) for g in match.groups())
        return h * 60 + m + (s >= 30)
    return parse_count(text)


def parse_datetime(raw: Any) -> datetime:
    """A local (Asia/Shanghai) time as the export prints it → an aware UTC datetime."""
    if isinstance(raw, datetime):
        local = raw
    elif isinstance(raw, date):
        local = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, int | float) and not isinstance(raw, bool) and 20000 < raw < 80000:
        local = _EXCEL_EPOCH + timedelta(days=float(raw))  # an Excel serial date stored as a number
    else:
        text = re.sub(r"\s+", " ", str(raw or "").strip())
        for fmt in _DATE_FORMATS:
            try:
                local = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(text)
    if local.tzinfo is None:
        local = local.replace(tzinfo=SHANGHAI)
    if not 2000 <= local.year <= 2100:
        raise ValueError(raw)
    return local.astimezone(UTC)


def parse_date(raw: Any) -> date:
    return parse_datetime(raw).astimezone(SHANGHAI).date()


def column_map(source: str, kind: ExportKind, header: list[Any]) -> dict[str, int]:
    """Which column holds which field; refuses a file that lacks a required one."""
    fields = FIELDS.get((source, kind))
    if fields is None:
        raise InvalidInput(f"不支持 {source} 的{kind.label}导出", field="platform")
    cleaned = [re.sub(r"\s+", "", str(h or "")) for h in header]
    found: dict[str, int] = {}
    missing = []
    for f in fields:
        index = next((cleaned.index(h) for h in f.headers if h in cleaned), None)
        if index is not None:
            found[f.name] = index
        elif f.required:
            missing.append(f.headers[0])
    if missing:
        raise InvalidInput(f"表头缺少：{'、'.join(missing)}（请上传平台原始导出文件）", field="file")
    return found


_PARSERS = {"count": parse_count, "datetime": parse_datetime, "date": parse_date, "minutes": parse_minutes}
_LABELS = {"count": "不是有效的数字", "datetime": "不是有效的时间", "date": "不是有效的日期", "minutes": "不是有效的时长"}


def parse_rows(source: str, kind: ExportKind, header: list[Any],
               rows: list[tuple[int, list[Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """Every row → a dict of parsed fields, or ``ExportRejected`` listing every problem.

    ``rows`` carries each row's number as the spreadsheet shows it."""
    fields = {f.name: f for f in FIELDS[(source, kind)]}
    columns = column_map(source, kind, header)
    names = {name: str(header[i]).strip() for name, i in columns.items()}
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"一次最多导入 {MAX_ROWS} 行", field="file")
    for number, values in rows:
        record: dict[str, Any] = {}
        for name, index in columns.items():
            raw = values[index] if index < len(values) else None
            f = fields[name]
            if f.kind == "text":
                text = str(raw).strip() if raw is not None else ""
                if not text and f.required:
                    errors.append(f"第 {number} 行：「{names[name]}」不能为空")
                elif len(text) > 200:
                    errors.append(f"第 {number} 行：「{names[name]}」超过 200 个字")
                record[name] = text[:200] or None
                continue
            if f.kind in ("datetime", "date") and (raw is None or str(raw).strip() == ""):
                errors.append(f"第 {number} 行：「{names[name]}」不能为空")
                continue
            try:
                record[name] = _PARSERS[f.kind](raw)
            except (ValueError, TypeError, ArithmeticError):
                shown = str(raw).strip()[:20]
                errors.append(f"第 {number} 行：「{names[name]}」的值「{shown}」{_LABELS[f.kind]}")
        records.append((number, record))
    if not rows:
        errors.append("表格中没有数据行")
    if errors:
        raise ExportRejected(errors, f"{kind.label}导出文件")
    return records
