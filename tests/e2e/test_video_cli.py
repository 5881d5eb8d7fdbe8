"""``opsctl video`` as a user drives it: render, batch, probe, cover; JSON output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsctl.cli.main import app
from tests.support.media import ffmpeg_children, make_clips

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("clips"))


def opsctl(*args: str, expect: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(app, list(args), prog_name="opsctl")
    assert result.exit_code == expect, f"{args} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout, result.stderr


def recipe(folder: Path, name: str, clip: Path, extra: str = "") -> Path:
    path = folder / name
    path.write_text(f"clips: [{{source: {clip}, end: 1}}]\n{extra}"
                    f"output: {{path: out/{path.stem}.mp4, formats: [{{name: vertical, size: 180x320}}], preset: ultrafast}}\n",
                    encoding="utf-8")
    return path


def test_render_probe_and_cover(tmp_path: Path, clips: dict[str, Path]) -> None:
    out, _ = opsctl("video", "render", str(recipe(tmp_path, "a.yaml", clips["stereo.mp4"])), "--json")
    (row,) = json.loads(out)
    assert row["width"] == 180 and row["height"] == 320 and Path(row["path"]).is_file()
    assert row["loudness_before"] is not None

    out, _ = opsctl("video", "probe", row["path"], "--frames", "--json")
    facts = json.loads(out)
    assert facts["frames"] == 30 and facts["width"] == 180 and facts["channels"] == 2 and facts["sample_rate"] == 48000

    out, _ = opsctl("video", "probe", str(clips["rotated.mp4"]), "--json")
    facts = json.loads(out)
    assert facts["stored_size"] == "160x90" and (facts["width"], facts["height"]) == (90, 160) and facts["rotation"] == 270

    cover = tmp_path / "c.jpg"
    opsctl("video", "cover", row["path"], "--at", "0.5", "--title", "高血压的三个误区", "--size", "180x320", "-o", str(cover))
    assert cover.stat().st_size > 1000


def test_batch_renders_the_good_and_reports_the_bad(tmp_path: Path, clips: dict[str, Path]) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    recipe(folder, "1-good.yaml", clips["ramp.mp4"])
    recipe(folder, "2-bad.yaml", clips["corrupt.mp4"])
    (folder / "3-broken.yaml").write_text("clips: [\n", encoding="utf-8")
    out, _ = opsctl("video", "batch", str(folder), "--json", expect=3)
    result = json.loads(out)
    assert [Path(r["path"]).name for r in result["rendered"]] == ["1-good.mp4"]
    errors = {f["recipe"]: f["error"] for f in result["failed"]}
    assert set(errors) == {"2-bad.yaml", "3-broken.yaml"}
    assert errors["2-bad.yaml"].startswith("配方 2-bad.yaml 第 1 行") and "YAML" in errors["3-broken.yaml"]
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["1-good.mp4"]
    assert ffmpeg_children() == []


def test_errors_are_one_chinese_line_with_exit_code(tmp_path: Path, clips: dict[str, Path]) -> None:
    path = recipe(tmp_path, "x.yaml", clips["ramp.mp4"]).read_text(encoding="utf-8").replace("end: 1", "end: 30")
    (tmp_path / "x.yaml").write_text(path, encoding="utf-8")
    _, err = opsctl("video", "render", str(tmp_path / "x.yaml"), expect=3)
    assert err.strip().splitlines() == [f"错误：配方 x.yaml 第 1 行：第 1 个片段的结束点 30 秒超出素材 {clips['ramp.mp4']} 的时长 3.00 秒"]
    _, err = opsctl("video", "probe", str(clips["corrupt.mp4"]), expect=3)
    assert "无法解析为音视频" in err and len(err.strip().splitlines()) == 1
