"""The delivery ledger's workers: claim, call WeChat, record; recover and settle after a crash.

Every decision is one conditional SQL statement:

- **claim** ``UPDATE push_deliveries SET state='sending', claim=:token ... WHERE id IN (...) AND
  state='pending'`` (candidates selected ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number
  of workers on any number of machines take disjoint batches; SQLite: one worker). The claim is
  committed *before* the WeChat call.
- **record** ``... WHERE id = :id AND claim = :token AND state IN ('sending', 'unknown')``: only
  the worker that claimed a row writes its result, after the call.
- **recover** ``sending`` rows whose claim is older than the lease become ``unknown``: the worker
  died (SIGKILL, power loss) between the claim and the record, so the call may have happened.
- **settle** an ``unknown`` template row is settled from WeChat's TEMPLATESENDJOBFINISH event for
  that openid after the claim (sent / failed: user block); without an event it is re-sent *with
  the same client_msg_id* while WeChat still dedupes it (10 minutes), so WeChat delivers it at
  most once; after that it is marked failed ("未确认") for a person to look at. An ``unknown``
  mass batch is re-sent with the same ``clientmsgid``: WeChat answers 45065 for a job it already
  has, and sends the batch otherwise.

Nothing here resends a row whose call may have succeeded without WeChat's dedupe key.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from sqlalchemy import TextClause, and_, bindparam, func, or_, select, text, update

from campaigns.domain import pushes as P
from campaigns.persistence.models import WeChatInboxRow
from campaigns.persistence.pushes import DeliveryRow, OptOutRow, PushRow
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.base import UTCDateTime
from clinical_core.persistence.uow import UnitOfWork

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
MAX_GROUP = 8  # calls handed to a call thread at once (a batch of 200 on 4 threads: groups of 8)
SETTLE_GRACE = timedelta(minutes=15)
ACTIVE_STATES = (P.DeliveryState.PENDING, P.DeliveryState.SENDING, P.DeliveryState.UNKNOWN)


class Result(Protocol):
    errcode: int | None
    msgid: str | None


class Sender(Protocol):
    def template(self, openid: str, template_id: str, data: dict[str, str], *, url: str | None,
                 client_msg_id: str) -> Result: ...

    def mass(self, openids: list[str], message: dict[str, Any], *, clientmsgid: str) -> Result: ...


Renderer = Callable[[UnitOfWork, PushRow, list[DeliveryRow]], dict[int, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Rules:
    quiet: P.QuietHours = P.QuietHours()
    tz: tzinfo = SHANGHAI
    retry_delays: tuple[float, ...] = P.RETRY_DELAYS_SECONDS


@dataclass(slots=True)
class WorkerCounts:
    calls: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    skipped: int = 0
    batches: int = 0


@dataclass(frozen=True, slots=True)
class Recovered:
    unknown: int


@dataclass(frozen=True, slots=True)
class Settled:
    sent: int
    failed: int
    resent: int
    waiting: int


@dataclass(frozen=True, slots=True)
class Call:
    """One WeChat call: a template row, or a mass batch of rows."""

    push_id: int
    push_public_id: str
    kind: str
    variant: str
    claim: str
    rows: list[tuple[int, str]]  # (delivery id, openid)
    content: dict[str, Any] = field(default_factory=dict)
    rendered: dict[int, dict[str, Any]] = field(default_factory=dict)  # template rows: id -> {data} / {error}
    attempts: int | None = None  # calls made on these rows including this one (None: read it when needed)
    source: Any = None  # the claimed ledger row (id, openid, patient_id, variant) for the renderer
    purpose: str | None = None  # "followup": a follow-up plan step (its step follows the row)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _token() -> str:
    return secrets.token_hex(6)


def client_msg_id(push_public_id: str, delivery_id: int, claim: str) -> str:
    return f"{push_public_id}:{delivery_id}:{claim}"[:64]


def mass_clientmsgid(push_public_id: str, batch_no: int, claim: str) -> str:
    return f"{push_public_id}:b{batch_no}:{claim}"[:64]


# -- claim --------------------------------------------------------------------------------------------
def skip_opted_out(uow: UnitOfWork) -> int:
    """Pending rows of recipients who opted out since planning are skipped (before any call)."""
    with uow:
        skipped = _skip_opted_out(uow)
        uow.commit()
        return skipped


def _skip_opted_out(uow: UnitOfWork) -> int:
    result = uow.session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.state.in_(list(P.delivery_from("skip"))),
               DeliveryRow.openid.in_(select(OptOutRow.openid)))
        .values(state=P.delivery_to("skip"), error="opt_out")
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def claim(uow: UnitOfWork, worker: str, *, limit: int = 100, rules: Rules = Rules()) -> list[Call]:
    """Claim due rows (committed as ``sending`` before any call). Quiet hours: nothing is claimed."""
    with uow:
        calls = _claim(uow, worker, limit=limit, rules=rules)
        uow.commit()
    return calls


def _claim(uow: UnitOfWork, worker: str, *, limit: int, rules: Rules) -> list[Call]:
    """The claim inside an open unit of work; the caller commits it before making any call."""
    calls: list[Call] = []
    now = uow.clock.now()
    if rules.quiet.contains(now, rules.tz):
        return []
    base = (select(DeliveryRow.id, DeliveryRow.push_id, DeliveryRow.batch_no, PushRow.kind)
            .join(PushRow, PushRow.id == DeliveryRow.push_id)
            .where(DeliveryRow.state == P.DeliveryState.PENDING, DeliveryRow.next_attempt_at <= now,
                   DeliveryRow.variant != "*", PushRow.status == P.PushStatus.SENDING)
            .order_by(DeliveryRow.id).limit(limit))
    if uow.dialect == "postgresql":
        base = base.with_for_update(of=DeliveryRow, skip_locked=True)
    candidates = uow.session.execute(base).all()
    if not candidates:
        return []
    token = _token()
    template_ids = [r.id for r in candidates if r.kind == P.PushKind.TEMPLATE]
    mass_first = next((r for r in candidates if r.kind == P.PushKind.MASS), None)
    target = P.delivery_transition(P.DeliveryState.PENDING, "claim")
    values = dict(state=target, claim=token, claimed_by=worker[:80], claimed_at=now,
                  attempts=DeliveryRow.attempts + 1)
    if template_ids:
        uow.session.execute(update(DeliveryRow).where(
            DeliveryRow.id.in_(template_ids), DeliveryRow.state == P.DeliveryState.PENDING
        ).values(**values).execution_options(synchronize_session=False))
    if mass_first is not None and not template_ids:  # one mass batch per claim
        uow.session.execute(update(DeliveryRow).where(
            DeliveryRow.push_id == mass_first.push_id, DeliveryRow.batch_no == mass_first.batch_no,
            DeliveryRow.state == P.DeliveryState.PENDING, DeliveryRow.next_attempt_at <= now,
            DeliveryRow.variant != "*",
        ).values(**values).execution_options(synchronize_session=False))
    t = DeliveryRow.__table__
    claimed = uow.session.execute(
        select(t.c.id, t.c.openid, t.c.patient_id, t.c.variant, t.c.batch_no, t.c.push_id, t.c.attempts)
        .where(t.c.claim == token, t.c.state == target).order_by(t.c.id)).all()
    p = PushRow.__table__
    pushes = {r.id: r for r in uow.session.execute(
        select(p.c.id, p.c.public_id, p.c.kind, p.c.variants, p.c.purpose).where(p.c.id.in_({r.push_id for r in claimed})))}
    contents: dict[tuple[int, str], dict[str, Any]] = {}
    for row in claimed:
        push = pushes[row.push_id]
        content = contents.get((push.id, row.variant))
        if content is None:
            content = contents[(push.id, row.variant)] = dict((push.variants or {}).get(row.variant) or {})
        if push.kind == P.PushKind.MASS:
            if calls and calls[-1].kind == P.PushKind.MASS:
                calls[-1].rows.append((row.id, row.openid))
                continue
            calls.append(Call(push.id, push.public_id, push.kind, row.variant, token, [(row.id, row.openid)],
                              content=dict(content, batch_no=row.batch_no)))
        else:  # the content dict is shared by the calls of one variant: nobody writes to it
            calls.append(Call(push.id, push.public_id, push.kind, row.variant, token, [(row.id, row.openid)],
                              content=content, attempts=row.attempts, source=row, purpose=push.purpose))
    return calls


# -- record -------------------------------------------------------------------------------------------
def record(uow: UnitOfWork, call: Call, errcode: int | None, msgid: str | None, *,
           error: str | None = None, delays: tuple[float, ...] = P.RETRY_DELAYS_SECONDS) -> P.Outcome:
    """Write one call's result on its rows (only rows this claim still owns)."""
    return record_many(uow, [(call, errcode, msgid, error)], delays=delays)[0]


def record_many(uow: UnitOfWork, results: list[tuple[Call, int | None, str | None, str | None]], *,
                delays: tuple[float, ...] = P.RETRY_DELAYS_SECONDS) -> list[P.Outcome]:
    """Write several calls' results in one transaction (a worker flushes every few calls; rows of a
    crash between call and flush stay ``sending`` and are settled as ``unknown``)."""
    with uow:
        outcomes = _record_many(uow, results, delays=delays)
        uow.commit()
    return outcomes


def _record_many(uow: UnitOfWork, results: list[tuple[Call, int | None, str | None, str | None]], *,
                 delays: tuple[float, ...]) -> list[P.Outcome]:
    """``record_many`` inside an open unit of work (the caller commits)."""
    outcomes: list[P.Outcome] = []
    now = uow.clock.now()
    by_outcome: dict[str, list[dict[str, Any]]] = {"sent": [], "failed": [], "lost": [], "retry": []}
    for call, errcode, msgid, error in results:
        if len(call.rows) != 1 or (call.attempts is None and error is None
                                   and P.classify(errcode) is P.Outcome.RETRY):
            outcomes.append(_apply(uow, now, call, errcode, msgid, error, delays))
            continue
        key = {"rid": call.rows[0][0], "rclaim": call.claim}
        outcome = P.classify(errcode) if error is None else P.Outcome.FAILED
        if outcome is P.Outcome.SENT:
            by_outcome["sent"].append(dict(key, rmsgid=msgid))
        elif outcome is P.Outcome.FAILED:
            by_outcome["failed"].append(dict(key, rerror=(error or f"wx:{errcode}")[:60]))
        elif outcome is P.Outcome.UNKNOWN:
            by_outcome["lost"].append(key)
        else:  # RETRY: nothing was sent; back to pending after a delay, or give up
            again = P.retry_at(now, call.attempts or 1, delays)
            if again is None:
                by_outcome["failed"].append(dict(key, rerror=f"wx:{errcode}:gave_up"))
                outcome = P.Outcome.FAILED
            else:
                by_outcome["retry"].append(dict(key, ragain=again, rerror=f"wx:{errcode}"))
        outcomes.append(outcome)
    if uow.dialect == "postgresql":
        _record_unnest(uow, now, by_outcome)
        return outcomes
    # one executemany per outcome; each carries its transition's ``from`` set and the claim token
    for outcome, statement in _BY_ROW.items():
        if by_outcome[outcome]:
            rows = by_outcome[outcome]
            if outcome == "sent":
                rows = [dict(r, rnow=now) for r in rows]
            uow.session.execute(statement, rows)
    return outcomes


def _by_row(action: str, **sets: Any) -> Any:  # an UPDATE statement, built once
    """One row's result: ``… WHERE id = :rid AND claim = :rclaim AND state IN (<from-set>)``."""
    table = DeliveryRow.__table__
    return (update(table)
            .where(table.c.id == bindparam("rid"), table.c.claim == bindparam("rclaim"),
                   or_(*(table.c.state == s.value for s in sorted(P.delivery_from(action)))))
            .values(state=P.delivery_to(action), **sets))


_BY_ROW = {
    "sent": _by_row("sent", sent_at=bindparam("rnow"), msgid=bindparam("rmsgid"), error=None),
    "failed": _by_row("failed", error=bindparam("rerror")),
    "lost": _by_row("lost", error="no_answer"),
    "retry": _by_row("retry", next_attempt_at=bindparam("ragain"), claim=None, error=bindparam("rerror")),
}


def _unnest_update(action: str, sets: str, extra: tuple[tuple[str, str], ...] = ()) -> TextClause:
    """PostgreSQL: one UPDATE for a whole flush of one outcome. The rows come in as arrays
    (``unnest``), so the statement's text is fixed — prepared once, planned once per flush, not
    once per row — and it keeps every guard: the row's id, this claim's token, the transition's
    ``from`` set."""
    names = ", ".join(["id", "claim", *(name for name, _ in extra)])
    arrays = ", ".join(["CAST(:ids AS bigint[])", "CAST(:claims AS text[])",
                        *(f"CAST(:{name}s AS {sql}[])" for name, sql in extra)])
    states = ", ".join(f"'{s.value}'" for s in sorted(P.delivery_from(action)))
    return text(f"UPDATE {DeliveryRow.__tablename__} AS d SET state = '{P.delivery_to(action).value}', {sets} "
                f"FROM unnest({arrays}) AS v({names}) "
                f"WHERE d.id = v.id AND d.claim = v.claim AND d.state IN ({states})")


_PG_SENT = _unnest_update("sent", "sent_at = :now, msgid = v.msgid, error = NULL", (("msgid", "text"),)).bindparams(
    bindparam("now", type_=UTCDateTime()))
_PG_FAILED = _unnest_update("failed", "error = v.error", (("error", "text"),))
_PG_LOST = _unnest_update("lost", "error = 'no_answer'")
_PG_RETRY = _unnest_update("retry", "next_attempt_at = v.again, claim = NULL, error = v.error",
                           (("again", "timestamptz"), ("error", "text")))


def _record_unnest(uow: UnitOfWork, now: datetime, by_outcome: dict[str, list[dict[str, Any]]]) -> None:
    """PostgreSQL: one statement per outcome of a flush instead of one UPDATE per row."""

    def arrays(outcome: str, **extra: str) -> dict[str, list[Any]]:
        rows = by_outcome[outcome]
        return {"ids": [r["rid"] for r in rows], "claims": [r["rclaim"] for r in rows],
                **{f"{name}s": [r[key] for r in rows] for name, key in extra.items()}}

    if by_outcome["sent"]:
        uow.session.execute(_PG_SENT, dict(arrays("sent", msgid="rmsgid"), now=now))
    if by_outcome["failed"]:
        uow.session.execute(_PG_FAILED, arrays("failed", error="rerror"))
    if by_outcome["lost"]:
        uow.session.execute(_PG_LOST, arrays("lost"))
    if by_outcome["retry"]:
        uow.session.execute(_PG_RETRY, arrays("retry", again="ragain", error="rerror"))


def _apply(uow: UnitOfWork, now: datetime, call: Call, errcode: int | None, msgid: str | None, error: str | None,
           delays: tuple[float, ...]) -> P.Outcome:
    outcome = P.classify(errcode) if error is None else P.Outcome.FAILED
    ids = [i for i, _ in call.rows]
    owned = and_(DeliveryRow.id.in_(ids), DeliveryRow.claim == call.claim)
    if outcome is P.Outcome.SENT:
        uow.session.execute(update(DeliveryRow).where(owned, DeliveryRow.state.in_(list(P.delivery_from("sent"))))
                            .values(state=P.delivery_to("sent"), sent_at=now, msgid=msgid, error=None)
                            .execution_options(synchronize_session=False))
    elif outcome is P.Outcome.FAILED:
        uow.session.execute(update(DeliveryRow).where(owned, DeliveryRow.state.in_(list(P.delivery_from("failed"))))
                            .values(state=P.delivery_to("failed"), error=(error or f"wx:{errcode}")[:60])
                            .execution_options(synchronize_session=False))
    elif outcome is P.Outcome.UNKNOWN:
        uow.session.execute(update(DeliveryRow).where(owned, DeliveryRow.state.in_(list(P.delivery_from("lost"))))
                            .values(state=P.delivery_to("lost"), error="no_answer")
                            .execution_options(synchronize_session=False))
    else:  # RETRY: nothing was sent; back to pending after a delay, or give up
        attempts = uow.session.scalar(select(func.max(DeliveryRow.attempts)).where(owned)) or 1
        again = P.retry_at(now, attempts, delays)
        if again is None:
            uow.session.execute(update(DeliveryRow).where(owned, DeliveryRow.state == P.DeliveryState.SENDING)
                                .values(state=P.delivery_to("failed"), error=f"wx:{errcode}:gave_up")
                                .execution_options(synchronize_session=False))
            outcome = P.Outcome.FAILED
        else:
            uow.session.execute(update(DeliveryRow).where(owned, DeliveryRow.state == P.DeliveryState.SENDING)
                                .values(state=P.delivery_to("retry"), next_attempt_at=again, claim=None,
                                        error=f"wx:{errcode}")
                                .execution_options(synchronize_session=False))
    return outcome


def call_wechat(sender: Sender, call: Call) -> tuple[int | None, str | None, str | None]:
    """Make one claimed call: (errcode, msgid, refusal before any call)."""
    if call.kind == P.PushKind.MASS:
        content = dict(call.content)
        batch_no = int(content.pop("batch_no", 0))
        openids = [o for _, o in call.rows]
        if len(openids) < P.MASS_CHUNK_MIN:
            return 40130, None, None
        result = sender.mass(openids, content, clientmsgid=mass_clientmsgid(call.push_public_id, batch_no, call.claim))
        return result.errcode, result.msgid, None
    (delivery_id, openid), = call.rows
    rendered = call.rendered.get(delivery_id) or {}
    if "error" in rendered:  # a rule refused this recipient's message: no call at all
        return None, None, str(rendered["error"])
    result = sender.template(openid, call.content["template_id"], rendered.get("data") or {},
                             url=rendered.get("url"), client_msg_id=client_msg_id(call.push_public_id, delivery_id,
                                                                                   call.claim))
    return result.errcode, result.msgid, None


def perform(uow_factory: Callable[[], UnitOfWork], sender: Sender, call: Call,
            delays: tuple[float, ...] = P.RETRY_DELAYS_SECONDS) -> P.Outcome:
    """Make one claimed call and record its result at once."""
    errcode, msgid, error = call_wechat(sender, call)
    return record(uow_factory(), call, errcode, msgid, error=error, delays=delays)


# -- the loop -----------------------------------------------------------------------------------------
class Limiter(Protocol):
    def acquire(self) -> None: ...


class RateLimiter:
    """A token bucket: at most ``rate`` calls per second on average, bursts of ``burst``."""

    def __init__(self, rate: float | None, burst: int = 10, *, monotonic: Callable[[], float] = _time.monotonic,
                 sleep: Callable[[float], None] = _time.sleep) -> None:
        self.rate, self.burst = rate, burst
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens = float(burst)
        self._last = monotonic()
        self.waited = 0.0
        self._lock = threading.Lock()  # the call threads of this process share the bucket

    def acquire(self) -> None:
        if not self.rate:
            return
        while True:
            with self._lock:
                now = self._monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
                self.waited += wait
            self._sleep(wait)


def run_worker(uow_factory: Callable[[], UnitOfWork], sender: Sender, render: Renderer, *,
               worker: str | None = None, rules: Rules = Rules(), rate: float | None = None, batch: int = 100,
               until_idle: bool = False, idle_sleep: float = 1.0, max_calls: int | None = None,
               sleep: Callable[[float], None] = _time.sleep, on_call: Callable[[WorkerCounts], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False, flush_every: int = 50,
               concurrency: int = 1, limiter: Limiter | None = None) -> WorkerCounts:
    """Deliver until stopped (or, with ``until_idle``, until nothing is due). ``concurrency`` calls
    are in flight at once (threads, one keep-alive connection each); results are written every
    ``flush_every`` calls in one transaction."""
    me = worker or worker_name()
    limiter = limiter or RateLimiter(rate, sleep=sleep)
    counts = WorkerCounts()
    recover_stale(uow_factory(), lease=LEASE)
    in_flight: deque[tuple[Call, Future[list[tuple[int | None, str | None, str | None]]], int]] = deque()
    drained = False  # nothing was due at the last claim

    def call_limited(group: list[Call]) -> list[tuple[int | None, str | None, str | None]]:
        results = []
        for call in group:  # a few calls per hand-off: one Future per call cost as much as a call
            limiter.acquire()  # in the call thread: the main thread keeps claiming and recording
            results.append(call_wechat(sender, call))
        return results

    def record_and_claim(done: list[tuple[Call, Future[list[tuple[int | None, str | None, str | None]]], int]],
                         limit: int | None) -> list[Call]:
        """Record ``done`` calls' results and (``limit`` set) skip opted-out rows and claim the next
        batch — one transaction, committed before any of the new calls is made."""
        buffered = [(call, *future.result()[i]) for call, future, i in done]
        skipped = 0
        calls: list[Call] = []
        with uow_factory() as uow:
            outcomes = _record_many(uow, buffered, delays=rules.retry_delays) if buffered else []
            if limit is not None:
                skipped = _skip_opted_out(uow)
                calls = _claim(uow, me, limit=limit, rules=rules)
            uow.commit()
        counts.calls += len(buffered)
        for (call, *_), outcome in zip(buffered, outcomes, strict=True):
            _count(counts, outcome, len(call.rows))
        counts.skipped += skipped
        if skipped or any(call.purpose == "followup" for call, _, _ in done):  # their steps follow the rows at once
            from campaigns.services.followup import sync_from_ledger

            sync_from_ledger(uow_factory())  # a skipped follow-up step fails with the reason
        if buffered and on_call is not None:
            on_call(counts)
        return calls

    # A pipeline: results are recorded in call order, ``flush_every`` at a time, in the same
    # transaction that claims (commits ``sending``) the next batch when fewer than half a batch is
    # in flight; the new batch is rendered while the older calls are still in flight.
    low_water = max(batch // 2, flush_every)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="push-call") as pool:
        while True:
            stopping = should_stop()
            done = [in_flight.popleft() for _ in range(min(flush_every, len(in_flight)))]
            budget = None if max_calls is None else max_calls - counts.calls - len(done) - len(in_flight)
            limit = None
            if not stopping and len(in_flight) < low_water and (budget is None or budget > 0):
                limit = batch if budget is None else min(batch, budget)
            if done or limit is not None:
                calls = record_and_claim(done, limit)
                if limit is not None:
                    drained = not calls
                if calls:
                    counts.batches += 1
                    _render_calls(uow_factory, render, calls)
                    size = max(1, min(MAX_GROUP, len(calls) // (4 * max(1, concurrency))))
                    for first in range(0, len(calls), size):
                        group = calls[first:first + size]
                        future = pool.submit(call_limited, group)
                        in_flight.extend((call, future, i) for i, call in enumerate(group))
            if in_flight:
                continue
            finish_pushes(uow_factory())
            if stopping or until_idle and drained or (max_calls is not None and counts.calls >= max_calls):
                break
            sleep(idle_sleep)
    return counts


def _count(counts: WorkerCounts, outcome: P.Outcome, n: int) -> None:
    if outcome is P.Outcome.SENT:
        counts.sent += n
    elif outcome is P.Outcome.FAILED:
        counts.failed += n
    elif outcome is P.Outcome.RETRY:
        counts.retried += n
    else:
        counts.unknown += n


def _render_calls(uow_factory: Callable[[], UnitOfWork], render: Renderer, calls: list[Call]) -> None:
    by_push: dict[int, list[Call]] = {}
    for call in calls:
        if call.kind == P.PushKind.TEMPLATE:
            by_push.setdefault(call.push_id, []).append(call)
    if not by_push:
        return
    with uow_factory() as uow:
        for push_id, group in by_push.items():
            push = uow.session.get(PushRow, push_id)
            if all(c.source is not None for c in group):  # the rows as claimed: no second read
                rows = [c.source for c in group]
            else:
                ids = [c.rows[0][0] for c in group]
                rows = list(uow.session.scalars(select(DeliveryRow).where(DeliveryRow.id.in_(ids))))
            rendered = render(uow, push, rows)
            for call in group:
                call.rendered.update({call.rows[0][0]: rendered.get(call.rows[0][0], {"error": "render"})})


# -- after a crash ------------------------------------------------------------------------------------
def recover_stale(uow: UnitOfWork, *, lease: timedelta = LEASE) -> Recovered:
    """``sending`` rows claimed longer ago than ``lease`` become ``unknown`` (their worker is gone)."""
    with uow:
        now = uow.clock.now()
        result = uow.session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.state.in_(list(P.delivery_from("lost"))), DeliveryRow.claimed_at < now - lease)
            .values(state=P.delivery_to("lost"), error="worker_lost")
            .execution_options(synchronize_session=False))
        uow.commit()
        return Recovered(result.rowcount or 0)


def settle_unknown(uow: UnitOfWork, now: datetime, *, sender: Sender | None = None,
                   render: Renderer | None = None, grace: timedelta = SETTLE_GRACE,
                   lease: timedelta = LEASE) -> Settled:
    """Scheduled job: recover stale claims, then settle ``unknown`` rows from WeChat's job-finished
    events; re-send only under WeChat's dedupe key (see the module docstring). Follow-up steps
    delivered through the ledger follow their rows afterwards."""
    from campaigns.services.followup import sync_from_ledger

    settled = _settle_unknown(uow, now, sender=sender, render=render, grace=grace, lease=lease)
    sync_from_ledger(uow)
    return settled


def _settle_unknown(uow: UnitOfWork, now: datetime, *, sender: Sender | None, render: Renderer | None,
                    grace: timedelta, lease: timedelta) -> Settled:
    from campaigns.services import callback

    callback.process_inbox(uow)  # the job-finished events that arrived since the last run
    recover_stale(uow, lease=lease)
    sent = failed = resent = waiting = 0
    with uow:
        unknown = list(uow.session.execute(
            select(DeliveryRow, PushRow).join(PushRow, PushRow.id == DeliveryRow.push_id)
            .where(DeliveryRow.state == P.DeliveryState.UNKNOWN).order_by(DeliveryRow.claimed_at, DeliveryRow.id)
        ).all())
        if not unknown:
            return Settled(0, 0, 0, 0)
        openids = {d.openid for d, p in unknown if p.kind == P.PushKind.TEMPLATE}
        used = set(uow.session.scalars(select(DeliveryRow.msgid).where(
            DeliveryRow.openid.in_(openids), DeliveryRow.msgid.is_not(None)))) if openids else set()
        events: dict[str, list[tuple[datetime, str, str]]] = {}
        if openids:
            for inbox in uow.session.scalars(select(WeChatInboxRow).where(
                    WeChatInboxRow.event == "TEMPLATESENDJOBFINISH", WeChatInboxRow.openid.in_(openids))
                    .order_by(WeChatInboxRow.created_time, WeChatInboxRow.id)):
                msgid = str((inbox.fields or {}).get("MsgID") or "")
                if msgid and msgid not in used:
                    events.setdefault(inbox.openid, []).append(
                        (inbox.created_time, msgid, str((inbox.fields or {}).get("Status") or "")))
        to_resend: list[tuple[DeliveryRow, PushRow]] = []
        for delivery, push in unknown:
            if push.kind == P.PushKind.MASS:
                to_resend.append((delivery, push))
                continue
            claimed_at = delivery.claimed_at or delivery.created_at
            found = next((e for e in events.get(delivery.openid, [])
                          if e[0] >= claimed_at - timedelta(seconds=5)), None)
            if found is not None:
                events[delivery.openid].remove(found)
                used.add(found[1])
                if found[2] == "success":
                    delivery.state = P.delivery_transition(delivery.state, "sent")
                    delivery.sent_at, delivery.msgid, delivery.error = found[0], found[1], None
                    sent += 1
                else:
                    delivery.state = P.delivery_transition(delivery.state, "failed")
                    delivery.msgid, delivery.error = found[1], f"wx:{found[2]}"[:60]
                    failed += 1
            elif now - claimed_at < timedelta(seconds=P.TEMPLATE_DEDUPE_SECONDS - 60):
                to_resend.append((delivery, push))
            elif now - claimed_at < grace:
                waiting += 1  # an event may still come; WeChat no longer dedupes, so do not resend
            else:
                delivery.state = P.delivery_transition(delivery.state, "failed")
                delivery.error = "unconfirmed"
                failed += 1
        uow.commit()
    if sender is None:
        return Settled(sent, failed, 0, waiting + len(to_resend))
    mass_batches: dict[tuple[int, int, str], list[tuple[DeliveryRow, PushRow]]] = {}
    for delivery, push in to_resend:
        if push.kind == P.PushKind.MASS:
            mass_batches.setdefault((push.id, delivery.batch_no, delivery.claim or ""), []).append((delivery, push))
            continue
        call = Call(push.id, push.public_id, push.kind, delivery.variant, delivery.claim or "",
                    [(delivery.id, delivery.openid)], content=dict(push.variants.get(delivery.variant) or {}))
        if render is not None:
            with uow as u:
                call.rendered.update(render(u, push, [delivery]))
        outcome = perform(lambda: uow, sender, call)
        resent += 1
        sent += outcome is P.Outcome.SENT
        failed += outcome is P.Outcome.FAILED
    for (_push_id, batch_no, claim_token), members in mass_batches.items():
        push = members[0][1]
        call = Call(push.id, push.public_id, push.kind, members[0][0].variant, claim_token,
                    [(d.id, d.openid) for d, _ in members],
                    content=dict(push.variants.get(members[0][0].variant) or {}, batch_no=batch_no))
        outcome = perform(lambda: uow, sender, call)
        resent += len(members)
        sent += len(members) if outcome is P.Outcome.SENT else 0
        failed += len(members) if outcome is P.Outcome.FAILED else 0
    finish_pushes(uow)
    return Settled(sent, failed, resent, waiting)


def finish_pushes(uow: UnitOfWork) -> int:
    """Pushes whose rows are all settled are done."""
    with uow:
        active = select(DeliveryRow.id).where(DeliveryRow.push_id == PushRow.id,
                                              DeliveryRow.state.in_([s.value for s in ACTIVE_STATES]))
        rows = list(uow.session.scalars(select(PushRow).where(PushRow.status == P.PushStatus.SENDING,
                                                              ~active.exists())))
        for push in rows:
            push.status = P.push_transition(push.status, "finish")
            push.finished_at = uow.clock.now()
        uow.commit()
        return len(rows)
