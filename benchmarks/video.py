"""Video speed: the recipe pipeline against one hand-written ffmpeg command and idiomatic moviepy 2.2.

Prints one JSON document to stdout (progress goes to stderr)::

    .venv/bin/python benchmarks/video.py [--seconds 60] [--repeats 1] [--preset ultrafast]

A synthetic 1080p30 source (``testsrc2`` + a tone, ``--seconds`` long) is made
first. Then, for each recipe type, three variants produce the same output,
each in its own process, timed wall-clock, with the peak resident memory of
the whole process tree (Python plus its ffmpeg children) sampled every 20 ms:

* ``pipeline``: ``content.services.video.render_recipe`` on a YAML recipe
  (probing, planning and the one filter graph; loudness off, since moviepy
  has none; ``trim_copy`` is the stream-copy cut the pipeline uses for a pure
  cut, ``trim`` the re-encoding one).
* ``ffmpeg``: the single ffmpeg command a person would write by hand (the anchor).
* ``moviepy``: the idiomatic moviepy 2.2 script (VideoFileClip, subclipped,
  resized + ColorClip + CompositeVideoClip, SubtitlesClip with TextClip in
  WenQuanYi Micro Hei, ImageClip logo, concatenate_videoclips).

Every variant encodes with libx264 at the same ``--preset`` and CRF 23 and AAC
audio. Ratios are variant time / ffmpeg time (goal for the pipeline: ≤ 1.1).
With ``--repeats N`` the variants take turns run by run (anchor, pipeline,
moviepy, anchor, ...), so a change of load hits them alike; each row also has
the CPU seconds (user + system) of the whole process tree and their ratio,
which a busy machine moves far less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from content.adapters.ffmpeg import ffmpeg_exe  # noqa: E402
from content.domain.recipe import DEFAULT_FONT  # noqa: E402
from content.domain.subtitles import AssLayout, parse_srt, to_ass  # noqa: E402

TYPES = ("trim_copy", "trim", "vertical", "subtitles", "logo_intro")
TRIM = [10.0, 40.0]  # for a 60 s source; scaled to --seconds


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, children included) and peak RSS (MiB) of the process
    tree of ``command`` (run in ``cwd``: moviepy writes its temporary audio file into the working
    directory)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd, env=env)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and every process it waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {process.stderr.read().decode()[-1500:]}")  # type: ignore[union-attr]
    return seconds, cpu, peak / 2**20


def make_inputs(folder: Path, seconds: int) -> dict[str, Path]:
    ff = ffmpeg_exe()
    paths = {"source": folder / "source.mp4", "intro": folder / "intro.mp4", "logo": folder / "logo.png",
             "srt": folder / "subs.srt", "ass": folder / "subs.ass"}
    log(f"making a {seconds} s 1080p30 source ...")
    subprocess.run([ff, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={seconds}",
                    "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "23", "-c:a", "aac", "-ac", "2", str(paths["source"])], check=True)
    subprocess.run([ff, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=1080x1920:r=30:d=3", "-f", "lavfi",
                    "-i", "sine=f=660:d=3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2",
                    str(paths["intro"])], check=True)
    subprocess.run([ff, "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x1a5fb4:s=400x160", "-frames:v", "1",
                    str(paths["logo"])], check=True)
    cues = []
    for i in range(max(1, int(TRIM[1] - TRIM[0]) // 3)):  # at least one cue, even for a smoke-test source
        start = i * 3
        cues.append(f"{i + 1}\n00:{start // 60:02d}:{start % 60:02d},200 --> 00:{start // 60:02d}:{start % 60 + 2:02d},800\n第{i + 1}条：高血压患者要按时服药，不要自行停药\n")
    paths["srt"].write_text("\n".join(cues), encoding="utf-8")
    paths["ass"].write_text(to_ass(parse_srt(paths["srt"].read_text(encoding="utf-8"), "subs.srt"),
                                   AssLayout.for_frame(1080, 1920), "WenQuanYi Micro Hei"), encoding="utf-8")
    return paths


def ffmpeg_command(kind: str, p: dict[str, Path], out: Path, preset: str) -> list[str]:
    ff = ffmpeg_exe()
    enc = ["-c:v", "libx264", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    cut = ["-ss", str(TRIM[0]), "-t", str(TRIM[1] - TRIM[0]), "-i", str(p["source"])]
    fit = "scale=1080:1920:force_original_aspect_ratio=decrease,pad=1080:1920:(ow-iw)/2:(oh-ih)/2"
    if kind == "trim_copy":
        return [ff, "-v", "error", "-y", *cut, "-c", "copy", str(out)]
    if kind == "trim":
        return [ff, "-v", "error", "-y", *cut, *enc, str(out)]
    if kind == "vertical":
        return [ff, "-v", "error", "-y", *cut, "-vf", fit, *enc, str(out)]
    if kind == "subtitles":
        return [ff, "-v", "error", "-y", *cut, "-vf", f"{fit},subtitles={p['ass']}", *enc, str(out)]
    graph = (f"[1:v]{fit},setsar=1[main];[2:v]scale=172:-1[lg];[main][lg]overlay=W-w-32:32[body];"
             "[0:v]setsar=1[iv];[iv][0:a][body][1:a]concat=n=2:v=1:a=1[v][a]")
    return [ff, "-v", "error", "-y", "-i", str(p["intro"]), *cut, "-i", str(p["logo"]), "-filter_complex", graph,
            "-map", "[v]", "-map", "[a]", *enc, str(out)]


def pipeline_command(kind: str, p: dict[str, Path], out: Path, preset: str, work: Path) -> list[str]:
    fmt = {"trim_copy": "copy", "trim": "horizontal"}.get(kind, "vertical")
    lines = [f"clips: [{{source: {p['source']}, start: {TRIM[0]}, end: {TRIM[1]}}}]",
             f"output: {{path: {out}, formats: {fmt}, preset: {preset}, crf: 23, loudness: null}}"]
    if kind == "subtitles":
        lines.append(f"subtitles: {p['srt']}")
    if kind == "logo_intro":
        lines += [f"intro: {p['intro']}", f"logo: {{image: {p['logo']}, position: top-right}}"]
    recipe = work / f"{kind}.yaml"
    recipe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = f"from pathlib import Path; from content.services.video import render_recipe; render_recipe(Path({str(recipe)!r}))"
    return [sys.executable, "-c", code]


MOVIEPY = {
    "trim": """
        clip = VideoFileClip(SRC).subclipped(T0, T1)
        clip.write_videofile(OUT, codec="libx264", audio_codec="aac", preset=PRESET, ffmpeg_params=["-crf", "23"], logger=None)
        clip.close()
    """,
    "vertical": """
        clip = VideoFileClip(SRC).subclipped(T0, T1)
        main = clip.resized(width=1080)
        frame = CompositeVideoClip([ColorClip((1080, 1920), color=(0, 0, 0), duration=main.duration),
                                    main.with_position("center")], size=(1080, 1920)).with_audio(clip.audio)
        frame.write_videofile(OUT, codec="libx264", audio_codec="aac", preset=PRESET, ffmpeg_params=["-crf", "23"], logger=None)
        clip.close()
    """,
    "subtitles": """
        clip = VideoFileClip(SRC).subclipped(T0, T1)
        main = clip.resized(width=1080)
        def make_text(text):
            return TextClip(font=FONT, text=text, font_size=59, color="white", stroke_color="black", stroke_width=3,
                            method="caption", size=(950, 160), text_align="center")
        subs = SubtitlesClip(SRT, make_textclip=make_text, encoding="utf-8").with_position(("center", 1450))
        frame = CompositeVideoClip([ColorClip((1080, 1920), color=(0, 0, 0), duration=main.duration),
                                    main.with_position("center"), subs], size=(1080, 1920)).with_duration(main.duration)
        frame = frame.with_audio(clip.audio)
        frame.write_videofile(OUT, codec="libx264", audio_codec="aac", preset=PRESET, ffmpeg_params=["-crf", "23"], logger=None)
        clip.close()
    """,
    "logo_intro": """
        clip = VideoFileClip(SRC).subclipped(T0, T1)
        intro = VideoFileClip(INTRO)
        main = clip.resized(width=1080)
        logo = ImageClip(LOGO).resized(width=172).with_duration(main.duration).with_position((1080 - 172 - 32, 32))
        body = CompositeVideoClip([ColorClip((1080, 1920), color=(0, 0, 0), duration=main.duration),
                                   main.with_position("center"), logo], size=(1080, 1920)).with_audio(clip.audio)
        final = concatenate_videoclips([intro, body])
        final.write_videofile(OUT, codec="libx264", audio_codec="aac", preset=PRESET, ffmpeg_params=["-crf", "23"], logger=None)
        clip.close(); intro.close()
    """,
}


def moviepy_command(kind: str, p: dict[str, Path], out: Path, preset: str) -> list[str]:
    body = textwrap.dedent(MOVIEPY["trim" if kind == "trim_copy" else kind])
    head = (
        "from moviepy import *\nfrom moviepy.video.tools.subtitles import SubtitlesClip\n"
        f"SRC, INTRO, LOGO, SRT, OUT = {str(p['source'])!r}, {str(p['intro'])!r}, {str(p['logo'])!r}, "
        f"{str(p['srt'])!r}, {str(out)!r}\nT0, T1, PRESET, FONT = {TRIM[0]}, {TRIM[1]}, {preset!r}, {DEFAULT_FONT!r}\n"
    )
    return [sys.executable, "-c", head + body]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--no-moviepy", action="store_true")
    args = parser.parse_args()
    TRIM[:] = [round(args.seconds / 6, 2), round(args.seconds * 2 / 3, 2)]
    env_note = {"python": platform.python_version(), "cpus": os.cpu_count(), "ffmpeg": Path(ffmpeg_exe()).name}
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="video-bench-") as tmp:
        work = Path(tmp)
        p = make_inputs(work, args.seconds)
        for kind in args.types.split(","):
            variants = {"ffmpeg": lambda o, k=kind: ffmpeg_command(k, p, o, args.preset),
                        "pipeline": lambda o, k=kind: pipeline_command(k, p, o, args.preset, work)}
            if not args.no_moviepy and kind != "trim_copy":
                variants["moviepy"] = lambda o, k=kind: moviepy_command(k, p, o, args.preset)
            runs: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": [], "peak": []} for name in variants}
            for r in range(args.repeats):
                for name, make in variants.items():  # the variants take turns, run by run
                    out = work / f"{kind}-{name}-{r}.mp4"
                    log(f"{kind}: {name} (run {r + 1}) ...")
                    seconds, cpu, peak = measure(make(out), work)
                    runs[name]["wall"].append(seconds)
                    runs[name]["cpu"].append(cpu)
                    runs[name]["peak"].append(peak)
                    out.unlink(missing_ok=True)
            row: dict[str, object] = {}
            for name, got in runs.items():
                row[name] = {"median_s": round(statistics.median(got["wall"]), 2),
                             "runs_s": [round(t, 2) for t in got["wall"]],
                             "cpu_median_s": round(statistics.median(got["cpu"]), 2),
                             "peak_mib": round(max(got["peak"]), 1)}
            anchor = row["ffmpeg"]["median_s"]  # type: ignore[index]
            for name in variants:
                if name != "ffmpeg":
                    row[f"{name}_ratio"] = round(row[name]["median_s"] / anchor, 2)  # type: ignore[index]
                    row[f"{name}_cpu_ratio"] = round(row[name]["cpu_median_s"] / row["ffmpeg"]["cpu_median_s"], 2)  # type: ignore[index]
            if "moviepy" in row:
                row["moviepy_over_pipeline"] = round(row["moviepy"]["median_s"] / row["pipeline"]["median_s"], 2)  # type: ignore[index]
                row["memory_moviepy_over_pipeline"] = round(row["moviepy"]["peak_mib"] / row["pipeline"]["peak_mib"], 2)  # type: ignore[index]
            results[kind] = row
            log(json.dumps({kind: row}, ensure_ascii=False))
    print(json.dumps({"source": f"{args.seconds} s 1920x1080 30 fps testsrc2 + tone", "trim": list(TRIM),
                      "preset": args.preset, "crf": 23, "repeats": args.repeats, "environment": env_note,
                      "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
