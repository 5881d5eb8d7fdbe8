"""Follow-up plan steps delivered through the push delivery ledger, against the sandbox WeChat
server, on SQLite and PostgreSQL: one ledger row per step, the push worker sends it, quiet hours,
the frequency cap and opt-outs apply, a crash leaves ``unknown`` that is settled from WeChat's
job-finished events, and the step's state follows its row. What reached WeChat is counted from
what the sandbox received."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.domain.pushes import FrequencyCap
from campaigns.persistence.followup import FollowupStepRow
from campaigns.persistence.pushes import DeliveryRow, PushRow
from campaigns.services import delivery, followup, pushes
from campaigns.services.render import make_renderer
from clinical_core.domain.errors import IllegalTransition
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import PatientRow
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic
from tests.support.pushes import received_templates, synced_sandbox

RENDER = make_renderer("http://127.0.0.1:8700")
CHANNEL = followup.Channel("tpl_sandbox_notice", "https://h.example.org", FrequencyCap(3, 7))
NO_DELAY = delivery.Rules(retry_delays=(0, 0, 0))


@pytest.fixture
def clinic(container: Container) -> Clinic:
    return build_clinic(container)


@pytest.fixture
def wx(container: Container) -> Iterator[tuple[SandboxServer, WeChatPushSender]]:
    with synced_sandbox(container) as wx:
        yield wx


def _bind(c: Container, patient_id: str | None, openid: str) -> None:
    with c.uow() as uow:
        uow.session.execute(update(PatientRow).where(PatientRow.public_id == patient_id).values(openid=openid))
        uow.commit()


def _plan(container: Container, clinic: Clinic, steps: list[dict[str, object]], *patients: str | None) -> None:
    followup.create_template(container.uow(), clinic.doctor_a, "t", "随访", steps)
    followup.start_plans(container.uow(), ADMIN, "t", [p or "" for p in patients])


def _work(container: Container, sender: WeChatPushSender) -> delivery.WorkerCounts:
    return delivery.run_worker(container.uow, sender, RENDER, until_idle=True, rules=NO_DELAY,
                               sleep=lambda _s: None)


def _steps(container: Container) -> list[tuple[str, str | None]]:
    return [(s.status, s.last_error) for s in followup.list_steps(container.uow(), OPS)]


TEXT = [{"day": 0, "at": "10:00", "kind": "text", "title": "用药提醒", "body": "请按时服药"}]


def test_a_due_step_is_one_ledger_row_delivered_by_the_push_worker_once(
        container: Container, clinic: Clinic, clock: FixedClock, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    _plan(container, clinic, [{"day": 0, "at": "09:00", "kind": "image", "title": "低盐饮食示意图",
                               "url": "/media/diet.png", "body": "请查看图片"}], clinic.patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    server.wechat.user_follows("o_zhang")
    first = followup.deliver_due(container.uow(), clock.now(), CHANNEL)
    again = followup.deliver_due(container.uow(), clock.now(), CHANNEL)  # a second run queues nothing
    assert (first.queued, again.queued) == (1, 0)
    assert received_templates(server) == {}  # queued, not sent: the push worker sends
    with container.uow() as uow:
        (row,) = uow.session.scalars(select(DeliveryRow))
        step_pk, push_pk = row.followup_step_id, row.push_id
        assert row.state == "pending" and step_pk is not None
        push = uow.session.get_one(PushRow, push_pk)
        assert push.purpose == "followup"
    assert [s.status for s in followup.list_steps(container.uow(), OPS)] == ["sending"]
    assert pushes.status(container.uow(), OPS) == []  # not among the marketing pushes
    assert _work(container, sender).sent == 1
    assert received_templates(server) == {"o_zhang": 1}
    (message,) = server.wechat.template_sent
    assert message["data"]["keyword1"]["value"] == "低盐饮食示意图"
    assert message["url"] == "https://h.example.org/media/diet.png"
    (step,) = followup.list_steps(container.uow(), OPS)
    assert step.status == "sent" and step.sent_at is not None  # followed its row at once
    assert followup.list_plans(container.uow(), ADMIN)[0].status == "completed"
    # nothing is sent twice: another job run and worker run; a second ledger row is refused
    followup.deliver_due(container.uow(), clock.now() + timedelta(days=1), CHANNEL)
    assert _work(container, sender).calls == 0
    assert received_templates(server) == {"o_zhang": 1}
    with container.uow() as uow, pytest.raises(IntegrityError):
        uow.session.add(DeliveryRow(push_id=push_pk, openid="o_other", variant="A", state="pending",
                                    attempts=0, next_attempt_at=clock.now(), created_at=clock.now(),
                                    followup_step_id=step_pk))
        uow.session.flush()


def test_quiet_hours_hold_the_step(container: Container, clinic: Clinic, clock: FixedClock, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT, clinic.patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    server.wechat.user_follows("o_zhang")
    clock.current = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 23:00 Shanghai
    quiet = followup.deliver_due(container.uow(), clock.now(), CHANNEL)
    assert (quiet.deferred_quiet, quiet.queued) == (1, 0)
    dry = followup.deliver_due(container.uow(), clock.now(), CHANNEL, quiet_hours="00:00-00:00", dry_run=True)
    assert len(dry.dry_run) == 1 and dry.queued == 0
    assert _work(container, sender).calls == 0 and received_templates(server) == {}
    clock.current = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)  # 08:00
    assert followup.deliver_due(container.uow(), clock.now(), CHANNEL).queued == 1
    assert _work(container, sender).sent == 1


def test_the_push_frequency_cap_moves_the_step_a_day(container: Container, clinic: Clinic, clock: FixedClock,
                                                     wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT, clinic.patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    server.wechat.user_follows("o_zhang")
    tight = followup.Channel(CHANNEL.template_id, CHANNEL.public_base_url, FrequencyCap(1, 7))
    with container.uow() as uow:  # a marketing push reached the patient yesterday
        push = PushRow(public_id="push_cap", name="科普", kind="template", status="done", variants={}, weights={},
                       created_at=clock.now(), created_by="t")
        uow.session.add(push)
        uow.session.flush()
        uow.session.add(DeliveryRow(push_id=push.id, openid="o_zhang", variant="A", state="sent", attempts=1,
                                    next_attempt_at=clock.now(), created_at=clock.now() - timedelta(days=1)))
        uow.commit()
    capped = followup.deliver_due(container.uow(), clock.now(), tight)
    assert (capped.deferred_cap, capped.queued) == (1, 0)
    (step,) = followup.list_steps(container.uow(), OPS)
    assert step.status == "pending" and step.due_at == clock.now() + timedelta(days=1)
    clock.current += timedelta(days=7)  # the window has passed
    assert followup.deliver_due(container.uow(), clock.now(), tight).queued == 1
    assert _work(container, sender).sent == 1


def test_an_opt_out_after_queuing_skips_the_row_and_fails_the_step(
        container: Container, clinic: Clinic, clock: FixedClock, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT, clinic.patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    server.wechat.user_follows("o_zhang")
    assert followup.deliver_due(container.uow(), clock.now(), CHANNEL).queued == 1
    pushes.opt_out(container.uow(), OPS, "o_zhang", "menu")
    assert _work(container, sender).skipped == 1
    assert received_templates(server) == {}
    assert _steps(container) == [("failed", "患者已退订推送")]


def test_refusals_no_openid_and_stopping_a_plan(container: Container, clinic: Clinic, clock: FixedClock,
                                                wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT + [{"day": 2, "at": "10:00", "kind": "text", "title": "复诊", "body": "请复诊"}],
          clinic.patient.patient_id, clinic.other_patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")  # never followed: WeChat refuses with 43004
    result = followup.deliver_due(container.uow(), clock.now(), CHANNEL)
    assert (result.queued, result.failed) == (1, 1)  # the other patient has no openid: failed, no row, no call
    _work(container, sender)
    failed = followup.list_steps(container.uow(), OPS, status="failed")
    assert len(failed) == 2 and any("43004" in (s.last_error or "") for s in failed)
    assert received_templates(server) == {}
    # day 2: queued, then the doctor stops the plan before a worker claims the row: withdrawn
    clock.current += timedelta(days=2)
    assert followup.deliver_due(container.uow(), clock.now(), CHANNEL).queued == 1
    plan = next(p for p in followup.list_plans(container.uow(), ADMIN) if p.patient_id == clinic.patient.patient_id)
    stopped = followup.stop_plan(container.uow(), ADMIN, plan.plan_id, "患者转院")
    assert [s.status for s in stopped.steps] == ["cancelled", "cancelled"]  # the failed one too (as before)
    with container.uow() as uow:
        assert sorted(uow.session.scalars(select(DeliveryRow.state))) == ["cancelled", "failed"]
    assert _work(container, sender).calls == 0


def test_a_worker_crash_leaves_unknown_settled_from_the_job_finished_event(
        container: Container, clinic: Clinic, clock: FixedClock, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT, clinic.patient.patient_id, clinic.other_patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    _bind(container, clinic.other_patient.patient_id, "o_wang")
    server.wechat.user_follows("o_zhang")
    server.wechat.user_follows("o_wang")
    assert followup.deliver_due(container.uow(), clock.now(), CHANNEL).queued == 2
    calls = delivery.claim(container.uow(), "w1", limit=10)
    delivery._render_calls(container.uow, RENDER, calls)
    first = calls[0]  # the worker called WeChat for the first step and died before recording it
    assert delivery.call_wechat(sender, first)[0] == 0
    server.flush_events()  # WeChat's TEMPLATESENDJOBFINISH for it
    clock.current += timedelta(minutes=3)  # past the lease
    settled = delivery.settle_unknown(container.uow(), clock.now(), sender=sender, render=RENDER)
    assert settled.sent == 2 and settled.resent == 1  # the other is re-sent under WeChat's dedupe key
    assert received_templates(server) == {"o_zhang": 1, "o_wang": 1}
    assert [s.status for s in followup.list_steps(container.uow(), OPS)] == ["sent", "sent"]


def test_an_unknown_step_follows_its_row_and_staff_settle_both(
        container: Container, clinic: Clinic, clock: FixedClock, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT, clinic.patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    server.wechat.user_follows("o_zhang")
    followup.deliver_due(container.uow(), clock.now(), CHANNEL)
    delivery.claim(container.uow(), "w1", limit=10)  # claimed; the worker vanished
    clock.current += timedelta(minutes=11)  # past WeChat's dedupe window: never re-sent
    delivery.settle_unknown(container.uow(), clock.now(), sender=sender, render=RENDER)
    (step,) = followup.list_steps(container.uow(), OPS)
    assert step.status == "unknown"
    assert followup.settle_unknown(container.uow(), OPS, step.step_id, delivered=True).status == "sent"
    with pytest.raises(IllegalTransition):
        followup.settle_unknown(container.uow(), OPS, step.step_id, delivered=True)
    with container.uow() as uow:
        assert list(uow.session.scalars(select(DeliveryRow.state))) == ["sent"]  # the row settled with it
    clock.current += timedelta(hours=1)
    delivery.settle_unknown(container.uow(), clock.now(), sender=sender, render=RENDER)
    assert received_templates(server) == {} and _steps(container)[0][0] == "sent"


def test_the_followup_job_is_registered_with_the_channel(container: Container) -> None:
    from jobs.registry import get

    assert get("followup.deliver_due").run(container, container.clock.now(), {}) == followup.DeliveryResult(
        0, 0, 0, 0, 0, 0, 0)
    with container.uow() as uow:
        assert uow.session.scalar(select(FollowupStepRow.id)) is None


def test_the_push_report_does_not_count_followup_rows(container: Container, clinic: Clinic, clock: FixedClock,
                                                       wx) -> None:  # type: ignore[no-untyped-def]
    from reports.metrics.pushes import _deliveries

    server, sender = wx
    clock.current = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    _plan(container, clinic, TEXT, clinic.patient.patient_id)
    _bind(container, clinic.patient.patient_id, "o_zhang")
    server.wechat.user_follows("o_zhang")
    followup.deliver_due(container.uow(), clock.now(), CHANNEL)
    assert _work(container, sender).sent == 1
    with container.uow() as uow:
        assert uow.session.execute(_deliveries()).all() == []  # the follow-up metrics count it
