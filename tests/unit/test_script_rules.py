"""Talk-script rules: the advertising-law linter, the review workflow, template variables."""

from __future__ import annotations

import pytest

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from content.scripts.domain import workflow
from content.scripts.domain.compliance import OTC_DISCLAIMER, RULES, Channel, Severity, lint
from content.scripts.domain.workflow import Status
from content.scripts.services import render_text


@pytest.mark.parametrize(("text", "term", "rule"), [
    ("我院是本市最好的心内科", "最好", "A"),
    ("全国首家开展此项目", "全国首家", "A"),
    ("中药调理，根治高血压", "根治", "B"),
    ("安全无副作用，放心使用", "安全无副作用", "B"),
    ("治愈率高达95%", "治愈率高达95%", "C"),
    ("总有效率为 98.5 %", "有效率为 98.5 %", "C"),
    ("疗效优于其他医院", "优于其他医院", "D"),
    ("来看看患者现身说法", "现身说法", "E"),
    ("名老中医坐诊", "名老中医", "E"),
    ("干细胞抗衰老", "干细胞", "F"),
    ("本周免费赠送体检", "免费赠送", "G"),
    ("解放军医院专家", "解放军", "H"),
])
def test_each_category_is_found_with_term_rule_and_source(text: str, term: str, rule: str) -> None:
    findings = lint(text, Channel.MOMENTS)
    hit = next(f for f in findings if f.rule == rule)
    assert hit.term == term and hit.source == RULES[rule].source and "《" in hit.source
    assert hit.severity is RULES[rule].public_severity


def test_public_channels_block_and_private_answers_only_warn() -> None:
    text = "这是治疗高血压最好的办法，保证治愈"
    for channel in (Channel.COMMUNITY, Channel.MOMENTS, Channel.CAMPAIGN):
        assert {f.severity for f in lint(text, channel)} == {Severity.BLOCK}
    assert {f.severity for f in lint(text, Channel.PRIVATE)} == {Severity.WARN}


def test_ordinal_uses_are_not_superlatives_and_longest_term_wins() -> None:
    assert lint("第一次就诊请带好医保卡，第一时间联系我们，最近天气冷", Channel.MOMENTS) == []
    (finding,) = lint("保证治愈", Channel.MOMENTS)
    assert finding.term == "保证治愈"  # not also 治愈


def test_full_width_forms_match() -> None:
    (finding,) = lint("效果１００％满意", Channel.COMMUNITY)
    assert finding.rule == "A"


def test_prescription_drugs_are_blocked_on_public_channels_and_otc_needs_its_disclaimer() -> None:
    drugs = {"氨氯地平": True, "布洛芬": False}
    (rx,) = lint("高血压可以吃氨氯地平", Channel.MOMENTS, drugs)
    assert rx.rule == "RX" and rx.severity is Severity.BLOCK and "第十五条" in rx.source
    assert lint("高血压可以吃氨氯地平", Channel.PRIVATE, drugs) == []  # answering a patient is not an advert
    (otc,) = lint("发烧可以用布洛芬", Channel.COMMUNITY, drugs)
    assert otc.rule == "OTC" and otc.severity is Severity.WARN
    assert lint(f"发烧可以用布洛芬。{OTC_DISCLAIMER}", Channel.COMMUNITY, drugs) == []


def test_workflow_transitions_are_guarded() -> None:
    assert workflow.submit_for_review(Status.DRAFT, 0) is Status.IN_REVIEW
    with pytest.raises(RuleViolation):
        workflow.submit_for_review(Status.DRAFT, 1)
    with pytest.raises(IllegalTransition):
        workflow.approve(Status.DRAFT, 0)
    assert workflow.approve(Status.IN_REVIEW, 0) is Status.APPROVED
    with pytest.raises(InvalidInput):
        workflow.reject(Status.IN_REVIEW, " ")
    assert workflow.reject(Status.IN_REVIEW, "请补充禁忌") is Status.DRAFT
    assert workflow.edit(Status.APPROVED) is Status.DRAFT
    assert workflow.retire(Status.APPROVED) is Status.RETIRED
    for action in (lambda: workflow.edit(Status.RETIRED), lambda: workflow.retire(Status.RETIRED),
                   lambda: workflow.submit_for_review(Status.RETIRED, 0)):
        with pytest.raises(IllegalTransition):
            action()


def test_template_variables_are_checked_and_rendered_strictly() -> None:
    body = "{{患者称呼}}您好，我是{{科室}}的{{ 医生 }}。"
    assert workflow.check_variables(body) == ["患者称呼", "科室", "医生"]
    with pytest.raises(InvalidInput, match="未知的变量"):
        workflow.check_variables("{{患者姓名}}您好")
    assert render_text(body, {"患者称呼": "张先生", "科室": "心内科", "医生": "李医生"}) == "张先生您好，我是心内科的李医生。"
    with pytest.raises(InvalidInput, match="缺少变量：医生"):
        render_text(body, {"患者称呼": "张先生", "科室": "心内科"})
