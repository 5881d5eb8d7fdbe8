"""Video recipes: parsed from YAML with every error naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from content.adapters.recipe_file import load_recipes
from content.domain.recipe import OutputFormat, RecipeError
from content.domain.timecode import format_ass, format_clock, parse_seconds


def write(tmp_path: Path, text: str, name: str = "ep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        load_recipes(write(tmp_path, text))
    return caught.value


MINIMAL = "clips:\n  - raw/a.mp4\noutput: out/a.mp4\n"


def test_minimal_recipe_has_the_defaults(tmp_path: Path) -> None:
    (recipe,) = load_recipes(write(tmp_path, MINIMAL))
    assert recipe.clips[0].source == "raw/a.mp4" and recipe.clips[0].start == 0 and recipe.clips[0].end is None
    assert recipe.formats == (OutputFormat("vertical", 1080, 1920),)
    assert recipe.loudness == -16.0 and recipe.fps == 30 and recipe.font.endswith("wqy-microhei.ttc")
    assert recipe.name == "a"


def test_full_recipe(tmp_path: Path) -> None:
    text = """
title: 高血压的三个误区
intro: brand/intro.mp4
clips:
  - source: raw/a.mp4
    start: "00:00:01.5"
    end: 4
  - {source: raw/b.mov, start: "1:02,25"}
outro: {source: brand/outro.mp4, end: 2}
subtitles: subs/ep.srt
logo: {image: brand/logo.png, position: bottom-left, width: 0.2}
cover: {at: 2.5, title: 三个误区}
title_card: {text: 名医讲堂, duration: 1.5}
output:
  path: out/ep.mp4
  formats: [vertical, {name: horizontal, size: 1280x720}]
  loudness: -14
  preset: veryfast
"""
    (r,) = load_recipes(write(tmp_path, text))
    assert [(c.start, c.end) for c in r.clips] == [(1.5, 4.0), (62.25, None)]
    assert r.outro is not None and r.outro.end == 2.0
    assert r.formats[1] == OutputFormat("horizontal", 1280, 720)
    assert r.output_for(r.formats[0]) == "out/ep.9x16.mp4" and r.output_for(r.formats[1]) == "out/ep.16x9.mp4"
    assert r.logo is not None and r.logo.position == "bottom-left" and r.logo.width == 0.2
    assert r.cover is not None and r.cover.at == 2.5 and r.title_card is not None and r.title_card.duration == 1.5
    assert r.loudness == -14 and r.preset == "veryfast"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("clips:\n  - source: a.mp4\n    start: 5\n    end: 3\noutput: o.mp4\n", 4, "结束点应晚于开始点"),
        ("clips:\n  - source: a.mp4\n    start: 1:75\noutput: o.mp4\n", 3, "分、秒应小于 60"),
        ("clips:\n  - a.mp4\noutput:\n  path: o.mp4\n  formats: [square]\n", 5, "vertical"),
        ("clips:\n  - a.mp4\noutput:\n  path: o.mp4\n  loudness: -3\n", 5, "-36 到 -6"),
        ("clips:\n  - a.mp4\noutput: o.avi\n", 3, ".mp4"),
        ("clips: []\noutput: o.mp4\n", 1, "至少一个"),
        ("clips:\n  - a.mp4\noutput: o.mp4\nlogo:\n  image: l.png\n  position: middle\n", 6, "台标位置"),
        ("clips:\n  - a.mp4\noutput: o.mp4\nsubtitle: s.srt\n", 4, "未知的项「subtitle」"),
        ("clips:\n  - a.mp4\n  - b.mp4\noutput:\n  path: o.mp4\n  formats: copy\n", 6, "copy"),
        ("clips:\n  - a.mp4\noutput: o.mp4\ncover: {title: x}\n", 4, "二选一"),
        ("clips:\n  - [a.mp4\noutput: o.mp4\n", 3, "YAML 格式错误"),
        ("clips:\n  - a.mp4\noutput:\n  path: o.mp4\n  formats: [{name: vertical, size: 541x960}]\n", 5, "偶数"),
    ],
)
def test_errors_name_the_file_and_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    error = error_of(tmp_path, text)
    assert error.file == "ep.yaml" and error.line == line, str(error)
    assert str(error).startswith(f"配方 ep.yaml 第 {line} 行：") and words in str(error)


def test_series_episodes_inherit_and_override(tmp_path: Path) -> None:
    text = """
logo: brand/logo.png
output: {path: out/x.mp4, preset: fast}
episodes:
  - clips: [raw/1.mp4]
    output: {path: out/ep1.mp4}
  - clips: [raw/2.mp4]
    output: {path: out/ep2.mp4, fps: 25}
    logo: null
"""
    one, two = load_recipes(write(tmp_path, text))
    assert one.output == "out/ep1.mp4" and one.preset == "fast" and one.logo is not None
    assert two.fps == 25 and two.preset == "fast" and two.logo is None


def test_series_error_points_into_the_episode(tmp_path: Path) -> None:
    text = "output: out/x.mp4\nepisodes:\n  - clips: [a.mp4]\n    output: out/1.mp4\n  - clips: [b.mp4]\n    output:\n      path: out/2.mp4\n      fps: 200\n"
    error = error_of(tmp_path, text)
    assert error.line == 8 and "帧率" in str(error)


def test_series_outputs_must_differ(tmp_path: Path) -> None:
    error = error_of(tmp_path, "output: out/x.mp4\nepisodes:\n  - clips: [a.mp4]\n  - clips: [b.mp4]\n")
    assert "重名" in str(error)


@pytest.mark.parametrize(("text", "seconds"), [(12, 12.0), ("12.5", 12.5), ("01:02.5", 62.5),
                                                ("00:01:02,250", 62.25), ("1:00:00", 3600.0)])
def test_timecodes(text: object, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["abc", "-1", "1:2:3:4", True, "00:61:00"])
def test_bad_timecodes(text: object) -> None:
    with pytest.raises(ValueError):
        parse_seconds(text)


def test_clock_formats() -> None:
    assert format_clock(62.25) == "00:01:02.250" and format_clock(3.5, decimal=",") == "00:00:03,500"
    assert format_ass(3723.456) == "1:02:03.46"
