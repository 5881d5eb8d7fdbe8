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
