"""名医讲堂 for patients: moderated comments, likes, shares and tips through the payment port (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest

from clinical_core.domain.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, RuleViolation
from clinical_core.services import audit
from content.domain.lectures import CommentStatus, LectureKind, ShareChannel
from content.services import lecture_engagement as engage
from content.services import lectures
from content.services.lectures import LectureInput
from opsctl.wiring import Container
from tests.support.clinic import OPS, Clinic, build_clinic

TEXT = LectureInput("高血压的三个误区", "心血管", LectureKind.TEXT, "没有症状也要按时服药，血压平稳后不要自行停药。" * 2)


def _setup(c: Container) -> tuple[Clinic, str]:
    clinic = build_clinic(c)
    return clinic, lectures.create_lecture(c.uow(), clinic.doctor_a, TEXT, publish=True).public_id


def test_comments_wait_for_moderation_and_names_are_masked(container: Container) -> None:
    c = container
    clinic, lec = _setup(c)
    mine = engage.add_comment(c.uow(), clinic.patient, lec, "讲得很清楚，我每天都按时吃药。")
    other = engage.add_comment(c.uow(), clinic.other_patient, lec, "请问晚上吃还是早上吃？")
    assert (mine.status, mine.author) == ("pending", "张*")
    assert [v.public_id for v in engage.list_comments(c.uow(), clinic.patient, lec)] == [mine.public_id]
    assert engage.list_comments(c.uow(), clinic.doctor_a, lec) == []
    queue = engage.list_comments(c.uow(), OPS, status=CommentStatus.PENDING)
    assert [v.public_id for v in queue] == [mine.public_id, other.public_id]
    with pytest.raises(Forbidden):
        engage.moderate_comment(c.uow(), clinic.doctor_a, mine.public_id, approve=True)
    with pytest.raises(InvalidInput):
        engage.moderate_comment(c.uow(), OPS, other.public_id, approve=False)
    engage.moderate_comment(c.uow(), OPS, mine.public_id, approve=True)
    rejected = engage.moderate_comment(c.uow(), OPS, other.public_id, approve=False, reason="含广告")
    assert (rejected.status, rejected.reject_reason) == ("rejected", "含广告")
    with pytest.raises(IllegalTransition):
        engage.moderate_comment(c.uow(), OPS, other.public_id, approve=True)
    seen_by_other = engage.list_comments(c.uow(), clinic.other_patient, lec)
    assert [(v.public_id, v.mine) for v in seen_by_other] == [(mine.public_id, False), (other.public_id, True)]
    assert [v.body for v in engage.list_comments(c.uow(), clinic.doctor_a, lec)] == ["讲得很清楚，我每天都按时吃药。"]
    with pytest.raises(RuleViolation):
        engage.add_comment(c.uow(), clinic.patient, lec, "好")
    with pytest.raises(Forbidden):
        engage.add_comment(c.uow(), clinic.doctor_a, lec, "医生不能以患者身份评论")
    lectures.disable_lecture(c.uow(), OPS, lec)
    with pytest.raises(RuleViolation):
        engage.add_comment(c.uow(), clinic.patient, lec, "停用后还能评论吗")
    with pytest.raises(NotFound):
        engage.list_comments(c.uow(), clinic.patient, lec)


def test_likes_are_one_per_patient_and_shares_count(container: Container) -> None:
    c = container
    clinic, lec = _setup(c)
    engage.like(c.uow(), clinic.patient, lec)
    again = engage.like(c.uow(), clinic.patient, lec)
    assert (again.likes, again.liked_by_me) == (1, True)
    assert engage.like(c.uow(), clinic.other_patient, lec).likes == 2
    assert engage.like(c.uow(), clinic.patient, lec, liked=False).likes == 1
    engage.share(c.uow(), clinic.patient, lec, ShareChannel.MOMENTS)
    view = engage.share(c.uow(), clinic.other_patient, lec, ShareChannel.FRIEND)
    assert (view.shares, view.liked_by_me) == (2, True)
    draft = lectures.create_lecture(c.uow(), clinic.doctor_a, TEXT, publish=False)
    with pytest.raises(NotFound):
        engage.like(c.uow(), clinic.patient, draft.public_id)


def test_tips_go_through_the_payment_port_and_can_be_refunded(container: Container) -> None:
    c = container
    clinic, lec = _setup(c)
    with pytest.raises(RuleViolation) as caught:
        engage.tip(c.uow(), clinic.patient, c.payments, lec, 50)
    assert caught.value.rule == "LEC-T1"
    with pytest.raises(RuleViolation):
        engage.tip(c.uow(), clinic.patient, c.payments, lec, 20_001)
    order = engage.tip(c.uow(), clinic.patient, c.payments, lec, 500)
    assert order.client_params
    assert engage.engagement(c.uow(), OPS, lec).tips_fen == 0  # not paid yet
    with pytest.raises(RuleViolation):
        engage.refund_tip(c.uow(), OPS, order.tip_id, "误操作")
    notice = c.payments.simulate_payment(order.out_trade_no)
    paid = engage.handle_tip_notification(c.uow(), c.payments, *notice)
    assert (paid.status, paid.amount_fen, paid.author) == ("paid", 500, "医生A")
    assert engage.handle_tip_notification(c.uow(), c.payments, *notice).status == "paid"  # retried notification
    second = engage.tip(c.uow(), clinic.other_patient, c.payments, lec, 2000)
    engage.handle_tip_notification(c.uow(), c.payments, *c.payments.simulate_payment(second.out_trade_no))
    stats = engage.engagement(c.uow(), clinic.patient, lec)
    assert (stats.tips, stats.tips_fen) == (2, 2500)
    assert [t.tip_id for t in engage.list_tips(c.uow(), clinic.patient)] == [order.tip_id]
    assert len(engage.list_tips(c.uow(), clinic.doctor_a)) == 2 and engage.list_tips(c.uow(), clinic.doctor_b) == []
    with pytest.raises(Forbidden):
        engage.refund_tip(c.uow(), clinic.patient, order.tip_id, "误操作")
    assert engage.refund_tip(c.uow(), OPS, second.tip_id, "患者误操作").status == "refund_pending"
    with pytest.raises(RuleViolation):
        engage.refund_tip(c.uow(), OPS, second.tip_id, "再退一次")
    assert engage.settle_tip_refunds(c.uow(), c.payments).succeeded == 1
    assert engage.settle_tip_refunds(c.uow(), c.payments).succeeded == 0
    [income] = engage.tips_income(c.uow(), OPS, date(2026, 11, 1), date(2026, 12, 1))
    assert (income.tips, income.paid_fen, income.refunded_fen, income.net_fen) == (2, 2500, 2000, 500)
    assert engage.engagement(c.uow(), OPS, lec).tips_fen == 500
    actions = [e.action for e in audit.list_entries(c.uow(), entity_id=second.tip_id)]
    # the provider answers PROCESSING first and settles on the next poll (WeChat Pay semantics)
    assert sorted(actions) == ["lecture_tip.refund", "lecture_tip_refund.processing", "lecture_tip_refund.succeeded"]
