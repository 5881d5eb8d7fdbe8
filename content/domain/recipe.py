"""Video recipes (短视频配方): what a science video is made of, parsed and validated.

A recipe file (YAML, read by ``content.adapters.recipe_file``) describes one
video or a series: the top-level keys are defaults and each entry of
``episodes`` is one video that may override them. The reader hands this
module plain values plus the line of every key, so each error names the file
and the line: ``配方 ep3.yaml 第 12 行：...``.

Paths stay as written (relative to the recipe's folder); the service resolves
them. Frame sizes: ``vertical`` is 9:16 1080×1920 (Douyin, WeChat Channels),
``horizontal`` 16:9 1920×1080; ``size`` overrides (a 540×960 preview);
``copy`` is a pure cut with stream copy (nothing re-encoded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clinical_core.domain.errors import InvalidInput
from content.domain.timecode import parse_seconds

Path_ = tuple[str | int, ...]

FRAME_SIZES = {"vertical": (1080, 1920), "horizontal": (1920, 1080)}
LOGO_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
DEFAULT_FONT_NAME = "WenQuanYi Micro Hei"

_VIDEO_KEYS = {"name", "title", "clips", "intro", "outro", "subtitles", "logo", "cover", "output", "font",
               "font_name", "title_card"}
_OUTPUT_KEYS = {"path", "formats", "fps", "loudness", "crf", "preset", "pad_color"}


class RecipeError(InvalidInput):
    """A recipe that cannot be rendered: names the file and the line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"配方 {file} 第 {line} 行" if line else f"配方 {file}"
        super().__init__(f"{where}：{message}", field="recipe")
        self.file, self.line = file, line


@dataclass(frozen=True)
class Clip:
    """A source clip and its cut points (seconds; ``end`` None = to the end of the file)."""

    source: str
    start: float = 0.0
    end: float | None = None
    line: int | None = None


@dataclass(frozen=True)
class OutputFormat:
    name: str  # vertical | horizontal | copy
    width: int = 0
    height: int = 0

    @property
    def is_copy(self) -> bool:
        return self.name == "copy"

    @property
    def suffix(self) -> str:
        return {"vertical": "9x16", "horizontal": "16x9"}.get(self.name, self.name)


@dataclass(frozen=True)
class Logo:
    image: str
    position: str = "top-right"
    width: float = 0.16  # fraction of the frame width
    margin: float = 0.03  # fraction of the frame width
    line: int | None = None


@dataclass(frozen=True)
class Cover:
    """封面: a frame of the rendered video at ``at`` seconds, or an image; optional title drawn on it."""

    at: float | None = None
    image: str | None = None
    title: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class TitleCard:
    """片头字卡: an animated title rendered by moviepy, then taken in by the filter graph."""

    text: str
    duration: float = 2.0
    line: int | None = None


@dataclass(frozen=True)
class Recipe:
    file: str
    name: str
    output: str
    clips: tuple[Clip, ...]
    formats: tuple[OutputFormat, ...] = (OutputFormat("vertical", 1080, 1920),)
    title: str | None = None
    intro: Clip | None = None
    outro: Clip | None = None
    title_card: TitleCard | None = None
    subtitles: str | None = None
    subtitles_line: int | None = None
    logo: Logo | None = None
    cover: Cover | None = None
    fps: int = 30
    loudness: float | None = -16.0
    crf: int = 20
    preset: str = "medium"
    pad_color: str = "black"
    font: str = DEFAULT_FONT
    font_name: str = DEFAULT_FONT_NAME
    font_line: int | None = None
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def output_for(self, fmt: OutputFormat) -> str:
        """The output path of one format: the recipe's path, suffixed when there are several formats."""
        if len(self.formats) == 1:
            return self.output
        stem, dot, ext = self.output.rpartition(".")
        return f"{stem}.{fmt.suffix}.{ext}" if dot else f"{self.output}.{fmt.suffix}"


class _Reader:
    def __init__(self, file: str, lines: Mapping[Path_, int]) -> None:
        self.file, self.lines = file, lines

    def line(self, path: Path_) -> int | None:
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return None

    def fail(self, path: Path_, message: str) -> RecipeError:
        return RecipeError(self.file, self.line(path), message)

    def text(self, value: Any, path: Path_, what: str) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
            raise self.fail(path, f"{what}应为非空文字")
        return str(value).strip()

    def seconds(self, value: Any, path: Path_, what: str) -> float:
        try:
            return parse_seconds(value)
        except ValueError as error:
            raise self.fail(path, f"{what}：{error}") from None

    def number(self, value: Any, path: Path_, what: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"{what}应为数字")
        if not low <= value <= high:
            raise self.fail(path, f"{what}应在 {low:g} 到 {high:g} 之间，实际是 {value:g}")
        return float(value)

    def mapping(self, value: Any, path: Path_, what: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"{what}应为键值表")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail((*path, unknown[0]), f"{what}中有未知的项「{unknown[0]}」（可用：{'、'.join(sorted(allowed))}）")
        return value


def _clip(r: _Reader, value: Any, path: Path_, what: str) -> Clip:
    if isinstance(value, str):
        return Clip(r.text(value, path, what), line=r.line(path))
    spec = r.mapping(value, path, what, {"source", "start", "end"})
    if "source" not in spec:
        raise r.fail(path, f"{what}缺少 source（素材文件）")
    start = r.seconds(spec.get("start", 0), (*path, "start"), f"{what}的开始点") if "start" in spec else 0.0
    end = r.seconds(spec["end"], (*path, "end"), f"{what}的结束点") if spec.get("end") is not None else None
    if end is not None and end <= start:
        raise r.fail((*path, "end"), f"{what}的结束点应晚于开始点（{start:g} 秒）")
    return Clip(r.text(spec["source"], (*path, "source"), f"{what}的素材文件"), start, end, r.line(path))


def _formats(r: _Reader, value: Any, path: Path_) -> tuple[OutputFormat, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise r.fail(path, "formats 不能为空")
    out: list[OutputFormat] = []
    for i, item in enumerate(items):
        here = (*path, i) if isinstance(value, list) else path
        size = None
        if isinstance(item, Mapping):
            spec = r.mapping(item, here, "输出格式", {"name", "size"})
            name, size = spec.get("name"), spec.get("size")
        else:
            name = item
        if name not in (*FRAME_SIZES, "copy"):
            raise r.fail(here, f"输出格式应为 vertical（9:16）、horizontal（16:9）或 copy（直接剪切），实际是「{name}」")
        if name == "copy":
            out.append(OutputFormat("copy"))
            continue
        width, height = FRAME_SIZES[name]
        if size is not None:
            parts = str(size).lower().split("x")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise r.fail((*here, "size"), f"尺寸应写成 宽x高（如 540x960），实际是「{size}」")
            width, height = int(parts[0]), int(parts[1])
            if width % 2 or height % 2 or not (64 <= width <= 4096 and 64 <= height <= 4096):
                raise r.fail((*here, "size"), "宽和高应为 64–4096 之间的偶数")
        out.append(OutputFormat(name, width, height))
    if len({f.suffix for f in out}) != len(out):
        raise r.fail(path, "同一格式写了两次")
    return tuple(out)


def parse_video(data: Mapping[str, Any], lines: Mapping[Path_, int], file: str, prefix: Path_ = ()) -> Recipe:
    """One video recipe from plain values (``prefix`` locates it inside a series file)."""
    r = _Reader(file, lines)
    spec = r.mapping(data, prefix, "配方", _VIDEO_KEYS)
    at = lambda *keys: (*prefix, *keys)  # noqa: E731
    if "output" not in spec:
        raise r.fail(prefix, "缺少 output（输出文件及格式）")
    output_spec = spec["output"]
    if isinstance(output_spec, str):
        output_spec = {"path": output_spec}
    output = r.mapping(output_spec, at("output"), "output", _OUTPUT_KEYS)
    if "path" not in output:
        raise r.fail(at("output"), "output 缺少 path（输出文件）")
    path = r.text(output["path"], at("output", "path"), "输出文件")
    if not path.lower().endswith((".mp4", ".mov", ".m4v")):
        raise r.fail(at("output", "path"), "输出文件应为 .mp4（或 .mov、.m4v）")
    formats = _formats(r, output.get("formats", "vertical"), at("output", "formats"))
    clips_value = spec.get("clips")
    if not isinstance(clips_value, list) or not clips_value:
        raise r.fail(at("clips"), "clips 应列出至少一个素材片段")
    clips = tuple(_clip(r, c, at("clips", i), f"第 {i + 1} 个片段") for i, c in enumerate(clips_value))
    intro = _clip(r, spec["intro"], at("intro"), "片头") if spec.get("intro") else None
    outro = _clip(r, spec["outro"], at("outro"), "片尾") if spec.get("outro") else None
    logo = None
    if spec.get("logo"):
        value = spec["logo"] if isinstance(spec["logo"], Mapping) else {"image": spec["logo"]}
        lg = r.mapping(value, at("logo"), "logo", {"image", "position", "width", "margin"})
        if "image" not in lg:
            raise r.fail(at("logo"), "logo 缺少 image（台标图片）")
        position = lg.get("position", "top-right")
        if position not in LOGO_POSITIONS:
            raise r.fail(at("logo", "position"), f"台标位置应为 {'、'.join(LOGO_POSITIONS)} 之一")
        logo = Logo(r.text(lg["image"], at("logo", "image"), "台标图片"), position,
                    r.number(lg.get("width", 0.16), at("logo", "width"), "台标宽度（占画面宽度的比例）", 0.02, 0.6),
                    r.number(lg.get("margin", 0.03), at("logo", "margin"), "台标边距（占画面宽度的比例）", 0, 0.3),
                    r.line(at("logo")))
    cover = None
    if spec.get("cover"):
        cv = r.mapping(spec["cover"], at("cover"), "cover", {"at", "image", "title"})
        if ("at" in cv) == ("image" in cv):
            raise r.fail(at("cover"), "封面应写 at（取成片某一时刻的画面）或 image（封面图片），二选一")
        cover = Cover(r.seconds(cv["at"], at("cover", "at"), "封面时刻") if "at" in cv else None,
                      r.text(cv["image"], at("cover", "image"), "封面图片") if "image" in cv else None,
                      r.text(cv["title"], at("cover", "title"), "封面标题") if cv.get("title") else None,
                      r.line(at("cover")))
    title_card = None
    if spec.get("title_card"):
        tc = spec["title_card"] if isinstance(spec["title_card"], Mapping) else {"text": spec["title_card"]}
        tc = r.mapping(tc, at("title_card"), "title_card", {"text", "duration"})
        title_card = TitleCard(r.text(tc.get("text"), at("title_card", "text"), "片头字卡文字"),
                               r.number(tc.get("duration", 2.0), at("title_card", "duration"), "片头字卡时长（秒）", 0.5, 10),
                               r.line(at("title_card")))
    loudness = output.get("loudness", -16)
    preset = output.get("preset", "medium")
    if preset not in X264_PRESETS:
        raise r.fail(at("output", "preset"), f"编码预设应为 {'、'.join(X264_PRESETS)} 之一")
    pad_color = str(output.get("pad_color", "black"))
    if not pad_color.replace("#", "").replace("_", "").isalnum():
        raise r.fail(at("output", "pad_color"), "填充颜色应为颜色名（black）或 #RRGGBB")
    copy_only = all(f.is_copy for f in formats)
    if any(f.is_copy for f in formats):
        extras = [k for k in ("intro", "outro", "subtitles", "logo", "title_card") if spec.get(k)]
        if len(clips) != 1 or extras or not copy_only:
            raise r.fail(at("output", "formats"),
                         "copy（直接剪切）只能用于单个片段，且不能加片头片尾、字幕、台标或与其他格式同时输出")
        loudness = None
    name = str(spec.get("name") or path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return Recipe(
        file=file, name=name, output=path, clips=clips, formats=formats,
        title=r.text(spec["title"], at("title"), "标题") if spec.get("title") else None,
        intro=intro, outro=outro, title_card=title_card,
        subtitles=r.text(spec["subtitles"], at("subtitles"), "字幕文件") if spec.get("subtitles") else None,
        subtitles_line=r.line(at("subtitles")), logo=logo, cover=cover,
        fps=int(r.number(output.get("fps", 30), at("output", "fps"), "帧率", 10, 60)),
        loudness=None if loudness is None else r.number(loudness, at("output", "loudness"), "响度目标（LUFS）", -36, -6),
        crf=int(r.number(output.get("crf", 20), at("output", "crf"), "画质（crf）", 0, 51)),
        preset=preset, pad_color=pad_color,
        font=r.text(spec.get("font", DEFAULT_FONT), at("font"), "字体文件"),
        font_name=r.text(spec.get("font_name", DEFAULT_FONT_NAME), at("font_name"), "字体名称"),
        font_line=r.line(at("font")) or r.line(at("subtitles")),
    )


def parse_recipes(data: Any, lines: Mapping[Path_, int], file: str) -> list[Recipe]:
    """All videos of a recipe file: one video, or a series (defaults plus ``episodes``)."""
    r = _Reader(file, lines)
    if not isinstance(data, Mapping):
        raise r.fail((), "配方应为键值表（YAML 映射）")
    if "episodes" not in data:
        return [parse_video(data, lines, file)]
    episodes = data["episodes"]
    if not isinstance(episodes, list) or not episodes:
        raise r.fail(("episodes",), "episodes 应列出至少一集")
    defaults = {k: v for k, v in data.items() if k != "episodes"}
    recipes = []
    for i, episode in enumerate(episodes):
        if not isinstance(episode, Mapping):
            raise r.fail(("episodes", i), f"第 {i + 1} 集应为键值表")
        merged: dict[str, Any] = dict(defaults)
        merged_lines = {k: v for k, v in lines.items() if not (k and k[0] == "episodes")}
        for key, value in episode.items():
            if key in ("output", "logo", "cover") and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        for path, line in lines.items():
            if path[:2] == ("episodes", i):
                merged_lines[path[2:]] = line
        recipes.append(parse_video(merged, merged_lines, file))
    outputs = [rc.output_for(f) for rc in recipes for f in rc.formats]
    if len(set(outputs)) != len(outputs):
        raise r.fail(("episodes",), "多集的输出文件重名")
    return recipes
