"""Demo steps for content: a short science video and 名医讲堂 lectures."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.persistence import models as m
from opsctl.demo.context import OPERATOR, DemoContext


def step_short_video(ctx: DemoContext) -> None:
    """短视频：用合成素材按配方渲染一条科普视频（9:16 与 16:9）"""
    from content.services.demo_studio import write_demo_studio
    from content.services.video import render_recipe

    recipe = write_demo_studio(ctx.container.settings.data_dir / "demo-video")
    for video in render_recipe(recipe, timeout=300):
        ctx.add(f"短视频（{video.format}）", str(video.path),
                f"{video.width}x{video.height}，{video.duration:.1f} 秒，原响度 {video.loudness_before} LUFS → -16，"
                f"封面 {video.cover.name if video.cover else '无'}")


def step_lectures(ctx: DemoContext) -> None:
    """名医讲堂：医生发布图文与音频讲堂，修改后重新发布，运营停用一条"""
    from content.adapters import ffmpeg
    from content.domain.lectures import DoctorTab, LectureKind
    from content.services import lectures

    uow = ctx.container.uow
    with uow() as u:
        doctors = list(u.session.execute(
            select(m.StaffRow.public_id, m.StaffRow.name).where(m.StaffRow.role == Role.DOCTOR.value)
            .order_by(m.StaffRow.id).limit(3)))
    folder = ctx.container.settings.data_dir / "demo-lectures"
    folder.mkdir(parents=True, exist_ok=True)
    audio = folder / "hypertension.mp3"
    ffmpeg.run(["-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "sine=f=220:d=15",
                "-c:a", "libmp3lame", "-b:a", "32k", str(audio)], timeout=60, what="生成演示音频")
    topics = [("高血压的三个误区", "心血管"), ("糖尿病饮食怎么吃", "内分泌"), ("儿童发热何时就医", "儿科")]
    body = "这是演示用的科普正文：请遵医嘱用药，定期复查，有疑问可在互联网医院咨询医生。"
    made = []
    for (staff_id, _name), (title, category) in zip(doctors, topics, strict=False):
        doctor = Principal(account_id=f"demo:{staff_id}", username=staff_id, role=Role.DOCTOR, staff_id=staff_id)
        made.append(lectures.create_lecture(uow(), doctor, lectures.LectureInput(title, category, LectureKind.TEXT, body),
                                            publish=True))
        lectures.create_lecture(uow(), doctor, lectures.LectureInput(f"{title}（音频）", category, LectureKind.AUDIO,
                                                                     audio_file=audio), publish=False)
        ctx.clock.advance(timedelta(days=3))
    if made:
        first = made[0]
        doctor = Principal(account_id="demo:author", username="author", role=Role.DOCTOR, staff_id=doctors[0][0])
        lectures.edit_lecture(uow(), doctor, first.public_id, lectures.LectureInput(
            first.title + "（修订）", first.category, LectureKind.TEXT, body + "补充：每天同一时间服药。"), publish=True)
        drafts = lectures.list_for_doctor(uow(), doctor, DoctorTab.DRAFTS)
        lectures.disable_lecture(uow(), OPERATOR, made[-1].public_id)
        patient = Principal(account_id="demo:patient", username="patient", role=Role.PATIENT, patient_id="demo")
        visible = lectures.list_lectures(uow(), patient)
        ctx.add("名医讲堂", len(lectures.list_lectures(uow(), OPERATOR)),
                f"患者可见 {len(visible)} 条；首位医生草稿 {len(drafts)} 条；1 条修订后重新发布（版本 2），1 条被运营停用")
