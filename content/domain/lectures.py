"""名医讲堂: doctors' text and audio lectures, by category, with versions.

A lecture is written by one doctor. Each edit adds a version; patients see
the *published* version, so an edit of a live lecture stays invisible until
it is republished. States and their only moves:

    draft ──publish──▶ published ──disable──▶ disabled
                          ▲  │ publish (republish an edit)   │
                          │  └──────────────◀────────────────┘ enable

Rules (raised as ``RuleViolation`` with the rule id):
- LEC-A1: audio is mp3 or AAC (m4a), 10 s to 60 min, at most 100 MB.
- LEC-A2: an audio lecture needs audio; a text lecture needs a body of at least 20 characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation

AUDIO_FORMATS = {"mp3": "mp3", "aac": "m4a"}
AUDIO_MIN_SECONDS = 10
AUDIO_MAX_SECONDS = 60 * 60
AUDIO_MAX_BYTES = 100 * 2**20
TEXT_MIN_CHARS = 20


class LectureStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DISABLED = "disabled"

    @property
    def label(self) -> str:
        return {"draft": "草稿", "published": "已发布", "disabled": "已停用"}[self.value]


class LectureKind(StrEnum):
    TEXT = "text"
    AUDIO = "audio"


class DoctorTab(StrEnum):
    """The doctor's app shows two tabs: 已发布 (published or disabled) and 草稿 (drafts and unpublished edits)."""

    PUBLISHED = "published"
    DRAFTS = "drafts"


@dataclass(frozen=True)
class AudioFacts:
    codec: str  # as the probe names it: mp3, aac, ...
    seconds: float
    size_bytes: int


@dataclass(frozen=True)
class LectureContent:
    """What one version says."""

    title: str
    category: str
    kind: LectureKind
    body: str = ""
    audio_path: str | None = None
    audio: AudioFacts | None = None


def validate_audio(facts: AudioFacts) -> None:
    if facts.codec not in AUDIO_FORMATS:
        raise RuleViolation("LEC-A1", f"音频格式应为 mp3 或 AAC（m4a），实际是 {facts.codec}")
    if not AUDIO_MIN_SECONDS <= facts.seconds <= AUDIO_MAX_SECONDS:
        raise RuleViolation("LEC-A1", f"音频时长应在 {AUDIO_MIN_SECONDS} 秒到 {AUDIO_MAX_SECONDS // 60} 分钟之间，"
                                      f"实际是 {facts.seconds:.1f} 秒")
    if facts.size_bytes > AUDIO_MAX_BYTES:
        raise RuleViolation("LEC-A1", f"音频文件不能超过 {AUDIO_MAX_BYTES // 2**20} MB")


def validate_content(content: LectureContent) -> LectureContent:
    title, category = content.title.strip(), content.category.strip()
    if not 2 <= len(title) <= 60:
        raise InvalidInput("标题应为 2 到 60 个字", field="title")
    if not 1 <= len(category) <= 20:
        raise InvalidInput("分类应为 1 到 20 个字", field="category")
    if content.kind is LectureKind.AUDIO:
        if content.audio is None or not content.audio_path:
            raise RuleViolation("LEC-A2", "音频讲堂需要上传音频")
        validate_audio(content.audio)
    elif len(content.body.strip()) < TEXT_MIN_CHARS:
        raise RuleViolation("LEC-A2", f"图文讲堂的正文至少 {TEXT_MIN_CHARS} 个字")
    return LectureContent(title, category, content.kind, content.body.strip(), content.audio_path, content.audio)


def _illegal(public_id: str, status: LectureStatus, action: str) -> IllegalTransition:
    return IllegalTransition("讲堂", public_id, status.label, action)


def publish(public_id: str, status: LectureStatus, *, pending_edit: bool) -> LectureStatus:
    """Publish a draft, or republish a live lecture's edit."""
    if status is LectureStatus.DRAFT or (status is LectureStatus.PUBLISHED and pending_edit):
        return LectureStatus.PUBLISHED
    raise _illegal(public_id, status, "发布" if status is LectureStatus.DISABLED else "发布（没有新的修改）")


def disable(public_id: str, status: LectureStatus) -> LectureStatus:
    if status is LectureStatus.PUBLISHED:
        return LectureStatus.DISABLED
    raise _illegal(public_id, status, "停用")


def enable(public_id: str, status: LectureStatus) -> LectureStatus:
    if status is LectureStatus.DISABLED:
        return LectureStatus.PUBLISHED
    raise _illegal(public_id, status, "启用")


def in_tab(tab: DoctorTab, status: LectureStatus, *, pending_edit: bool) -> bool:
    if tab is DoctorTab.DRAFTS:
        return status is LectureStatus.DRAFT or pending_edit
    return status is not LectureStatus.DRAFT


# --- patients' engagement: comments (moderated), likes, shares, tips (赞赏) ---
#
# Comments: pending ──approve──▶ approved ; pending ──reject──▶ rejected (with a reason).
# Rules:
# - LEC-C1: a comment is 2 to 500 characters, on a published lecture; other patients
#   see it only once operations approved it (the writer sees their own pending ones).
# - LEC-T1: a tip is 1 to 200 yuan, on a published lecture, by a patient.
# - LEC-T2: a tip is refunded only in full, only once, and only after it was paid.

COMMENT_MIN, COMMENT_MAX = 2, 500
TIP_MIN_FEN, TIP_MAX_FEN = 100, 20_000


class CommentStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return {"pending": "待审核", "approved": "已通过", "rejected": "未通过"}[self.value]


class ShareChannel(StrEnum):
    FRIEND = "wechat_friend"
    MOMENTS = "moments"
    LINK = "link"


def validate_comment(body: str) -> str:
    body = body.strip()
    if not COMMENT_MIN <= len(body) <= COMMENT_MAX:
        raise RuleViolation("LEC-C1", f"评论应为 {COMMENT_MIN} 到 {COMMENT_MAX} 个字")
    return body


def moderate(comment_id: str, status: CommentStatus, approve: bool, reason: str) -> CommentStatus:
    if status is not CommentStatus.PENDING:
        raise IllegalTransition("评论", comment_id, status.label, "通过" if approve else "驳回")
    if not approve and not reason.strip():
        raise InvalidInput("驳回评论请写明原因", field="reason")
    return CommentStatus.APPROVED if approve else CommentStatus.REJECTED


def ensure_open_for_patients(status: LectureStatus) -> None:
    if status is not LectureStatus.PUBLISHED:
        raise RuleViolation("LEC-C1", "讲堂未发布或已停用，不能互动")


def validate_tip(amount_fen: int) -> int:
    if not TIP_MIN_FEN <= amount_fen <= TIP_MAX_FEN:
        raise RuleViolation("LEC-T1", f"赞赏金额应在 {TIP_MIN_FEN // 100} 到 {TIP_MAX_FEN // 100} 元之间")
    return amount_fen


def ensure_tip_refundable(paid: bool, already_refunded: bool) -> None:
    if not paid:
        raise RuleViolation("LEC-T2", "赞赏尚未支付成功，不能退款")
    if already_refunded:
        raise RuleViolation("LEC-T2", "这笔赞赏已退款")
