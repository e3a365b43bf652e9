"""`inpaint-studio restore PHOTO -o OUT`: propose old-photo damage, fill it, repair tone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import (
    QUALITY_HELP,
    CliError,
    ProgressBar,
    UsageError,
    check_output,
    load_photo,
    same_file,
    warn,
)
from app.engine import EngineError
from app.io.atomic import SaveError, atomic_write
from app.io.images import GRAY_AS_RGB, ImageMeta, encode_image, format_for, write_image
from app.restore.detect import DEFAULT_DETECTOR, DEFAULT_SENSITIVITY, DETECTORS, parse_kinds
from app.restore.pipeline import FILL_SETTINGS, restore
from app.restore.repair import DENOISE_MAX, RepairSteps


def _denoise_arg(text: str):
    if text.lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if not 0 <= value <= DENOISE_MAX:
        raise argparse.ArgumentTypeError(f"the strength must be between 0 and {DENOISE_MAX:g} grey levels "
                                         "(the Restore panel's range)")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "restore", help="repair an old photo: dust, scratches, fading, noise",
        description="Propose the damage of an old photo (dust, scratches, creases), fill it, "
        "and optionally repair noise and fading. Pixels outside the damage stay as they were "
        "unless a tone or noise step is asked for.",
    )
    p.add_argument("photo", help="the photo (JPEG, PNG, TIFF, WebP)")
    p.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    p.add_argument("--detect", default="scratches,dust", metavar="KINDS",
                   help="damage to find: scratches, dust, both comma-separated, or none (default: scratches,dust)")
    p.add_argument("--sensitivity", type=float, default=DEFAULT_SENSITIVITY, metavar="S",
                   help="0 (only obvious damage) .. 1 (flag more); default 0.5")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                   help="damage detector: learned (the net in models/damage_detector.onnx for both kinds), "
                   "hand (the hand-made filters), hybrid (hand-made scratch filter + the net's dust map), "
                   f"or auto = learned when the net's model loads, else hand (default: {DEFAULT_DETECTOR})")
    p.add_argument("--mask", metavar="MASK.png", help="fill this mask instead of detecting (white = damage)")
    p.add_argument("--denoise", type=_denoise_arg, nargs="?", const=None, default=False, metavar="S",
                   help="non-local means on luminance; S = strength in grey levels, or 'auto' "
                   "(default when given without S: only if the photo measures as noisy)")
    p.add_argument("--auto-levels", action="store_true",
                   help="fade repair: per-channel auto levels, then CLAHE on L")
    p.add_argument("--gray-world", action="store_true",
                   help="gray-world colour balance, judged on the edges (removes a cast; leave it off to keep a sepia tone)")
    p.add_argument("--sharpen", type=float, nargs="?", const=0.6, default=0.0, metavar="AMOUNT",
                   help="finish with an unsharp mask (default amount 0.6)")
    p.add_argument("--save-mask", metavar="MASK.png", help="also write the damage mask (white = filled)")
    p.add_argument("--quality", type=int, default=None, metavar="Q", help=QUALITY_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        check_output(args.output, args.photo, args.mask)
        if args.save_mask:
            if same_file(Path(args.save_mask), Path(args.output)):
                raise CliError("--save-mask and -o name the same file; give the damage mask its own name.")
            if Path(args.save_mask).suffix.lower() not in (".png", ".tif", ".tiff", ".webp"):
                # a JPEG's edges would blur into greys: not the mask that was filled
                raise UsageError("--save-mask: name the mask .png, .tif or .webp (a JPEG mask is lossy).")
            check_output(args.save_mask, args.photo, args.mask)
        if not 0.0 <= args.sensitivity <= 1.0:
            raise UsageError("--sensitivity must be between 0 and 1.")
        if args.quality is not None and not 1 <= args.quality <= 100:
            raise UsageError("--quality must be between 1 and 100.")
        if not 0.0 <= args.sharpen <= 3.0:  # also refuses nan and inf (inf turned pixels black)
            raise UsageError("--sharpen must be between 0 and 3 (the Restore panel's range).")
        try:
            kinds = parse_kinds(args.detect)
        except ValueError as exc:
            raise UsageError(f"--detect: {exc}.") from exc
        if not kinds and args.detect.strip().lower() != "none":  # "," or "": a slip, not "detect nothing"
            raise UsageError("--detect: name the kinds (scratches, dust), or none.")
        loaded = load_photo(args.photo)
        mask = None
        if args.mask:
            from app.cli.common import load_mask_for

            mask = load_mask_for(args.mask, loaded.rgb, False)
        steps = RepairSteps(
            denoise=args.denoise is not False,
            denoise_strength=None if args.denoise is False else args.denoise,
            fade=args.auto_levels,
            balance=args.gray_world,
            sharpen=args.sharpen > 0,
            sharpen_amount=args.sharpen or 0.6,
        )
        bar = ProgressBar(Path(args.photo).name)
        try:
            result = restore(loaded.rgb, kinds, args.sensitivity, steps, FILL_SETTINGS, mask=mask,
                             detector=args.detector, progress=bar)
        finally:
            bar.done()
        for note in result.notes:
            if "unchanged" in note or "fell back" in note or "hand-made damage filters used" in note:
                warn(note)
        for lost in write_image(args.output, result.image, loaded.meta, args.quality):
            warn(f"{Path(args.output).name}: {lost}")
        if args.save_mask:
            # one gray channel, lossless (a WebP too): exactly the pixels that were filled
            data = encode_image(result.mask[:, :, None].repeat(3, axis=2), format_for(args.save_mask),
                                ImageMeta(notes=[GRAY_AS_RGB]), quality=100)
            with atomic_write(args.save_mask) as handle:
                handle.write(data)
    except (CliError, EngineError, SaveError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    share = 100.0 * (result.mask > 0).mean()
    print(f"{args.output}: {share:.2f} % of pixels filled as damage ({result.method})")
    return 0
