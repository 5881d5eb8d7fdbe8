"""The registry: every named job opsctl can schedule, and how.

A job calls a feature service. Most follow the shared contract
``fn(uow, now, **options) -> frozen dataclass of counts``; :func:`contract` adapts one by its
dotted path (imported when the job first runs, so listing jobs stays cheap). Jobs that need
another resource (the payment gateway, the follow-up sender) take the :class:`JobResources`.

Adding a job is one entry in :data:`REGISTRY`::

    JobSpec("reports.nightly", "夜间运营报表", contract("reports.services.nightly:build"),
            cron("30 2 * * *"), grace=timedelta(hours=2), coalesce=True),
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from clinical_core.domain.errors import NotFound
from clinical_core.domain.time import Clock
from clinical_core.persistence.uow import UnitOfWork
from jobs.policy import MisfirePolicy


class JobResources(Protocol):
    """What jobs may use; the composition root's container provides it."""

    clock: Clock

    def uow(self) -> UnitOfWork: ...

    @property
    def payments(self) -> Any: ...

    @property
    def followup_channel(self) -> Any: ...

    @property
    def followup_quiet_hours(self) -> str: ...

    @property
    def his_schedule(self) -> Any: ...

    @property
    def his_rx_port(self) -> Any: ...

    @property
    def video_reminders(self) -> Any: ...

    @property
    def report_archive_options(self) -> Mapping[str, Any]: ...

    @property
    def push_job_options(self) -> Mapping[str, Any]: ...

    @property
    def live_pushes(self) -> Any: ...


JobCallable = Callable[[JobResources, datetime, Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Every:
    """A fixed interval (UTC)."""

    seconds: int

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ValueError("interval must be at least one second")

    def describe(self) -> str:
        s = self.seconds
        if s % 3600 == 0:
            return f"每 {s // 3600} 小时"
        if s % 60 == 0:
            return f"每 {s // 60} 分钟"
        return f"每 {s} 秒"


@dataclass(frozen=True, slots=True)
class Cron:
    """A crontab expression in the hospital's time zone (Asia/Shanghai)."""

    expression: str

    def describe(self) -> str:
        return f"cron {self.expression}（北京时间）"


Trigger = Every | Cron


def every(*, seconds: int = 0, minutes: int = 0, hours: int = 0) -> Every:
    return Every(seconds + 60 * minutes + 3600 * hours)


def cron(expression: str) -> Cron:
    return Cron(expression)


def parse_trigger(every_text: str | None, cron_text: str | None) -> Trigger:
    """``--every 5m`` / ``90s`` / ``2h`` or ``--cron "0 3 * * *"`` (exactly one)."""
    from clinical_core.domain.errors import InvalidInput

    if (every_text is None) == (cron_text is None):
        raise InvalidInput("请给出 --every 或 --cron 之一")
    if cron_text is not None:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(cron_text)
        except ValueError:
            raise InvalidInput("cron 表达式无效（应为 5 段，如 \"0 3 * * *\"）") from None
        return Cron(cron_text)
    assert every_text is not None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = every_text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise InvalidInput("间隔格式应为数字加单位，如 30s、5m、2h、1d")
    return Every(int(text[:-1]) * units[text[-1]])


def contract(path: str, **fixed: Any) -> JobCallable:
    """A job calling ``module:function(uow, now, **options)`` (the shared job contract)."""

    def call(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
        return _resolve(path)(resources.uow(), now, **{**fixed, **options})

    call.__qualname__ = path
    return call


def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str  # stable id, "<area>.<what>"
    description: str  # Chinese, for `opsctl jobs list`
    run: JobCallable
    trigger: Trigger | None  # the default schedule; None: only run-now or `jobs add`
    grace: timedelta = timedelta(minutes=5)
    coalesce: bool = True
    lease: timedelta = timedelta(minutes=30)  # a dead runner's claim lapses after this
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def misfire(self) -> MisfirePolicy:
        return MisfirePolicy(self.grace, self.coalesce)


def counts_of(result: Any) -> dict[str, Any]:
    """A job's result as JSON counts: numbers kept, collections counted, ids never stored."""
    if result is None:
        return {}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        items = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    elif isinstance(result, Mapping):
        items = dict(result)
    else:
        items = {"result": result}
    counts: dict[str, Any] = {}
    for key, value in items.items():
        if isinstance(value, bool):
            counts[key] = int(value)
        elif isinstance(value, int | float):
            counts[key] = value
        elif isinstance(value, list | tuple | set | frozenset | dict):
            counts[key] = len(value)
    return counts


# ---------------------------------------------------------------------------------------------
# Jobs that exist on main. Suggested schedules follow each service's own docstring.
# ---------------------------------------------------------------------------------------------



def settle(path: str) -> JobCallable:
    """A refund-settlement job ``module:function(uow, gateway, **options)``: it takes the payment
    gateway instead of ``now``, so the shared contract adapter does not fit."""

    def call(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
        return _resolve(path)(resources.uow(), resources.payments, **options)

    call.__qualname__ = path
    return call


def _settle_rx_refunds(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from clinical_core.services.rx_circulation import settle_refunds

    succeeded, failed = settle_refunds(resources.uow(), resources.payments, **options)
    return {"succeeded": succeeded, "failed": failed}


def _process_wechat_inbox(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from campaigns.services.callback import process_inbox

    return process_inbox(resources.uow(), **options)


def _start_followups(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from campaigns.services.followup import start_from_events

    return start_from_events(resources.uow(), now, **{"quiet_hours": resources.followup_quiet_hours, **options})


def _deliver_followups(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from campaigns.services.followup import deliver_due

    return deliver_due(resources.uow(), now, resources.followup_channel,
                       **{"quiet_hours": resources.followup_quiet_hours, **options})






def _release_unpaid_visits(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from clinical_core.services.video_jobs import release_unpaid

    return release_unpaid(resources.uow(), now, his_schedule=resources.his_schedule, **options)


def _remind_visits(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from clinical_core.services.video_jobs import send_reminders

    return send_reminders(resources.uow(), now, sender=resources.video_reminders, **{"lead_minutes": 60, **options})




def _dispatch_pushes(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from campaigns.services.pushes import dispatch_due

    push = resources.push_job_options
    return dispatch_due(resources.uow(), now, **{"api": push["sender"], "rules": push["rules"], **options})


def _settle_pushes(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from campaigns.services.delivery import settle_unknown

    push = resources.push_job_options
    return settle_unknown(resources.uow(), now, **{"sender": push["sender"], "render": push["render"], **options})


def _withdraw_live_announcements(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
    from content.services.live import withdraw_stale

    return withdraw_stale(resources.uow(), now, **{"pushes": resources.live_pushes, **options})


def _with_his_rx(path: str) -> JobCallable:
    """A prescription job of the integrated (HIS) mode: ``fn(uow, now, his=..., **options)``; the HIS
    port is ``None`` in standalone mode, where the job does nothing."""

    def call(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
        return _resolve(path)(resources.uow(), now, **{"his": resources.his_rx_port, **options})

    call.__qualname__ = path
    return call


def _archive(function: str) -> JobCallable:
    def call(resources: JobResources, now: datetime, options: Mapping[str, Any]) -> Any:
        from reports.services import archive

        return getattr(archive, function)(resources.uow(), now, **{**resources.report_archive_options, **options})

    call.__qualname__ = f"reports.services.archive:{function}"
    return call


_SPECS: tuple[JobSpec, ...] = (
    JobSpec("consult.expire_unanswered", "关闭超时未接诊的咨询并退款；取消超时未支付的订单",
            contract("clinical_core.services.consult_jobs:expire_unanswered"), every(minutes=1),
            grace=timedelta(minutes=10), coalesce=True),
    JobSpec("consult.settle_refunds", "向支付渠道发送待处理的咨询退款",
            settle("clinical_core.services.consult_ledger:settle_refunds"),
            every(minutes=5), grace=timedelta(minutes=30), coalesce=True),
    JobSpec("rx.settle_refunds", "向支付渠道发送待处理的药费退款",
            _settle_rx_refunds, every(minutes=5), grace=timedelta(minutes=30), coalesce=True),
    JobSpec("rx.his_reconcile", "集成模式：与 HIS 核对结果未知的处方操作（登记、作废、收费、退费、发药），登记已审核的处方",
            _with_his_rx("clinical_core.services.rx_his:reconcile"), every(minutes=2),
            grace=timedelta(minutes=10), coalesce=True),
    JobSpec("rx.his_sync_catalogue", "集成模式：从 HIS 同步药品目录（新增、变更、停用，全部成功才生效）",
            _with_his_rx("clinical_core.services.rx_his:sync_catalogue_job"), cron("30 5 * * *"),
            grace=timedelta(hours=6), coalesce=True),
    JobSpec("wechat.process_inbox", "处理公众号回调事件队列（关注、扫码、群发结果）",
            _process_wechat_inbox, every(minutes=1), grace=timedelta(minutes=5), coalesce=True),
    JobSpec("followup.start_from_events", "按随访计划模板为新发药、已结束咨询的患者开启随访",
            _start_followups, every(minutes=15),
            grace=timedelta(hours=6), coalesce=True),
    JobSpec("followup.deliver_due", "把到期的随访步骤（问卷、消息、复诊提醒）排入推送投递台账，由 push worker 发送；同步步骤状态",
            _deliver_followups, every(minutes=10), grace=timedelta(hours=1), coalesce=True),
    JobSpec("nursing.expire_stale_orders", "取消超时未支付的护理订单；上门时段前无人接单的订单取消并退款",
            contract("clinical_core.services.nursing_jobs:expire_stale_orders"), every(minutes=5),
            grace=timedelta(minutes=30), coalesce=True),
    JobSpec("nursing.escalate_alarms", "一键呼叫告警超时未确认时升级",
            contract("clinical_core.services.nursing_alarms:escalate_unacknowledged"), every(minutes=1),
            grace=timedelta(minutes=5), coalesce=True),
    JobSpec("nursing.settle_refunds", "向支付渠道发送待处理的护理订单退款",
            settle("clinical_core.services.nursing_orders:settle_refunds"),
            every(minutes=5), grace=timedelta(minutes=30), coalesce=True),
    JobSpec("lecture.settle_tip_refunds", "向支付渠道发送待处理的讲堂赞赏退款",
            settle("content.services.lecture_engagement:settle_tip_refunds"),
            every(minutes=5), grace=timedelta(minutes=30), coalesce=True),
    JobSpec("video.release_unpaid", "释放超时未支付的视频复诊预约（含 HIS 号源）",
            _release_unpaid_visits, every(minutes=1), grace=timedelta(minutes=10), coalesce=True),
    JobSpec("video.mark_no_shows", "号源时段结束仍未入诊的预约标记为爽约",
            contract("clinical_core.services.video_jobs:mark_no_shows"), every(minutes=5),
            grace=timedelta(minutes=30), coalesce=True),
    JobSpec("video.send_reminders", "视频复诊开始前发送微信提醒",
            _remind_visits, every(minutes=5), grace=timedelta(minutes=15), coalesce=True),
    JobSpec("video.settle_refunds", "向支付渠道发送待处理的视频复诊退款",
            settle("clinical_core.services.video_ledger:settle_refunds"),
            every(minutes=5), grace=timedelta(minutes=30), coalesce=True),
    JobSpec("push.dispatch_due", "把到期的定时推送排入投递台账（免打扰时段、频次上限、每月 4 次群发）",
            _dispatch_pushes, every(minutes=1), grace=timedelta(minutes=30), coalesce=True),
    JobSpec("push.settle_unknown", "回收中断的投递，按微信任务完成事件核销结果未知的推送（不盲目重发）",
            _settle_pushes, every(minutes=3), grace=timedelta(minutes=15), coalesce=True),
    JobSpec("push.pick_winners", "A/B 推送到期时选出胜出版本并发给其余受众",
            contract("campaigns.services.links:pick_winners"), every(minutes=15), grace=timedelta(hours=1),
            coalesce=True),
    JobSpec("live.withdraw_stale_announcements", "撤回已开播、已取消或已改期直播尚未发出的预告推送",
            _withdraw_live_announcements, every(minutes=5), grace=timedelta(minutes=30), coalesce=True),
    # A missing report is worse than a late one: a day's grace, run once.
    JobSpec("reports.archive_month", "生成并归档上月运营月报（含清单与校验和）",
            _archive("archive_last_month"), cron("0 8 1 * *"), grace=timedelta(days=1), coalesce=True,
            lease=timedelta(hours=2)),
    JobSpec("reports.archive_quarter", "生成并归档上季度运营季报",
            _archive("archive_last_quarter"), cron("30 8 1 1,4,7,10 *"), grace=timedelta(days=1), coalesce=True,
            lease=timedelta(hours=2)),
    JobSpec("reports.archive_year", "生成并归档上年度运营年报",
            _archive("archive_last_year"), cron("0 9 2 1 *"), grace=timedelta(days=1), coalesce=True,
            lease=timedelta(hours=4)),
)

REGISTRY: dict[str, JobSpec] = {spec.name: spec for spec in _SPECS}


def get(name: str, registry: Mapping[str, JobSpec] | None = None) -> JobSpec:
    spec = (REGISTRY if registry is None else registry).get(name)
    if spec is None:
        raise NotFound(f"定时任务 {name} 不存在", hint="用 opsctl jobs list 查看可用任务")
    return spec
