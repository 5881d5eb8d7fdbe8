"""benchmarks/video.py runs and reports each recipe type as a ratio to the hand-written ffmpeg command (smoke: 3 s source)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_benchmark_reports_ratios_to_the_ffmpeg_anchor() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "video.py"), "--seconds", "3", "--no-moviepy",
                           "--types", "trim_copy,vertical"], capture_output=True, text=True, timeout=240, check=True)
    report = json.loads(done.stdout)
    assert set(report["results"]) == {"trim_copy", "vertical"}
    for row in report["results"].values():
        assert row["ffmpeg"]["median_s"] > 0 and row["pipeline_ratio"] > 0
        assert row["ffmpeg"]["cpu_median_s"] > 0 and row["pipeline_cpu_ratio"] > 0  # the tree's CPU, ffmpeg included


def test_every_recipe_type_of_the_issue_has_an_anchor_and_a_moviepy_variant() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("video_bench", ROOT / "benchmarks" / "video.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert {"trim", "vertical", "subtitles", "logo_intro"} <= set(module.TYPES)
    assert {"trim", "vertical", "subtitles", "logo_intro"} <= set(module.MOVIEPY)
