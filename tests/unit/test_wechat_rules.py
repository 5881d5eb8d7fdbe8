"""WeChat's limits as pure rules: menus (counts, UTF-8 bytes, types, match rules), scenes,
dedupe keys, template fields, mass-send list sizes, funnel arithmetic."""

from __future__ import annotations

import pytest

from campaigns.domain import limits
from campaigns.domain.channels import InboundKey, card_scene, channel_scene, check_code, scene_from_event_key
from campaigns.domain.funnel import stages_from_counts
from campaigns.domain.menu import diff, normalise, problems
from clinical_core.domain.errors import InvalidInput, RuleViolation

# The example menu of WeChat's documentation (api_createcustommenu), as copied from it.
DOC_MENU = {"button": [
    {"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"},
    {"name": "菜单", "sub_button": [
        {"type": "view", "name": "搜索", "url": "http://www.soso.com/"},
        {"type": "miniprogram", "name": "wxa", "url": "http://mp.weixin.qq.com", "appid": "wx286b93c14bbf93aa",
         "pagepath": "pages/lunar/index"},
        {"type": "click", "name": "赞一下我们", "key": "V1001_GOOD"}]}]}


def codes(menu: dict) -> list[int]:
    return [p.errcode for p in problems(menu)]


def test_documentation_menu_is_valid() -> None:
    assert problems(DOC_MENU) == []


@pytest.mark.parametrize(("menu", "code"), [
    ({"button": []}, 40016),
    ({"button": [{"type": "click", "name": f"b{i}", "key": "k"} for i in range(4)]}, 40016),
    ({"button": [{"name": "多", "sub_button": [{"type": "click", "name": f"s{i}", "key": "k"} for i in range(6)]}]}, 40023),
    ({"button": [{"type": "click", "name": "六个汉字名称", "key": "k"}]}, 40018),  # 18 bytes > 16
    ({"button": [{"name": "a", "sub_button": [{"type": "click", "name": "字" * 21, "key": "k"}]}]}, 40025),  # 63 > 60
    ({"button": [{"type": "click", "name": "a", "key": "k" * 129}]}, 40019),
    ({"button": [{"type": "view", "name": "a", "url": "http://x/" + "a" * 1016}]}, 40020),
    ({"button": [{"name": "a", "sub_button": [{"type": "view", "name": "b", "url": "u" * 1025}]}]}, 40027),
    ({"button": [{"type": "teleport", "name": "a"}]}, 40017),
    ({"button": [{"type": "miniprogram", "name": "a", "url": "http://x"}]}, 40017),
    ({"button": [{"type": "click", "name": "a", "key": "k"}], "matchrule": {"sex": "1"}}, 65320),
    ({"button": [{"type": "click", "name": "a", "key": "k"}], "matchrule": {}}, 65304),
])
def test_each_menu_limit_is_reported_with_wechats_code(menu: dict, code: int) -> None:
    assert code in codes(menu)


def test_limits_count_utf8_bytes_not_characters() -> None:
    five_chinese = {"button": [{"type": "click", "name": "预约挂号啊", "key": "k"}]}  # 15 bytes
    assert problems(five_chinese) == []
    sixteen_ascii = {"button": [{"type": "click", "name": "a" * 16, "key": "k"}]}
    assert problems(sixteen_ascii) == []
    assert codes({"button": [{"type": "click", "name": "a" * 17, "key": "k"}]}) == [40018]


def test_problems_name_the_button_in_chinese() -> None:
    found = problems({"button": [{"name": "服务", "sub_button": [{"type": "click", "name": "挂号", "key": ""}]}]})
    assert [str(p) for p in found] == ["「服务」/「挂号」：缺少 key（40026）"]


def test_tag_conditional_menu_is_valid_and_diff_names_changes() -> None:
    assert problems({**DOC_MENU, "matchrule": {"tag_id": "2"}}) == []
    old = normalise(DOC_MENU)
    new = normalise({"button": [DOC_MENU["button"][1], {"type": "click", "name": "新", "key": "n"}]})
    assert diff(old, new) == ["+ 新增一级菜单「新」", "- 删除一级菜单「今日歌曲」"]
    assert diff(old, old) == []


def test_scenes_and_event_keys() -> None:
    assert channel_scene("dept-cardio", 1) == "ch:dept-cardio:1"
    assert card_scene("b202611", 7) == "pc:b202611:00007"
    assert scene_from_event_key("subscribe", "qrscene_ch:x:1") == "ch:x:1"
    assert scene_from_event_key("subscribe", "") is None
    assert scene_from_event_key("subscribe", "last_trade_no_x") is None
    assert scene_from_event_key("SCAN", "ch:x:1") == "ch:x:1"
    with pytest.raises(InvalidInput):
        check_code("Bad Code!")
    with pytest.raises(InvalidInput):
        card_scene("x" * 60, 1)


def test_dedupe_key_is_msgid_for_messages_and_sender_time_for_events() -> None:
    assert InboundKey.of({"MsgType": "text", "MsgId": "123", "FromUserName": "o1", "CreateTime": "1"}).value == "msg:123"
    assert InboundKey.of({"MsgType": "event", "FromUserName": "o1", "CreateTime": "99"}).value == "evt:o1:99"
    follow = {"MsgType": "event", "FromUserName": "o1", "CreateTime": "99", "Event": "subscribe"}
    job = {**follow, "Event": "TEMPLATESENDJOBFINISH", "MsgID": "7"}
    assert InboundKey.of(follow).value == "evt:o1:99:subscribe"
    assert InboundKey.of(job).value == "evt:o1:99:TEMPLATESENDJOBFINISH:7"
    with pytest.raises(InvalidInput):
        InboundKey.of({"MsgType": "event", "FromUserName": "o1"})


def test_template_fields_and_mass_list_sizes() -> None:
    limits.check_template_data({"thing1": {"value": "字" * 20}})
    with pytest.raises(RuleViolation):
        limits.check_template_data({"thing1": {"value": "字" * 21}})
    limits.check_mass_openids(["a", "b"])
    with pytest.raises(InvalidInput):
        limits.check_mass_openids(["a", "a"])
    with pytest.raises(InvalidInput):
        limits.check_mass_openids([f"o{i}" for i in range(10_001)])
    with pytest.raises(InvalidInput):
        limits.check_qr_request(permanent=False, expire_seconds=2_592_001, scene="x")


def test_funnel_conversion_and_drop_off() -> None:
    stages = stages_from_counts({"scanned": 10, "followed": 8, "registered": 2})
    assert [s.count for s in stages] == [10, 8, 2, 0, 0, 0, 0, 0]
    assert stages[1].conversion_from_previous == 0.8 and stages[1].drop_off == 2
    assert stages[2].conversion_overall == 0.2 and stages[2].conversion_from_previous == 0.25
    assert not stages[3].note and stages[3].conversion_from_previous == 0.0
    assert "尚未上线" in stages[5].note and "尚未上线" in stages[6].note
    assert stages_from_counts({})[1].conversion_overall is None


def test_funnel_branches_after_the_first_consultation_convert_from_it() -> None:
    """首张处方, 视频问诊, 护理 and 复诊 each convert from 首次问诊, not from the stage listed before."""
    stages = {s.stage: s for s in stages_from_counts({"scanned": 20, "consulted": 10, "prescribed": 4, "repeat": 3},
                                                     {"repeat": 12.5})}
    assert stages["prescribed"].base == "consulted" and stages["prescribed"].conversion_from_previous == 0.4
    assert stages["repeat"].base == "consulted" and stages["repeat"].conversion_from_previous == 0.3
    assert stages["repeat"].drop_off == 7 and stages["repeat"].conversion_overall == 0.15
    assert stages["repeat"].median_days == 12.5 and stages["consulted"].base == "registered"
