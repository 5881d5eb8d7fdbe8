"""就诊提醒 end to end through the WeChat adapter and the sandbox WeChat server:
a follower gets the template message (shown in Beijing time); an unfollowed
patient's refusal (43004) is recorded on the visit and retried next run."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import PatientRow
from clinical_core.persistence.video import VideoVisitRow
from clinical_core.services import video_jobs
from opsctl.wiring import Container
from tests.support.video import SESSION_START, book, build_video_clinic


def test_template_reminder_through_the_sandbox(container: Container, clock: FixedClock) -> None:
    vc = build_video_clinic(container, clock)
    followed = book(container, vc, vc.clinic.patient, 0)
    unfollowed = book(container, vc, vc.clinic.other_patient, 1)
    with container.uow() as uow:
        for p in uow.session.scalars(select(PatientRow)):
            p.openid = f"oPT{p.id:06d}"
        uow.commit()
        openid = uow.session.scalar(select(PatientRow.openid).join(VideoVisitRow, VideoVisitRow.patient_id == PatientRow.id)
                                    .where(VideoVisitRow.public_id == followed))
    assert openid
    container.sandbox.wechat.user_follows(openid)
    clock.current = SESSION_START - timedelta(minutes=30)
    counts = video_jobs.send_reminders(container.uow(), clock.now(), sender=container.video_reminders)
    assert counts == video_jobs.JobCounts(1, 1)
    sent = container.sandbox.wechat.template_sent
    assert [m["touser"] for m in sent] == [openid]
    assert sent[0]["data"]["keyword2"]["value"] == "11月03日 09:00" and "医生A" in sent[0]["data"]["keyword1"]["value"]
    with container.uow() as uow:
        errors = dict(uow.session.execute(select(VideoVisitRow.public_id, VideoVisitRow.reminder_error)).all())
    assert errors[followed] is None and "43004" in (errors[unfollowed] or "")
