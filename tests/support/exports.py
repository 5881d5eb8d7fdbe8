"""Export files as the platforms produce them: 抖音创作者服务中心 and 视频号助手 (.xlsx / .csv in
GB18030), 企业微信 客户群统计."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

DOUYIN_VIDEO = ["作品名称", "发布时间", "体裁", "审核状态", "播放量", "完播率", "点赞量", "分享量", "评论量", "收藏量",
                "主页访问量", "粉丝增量"]
CHANNELS_VIDEO = ["视频描述", "发表时间", "播放量", "喜欢", "评论", "转发", "新增关注", "完播率"]
DOUYIN_LIVE = ["直播标题", "开播时间", "直播时长", "累计观看人数", "累计观看人次", "最高在线人数", "平均在线人数",
               "点赞次数", "评论次数", "分享次数", "新增粉丝数"]
WECOM_GROUPS = ["群名称", "群主", "日期", "群成员总数", "新增成员数", "退群成员数", "发言成员数", "群聊消息数"]


def xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    if caption:
        ws.append([caption])
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def csv_gbk(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", encoding="gb18030", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path
