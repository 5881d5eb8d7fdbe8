"""Home nursing rules, pure: geometry, items and areas (NUR-1), windows, the
order and alarm state machines (hypothesis), refunds, geofence (R47), the
assessment (R46), the blacklist (R49) and the visit record's hash chain (R48)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical_core.adapters.geocoder_sandbox import GAZETTEER, SandboxGeocoder
from clinical_core.domain.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from clinical_core.domain.geo import (
    GeoPoint,
    check_polygon,
    distance_m,
    point_in_polygon,
)
from clinical_core.domain.nursing import (
    GENESIS,
    TRANSITIONS,
    ChainEntry,
    NursingAction,
    NursingStatus,
    cancellation_refund_fen,
    chain_hash,
    check_item,
    check_time_window,
    ensure_assessed,
    ensure_not_blacklisted,
    ensure_nurse_fits_item,
    ensure_within_geofence,
    first_broken,
    offered_at,
    transition,
)
from clinical_core.domain.nursing_alarm import (
    ALARM_TRANSITIONS,
    AlarmAction,
    AlarmStatus,
    alarm_transition,
    response_stats,
)

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shenzhen
SQUARE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


# --- geometry ---


def test_distance_matches_known_city_distances() -> None:
    # 福田 CBD to 南山 科技园: about 12 km on the map.
    d = distance_m(GeoPoint(22.541, 114.055), GeoPoint(22.523, 113.942))
    assert 11_000 < d < 13_000
    assert distance_m(GeoPoint(22.5, 114.0), GeoPoint(22.5, 114.0)) == 0
    # one thousandth of a degree of latitude is ~111 m
    assert 110 < distance_m(GeoPoint(22.5, 114.0), GeoPoint(22.501, 114.0)) < 112


def test_point_in_polygon_square_concave_and_edges() -> None:
    assert point_in_polygon(GeoPoint(0.5, 0.5), SQUARE)
    assert not point_in_polygon(GeoPoint(1.5, 0.5), SQUARE)
    assert point_in_polygon(GeoPoint(0.0, 0.5), SQUARE)  # on an edge
    assert point_in_polygon(GeoPoint(1.0, 1.0), SQUARE)  # a vertex
    # A "U" shape: the notch is outside.
    u = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]
    assert not point_in_polygon(GeoPoint(2.0, 1.5), u)
    assert point_in_polygon(GeoPoint(2.0, 0.5), u)
    assert point_in_polygon(GeoPoint(2.0, 2.5), u)


@given(st.floats(-0.99, 0.99), st.floats(-0.99, 0.99))
def test_point_in_polygon_agrees_with_a_box(lat: float, lon: float) -> None:
    box = [(-1.0, -0.5), (1.0, -0.5), (1.0, 0.5), (-1.0, 0.5)]
    assert point_in_polygon(GeoPoint(lat, lon), box) == (-0.5 <= lat <= 0.5)


def test_polygons_are_validated() -> None:
    assert check_polygon([[0, 0], [1, 0], [1, 1], [0, 0]]) == [(0, 0), (1, 0), (1, 1)]
    with pytest.raises(InvalidInput):
        check_polygon([[0, 0], [1, 1]])
    with pytest.raises(InvalidInput):
        check_polygon([[0, 0], [200, 1], [1, 1]])
    with pytest.raises(InvalidInput):
        GeoPoint(95.0, 0.0)


# --- items and areas (NUR-1) ---


def test_item_offered_by_district_or_polygon() -> None:
    inside = GeoPoint(0.5, 0.5)
    assert offered_at(["440305"], [], inside, "440305")
    assert offered_at([], [SQUARE], inside, "440304")
    assert not offered_at(["440305"], [SQUARE], GeoPoint(5, 5), "440303")


def test_item_settings_rules() -> None:
    check_item(15000, timedelta(minutes=45), "护师", ["440305"], [])
    with pytest.raises(RuleViolation) as exc:  # R44: the floor is 护师
        check_item(15000, timedelta(minutes=45), "护士", ["440305"], [])
    assert exc.value.rule == "R44"
    with pytest.raises(InvalidInput):
        check_item(0, timedelta(minutes=45), "护师", ["440305"], [])
    with pytest.raises(InvalidInput):
        check_item(100, timedelta(minutes=5), "护师", ["440305"], [])
    with pytest.raises(InvalidInput):  # offered nowhere
        check_item(100, timedelta(minutes=30), "护师", [], [])


def test_nurse_must_meet_the_items_title_and_skills() -> None:
    ensure_nurse_fits_item("nor_1", "主管护师", ["PICC维护"], "主管护师", ["PICC维护"])
    with pytest.raises(RuleViolation):
        ensure_nurse_fits_item("nor_1", "护师", ["PICC维护"], "主管护师", ["PICC维护"])
    with pytest.raises(RuleViolation):
        ensure_nurse_fits_item("nor_1", "主任护师", [], "主管护师", ["PICC维护"])


@pytest.mark.parametrize(("start_h", "end_h", "ok"), [
    (25, 28, True),  # tomorrow 09:00–12:00 Shenzhen
    (2.5, 5, False),  # only 30 minutes ahead
    (23, 26, False),  # starts 07:00 Shenzhen: before service hours
    (34, 37, False),  # ends 21:00 Shenzhen
    (25, 25.5, False),  # shorter than the 45-minute item
    (26, 25, False),  # ends before it starts
    (24 * 15 + 1, 24 * 15 + 3, False),  # more than 14 days ahead
])
def test_time_window(start_h: float, end_h: float, ok: bool) -> None:
    start, end = NOW + timedelta(hours=start_h - 2), NOW + timedelta(hours=end_h - 2)
    if ok:
        check_time_window(start, end, NOW, timedelta(minutes=45))
    else:
        with pytest.raises(InvalidInput):
            check_time_window(start, end, NOW, timedelta(minutes=45))


# --- the order's state machine ---

ALL_STATES = list(NursingStatus)
ALL_ACTIONS = list(NursingAction)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(ALL_ACTIONS), max_size=15))
def test_no_illegal_transition_is_reachable(actions: list[NursingAction]) -> None:
    """Whatever sequence of actions is tried, every accepted step is in the table,
    terminal states accept nothing, and a refused step leaves the state unchanged."""
    state = NursingStatus.CREATED
    visited = {state}
    for action in actions:
        sources, target = TRANSITIONS[action]
        try:
            new = transition("nor_x", state, action)
        except IllegalTransition as exc:
            assert state not in sources
            assert state.label in str(exc) and action.label in str(exc)
            continue
        assert state in sources and new is target
        assert state not in {NursingStatus.REVIEWED, NursingStatus.REJECTED, NursingStatus.CANCELLED}
        state = new
        visited.add(state)
    # service states are only reached through a nurse taking the order
    if NursingStatus.IN_SERVICE in visited:
        assert NursingStatus.ASSIGNED in visited


def test_no_service_without_payment_and_approval() -> None:
    for start in (NursingStatus.CREATED, NursingStatus.PAID):
        with pytest.raises(IllegalTransition):
            transition("nor_x", start, NursingAction.GRAB)
    with pytest.raises(IllegalTransition):
        transition("nor_x", NursingStatus.IN_SERVICE, NursingAction.CANCEL)  # the nurse is on site
    with pytest.raises(IllegalTransition):
        transition("nor_x", NursingStatus.ASSIGNED, NursingAction.REVIEW)


def test_cancellation_refunds() -> None:
    soon, later = NOW + timedelta(hours=1), NOW + timedelta(hours=5)
    assert cancellation_refund_fen(NursingStatus.CREATED, 0, NOW, later) == 0
    assert cancellation_refund_fen(NursingStatus.PAID, 15000, NOW, soon) == 15000
    assert cancellation_refund_fen(NursingStatus.OPEN, 15000, NOW, soon) == 15000
    assert cancellation_refund_fen(NursingStatus.ASSIGNED, 15000, NOW, later) == 15000
    assert cancellation_refund_fen(NursingStatus.ASSIGNED, 15000, NOW, soon) == 7500  # late: half


# --- rules ---


def test_assessment_rule_r46() -> None:
    ensure_assessed("nor_1", NOW - timedelta(days=3), True, NOW)
    for assessed_at, suitable in ((None, None), (NOW - timedelta(days=3), False), (NOW - timedelta(days=181), True)):
        with pytest.raises(RuleViolation) as exc:
            ensure_assessed("nor_1", assessed_at, suitable, NOW)
        assert exc.value.rule == "R46"


def test_blacklist_rule_r49() -> None:
    ensure_not_blacklisted(False)
    with pytest.raises(RuleViolation) as exc:
        ensure_not_blacklisted(True)
    assert exc.value.rule == "R49"


def test_geofence_r47() -> None:
    ensure_within_geofence("nor_1", "签到", 120.0, 300.0, override=False)
    with pytest.raises(RuleViolation) as exc:
        ensure_within_geofence("nor_1", "签到", 1200.0, 300.0, override=False)
    assert exc.value.rule == "R47" and "1200" in str(exc.value)
    ensure_within_geofence("nor_1", "签到", 1200.0, 300.0, override=True)


def _chain(payloads: list[dict[str, object]]) -> list[ChainEntry]:
    entries, prev = [], GENESIS
    for i, p in enumerate(payloads, start=1):
        h = chain_hash(prev, p)
        entries.append(ChainEntry(i, p, prev, h))
        prev = h
    return entries


def test_hash_chain_shows_edits_removals_and_reordering() -> None:
    entries = _chain([{"kind": "check_in", "lat": 22.5}, {"kind": "note", "n": "x"}, {"kind": "check_out"}])
    assert first_broken(entries) is None
    edited = list(entries)
    edited[1] = ChainEntry(2, {"kind": "note", "n": "y"}, entries[1].prev_hash, entries[1].hash)
    assert first_broken(edited) == 2
    assert first_broken([entries[0], entries[2]]) == 3  # a removed entry
    # An edit that recomputes its own hash still breaks the next link.
    forged = ChainEntry(2, {"kind": "note", "n": "y"}, entries[1].prev_hash,
                        chain_hash(entries[1].prev_hash, {"kind": "note", "n": "y"}))
    assert first_broken([entries[0], forged, entries[2]]) == 3


# --- alarms ---


@given(st.lists(st.sampled_from(list(AlarmAction)), max_size=8))
def test_alarm_cannot_close_without_acknowledgement(actions: list[AlarmAction]) -> None:
    state, acknowledged = AlarmStatus.RAISED, False
    for action in actions:
        try:
            state = alarm_transition("sos_x", state, action)
        except IllegalTransition:
            assert state not in ALARM_TRANSITIONS[action][0]
            continue
        acknowledged |= action is AlarmAction.ACKNOWLEDGE
        if state is AlarmStatus.CLOSED:
            assert acknowledged


def test_response_stats() -> None:
    s = response_stats(5, 1, [30, 60, 90, 600])
    assert (s.alarms, s.acknowledged, s.escalated) == (5, 4, 1)
    assert s.median_seconds == 75 and s.max_seconds == 600 and s.p90_seconds == 600 and s.mean_seconds == 195
    assert response_stats(0, 0, []).median_seconds is None


# --- the gazetteer sandbox ---


def test_sandbox_geocoder_is_deterministic_and_within_the_street() -> None:
    g = SandboxGeocoder()
    a = g.geocode("深圳市南山区粤海街道科技园路1号")
    assert (a.district_code, a.district, a.street, a.precision) == ("440305", "南山区", "粤海街道", "street")
    assert a == g.geocode("深圳市 南山区 粤海街道 科技园路1号")  # whitespace does not matter
    assert distance_m(a.point, GeoPoint(22.5230, 113.9420)) <= 251
    b = g.geocode("深圳市南山区粤海街道科技园路2号")
    assert a.point != b.point
    assert g.geocode("蛇口街道工业八路").district_code == "440305"  # the street implies the district
    assert g.geocode("深圳市坪山区某路").precision == "district"
    with pytest.raises(NotFound):
        g.geocode("北京市海淀区中关村")
    assert len(GAZETTEER) == 9 and {d.code for d in g.districts()} >= {"440303", "440304", "440305", "440311"}
