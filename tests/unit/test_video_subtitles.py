"""SRT in, ASS sized for the output frame out."""

from __future__ import annotations

import pytest

from content.domain.subtitles import AssLayout, SubtitleError, parse_srt, to_ass, wrap

SRT = "\ufeff1\r\n00:00:00,500 --> 00:00:02,000\r\n<i>高血压</i>要按时服药\r\n\r\n2\r\n00:00:02,100 --> 00:00:03,000\r\n谢谢\r\n第二行"


def test_parse_srt_with_bom_crlf_and_tags() -> None:
    first, second = parse_srt(SRT, "a.srt")
    assert (first.start, first.end, first.text, first.line) == (0.5, 2.0, "高血压要按时服药", 2)
    assert second.text == "谢谢\n第二行"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("1\n00:00:01,000 -> 00:00:02,000\n文字\n", 2, "时间轴格式"),
        ("1\n00:00:01,000 --> 00:00:02,000\n文字\n\nx\n00:00:03,000 --> 00:00:04,000\n文字\n", 5, "字幕序号"),
        ("1\n00:00:03,000 --> 00:00:02,000\n文字\n", 2, "晚于"),
        ("1\n00:00:01,000 --> 00:00:02,000\n", 2, "没有文字"),
        ("1\n00:00:61,000 --> 00:01:02,000\n文字\n", 2, "小于 60"),
        ("\n\n", 1, "没有字幕"),
    ],
)
def test_malformed_srt_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(SubtitleError) as caught:
        parse_srt(text, "ep.srt")
    assert caught.value.line == line and words in str(caught.value)
    assert str(caught.value).startswith(f"字幕文件 ep.srt 第 {line} 行")


def test_ass_declares_the_output_resolution_and_scales_the_font() -> None:
    cues = parse_srt(SRT, "a.srt")
    vertical = to_ass(cues, AssLayout.for_frame(1080, 1920), "WenQuanYi Micro Hei", offset=1.0)
    assert "PlayResX: 1080" in vertical and "PlayResY: 1920" in vertical
    style = next(line for line in vertical.splitlines() if line.startswith("Style:")).split(",")
    assert style[1] == "WenQuanYi Micro Hei" and int(style[2]) >= 50  # not the 384×288 default size
    assert int(style[-2]) > 1920 * 0.1  # bottom margin clear of the platform's buttons
    assert "Dialogue: 0,0:00:01.50,0:00:03.00,Default,,0,0,0,,高血压要按时服药" in vertical
    assert "谢谢\\N第二行" in vertical
    small = AssLayout.for_frame(360, 640)
    assert small.font_size < AssLayout.for_frame(1080, 1920).font_size


def test_long_chinese_lines_are_broken_within_the_frame() -> None:
    layout = AssLayout.for_frame(1080, 1920)
    text = "高血压患者要按时服药，不要自行停药或者随意减量，这一点非常重要，请一定记住" * 2
    lines = wrap(text, layout.max_units_per_line)
    assert len(lines) > 1 and "".join(lines) == text
    for line in lines:
        # Each CJK character is about one font size wide: the line fits between the margins.
        assert len(line) * layout.font_size <= layout.width - 2 * layout.margin_h + layout.font_size
        assert line[0] not in "，。"


def test_ass_escapes_override_braces() -> None:
    (cue,) = parse_srt("1\n00:00:01,000 --> 00:00:02,000\n{\\b1}粗体\n", "a.srt")
    assert "{" not in to_ass([cue], AssLayout.for_frame(1920, 1080), "X").split("[Events]")[1]
