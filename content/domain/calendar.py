"""Publishing calendar: series of short science videos, their episodes, and
where and when each episode goes out on the hospital's platform accounts.

An episode moves through production; every move is one named, guarded
transition (nothing else assigns a status):

    planned ──shoot──▶ shot ──edit──▶ edited ──review──▶ reviewed ──publish──▶ published
                        ▲                │ send_back (医学审核退回，附原因)
                        └────────────────┘

Rules (``RuleViolation`` with the rule id):
- CAL-1: the medical review (医学审核) is done by a doctor, never by the
  episode's own editor role (operations staff cannot approve medical content).
- CAL-2: nothing is published on a platform before the medical review passed.
- CAL-3: one episode appears at most once per platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation


class Platform(StrEnum):
    DOUYIN = "douyin"
    CHANNELS = "channels"

    @property
    def label(self) -> str:
        return {"douyin": "抖音", "channels": "视频号"}[self.value]


class EpisodeStatus(StrEnum):
    PLANNED = "planned"
    SHOT = "shot"
    EDITED = "edited"
    REVIEWED = "reviewed"
    PUBLISHED = "published"

    @property
    def label(self) -> str:
        return {"planned": "已计划", "shot": "已拍摄", "edited": "已剪辑", "reviewed": "已医学审核",
                "published": "已发布"}[self.value]


class EpisodeAction(StrEnum):
    SHOOT = "shoot"
    EDIT = "edit"
    REVIEW = "review"
    SEND_BACK = "send_back"
    PUBLISH = "publish"

    @property
    def label(self) -> str:
        return {"shoot": "标记已拍摄", "edit": "标记已剪辑", "review": "医学审核通过", "send_back": "医学审核退回",
                "publish": "发布"}[self.value]


TRANSITIONS: dict[tuple[EpisodeStatus, EpisodeAction], EpisodeStatus] = {
    (EpisodeStatus.PLANNED, EpisodeAction.SHOOT): EpisodeStatus.SHOT,
    (EpisodeStatus.SHOT, EpisodeAction.EDIT): EpisodeStatus.EDITED,
    (EpisodeStatus.EDITED, EpisodeAction.REVIEW): EpisodeStatus.REVIEWED,
    (EpisodeStatus.EDITED, EpisodeAction.SEND_BACK): EpisodeStatus.SHOT,
    (EpisodeStatus.REVIEWED, EpisodeAction.PUBLISH): EpisodeStatus.PUBLISHED,
    (EpisodeStatus.PUBLISHED, EpisodeAction.PUBLISH): EpisodeStatus.PUBLISHED,  # the next platform
}


def next_status(episode_id: str, status: EpisodeStatus, action: EpisodeAction) -> EpisodeStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        if action is EpisodeAction.PUBLISH:
            raise RuleViolation("CAL-2", "剧集尚未通过医学审核，不能发布") from None
        raise IllegalTransition("剧集", episode_id, status.label, action.label) from None


def ensure_medical_reviewer(is_doctor: bool) -> None:
    if not is_doctor:
        raise RuleViolation("CAL-1", "医学审核须由医生完成")


def validate_title(title: str, what: str = "标题") -> str:
    title = title.strip()
    if not 2 <= len(title) <= 60:
        raise InvalidInput(f"{what}应为 2 到 60 个字", field="title")
    return title


@dataclass(frozen=True)
class CalendarEntry:
    """One line of a platform calendar (a video post or a live session)."""

    day: date
    platform: str
    kind: str  # video | live
    title: str
    state: str
    ref: str  # public id of the post or live session


def month_range(year: int, month: int) -> tuple[date, date]:
    if not 1 <= month <= 12:
        raise InvalidInput("月份应为 1 到 12", field="month")
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def normalise_title(text: str) -> str:
    """For matching an export's work title to an episode: no hashtags, spaces or punctuation."""
    out = []
    for word in text.replace("＃", "#").split():
        if word.startswith(("#", "@")):
            continue
        out.append(word)
    joined = "".join(out)
    return "".join(ch for ch in joined if ch.isalnum()).lower()


def title_matches(episode_title: str, exported_title: str) -> bool:
    e, x = normalise_title(episode_title), normalise_title(exported_title)
    return bool(e) and (e in x or (len(x) >= 6 and x in e))
