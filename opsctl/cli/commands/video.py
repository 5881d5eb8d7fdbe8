"""opsctl video: render short science videos from recipes (短视频), probe files, make covers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from clinical_core.domain.errors import InvalidInput
from content.domain.recipe import DEFAULT_FONT, FRAME_SIZES, OutputFormat
from content.services import video as video_service
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, info, render, render_object

app = typer.Typer(help="短视频：按配方渲染、批量渲染、查看文件信息、生成封面。\n\n示例：opsctl video render recipes/ep3.yaml",
                  no_args_is_help=True)

TimeoutOpt = Annotated[float | None, typer.Option("--timeout", min=1, help="单个 ffmpeg 步骤的最长秒数，超时即停止并清理")]
RESULT_COLUMNS = [("name", "视频"), ("format", "格式"), ("width", "宽"), ("height", "高"), ("duration", "时长（秒）"),
                  ("loudness_before", "原响度（LUFS）"), ("path", "文件"), ("cover", "封面")]


@contextmanager
def _bar() -> Iterator[video_service.OnProgress]:
    """A rich bar fed by ffmpeg's own ``-progress`` output; silent when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield lambda *_args: None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from opsctl.cli.output import console

    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("准备中", total=None)

        def update(label: str, done: float, total: float, index: int, count: int) -> None:
            bar.update(task, description=f"[{index + 1}/{count}] {label}", completed=done, total=total or None)

        yield update


def _rows(videos: list[video_service.RenderedVideo]) -> list[dict[str, object]]:
    return [{"name": v.name, "format": v.format, "width": v.width, "height": v.height,
             "duration": round(v.duration, 2), "loudness_before": v.loudness_before, "path": str(v.path),
             "cover": str(v.cover) if v.cover else None, "size_bytes": v.size_bytes} for v in videos]


@app.command("render")
def render_(
    recipe: Annotated[Path, typer.Argument(help="配方文件（YAML）")],
    timeout: TimeoutOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按配方渲染一个视频或一个系列（先检查全部素材，再逐个输出）。

    一个配方可输出 9:16（抖音、视频号）和 16:9 两种格式；输出先写临时文件，完成后才改名，
    失败时不会留下半成品。

    示例：opsctl video render recipes/ep3.yaml --json
    """
    with _bar() as update:
        videos = video_service.render_recipe(recipe, on_progress=update, timeout=timeout)
    render(_rows(videos), RESULT_COLUMNS, choose(fmt, as_json), title="已渲染")


@app.command("batch")
def batch(
    folder: Annotated[Path, typer.Argument(help="放配方文件（*.yaml）的目录")],
    timeout: TimeoutOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """渲染目录中的全部配方；某个配方有错时报告它，其余照常渲染（有失败则退出码为 3）。

    示例：opsctl video batch recipes/ --json
    """
    with _bar() as update:
        result = video_service.render_batch(folder, on_progress=update, timeout=timeout)
    chosen = choose(fmt, as_json)
    if chosen is Format.json:
        from opsctl.cli.output import emit_json

        emit_json({"rendered": _rows(list(result.rendered)),
                   "failed": [{"recipe": f.recipe, "error": f.error} for f in result.failed]})
    else:
        render(_rows(list(result.rendered)), RESULT_COLUMNS, chosen, title="已渲染")
        for failure in result.failed:
            info(f"失败：{failure.error}")
    if result.failed:
        raise typer.Exit(3)


@app.command("probe")
def probe(
    file: Annotated[Path, typer.Argument(help="视频、音频或图片文件")],
    frames: Annotated[bool, typer.Option("--frames", help="同时统计视频帧数（不解码，较快）")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """查看文件的格式信息：时长、分辨率（含旋转后的显示尺寸）、帧率、音频采样率与声道。

    示例：opsctl video probe out/ep3.9x16.mp4 --frames --json
    """
    media = video_service.probe_file(file, count_frames=frames)
    v, a = media.video, media.audio
    data = {
        "file": str(file), "container": media.container, "duration": media.duration, "bitrate_kbps": media.bitrate_kbps,
        "video_codec": v.codec if v else None, "width": v.display_size[0] if v else None,
        "height": v.display_size[1] if v else None, "stored_size": f"{v.width}x{v.height}" if v else None,
        "rotation": v.rotation if v else None, "fps": v.fps if v else None,
        "sar": f"{v.sar[0]}:{v.sar[1]}" if v else None, "pix_fmt": v.pix_fmt if v else None,
        "frames": media.frames, "audio_codec": a.codec if a else None,
        "sample_rate": a.sample_rate if a else None, "channels": a.channels if a else None,
    }
    labels = {"file": "文件", "container": "容器", "duration": "时长（秒）", "bitrate_kbps": "码率（kb/s）",
              "video_codec": "视频编码", "width": "显示宽", "height": "显示高", "stored_size": "存储尺寸",
              "rotation": "旋转（度）", "fps": "帧率", "sar": "像素宽高比", "pix_fmt": "像素格式", "frames": "帧数",
              "audio_codec": "音频编码", "sample_rate": "采样率", "channels": "声道数"}
    render_object(data, labels, choose(fmt, as_json), title="文件信息")


def _frame(name: str, size: str | None) -> OutputFormat:
    if name not in FRAME_SIZES:
        raise InvalidInput(f"格式应为 vertical 或 horizontal，实际是「{name}」", field="format")
    width, height = FRAME_SIZES[name]
    if size:
        parts = size.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) % 2 or int(parts[1]) % 2:
            raise InvalidInput(f"尺寸应写成 宽x高 且为偶数（如 540x960），实际是「{size}」", field="size")
        width, height = int(parts[0]), int(parts[1])
    return OutputFormat(name, width, height)


@app.command("cover")
def cover(
    source: Annotated[Path, typer.Argument(help="视频（取某一时刻的画面）或图片")],
    output: Annotated[Path, typer.Option("--output", "-o", help="封面文件（.jpg）")],
    at: Annotated[float, typer.Option("--at", min=0, help="取视频第几秒的画面")] = 0.0,
    title: Annotated[str | None, typer.Option("--title", help="封面标题（中文自动换行）")] = None,
    frame: Annotated[str, typer.Option("--format", help="vertical（9:16）或 horizontal（16:9）")] = "vertical",
    size: Annotated[str | None, typer.Option("--size", help="覆盖尺寸，如 540x960")] = None,
    font: Annotated[Path, typer.Option("--font", help="标题字体文件")] = Path(DEFAULT_FONT),
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """生成封面：取视频某一时刻的画面（或一张图片），适配画幅并写上标题。

    示例：opsctl video cover out/ep3.9x16.mp4 --at 2.5 --title "高血压的三个误区" -o out/ep3.jpg
    """
    if output.suffix.lower() not in (".jpg", ".jpeg"):
        raise InvalidInput("封面文件应为 .jpg", field="output")
    path = video_service.make_cover(source, output, _frame(frame, size), at=at, title=title, font=font)
    render_object({"cover": str(path)}, {"cover": "封面"}, choose(fmt, as_json))

