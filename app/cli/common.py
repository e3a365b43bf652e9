"""What the subcommands share: engine options, loading a photo and its mask with
messages a user can act on, and a progress bar on stderr."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from app.engine.settings import BACKENDS, METHODS, STAGE_TEXT, InpaintSettings
from app.io.folders import same_file
from app.io.images import (
    INFORMATIONAL_NOTES,
    ImageReadError,
    LoadedImage,
    MaskSizeError,
    format_for,
    read_image,
    read_mask_for,
)

QUALITY_HELP = "JPEG/WebP quality 1-100 (default 95; 100 = lossless WebP, the default for a lossless WebP photo)"


class CliError(Exception):
    """A problem to print as one line, then exit non-zero (1: the input or the output failed)."""

    code = 1


class UsageError(CliError):
    """An option value out of range: exit 2, as argparse's own usage errors."""

    code = 2


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="where the model runs (default: auto)")
    parser.add_argument("--model", metavar="MODEL.onnx", help="generator model (default: the bundled model)")
    parser.add_argument(
        "--method", choices=METHODS, default="auto",
        help="coarse stage: the model, or OpenCV telea/ns (default: auto = model when present)",
    )
    parser.add_argument("--chunk-columns", type=int, default=3072, metavar="N",
                        help="residual columns per aggregation chunk (default 3072)")
    parser.add_argument("--texture", type=float, default=InpaintSettings.texture, metavar="T",
                        help="the photo's own grain carried into the fill, as a share of the grain around "
                             "it: 0 = smooth, 1 = at most as grainy as the surroundings (default 1, at most 2)")
    parser.add_argument("--quality", type=int, default=None, metavar="Q", help=QUALITY_HELP)


def settings_from(args: argparse.Namespace) -> InpaintSettings:
    if args.quality is not None and not 1 <= args.quality <= 100:
        raise UsageError("--quality must be between 1 and 100.")
    if args.chunk_columns < 1:
        raise UsageError("--chunk-columns must be at least 1.")
    if not 0.0 <= args.texture <= 2.0:
        raise UsageError("--texture must be between 0 (smooth) and 2.")
    return InpaintSettings(method=args.method, model_path=args.model, backend=args.backend,
                           chunk_columns=args.chunk_columns, texture=args.texture)


def check_output(output: str | Path, *inputs: str | Path | None) -> None:
    """Refuse an output before any work is done: a format we cannot write, a folder that is
    missing or not writable, or a file that is one of the inputs (writing it would destroy the
    original; the user meant another name)."""
    try:
        format_for(output)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    check_output_place(output, *inputs)


def check_output_place(output: str | Path, *inputs: str | Path | None) -> None:
    """`check_output` without the format (a project output is .ora): a folder of that name, an
    input named as the output, a missing or unwritable folder."""
    out = Path(output)
    if out.is_dir():
        raise CliError(f"{out} is a folder; give the output a file name (e.g. {out / 'result.png'}).")
    for source in inputs:
        if source is not None and same_file(out, Path(source)):
            raise CliError(f"{out.name} is also an input; writing it would replace the original. "
                           "Choose another output name.")
    folder = out.parent
    if not folder.is_dir():
        raise CliError(f"Cannot write in {folder}: the folder does not exist.")
    if not os.access(folder, os.W_OK):
        raise CliError(f"Cannot write in {folder}: permission denied.")


def load_photo(path: str | Path, max_megapixels: float = InpaintSettings.max_megapixels) -> LoadedImage:
    try:
        loaded = read_image(path, max_megapixels=max_megapixels, partial=True)
    except ImageReadError as exc:
        raise CliError(str(exc)) from exc
    for text in loaded.meta.notes:
        (note if text in INFORMATIONAL_NOTES else warn)(f"{Path(path).name}: {text}")
    return loaded


def load_mask_for(path: str | Path, photo: np.ndarray, invert: bool, loaded: LoadedImage | None = None) -> np.ndarray:
    """Read a mask; a mask of another size with the same aspect is scaled (and we say so),
    any other size is refused."""
    h, w = photo.shape[:2]
    try:
        read = read_mask_for(path, (w, h), invert=invert, loaded=loaded)
    except MaskSizeError as exc:
        raise CliError(str(exc)) from exc
    except ImageReadError as exc:
        raise CliError(f"mask: {exc}") from exc
    if read.doubt:
        warn(read.doubt)
    if read.scaled_from:
        mw, mh = read.scaled_from
        warn(f"the mask {Path(path).name} is {mw}x{mh}; scaled to the photo's {w}x{h} (nearest neighbour).")
    return read.mask


def warn(text: str) -> None:
    print(f"{line_start()}warning: {text}", file=sys.stderr)


def note(text: str) -> None:
    """Something the user should know that lost nothing (a 16-bit photo kept, a photo turned upright)."""
    print(f"{line_start()}note: {text}", file=sys.stderr)


def line_start() -> str:
    """On a terminal, clear the progress bar's line first (the bar is redrawn by its next step)."""
    return "\r\033[K" if sys.stderr.isatty() else ""


class ProgressBar:
    """A one-line bar on stderr (only redrawn on a terminal; otherwise one line the first time
    each stage starts: the stages alternate per hole region, and a log wants them once)."""

    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._seen: set[str] = set()

    def __call__(self, stage: str, step: int, total: int, fraction: float) -> None:
        stage = STAGE_TEXT.get(stage, stage)  # "Filling", not the engine's key "model" (the method may be Telea)
        text = stage if total <= 1 else f"{stage} {step}/{total}"
        if self.tty:
            filled = int(fraction * 30)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {text:<16}")
            self.stream.flush()
        elif stage not in self._seen:
            self._seen.add(stage)
            self.stream.write(f"{self.label}: {stage}\n")

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
