"""Short-video use cases (短视频): render recipes, batch a folder, probe a file, make a cover.

Files only, no database: the recipe is the record. Each output is written to
a hidden temporary file in the output folder and renamed when complete, so a
failure (bad input, ffmpeg error, timeout, Ctrl-C) never leaves a half-written
video where the platforms' upload folder expects finished ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from clinical_core.domain.errors import InvalidInput
from content.adapters import ffmpeg
from content.adapters.recipe_file import load_recipes
from content.domain.filtergraph import (
    RenderJob,
    Segment,
    build_copy_cut,
    build_cover,
    build_loudness_pass,
    build_render,
    parse_loudness,
)
from content.domain.media import MediaInfo, ProgressReport
from content.domain.recipe import Clip, OutputFormat, Recipe, RecipeError
from content.domain.subtitles import AssLayout, parse_srt, to_ass, wrap

#: (label, seconds of this output written, seconds it will last, index of the output, number of outputs)
OnProgress = Callable[[str, float, float, int, int], None]


@dataclass(frozen=True)
class RenderedVideo:
    recipe: str
    name: str
    format: str
    path: Path
    duration: float
    width: int
    height: int
    size_bytes: int
    loudness_before: float | None
    cover: Path | None


@dataclass(frozen=True)
class BatchFailure:
    recipe: str
    error: str


@dataclass(frozen=True)
class BatchResult:
    rendered: tuple[RenderedVideo, ...]
    failed: tuple[BatchFailure, ...]


@dataclass(frozen=True)
class _Job:
    recipe: Recipe
    base: Path
    fmt: OutputFormat
    segments: tuple[Segment, ...]
    output: Path


@contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``; renamed onto it on success, removed on any failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: ffmpeg creates the file, so it gets the usual permissions (umask), not 0600.
    temp = target.parent / f".{target.stem}.{uuid.uuid4().hex[:10]}.part{target.suffix}"
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _resolve(base: Path, relative: str) -> Path:
    path = Path(relative).expanduser()
    return path if path.is_absolute() else base / path


def _probe_clip(recipe: Recipe, base: Path, clip: Clip, what: str) -> tuple[Path, MediaInfo]:
    path = _resolve(base, clip.source)
    if not path.is_file():
        raise RecipeError(recipe.file, clip.line, f"{what}素材文件不存在：{clip.source}")
    try:
        info = ffmpeg.probe(path)
    except InvalidInput as error:
        raise RecipeError(recipe.file, clip.line, f"{what}素材 {clip.source} 无法使用：{error.message}") from None
    if info.video is None or info.is_image:
        raise RecipeError(recipe.file, clip.line, f"{what}素材 {clip.source} 中没有视频画面")
    if not info.duration:
        raise RecipeError(recipe.file, clip.line, f"{what}素材 {clip.source} 读不出时长，可能已损坏")
    return path, info


def _segment(recipe: Recipe, base: Path, clip: Clip, role: str, what: str) -> Segment:
    path, info = _probe_clip(recipe, base, clip, what)
    assert info.duration is not None and info.video is not None
    frame = 1 / (info.video.fps or 30)
    if clip.start >= info.duration:
        raise RecipeError(recipe.file, clip.line, f"{what}的开始点 {clip.start:g} 秒超出素材 {clip.source} 的时长 "
                                                  f"{info.duration:.2f} 秒")
    if clip.end is not None and clip.end > info.duration + frame / 2:
        raise RecipeError(recipe.file, clip.line, f"{what}的结束点 {clip.end:g} 秒超出素材 {clip.source} 的时长 "
                                                  f"{info.duration:.2f} 秒")
    end = min(clip.end, info.duration) if clip.end is not None else info.duration
    return Segment(str(path), clip.start, round(end - clip.start, 6), info, role)


def _font(recipe: Recipe, base: Path) -> Path:
    font = _resolve(base, recipe.font)
    if not font.is_file():
        raise RecipeError(recipe.file, recipe.font_line,
                          f"字体文件不存在：{recipe.font}（请安装 fonts-wqy-microhei，或在配方中用 font 指定字体文件）")
    return font


def plan(recipe_path: Path) -> list[_Job]:
    """Load, validate and probe everything a recipe file needs before anything is rendered."""
    recipes = load_recipes(recipe_path)
    base = recipe_path.resolve().parent
    jobs: list[_Job] = []
    for recipe in recipes:
        segments: list[Segment] = []
        if recipe.intro:
            segments.append(_segment(recipe, base, recipe.intro, "intro", "片头"))
        segments += [_segment(recipe, base, c, "clip", f"第 {i + 1} 个片段") for i, c in enumerate(recipe.clips)]
        if recipe.outro:
            segments.append(_segment(recipe, base, recipe.outro, "outro", "片尾"))
        if recipe.subtitles or recipe.title_card or (recipe.cover and recipe.cover.title):
            _font(recipe, base)
        if recipe.subtitles:
            srt = _resolve(base, recipe.subtitles)
            if not srt.is_file():
                raise RecipeError(recipe.file, recipe.subtitles_line, f"字幕文件不存在：{recipe.subtitles}")
            _read_srt(srt)
        if recipe.logo:
            logo = _resolve(base, recipe.logo.image)
            if not logo.is_file():
                raise RecipeError(recipe.file, recipe.logo.line, f"台标图片不存在：{recipe.logo.image}")
            try:
                info = ffmpeg.probe(logo)
            except InvalidInput as error:
                raise RecipeError(recipe.file, recipe.logo.line, f"台标图片无法使用：{error.message}") from None
            if info.video is None:
                raise RecipeError(recipe.file, recipe.logo.line, f"台标 {recipe.logo.image} 不是图片")
        if recipe.cover and recipe.cover.image and not _resolve(base, recipe.cover.image).is_file():
            raise RecipeError(recipe.file, recipe.cover.line, f"封面图片不存在：{recipe.cover.image}")
        for fmt in recipe.formats:
            jobs.append(_Job(recipe, base, fmt, tuple(segments), _resolve(base, recipe.output_for(fmt))))
    return jobs


def _read_srt(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"字幕文件 {path.name} 不是 UTF-8 编码（请用 UTF-8 保存）", field="subtitles") from None
    return parse_srt(text, path.name)


def _render_job(job: _Job, work: Path, report: Callable[[ProgressReport], None], *,
                timeout: float | None, cancel: threading.Event | None) -> RenderedVideo:
    recipe, fmt = job.recipe, job.fmt
    container = "mov" if job.output.suffix.lower() == ".mov" else "mp4"
    if fmt.is_copy:
        seg = job.segments[0]
        clip = recipe.clips[0]
        with _partial(job.output) as temp:
            ffmpeg.run(build_copy_cut(seg.path, seg.start, seg.duration if clip.end is not None else None, str(temp),
                                      container), on_progress=report, timeout=timeout, cancel=cancel,
                       what=f"剪切 {recipe.name}")
        info = ffmpeg.probe(job.output)
        v = info.video
        return RenderedVideo(recipe.file, recipe.name, fmt.name, job.output, info.duration or 0.0,
                             v.display_size[0] if v else 0, v.display_size[1] if v else 0,
                             job.output.stat().st_size, None, None)
    segments = list(job.segments)
    font = _font(recipe, job.base) if (recipe.subtitles or recipe.title_card or (recipe.cover and recipe.cover.title)) else None
    if recipe.title_card:
        from content.adapters.title_card import render_title_card

        card = render_title_card(recipe.title_card.text, work / f"card-{fmt.suffix}.mp4", width=fmt.width,
                                 height=fmt.height, fps=recipe.fps, duration=recipe.title_card.duration,
                                 font=str(font), preset="ultrafast" if recipe.preset == "ultrafast" else "veryfast")
        info = ffmpeg.probe(card)
        at = 1 if recipe.intro else 0
        segments.insert(at, Segment(str(card), 0.0, recipe.title_card.duration, info, "title_card"))
    ass_path = None
    if recipe.subtitles:
        cues = _read_srt(_resolve(job.base, recipe.subtitles))
        ass_path = work / f"subtitles-{fmt.suffix}.ass"
        ass_path.write_text(to_ass(cues, AssLayout.for_frame(fmt.width, fmt.height), recipe.font_name),
                            encoding="utf-8")
    render = RenderJob(
        tuple(segments), fmt, "", fps=recipe.fps, pad_color=recipe.pad_color, crf=recipe.crf, preset=recipe.preset,
        loudness=recipe.loudness, subtitles_path=str(ass_path) if ass_path else None,
        fonts_dir=str(font.parent) if font else None, logo=recipe.logo,
        logo_path=str(_resolve(job.base, recipe.logo.image)) if recipe.logo else None, container=container,
    )
    measured = None
    if recipe.loudness is not None:
        first = ffmpeg.run(build_loudness_pass(render), timeout=timeout, cancel=cancel, what=f"测量 {recipe.name} 的响度")
        measured = parse_loudness(first.stderr)
        render = replace(render, measured=measured)
    with _partial(job.output) as temp:
        ffmpeg.run(build_render(replace(render, output=str(temp))), on_progress=report, timeout=timeout,
                   cancel=cancel, what=f"渲染 {recipe.name}")
    cover_path = None
    if recipe.cover:
        cover_path = job.output.with_suffix(".cover.jpg")
        source = _resolve(job.base, recipe.cover.image) if recipe.cover.image else job.output
        make_cover(source, cover_path, fmt, at=recipe.cover.at, title=recipe.cover.title or None,
                   font=font, timeout=timeout)
    return RenderedVideo(recipe.file, recipe.name, fmt.name, job.output, render.duration, fmt.width, fmt.height,
                         job.output.stat().st_size, measured.integrated if measured else None, cover_path)


def render_recipe(recipe_path: Path, *, on_progress: OnProgress | None = None, timeout: float | None = None,
                  cancel: threading.Event | None = None) -> list[RenderedVideo]:
    """Render every video and format of one recipe file (all inputs are checked first)."""
    return _render_jobs(plan(recipe_path), on_progress, timeout, cancel)


def _render_jobs(jobs: list[_Job], on_progress: OnProgress | None, timeout: float | None,
                 cancel: threading.Event | None) -> list[RenderedVideo]:
    out: list[RenderedVideo] = []
    work = Path(tempfile.mkdtemp(prefix="opsctl-video-"))
    try:
        for index, job in enumerate(jobs):
            total = sum(s.duration for s in job.segments) + (job.recipe.title_card.duration if job.recipe.title_card else 0)
            label = f"{job.recipe.name}（{job.fmt.name}）"

            def report(p: ProgressReport, label: str = label, total: float = total, index: int = index) -> None:
                if on_progress is not None:
                    on_progress(label, min(p.out_time, total), total, index, len(jobs))

            out.append(_render_job(job, work, report, timeout=timeout, cancel=cancel))
            report(ProgressReport(total, None, True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def render_batch(folder: Path, *, on_progress: OnProgress | None = None, timeout: float | None = None,
                 cancel: threading.Event | None = None) -> BatchResult:
    """Every ``*.yaml``/``*.yml`` in ``folder``: a bad recipe is reported and the others still render."""
    if not folder.is_dir():
        raise InvalidInput(f"目录不存在：{folder}")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise InvalidInput(f"目录 {folder} 中没有配方文件（*.yaml）")
    jobs: list[_Job] = []
    failed: list[BatchFailure] = []
    for file in files:
        try:
            jobs += plan(file)
        except InvalidInput as error:
            failed.append(BatchFailure(file.name, str(error)))
    rendered: list[RenderedVideo] = []
    # One job at a time: ffmpeg's x264 already uses every core.
    for index, job in enumerate(jobs):
        def forward(label: str, done: float, total: float, _i: int, _n: int, index: int = index) -> None:
            if on_progress is not None:
                on_progress(label, done, total, index, len(jobs))

        try:
            rendered += _render_jobs([job], forward, timeout, cancel)
        except ffmpeg.FfmpegCancelled:
            raise
        except InvalidInput as error:
            failed.append(BatchFailure(job.recipe.file, str(error)))
        except ffmpeg.FfmpegFailed as error:
            failed.append(BatchFailure(job.recipe.file, str(error)))
    return BatchResult(tuple(rendered), tuple(failed))


def probe_file(path: Path, *, count_frames: bool = False) -> MediaInfo:
    return ffmpeg.probe(path, count_frames=count_frames)


def make_cover(source: Path, output: Path, fmt: OutputFormat, *, at: float | None, title: str | None,
               font: Path | None, timeout: float | None = 60) -> Path:
    """封面: a frame of ``source`` at ``at`` seconds (or the image ``source``), with ``title`` drawn on it."""
    if not source.is_file():
        raise InvalidInput(f"文件不存在：{source}")
    info = ffmpeg.probe(source)
    if info.video is None:
        raise InvalidInput(f"{source.name} 中没有画面，无法做封面")
    if at is not None and info.duration and not info.is_image and at >= info.duration:
        raise InvalidInput(f"封面时刻 {at:g} 秒超出 {source.name} 的时长 {info.duration:.2f} 秒")
    if title and (font is None or not font.is_file()):
        raise InvalidInput(f"字体文件不存在：{font}（请安装 fonts-wqy-microhei）")
    with tempfile.TemporaryDirectory(prefix="opsctl-cover-") as work:
        title_file = None
        if title:
            size = round(min(fmt.width, fmt.height) * 0.085)
            lines = wrap(title, max(4, int(fmt.width * 0.86 / (size * 0.5))))
            title_file = Path(work) / "title.txt"
            title_file.write_text("\n".join(lines), encoding="utf-8")
        with _partial(output) as temp:
            ffmpeg.run(build_cover(str(source), str(temp), fmt, at=None if info.is_image else at,
                                   title_file=str(title_file) if title_file else None,
                                   font=str(font) if font else None), timeout=timeout, what="生成封面")
    return output
