"""Running ffmpeg: the binary from imageio-ffmpeg, progress from ``-progress``, nothing left behind.

Every run starts ffmpeg in its own process group and stops it on every way
out (error, timeout, cancellation, Ctrl-C): SIGTERM, a short grace, then
SIGKILL, then ``wait`` so no zombie remains. stderr is drained by a thread
into a bounded buffer (a full pipe would stall ffmpeg) and the tail becomes
the error message when ffmpeg fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clinical_core.domain.errors import ExternalServiceError, InvalidInput
from content.domain.media import MediaInfo, ProbeFailed, ProgressReport, parse_frame_count, parse_probe, parse_progress_block

OnProgress = Callable[[ProgressReport], None]


class FfmpegFailed(ExternalServiceError):
    def __init__(self, message: str, stderr_tail: str) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


class FfmpegCancelled(ExternalServiceError):
    """The run was stopped (timeout or cancel); the process is gone."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg bundled with imageio-ffmpeg (has libx264, libass, freetype, loudnorm)."""
    override = os.environ.get("OPSCTL_FFMPEG") or os.environ.get("IMAGEIO_FFMPEG_EXE")
    if override:
        return override
    # The bundled binary is found by name: imageio-ffmpeg's own lookup runs ``ffmpeg -version`` first,
    # one more process start (~50 ms) in front of every render. A broken binary still fails loudly at
    # its first real run; anything unexpected falls back to imageio-ffmpeg's full search.
    try:
        from imageio_ffmpeg import binaries
        from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform

        name = FNAME_PER_PLATFORM.get(get_platform())
        bundled = Path(binaries.__file__).parent / name if name and binaries.__file__ else None
    except ImportError:
        bundled = None
    if bundled is not None and bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stderr: str


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def run(args: Sequence[str], *, on_progress: OnProgress | None = None, timeout: float | None = None,
        cancel: threading.Event | None = None, on_start: Callable[[int], None] | None = None,
        check: bool = True, what: str = "ffmpeg") -> RunResult:
    """Run ffmpeg with ``args``; reports progress blocks; raises on failure, timeout or cancel."""
    command = [ffmpeg_exe(), *args]
    if on_progress is not None:
        command[1:1] = ["-progress", "pipe:1", "-nostats"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    tail: deque[str] = deque(maxlen=400)
    stopped = {"why": ""}
    finished = threading.Event()  # set as soon as ffmpeg has exited: the watchdog leaves at once

    def drain() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def watchdog() -> None:
        # Woken by ``finished`` rather than polling out its 50 ms: a sleeping watchdog used to hold every
        # run (the probe, the render) up to 50 ms after ffmpeg was done.
        deadline = None if timeout is None else time.monotonic() + timeout
        while not finished.wait(0.05) and process.poll() is None:
            if cancel is not None and cancel.is_set():
                stopped["why"] = "已取消"
                break
            if deadline is not None and time.monotonic() >= deadline:
                stopped["why"] = f"超过 {timeout:g} 秒未完成"
                break
        if stopped["why"]:
            _stop(process)

    drainer = threading.Thread(target=drain, daemon=True)
    guard = threading.Thread(target=watchdog, daemon=True)
    drainer.start()
    guard.start()
    try:
        if on_start is not None:
            on_start(process.pid)
        assert process.stdout is not None
        block: list[str] = []
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            block.append(line)
            if line.startswith("progress="):
                if on_progress is not None:
                    on_progress(parse_progress_block(block))
                block = []
        process.wait()
    finally:
        finished.set()
        _stop(process)  # no-op when it finished; otherwise (exception, Ctrl-C) it is stopped here
        if process.stdout:
            process.stdout.close()
        drainer.join(timeout=5)
        if process.stderr:
            process.stderr.close()
    guard.join(timeout=5)
    stderr = "\n".join(tail)
    if stopped["why"]:
        raise FfmpegCancelled(f"{what}{stopped['why']}，已停止")
    if check and process.returncode != 0:
        last = next((ln.strip() for ln in reversed(tail) if ln.strip()), f"退出码 {process.returncode}")
        raise FfmpegFailed(f"{what}失败：{last[-300:]}", stderr)
    return RunResult(process.returncode, stderr)


def probe(path: Path, *, count_frames: bool = False, timeout: float = 60) -> MediaInfo:
    """Facts about ``path`` (there is no ffprobe in imageio-ffmpeg: ``ffmpeg -i`` is parsed)."""
    if not path.is_file():
        raise InvalidInput(f"文件不存在：{path}")
    result = run(["-hide_banner", "-nostdin", "-i", str(path)], check=False, timeout=timeout, what="读取文件信息")
    try:
        info = parse_probe(result.stderr)
    except ProbeFailed as error:
        raise InvalidInput(f"文件 {path.name} 无法解析为音视频（{error.reason[-160:]}），可能已损坏或格式不受支持") from None
    if count_frames and info.video is not None:
        counted = run(["-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                      timeout=timeout, what="统计帧数")
        from dataclasses import replace

        info = replace(info, frames=parse_frame_count(counted.stderr))
    return info


def decode_check(path: Path, *, timeout: float = 120) -> None:
    """Decode the whole file to nothing; a corrupt stream makes ffmpeg report errors (``-xerror``)."""
    run(["-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"], timeout=timeout,
        what=f"检查 {path.name}")
