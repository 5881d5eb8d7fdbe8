"""Demo steps for content: a short science video, 名医讲堂 lectures and their patients' engagement,
the publishing calendar with imported platform statistics, a live session and a community."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
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


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


def step_content_calendar(ctx: DemoContext) -> None:
    """发布日历与平台数据：系列剧集经医学审核后排期到抖音、视频号，导入平台导出的数据，直播与社群"""
    from openpyxl import Workbook

    from content.domain.calendar import EpisodeStatus, Platform
    from content.domain.exports import ExportKind
    from content.services import calendar as cal
    from content.services import live
    from content.services import platform_data as data

    uow, rng = ctx.container.uow, ctx.rng
    with uow() as u:
        doctor_id = u.session.scalar(select(m.StaffRow.public_id).where(m.StaffRow.role == Role.DOCTOR.value)
                                     .order_by(m.StaffRow.id).limit(1))
    reviewer = Principal(account_id=f"demo:{doctor_id}", username="reviewer", role=Role.DOCTOR, staff_id=doctor_id)
    start = ctx.plan.start
    ctx.clock.current = _at(start, 9)
    series = cal.create_series(uow(), OPERATOR, "心内科说血压", "心血管内科", "每周两集，1 分钟讲清一个血压问题")
    titles = ["高血压的三个误区", "家庭自测血压怎么量", "降压药什么时候吃", "血压高了头不晕也要治吗", "盐吃多少算多",
              "运动能降压吗", "熬夜和血压", "老人血压低一点好吗"]
    episodes = [cal.add_episode(uow(), OPERATOR, series.public_id, t) for t in titles]
    posts: list[tuple[str, str, str, date]] = []  # post id, platform, title, day
    sent_back = 0
    for i, ep in enumerate(episodes):
        day = start + timedelta(days=2 + 3 * i)
        if day > ctx.plan.until:
            break
        ctx.clock.current = _at(day - timedelta(days=2), 10)
        cal.mark_shot(uow(), OPERATOR, ep.public_id)
        cal.mark_edited(uow(), OPERATOR, ep.public_id)
        if i % 4 == 1:  # the doctor sends one in four back once
            cal.medical_review(uow(), reviewer, ep.public_id, approve=False, note="剂量表述需与指南一致")
            cal.mark_edited(uow(), OPERATOR, ep.public_id)
            sent_back += 1
        cal.medical_review(uow(), reviewer, ep.public_id, approve=True)
        for platform, hour in ((Platform.DOUYIN, 20), (Platform.CHANNELS, 21)):
            post = cal.plan_post(uow(), OPERATOR, ep.public_id, platform, _at(day, hour))
            posts.append((post.public_id, platform.value, ep.title, day))
    ctx.clock.current = _at(start, 12)
    published = 0
    for post_id, _platform, _title, day in posts:
        if day <= ctx.plan.until - timedelta(days=8):  # the last week's stay planned on the calendar
            cal.publish_post(uow(), OPERATOR, post_id, published_at=_at(day, 20 if _platform == "douyin" else 21))
            published += 1

    # A live Q&A on Douyin, announced to the community group (the pushes to followers: step_live_announcements).
    group = live.add_group(uow(), OPERATOR, "心内科高血压患者群1", "心血管内科", "王护士")
    live_day = start + timedelta(days=max(0, min(12, ctx.plan.days - 2)))
    ctx.clock.current = _at(live_day - timedelta(days=3), 10)
    session = live.schedule(uow(), OPERATOR, platform=Platform.DOUYIN, account="深大附院心内科", title="高血压直播答疑",
                            planned_start=_at(live_day, 20), minutes=60, host_staff_id=doctor_id,
                            plan="一、家庭自测血压的方法；二、常用降压药的服用时间；三、观众提问答疑")
    [task] = live.announce(uow(), OPERATOR, session.public_id, followers=False, group_ids=(group.public_id,))
    live.mark_posted(uow(), OPERATOR, task.public_id or "")
    ctx.clock.current = _at(live_day, 20)
    live.start(uow(), OPERATOR, session.public_id)
    ctx.clock.current = _at(live_day, 21, 5)
    live.end(uow(), OPERATOR, session.public_id)

    # The platforms' exports at the month's end, as the team downloads them.
    ctx.clock.current = _at(ctx.plan.until, 18)
    folder = ctx.container.settings.data_dir / "demo-exports"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for platform, header in (("douyin", ["作品名称", "发布时间", "体裁", "播放量", "点赞量", "评论量", "分享量", "粉丝增量"]),
                             ("channels", ["视频描述", "发表时间", "播放量", "喜欢", "评论", "转发", "新增关注"])):
        wb = Workbook()
        ws = wb.active
        ws.append([f"数据更新时间：{ctx.plan.until}"])
        ws.append(header)
        for _pid, p, title, day in posts:
            if p != platform or day > ctx.plan.until - timedelta(days=8):
                continue
            plays = rng.randint(3000, 60000)
            shown = f"{plays / 10000:.1f}万" if plays >= 10000 else f"{plays:,}"
            when = f"{day} {'20' if p == 'douyin' else '21'}:00:0{rng.randint(0, 9)}"
            counts = [max(1, plays // rng.randint(20, 60)), plays // rng.randint(200, 600), plays // rng.randint(150, 400),
                      plays // rng.randint(300, 900)]
            row = [f"{title} #健康科普 #心内科", when] + (["视频"] if p == "douyin" else []) + [shown, *counts]
            ws.append(row)
        if ws.max_row <= 2:  # nothing published yet on a very short simulated period: nothing to export
            continue
        path = folder / f"{platform}-作品数据.xlsx"
        wb.save(path)
        files.append((ExportKind.VIDEO, platform, path))
    wb = Workbook()
    ws = wb.active
    ws.append(["直播标题", "开播时间", "直播时长", "累计观看人数", "累计观看人次", "最高在线人数", "点赞次数", "评论次数",
               "分享次数", "新增粉丝数"])
    ws.append(["高血压直播答疑", f"{live_day} 20:02", "1小时3分", "1.8万", "2.6万", "986", "4.2万", "713", "96", "245"])
    wb.save(folder / "douyin-直播数据.xlsx")
    files.append((ExportKind.LIVE, "douyin", folder / "douyin-直播数据.xlsx"))
    wb = Workbook()
    ws = wb.active
    ws.append(["群名称", "群主", "日期", "群成员总数", "新增成员数", "退群成员数", "发言成员数", "群聊消息数"])
    members = 300
    for offset in range(ctx.plan.days):
        joined, left = rng.randint(0, 12), rng.randint(0, 3)
        members += joined - left
        active = rng.randint(0, 40)
        ws.append(["心内科高血压患者群1", "王护士", str(start + timedelta(days=offset)), members, joined, left, active,
                   active * rng.randint(2, 6)])
    wb.save(folder / "wecom-客户群统计.xlsx")
    files.append((ExportKind.COMMUNITY, "wecom", folder / "wecom-客户群统计.xlsx"))
    matched = rows = 0
    for kind, source, path in files:
        result = data.import_export(uow(), OPERATOR, kind, source, path, as_of=ctx.plan.until)
        rows, matched = rows + result.rows, matched + result.matched
    again = data.import_export(uow(), OPERATOR, *files[-1][:2], files[-1][2], as_of=ctx.plan.until)

    since, until = start, ctx.plan.until + timedelta(days=1)
    entries = cal.calendar(uow(), OPERATOR, since, until)
    ctx.add("发布日历", len(entries), f"{len(episodes)} 集计划，{published} 条已发布（抖音、视频号），"
            f"{sum(1 for e in entries if e.state.startswith('计划'))} 条待发布，1 场直播；医学审核退回 {sent_back} 次")
    ctx.add("平台数据导入", rows, f"{len(files)} 个导出文件，{matched} 行匹配到已发布作品、直播或社群；重复导入同一文件"
            f"{'未重复计数' if again.already_imported else '出错'}")
    for t in data.platform_totals(uow(), OPERATOR, since, until):
        ctx.add(f"{Platform(t.platform).label}播放", t.plays, f"{t.works} 条作品，点赞 {t.likes}，评论 {t.comments}，"
                f"分享 {t.shares}，涨粉 {t.followers}")
    for lv in data.live_totals(uow(), OPERATOR, since, until):
        ctx.add("直播观看人数", lv.viewers, f"{lv.sessions} 场，{lv.minutes} 分钟，最高在线 {lv.peak_online}，涨粉 {lv.followers}")
    for g in data.community_totals(uow(), OPERATOR, since, until):
        ctx.add(f"社群「{g.group}」", g.members_end, f"月内新增 {g.joined}，退群 {g.left}，消息 {g.messages}")
    assert all(e.status != EpisodeStatus.PLANNED.value for e in cal.list_episodes(uow(), OPERATOR)
               if any(p[2] == e.title for p in posts))


def step_lecture_engagement(ctx: DemoContext) -> None:
    """名医讲堂互动：患者评论（运营审核）、点赞、分享与赞赏（支付沙箱回调），一笔赞赏退款"""
    from content.domain.lectures import CommentStatus, ShareChannel
    from content.services import lecture_engagement as engage
    from content.services import lectures

    uow, rng, pay = ctx.container.uow, ctx.rng, ctx.container.payments
    with uow() as u:
        patient_ids = list(u.session.scalars(select(m.PatientRow.public_id).order_by(m.PatientRow.id).limit(12)))
    live_lectures = [v.public_id for v in lectures.list_lectures(uow(), OPERATOR) if v.status == "published"]
    if not live_lectures or not patient_ids:
        return
    comments_text = ["讲得很清楚，谢谢医生", "请问晚上吃药可以吗？", "家里老人也有高血压，转给他看了", "加微信买药 xxx"]
    tips = []
    for i, pid in enumerate(patient_ids):
        patient = Principal(account_id=f"demo:{pid}", username=pid, role=Role.PATIENT, patient_id=pid)
        lecture = live_lectures[i % len(live_lectures)]
        ctx.clock.advance(timedelta(hours=5))
        engage.like(uow(), patient, lecture)
        if rng.random() < 0.5:
            engage.share(uow(), patient, lecture, rng.choice(list(ShareChannel)))
        if i % 2 == 0:
            engage.add_comment(uow(), patient, lecture, comments_text[(i // 2) % len(comments_text)])
        if i % 3 == 0:
            order = engage.tip(uow(), patient, pay, lecture, rng.choice([200, 500, 1000, 2000]))
            engage.handle_tip_notification(uow(), pay, *pay.simulate_payment(order.out_trade_no))
            tips.append(order.tip_id)
    approved = rejected = 0
    for c in engage.moderation_queue(uow(), OPERATOR, CommentStatus.PENDING):
        spam = "加微信" in c.body
        engage.moderate_comment(uow(), OPERATOR, c.public_id, approve=not spam, reason="含广告" if spam else "")
        approved, rejected = approved + (not spam), rejected + spam
    if tips:
        engage.refund_tip(uow(), OPERATOR, tips[-1], "患者误操作")
        engage.settle_tip_refunds(uow(), pay)
    income = engage.tips_income(uow(), OPERATOR, ctx.plan.start, ctx.clock.now().astimezone(SHANGHAI).date()
                                + timedelta(days=1))
    stats = [engage.engagement(uow(), OPERATOR, lid) for lid in live_lectures]
    ctx.add("讲堂点赞", sum(s.likes for s in stats), f"分享 {sum(s.shares for s in stats)}，评论通过 {approved}、"
            f"驳回 {rejected}")
    ctx.add("讲堂赞赏收入（元）", sum(t.net_fen for t in income) / 100,
            f"{sum(t.tips for t in income)} 笔，退款 {sum(t.refunded_fen for t in income) / 100:.2f} 元")
