"""The metrics over what exists on main: consultations, prescriptions, money, followers, channels,
reviews, content and talk scripts. Each ``register`` is the whole definition of one metric.

Money comes from the payment and refund *records* (succeeded ones, at the instant they settled),
never from order prices. Departments are the consultation's department pool, else the doctor's
department; a prescription belongs to its prescriber's department.
"""

from __future__ import annotations

from sqlalchemy import (
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from campaigns.persistence.models import ChannelRow, QrCodeRow
from clinical_core.persistence.consultation import (
    ConsultationRow,
    ConsultMessageRow,
    ConsultPaymentRow,
    ConsultRefundRow,
)
from clinical_core.persistence.models import (
    DepartmentRow,
    FollowerRow,
    PatientRow,
    StaffRow,
)
from clinical_core.persistence.prescription import (
    PrescriptionReviewRow,
    PrescriptionRow,
    RxPaymentRow,
    RxRefundRow,
)
from content.persistence.models import LectureRow
from content.scripts.models import ScriptRow, ScriptUsageRow
from reports.metrics.registry import Agg, Metric, Unit, register
from reports.metrics.sql import hours_between, minutes_between

CONSULT, RX, MONEY, USERS, CHANNELS, REVIEWS, CONTENT = "问诊服务", "处方与审方", "收入", "公众号用户", "渠道转化", "患者评价", "内容运营"
DIRECT = "直接关注"  # followers who came without a QR scene (search, article, name card)


# ---- shared fragments -------------------------------------------------------------------------

def _consultations(*extra: object) -> Select:
    """Consultations with their department code, doctor name and service kind; ``extra`` columns added."""
    doctor, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(dept.code.label("department"),
                   doctor.name.label("doctor"), ConsultationRow.kind.label("service_type"), *extra)
            .select_from(ConsultationRow)
            .outerjoin(doctor, doctor.id == ConsultationRow.doctor_id)
            .outerjoin(dept, dept.id == func.coalesce(ConsultationRow.department_id, doctor.department_id)))


def _prescriptions(*extra: object) -> Select:
    doctor, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(dept.code.label("department"), doctor.name.label("doctor"), *extra)
            .select_from(PrescriptionRow)
            .join(doctor, doctor.id == PrescriptionRow.doctor_id)
            .outerjoin(dept, dept.id == doctor.department_id))


def _settled_consultation() -> object:
    """A consultation that counts: settled, and paid or free by designation (定点保障)."""
    return and_(ConsultationRow.paid_at.is_not(None),
                or_(ConsultationRow.price_fen > 0, ConsultationRow.kind == "designated"))


def _money(sign: int, payments: bool = True, refunds: bool = True) -> Select:
    """Succeeded payment (+) and refund (−) records of consultations and prescriptions."""
    parts: list[Select] = []
    cdoc, cdept, rdoc, rdept = aliased(StaffRow), aliased(DepartmentRow), aliased(StaffRow), aliased(DepartmentRow)

    def consult(record, at, direction: int) -> Select:  # type: ignore[no-untyped-def]
        return (select(at.label("at"), (record.amount_fen * direction * sign).label("value"),
                       cdept.code.label("department"), cdoc.name.label("doctor"),
                       ConsultationRow.kind.label("service_type"))
                .select_from(record).join(ConsultationRow, ConsultationRow.id == record.consultation_id)
                .outerjoin(cdoc, cdoc.id == ConsultationRow.doctor_id)
                .outerjoin(cdept, cdept.id == func.coalesce(ConsultationRow.department_id, cdoc.department_id))
                .where(record.status == "succeeded"))

    def rx(record, at, direction: int) -> Select:  # type: ignore[no-untyped-def]
        return (select(at.label("at"), (record.amount_fen * direction * sign).label("value"),
                       rdept.code.label("department"), rdoc.name.label("doctor"),
                       literal("prescription").label("service_type"))
                .select_from(record).join(PrescriptionRow, PrescriptionRow.id == record.prescription_id)
                .join(rdoc, rdoc.id == PrescriptionRow.doctor_id)
                .outerjoin(rdept, rdept.id == rdoc.department_id)
                .where(record.status == "succeeded"))

    if payments:
        parts += [consult(ConsultPaymentRow, ConsultPaymentRow.paid_at, 1), rx(RxPaymentRow, RxPaymentRow.paid_at, 1)]
    if refunds:
        parts += [consult(ConsultRefundRow, ConsultRefundRow.settled_at, -1), rx(RxRefundRow, RxRefundRow.settled_at, -1)]
    return select(union_all(*parts).subquery("money"))


def _follower_channel() -> object:
    return func.coalesce(ChannelRow.code, FollowerRow.scene, literal(DIRECT))


def _followers(at: object, *extra: object) -> Select:
    return (select(at.label("at"), _follower_channel().label("channel"), *extra)
            .select_from(FollowerRow)
            .outerjoin(QrCodeRow, QrCodeRow.scene == FollowerRow.scene)
            .outerjoin(ChannelRow, ChannelRow.id == QrCodeRow.channel_id))


# ---- 问诊服务 ---------------------------------------------------------------------------------

register(Metric(
    "consultations", "问诊量", Unit.COUNT, CONSULT, Agg.COUNT,
    lambda: _consultations(ConsultationRow.paid_at.label("at"), literal(1).label("value")).where(_settled_consultation()),
    ("department", "doctor", "service_type"), better="up", headline=True,
    action="在公众号菜单和科室候诊区加推图文/电话咨询入口，并为高需求科室增排在线医生"))


def _first_doctor_message() -> Select:
    return (select(ConsultMessageRow.consultation_id.label("cid"), func.min(ConsultMessageRow.created_at).label("first"))
            .where(ConsultMessageRow.sender == "doctor").group_by(ConsultMessageRow.consultation_id))


def _first_response() -> Select:
    first = _first_doctor_message().subquery("fm")
    return (_consultations(ConsultationRow.paid_at.label("at"),
                           minutes_between(first.c.first, ConsultationRow.paid_at).label("value"))
            .join(first, first.c.cid == ConsultationRow.id)
            .where(ConsultationRow.paid_at.is_not(None)))


register(Metric(
    "first_response_minutes", "首次响应时间中位数", Unit.MINUTES, CONSULT, Agg.MEDIAN, _first_response,
    ("department", "doctor", "service_type"), better="down", headline=True,
    action="按时段排出在线接诊值班表，并开启新问诊的企业微信/短信提醒，让医生在 30 分钟内首次回复"))

register(Metric(
    "unanswered_consultations", "超时未回复问诊", Unit.COUNT, CONSULT, Agg.COUNT,
    lambda: _consultations(ConsultationRow.closed_at.label("at"), literal(1).label("value"))
    .where(ConsultationRow.close_reason == "unanswered"),
    ("department", "doctor", "service_type"), better="down",
    action="逐单复盘超时未回复的问诊，给相关科室设置接诊超时预警并安排备班医生"))

register(Metric(
    "unanswered_rate", "超时未回复率", Unit.RATIO, CONSULT, Agg.RATIO,
    lambda: _consultations(ConsultationRow.paid_at.label("at"),
                           cast(case((ConsultationRow.close_reason == "unanswered", 1), else_=0), Integer).label("value"),
                           literal(1).label("den")).where(_settled_consultation()),
    ("department", "doctor", "service_type"), better="down",
    action="给超时率高的科室增加号源上限控制和备班医生，超时前 30 分钟自动提醒"))

register(Metric(
    "refunded_consultations", "退款问诊", Unit.COUNT, CONSULT, Agg.COUNT_DISTINCT,
    lambda: _consultations(ConsultRefundRow.settled_at.label("at"), ConsultRefundRow.consultation_id.label("value"))
    .join(ConsultRefundRow, ConsultRefundRow.consultation_id == ConsultationRow.id)
    .where(ConsultRefundRow.status == "succeeded"),
    ("department", "doctor", "service_type"), better="down",
    action="按退款原因逐单回访患者，超时退款多的科室调整接诊排班"))

# ---- 处方与审方 -------------------------------------------------------------------------------

register(Metric(
    "prescriptions_issued", "开具处方", Unit.COUNT, RX, Agg.COUNT,
    lambda: _prescriptions(PrescriptionRow.issued_at.label("at"), literal(1).label("value")),
    ("department", "doctor"), better="up", unit_label="张", headline=True,
    action="向慢病复诊患者推送在线续方入口，并在问诊结束页提示可线上开方送药"))

register(Metric(
    "review_pass_rate", "审方通过率", Unit.RATIO, RX, Agg.RATIO,
    lambda: (_prescriptions(PrescriptionReviewRow.reviewed_at.label("at"),
                            cast(case((PrescriptionReviewRow.decision == "approve", 1), else_=0), Integer).label("value"),
                            literal(1).label("den"))
             .join(PrescriptionReviewRow, PrescriptionReviewRow.prescription_id == PrescriptionRow.id)),
    ("department", "doctor"), better="up",
    action="汇总驳回理由，由药学部对驳回较多的医生开展合理用药培训，并把常见问题加入开方前规则提示"))


def _review_minutes() -> Select:
    return (_prescriptions(PrescriptionReviewRow.reviewed_at.label("at"),
                           minutes_between(PrescriptionReviewRow.reviewed_at, PrescriptionRow.issued_at).label("value"))
            .join(PrescriptionReviewRow, PrescriptionReviewRow.prescription_id == PrescriptionRow.id)
            .where(PrescriptionReviewRow.version == 1))


register(Metric(
    "review_minutes", "审方用时中位数", Unit.MINUTES, RX, Agg.MEDIAN, _review_minutes, ("department", "doctor"),
    better="down", action="在处方高峰时段增加在岗审方药师，并开启待审处方超过 15 分钟的提醒"))

register(Metric(
    "payment_to_delivery_hours", "付款到送达时长中位数", Unit.HOURS, RX, Agg.MEDIAN,
    lambda: (_prescriptions(PrescriptionRow.delivered_at.label("at"),
                            hours_between(PrescriptionRow.delivered_at, PrescriptionRow.paid_at).label("value"))
             .where(PrescriptionRow.delivered_at.is_not(None), PrescriptionRow.paid_at.is_not(None))),
    ("department", "doctor"), better="down",
    action="与配送药店核对备药和揽收时间，午后付款的订单安排当日第二次揽收"))

# ---- 收入 -------------------------------------------------------------------------------------

register(Metric(
    "income_net_fen", "净收入（收款－退款）", Unit.FEN, MONEY, Agg.SUM, lambda: _money(1),
    ("department", "doctor", "service_type"), better="up", headline=True,
    action="把净收入下降的服务类型列入下月运营重点，检查价格、号源和退款原因"))

register(Metric(
    "payments_fen", "收款金额", Unit.FEN, MONEY, Agg.SUM, lambda: _money(1, refunds=False),
    ("department", "doctor", "service_type"), better="up",
    action="对收款下降的服务在公众号推送服务介绍和医生出诊信息"))

register(Metric(
    "refunds_fen", "退款金额", Unit.FEN, MONEY, Agg.SUM, lambda: _money(-1, payments=False),
    ("department", "doctor", "service_type"), better="down",
    action="按退款原因分类整改：超时未回复的加强排班，药品退款的核查库存与配送"))

# ---- 公众号用户 -------------------------------------------------------------------------------

register(Metric(
    "followers_gained", "新增关注", Unit.COUNT, USERS, Agg.COUNT,
    lambda: _followers(FollowerRow.subscribed_at, literal(1).label("value")), ("channel",),
    better="up", unit_label="人", headline=True,
    action="在门诊、药房窗口和包裹卡上增加带参二维码，并在关注回复中说明在线问诊和续方的入口"))

register(Metric(
    "followers_lost", "取消关注", Unit.COUNT, USERS, Agg.COUNT,
    lambda: _followers(FollowerRow.unsubscribed_at, literal(1).label("value"))
    .where(FollowerRow.unsubscribed_at.is_not(None)), ("channel",),
    better="down", unit_label="人",
    action="减少群发频次，推送改为按科室和病种分组发送，并检查取关前收到的最后一条推送"))

# ---- 渠道转化 ---------------------------------------------------------------------------------


def _channel_conversion() -> Select:
    """Followers who came through a QR scene (first touch); converted = their patient has a counted
    consultation settled at or after the follow."""
    last = (select(ConsultationRow.patient_id.label("pid"), func.max(ConsultationRow.paid_at).label("last"))
            .where(_settled_consultation()).group_by(ConsultationRow.patient_id).subquery("lc"))
    by_openid = aliased(PatientRow)
    patient = func.coalesce(FollowerRow.patient_id, by_openid.id)
    converted = cast(case((last.c.last >= FollowerRow.subscribed_at, 1), else_=0), Integer)
    return (_followers(FollowerRow.subscribed_at, converted.label("value"), literal(1).label("den"))
            .outerjoin(by_openid, by_openid.openid == FollowerRow.openid)
            .outerjoin(last, last.c.pid == patient)
            .where(FollowerRow.scene.is_not(None)))


register(Metric(
    "channel_conversion", "扫码关注→首次问诊转化率", Unit.RATIO, CHANNELS, Agg.RATIO, _channel_conversion, ("channel",),
    better="up", min_base=20,
    action="更换该渠道的落地页和关注欢迎语，直达该科室的问诊入口，并对比两周后的转化"))

# ---- 患者评价 ---------------------------------------------------------------------------------

register(Metric(
    "reviews", "评价数", Unit.COUNT, REVIEWS, Agg.COUNT,
    lambda: _consultations(ConsultationRow.reviewed_at.label("at"), literal(1).label("value"))
    .where(ConsultationRow.reviewed_at.is_not(None)),
    ("department", "doctor", "service_type"), better="up", unit_label="条",
    action="问诊结束 24 小时后推送一次评价邀请"))

register(Metric(
    "review_rating", "平均评分", Unit.SCORE, REVIEWS, Agg.MEAN,
    lambda: _consultations(ConsultationRow.reviewed_at.label("at"), ConsultationRow.review_rating.label("value"))
    .where(ConsultationRow.reviewed_at.is_not(None)),
    ("department", "doctor", "service_type"), better="up", headline=True, min_base=10,
    action="由科室主任逐条回看低分评价并回访患者，把共性问题列入科室质控会"))

register(Metric(
    "low_rating_share", "差评占比（1–2 星）", Unit.RATIO, REVIEWS, Agg.RATIO,
    lambda: _consultations(ConsultationRow.reviewed_at.label("at"),
                           cast(case((ConsultationRow.review_rating <= 2, 1), else_=0), Integer).label("value"),
                           literal(1).label("den")).where(ConsultationRow.reviewed_at.is_not(None)),
    ("department", "doctor", "service_type"), better="down", min_base=10,
    action="48 小时内回访每一条差评患者，并在科室例会通报差评原因"))

# ---- 内容运营 ---------------------------------------------------------------------------------


def _lectures() -> Select:
    author, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(LectureRow.published_at.label("at"), literal(1).label("value"),
                   dept.code.label("department"), author.name.label("doctor"))
            .select_from(LectureRow).join(author, author.id == LectureRow.author_staff_id)
            .outerjoin(dept, dept.id == author.department_id).where(LectureRow.published_at.is_not(None)))


register(Metric(
    "lectures_published", "名医讲堂发布", Unit.COUNT, CONTENT, Agg.COUNT, _lectures, ("department", "doctor"),
    better="up", unit_label="篇",
    action="为试点科室排出每月至少 2 期名医讲堂的选题计划，由运营协助录音和发布"))

def _script_uses() -> Select:
    """Copies and sends of talk scripts; a script's specialty names the department it serves."""
    return (select(ScriptUsageRow.at.label("at"), literal(1).label("value"), ScriptRow.channel.label("channel"),
                   DepartmentRow.code.label("department"))
            .select_from(ScriptUsageRow).join(ScriptRow, ScriptRow.id == ScriptUsageRow.script_id)
            .outerjoin(DepartmentRow, DepartmentRow.name == ScriptRow.specialty))


register(Metric(
    "script_uses", "话术使用次数", Unit.COUNT, CONTENT, Agg.COUNT, _script_uses, ("channel", "department"), better="up",
    action="把高频问题整理成已审核话术并在客服工作台置顶，培训客服检索使用"))
