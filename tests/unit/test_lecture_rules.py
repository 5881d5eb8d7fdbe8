"""名医讲堂 rules: the state machine, the tabs, audio and content checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from content.domain import lectures as rules
from content.domain.lectures import AudioFacts, DoctorTab, LectureContent, LectureKind, LectureStatus

D, P, X = LectureStatus.DRAFT, LectureStatus.PUBLISHED, LectureStatus.DISABLED


def test_the_legal_moves() -> None:
    assert rules.publish("lec_1", D, pending_edit=True) is P
    assert rules.publish("lec_1", P, pending_edit=True) is P  # republish an edit
    assert rules.disable("lec_1", P) is X and rules.enable("lec_1", X) is P


@pytest.mark.parametrize(("move", "status"), [
    (lambda s: rules.publish("lec_1", s, pending_edit=False), P),
    (lambda s: rules.publish("lec_1", s, pending_edit=True), X),
    (lambda s: rules.disable("lec_1", s), D), (lambda s: rules.disable("lec_1", s), X),
    (lambda s: rules.enable("lec_1", s), D), (lambda s: rules.enable("lec_1", s), P),
])
def test_illegal_moves_name_the_lecture_state_and_action(move, status: LectureStatus) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IllegalTransition) as caught:
        move(status)
    assert "lec_1" in str(caught.value) and status.label in str(caught.value)


@given(st.lists(st.sampled_from(["publish", "edit", "disable", "enable"]), max_size=30))
def test_any_sequence_keeps_published_behind_latest(actions: list[str]) -> None:
    """Model: versions only grow; the published version never exceeds the latest; a draft was never published."""
    status, latest, published = D, 1, None
    for action in actions:
        try:
            if action == "edit":
                latest += 1
            elif action == "publish":
                status = rules.publish("lec", status, pending_edit=published is None or latest > published)
                published = latest
            elif action == "disable":
                status = rules.disable("lec", status)
            else:
                status = rules.enable("lec", status)
        except IllegalTransition:
            pass
        assert published is None or published <= latest
        assert (status is D) == (published is None)
        pending = published is not None and latest > published
        assert rules.in_tab(DoctorTab.DRAFTS, status, pending_edit=pending) == (status is D or pending)


def test_audio_checks() -> None:
    rules.validate_audio(AudioFacts("mp3", 12.0, 200_000))
    for facts, words in ((AudioFacts("pcm_s16le", 12, 1), "mp3"), (AudioFacts("aac", 5, 1), "时长"),
                         (AudioFacts("aac", 3601, 1), "时长"), (AudioFacts("mp3", 60, 101 * 2**20), "MB")):
        with pytest.raises(RuleViolation) as caught:
            rules.validate_audio(facts)
        assert caught.value.rule == "LEC-A1" and words in str(caught.value)


def test_content_checks() -> None:
    ok = rules.validate_content(LectureContent(" 高血压的三个误区 ", "心血管", LectureKind.TEXT, "正文" * 10))
    assert ok.title == "高血压的三个误区"
    with pytest.raises(RuleViolation, match="LEC-A2"):
        rules.validate_content(LectureContent("高血压", "心血管", LectureKind.TEXT, "太短"))
    with pytest.raises(RuleViolation, match="LEC-A2"):
        rules.validate_content(LectureContent("高血压", "心血管", LectureKind.AUDIO))
    with pytest.raises(InvalidInput):
        rules.validate_content(LectureContent("高", "心血管", LectureKind.TEXT, "正文" * 10))


def test_comment_moderation_and_tip_rules() -> None:
    import pytest as _pytest

    from clinical_core.domain.errors import IllegalTransition as _Illegal
    from clinical_core.domain.errors import InvalidInput as _Invalid
    from clinical_core.domain.errors import RuleViolation as _Rule
    from content.domain import lectures as r

    assert r.validate_comment("  很有帮助  ") == "很有帮助"
    for bad in ("好", "字" * 501):
        with _pytest.raises(_Rule):
            r.validate_comment(bad)
    assert r.moderate("cmt_1", r.CommentStatus.PENDING, True, "") is r.CommentStatus.APPROVED
    assert r.moderate("cmt_1", r.CommentStatus.PENDING, False, "广告") is r.CommentStatus.REJECTED
    with _pytest.raises(_Invalid):
        r.moderate("cmt_1", r.CommentStatus.PENDING, False, " ")
    for done in (r.CommentStatus.APPROVED, r.CommentStatus.REJECTED):
        with _pytest.raises(_Illegal):
            r.moderate("cmt_1", done, True, "")
    assert r.validate_tip(100) == 100 and r.validate_tip(20_000) == 20_000
    for bad in (99, 20_001, 0, -100):
        with _pytest.raises(_Rule):
            r.validate_tip(bad)
    with _pytest.raises(_Rule):
        r.ensure_open_for_patients(r.LectureStatus.DISABLED)
    with _pytest.raises(_Rule):
        r.ensure_tip_refundable(paid=False, already_refunded=False)
    with _pytest.raises(_Rule):
        r.ensure_tip_refundable(paid=True, already_refunded=True)
