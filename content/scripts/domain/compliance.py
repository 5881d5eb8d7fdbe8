"""Compliance linter for scripts: China's advertising law and medical-advertising rules (合规检查).

Terms and rules from ``../shared/research/wechat.md`` §4 (广告法 2015 第九、十五、十六条; 医疗广告管理办法
2007 第七条; SAMR 广告绝对化用语执法指南 2023; 医疗广告认定指南 2025). Severity depends on the channel:
社群、朋友圈 and 活动 copy is advertising, so the blocking categories block; a private 1:1 answer to a
patient's question is not an advertisement (医疗广告认定指南 2025), so every finding there only warns.
Matching is on NFKC-normalised, lower-cased text, so full-width and half-width forms both match.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass


class Channel(enum.StrEnum):
    PRIVATE = "私聊"
    COMMUNITY = "社群"
    MOMENTS = "朋友圈"
    CAMPAIGN = "活动"

    @property
    def public(self) -> bool:
        return self is not Channel.PRIVATE


class Severity(enum.StrEnum):
    BLOCK = "block"
    WARN = "warn"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    source: str
    public_severity: Severity


@dataclass(frozen=True, slots=True)
class Finding:
    term: str
    rule: str  # rule code, e.g. "A"
    rule_name: str
    source: str
    severity: Severity
    position: int

    @property
    def message(self) -> str:
        return f"「{self.term}」：{self.rule_name}（{self.source}）"


RULES = {
    "A": Rule("A", "绝对化用语", "《广告法》第九条第（三）项；《广告绝对化用语执法指南》(2023)", Severity.BLOCK),
    "B": Rule("B", "保证疗效或安全性", "《广告法》第十六条第（一）项；《医疗广告管理办法》第七条第（二）项", Severity.BLOCK),
    "C": Rule("C", "宣传治愈率、有效率", "《广告法》第十六条第（二）项；《医疗广告管理办法》第七条第（三）项", Severity.BLOCK),
    "D": Rule("D", "与其他医疗机构或药品比较、贬低他人", "《广告法》第十六条第（三）项；《医疗广告管理办法》第七条第（五）项", Severity.BLOCK),
    "E": Rule("E", "利用患者、专家或机构名义作证明、推荐", "《广告法》第十六条第（四）项；《医疗广告管理办法》第七条第（六）项", Severity.BLOCK),
    "F": Rule("F", "广告中涉及诊疗技术、疾病或药品名称，需医疗广告审查证明", "《医疗广告管理办法》第七条第（一）项", Severity.WARN),
    "G": Rule("G", "以免费、优惠诱导就医用药", "《医疗广告管理办法》第七条；《医疗美容广告执法指南》(2021)", Severity.WARN),
    "H": Rule("H", "其他禁止内容（军队、国家机关名义，迷信等）", "《广告法》第九条第（二）项；《医疗广告管理办法》第七条第（四）（七）项", Severity.BLOCK),
    "RX": Rule("RX", "面向公众推广处方药", "《广告法》第十五条", Severity.BLOCK),
    "OTC": Rule("OTC", "提及非处方药缺少法定提示语", "《广告法》第十六条（药品广告须标明“请按药品说明书或者在药师指导下购买和使用”）", Severity.WARN),
}

_TERMS: dict[str, tuple[str, ...]] = {
    "A": ("最佳", "最好", "最优", "最优秀", "最大", "最高", "最高级", "最低", "最先进", "最新技术", "最权威", "最专业",
          "最具", "最受欢迎", "全国第一", "全网第一", "排名第一", "销量第一", "第一", "no.1", "top1", "唯一",
          "独一无二", "首个", "首家", "全国首家", "首选", "首创", "独家", "独创", "国家级", "世界级", "国际级", "顶级",
          "顶尖", "尖端", "极品", "极致", "终极", "至尊", "王牌", "冠军", "世界领先", "领先", "填补国内空白", "绝对",
          "绝无仅有", "史无前例", "前无古人", "空前绝后", "万能", "100%", "百分百", "国家免检", "最"),
    "B": ("保证治愈", "包治", "包好", "根治", "断根", "彻底治愈", "治愈", "永不复发", "不复发", "不反弹", "药到病除",
          "一次见效", "立竿见影", "立即见效", "疗效显著", "疗效最佳", "特效", "神效", "无效退款", "不治愈不收钱",
          "安全无副作用", "无毒副作用", "无副作用", "零风险", "纯天然无害", "终身有效", "永久有效"),
    "C": ("治愈率", "有效率", "成功率", "康复率", "好转率", "显效率"),
    "D": ("优于其他医院", "同行无法比", "别家治不好", "他院久治不愈", "其他医院无效", "比其他医院"),
    "E": ("患者感谢信", "现身说法", "术前术后对比", "治疗前后对比", "专家推荐", "名医推荐", "主任推荐", "教授推荐",
          "明星推荐", "推荐官", "体验官", "代言", "协会推荐", "医学会推荐", "指定医院", "获奖", "著名专家", "名老中医",
          "权威专家", "祖传秘方", "宫廷秘方", "名医传授", "秘方"),
    "F": ("干细胞", "纳米", "疗法"),
    "G": ("免费治疗", "免费赠送", "限时特惠", "红包返现", "转发送药", "返现"),
    "H": ("解放军", "武警", "军队医院", "国家领导人", "保佑", "转运"),
}
# Context exceptions (执法指南 2023): ordinal or procedural uses are not superlatives.
_ALLOW = ("第一次", "第一步", "第一时间", "第一天", "第一周", "第一个月", "第一阶段", "第一针", "第一剂", "最近", "最后",
          "最终", "最初", "最好先", "最好在", "最好不要", "最多", "最少", "最晚", "最早")
_RATE = re.compile(r"(治愈|有效|显效|成功|康复|好转)率\s*(达|高达|超过|为)?\s*\d+(\.\d+)?\s*%")
OTC_DISCLAIMER = "请按药品说明书或者在药师指导下购买和使用"


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _mask_allowed(text: str) -> str:
    for phrase in _ALLOW:
        text = text.replace(phrase, "＿" * len(phrase))
    return text


def lint(text: str, channel: Channel, drugs: Mapping[str, bool] | None = None) -> list[Finding]:
    """Findings in order of position; a longer term hides the shorter terms inside it.

    ``drugs`` maps drug names (generic and trade) to whether they are prescription-only.
    """
    norm = normalise(text)
    work = _mask_allowed(norm)
    taken = [False] * len(work)
    findings: list[Finding] = []

    def add(term: str, code: str, start: int, end: int, severity: Severity | None = None) -> None:
        if any(taken[start:end]):
            return
        for i in range(start, end):
            taken[i] = True
        rule = RULES[code]
        sev = severity or (rule.public_severity if channel.public else Severity.WARN)
        findings.append(Finding(term, code, rule.name, rule.source, sev, start))

    for m in _RATE.finditer(work):
        add(m.group(0), "C", m.start(), m.end())
    candidates = sorted(((t, code) for code, terms in _TERMS.items() for t in terms), key=lambda x: -len(x[0]))
    for term, code in candidates:
        for m in re.finditer(re.escape(normalise(term)), work):
            add(text[m.start():m.end()] if len(text) == len(norm) else term, code, m.start(), m.end())
    for name, rx in sorted((drugs or {}).items(), key=lambda x: -len(x[0])):
        key = normalise(name)
        if len(key) < 2:
            continue
        pos = work.find(key)
        if pos < 0:
            continue
        if rx and channel.public:
            add(name, "RX", pos, pos + len(key), Severity.BLOCK)
        elif not rx and channel.public and normalise(OTC_DISCLAIMER) not in norm:
            add(name, "OTC", pos, pos + len(key), Severity.WARN)
    return sorted(findings, key=lambda f: f.position)


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.BLOCK]
