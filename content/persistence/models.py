"""Tables of the content package: 名医讲堂 lectures (versions, comments, likes, shares,
tips), the publishing calendar (series, episodes, platform posts), live sessions,
community groups, and the statistics imported from the platforms' exports."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, PublicIdMixin, fk
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin


class LectureRow(PublicIdMixin, Base):
    """名医讲堂: one lecture; its words live in versions."""

    __tablename__ = "lectures"
    author_staff_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)
    category: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), index=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    published_at: Mapped[datetime | None]


class LectureVersionRow(IdMixin, Base):
    """One saved version of a lecture (kept for ever: edits add versions)."""

    __tablename__ = "lecture_versions"
    __table_args__ = (UniqueConstraint("lecture_id", "number"),)
    lecture_id: Mapped[int] = mapped_column(fk("lectures.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    audio_path: Mapped[str | None] = mapped_column(String(500))
    audio_codec: Mapped[str | None] = mapped_column(String(20))
    audio_millis: Mapped[int | None] = mapped_column(Integer)
    audio_bytes: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]


class LectureCommentRow(PublicIdMixin, Base):
    """A patient's comment; shown to other patients only after moderation approved it."""

    __tablename__ = "lecture_comments"
    lecture_id: Mapped[int] = mapped_column(fk("lectures.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    body: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(12), index=True)  # pending | approved | rejected
    reject_reason: Mapped[str | None] = mapped_column(String(100))
    moderated_by: Mapped[str | None] = mapped_column(String(80))
    moderated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class LectureLikeRow(IdMixin, Base):
    __tablename__ = "lecture_likes"
    __table_args__ = (UniqueConstraint("lecture_id", "patient_id"),)
    lecture_id: Mapped[int] = mapped_column(fk("lectures.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    created_at: Mapped[datetime]


class LectureShareRow(IdMixin, Base):
    __tablename__ = "lecture_shares"
    lecture_id: Mapped[int] = mapped_column(fk("lectures.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(fk("patients.id"))
    channel: Mapped[str] = mapped_column(String(20))  # wechat_friend | moments | link
    created_at: Mapped[datetime]


class LectureTipRow(PaymentRecordMixin, Base):
    """赞赏: one payment record per tip, through the payment port."""

    __tablename__ = "lecture_tips"
    lecture_id: Mapped[int] = mapped_column(fk("lectures.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    author_staff_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)


class LectureTipRefundRow(RefundRecordMixin, Base):
    __tablename__ = "lecture_tip_refunds"
    tip_id: Mapped[int] = mapped_column(fk("lecture_tips.id"), index=True)
    payment_id: Mapped[int] = mapped_column(fk("lecture_tips.id"), index=True)


class SeriesRow(PublicIdMixin, Base):
    """A series of short science videos for one department (科普系列)."""

    __tablename__ = "content_series"
    title: Mapped[str] = mapped_column(String(60), unique=True)
    department: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]


class EpisodeRow(PublicIdMixin, Base):
    __tablename__ = "content_episodes"
    __table_args__ = (UniqueConstraint("series_id", "number"),)
    series_id: Mapped[int] = mapped_column(fk("content_series.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(12), index=True)
    video_path: Mapped[str | None] = mapped_column(String(500))
    reviewer_staff_id: Mapped[int | None] = mapped_column(fk("staff.id"))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PostRow(PublicIdMixin, Base):
    """An episode on one platform: planned for a time (the calendar), then published."""

    __tablename__ = "content_posts"
    __table_args__ = (UniqueConstraint("episode_id", "platform"),)
    episode_id: Mapped[int] = mapped_column(fk("content_episodes.id"), index=True)
    platform: Mapped[str] = mapped_column(String(12), index=True)
    planned_at: Mapped[datetime] = mapped_column(index=True)
    published_at: Mapped[datetime | None]
    external_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class StatImportRow(PublicIdMixin, Base):
    """One imported export file (its digest makes a re-import a no-op)."""

    __tablename__ = "content_stat_imports"
    __table_args__ = (UniqueConstraint("kind", "source", "digest"),)
    kind: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(12))
    file_name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date] = mapped_column(Date)
    rows: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(80))
    imported_at: Mapped[datetime]


class VideoStatRow(IdMixin, Base):
    """A work's totals on a platform as exported on ``as_of`` (cumulative since it was published)."""

    __tablename__ = "content_video_stats"
    __table_args__ = (UniqueConstraint("platform", "work_key", "as_of"),)
    platform: Mapped[str] = mapped_column(String(12), index=True)
    work_key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(index=True)
    as_of: Mapped[date] = mapped_column(Date, index=True)
    post_id: Mapped[int | None] = mapped_column(fk("content_posts.id"), index=True)
    plays: Mapped[int] = mapped_column(Integer)
    likes: Mapped[int] = mapped_column(Integer)
    comments: Mapped[int] = mapped_column(Integer)
    shares: Mapped[int] = mapped_column(Integer)
    followers: Mapped[int] = mapped_column(Integer)
    import_id: Mapped[int] = mapped_column(fk("content_stat_imports.id"))


class LiveSessionRow(PublicIdMixin, Base):
    """A live stream on one of the hospital's accounts: its plan, then what happened."""

    __tablename__ = "live_sessions"
    platform: Mapped[str] = mapped_column(String(12), index=True)
    account: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(60))
    host_staff_id: Mapped[int | None] = mapped_column(fk("staff.id"))
    department_code: Mapped[str | None] = mapped_column(String(20))  # whose followers hear of it
    planned_start: Mapped[datetime] = mapped_column(index=True)
    planned_minutes: Mapped[int] = mapped_column(Integer)
    plan: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)
    announced_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]


class LiveAnnouncementRow(PublicIdMixin, Base):
    """直播预告 for one target and one announced start time: to followers through a push of the
    campaigns push engine (``push_ref``; its state is the push's), or to one community group as
    an operator's task (open → posted). Withdrawn when the session is cancelled or rescheduled.
    No unique key: announcing locks the session row and reuses an open announcement."""

    __tablename__ = "live_announcements"
    session_id: Mapped[int] = mapped_column(fk("live_sessions.id"), index=True)
    target: Mapped[str] = mapped_column(String(80))  # "followers" or a community group's public id
    announced_start: Mapped[datetime]  # the start time the copy announces
    text: Mapped[str] = mapped_column(String(600))
    status: Mapped[str] = mapped_column(String(12), index=True)  # open | posted | withdrawn
    purpose: Mapped[str] = mapped_column(String(12), default="announce")  # announce | reschedule | cancel
    kind: Mapped[str | None] = mapped_column(String(12))  # followers: mass | template
    audience: Mapped[str | None] = mapped_column(String(12))  # followers: department | doctor | all
    push_ref: Mapped[str | None] = mapped_column(String(40), index=True)  # pushes.public_id
    send_at: Mapped[datetime | None]  # followers: when the push is scheduled
    posted_at: Mapped[datetime | None]
    posted_by: Mapped[str | None] = mapped_column(String(80))
    withdrawn_at: Mapped[datetime | None]
    withdraw_reason: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]


class LiveStatRow(IdMixin, Base):
    __tablename__ = "live_stats"
    __table_args__ = (UniqueConstraint("platform", "started_at"),)
    platform: Mapped[str] = mapped_column(String(12), index=True)
    session_id: Mapped[int | None] = mapped_column(fk("live_sessions.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    viewers: Mapped[int] = mapped_column(Integer)
    views: Mapped[int] = mapped_column(Integer)
    peak_online: Mapped[int] = mapped_column(Integer)
    likes: Mapped[int] = mapped_column(Integer)
    comments: Mapped[int] = mapped_column(Integer)
    shares: Mapped[int] = mapped_column(Integer)
    followers: Mapped[int] = mapped_column(Integer)
    import_id: Mapped[int] = mapped_column(fk("content_stat_imports.id"))


class CommunityGroupRow(PublicIdMixin, Base):
    """A patient community (患者社群), e.g. a WeCom customer group of one department."""

    __tablename__ = "community_groups"
    name: Mapped[str] = mapped_column(String(60), unique=True)
    department: Mapped[str] = mapped_column(String(40))
    owner: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class CommunityStatRow(IdMixin, Base):
    __tablename__ = "community_stats"
    __table_args__ = (UniqueConstraint("group_id", "day"),)
    group_id: Mapped[int] = mapped_column(fk("community_groups.id"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    members: Mapped[int] = mapped_column(Integer)
    joined: Mapped[int] = mapped_column(Integer)
    left: Mapped[int] = mapped_column(Integer)
    active: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer)
    import_id: Mapped[int] = mapped_column(fk("content_stat_imports.id"))
