"""`inpaint-studio restore PHOTO|FOLDER -o OUT`: propose old-photo damage, fill it, repair tone."""

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
    load_mask_for,
    load_photo,
    note,
    same_file,
    warn,
)
from app.cli.folder import (
    CUT_OFF_FILE,
    EMPTY_MASK,
    MaskSource,
    add_replace_options,
    folder_photos,
    input_paths,
    make_output_folder,
    output_suffix,
    photos_to_work,
    prepare_output_folder,
    refuse_same_folder,
    run_over_photos,
    say,
    say_skipped,
)
from app.engine import EngineError
from app.engine.pipeline import resolve_coarse
from app.io.atomic import SaveError
from app.io.folders import Names, is_input, write_mask, write_result
from app.io.images import (
    CUT_OFF,
    READ_EXTENSIONS,
    write_image,
)
from app.restore.detect import DEFAULT_DETECTOR, DEFAULT_SENSITIVITY, DETECTORS, choose_detector, parse_kinds
from app.restore.pipeline import FILL_SETTINGS, restore
from app.restore.repair import DENOISE_MAX, RepairSteps

#: lossless formats a damage mask is written in
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".webp")


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
        "restore", help="repair an old photo (or a folder of scans): dust, scratches, fading, noise",
        description="Propose the damage of an old photo (dust, scratches, creases), fill it, "
        "and optionally repair noise and fading. Pixels outside the damage stay as they were "
        "unless a tone or noise step is asked for. Given a folder (an album of scans), every "
        "photo in it is restored into the output folder; a bad file is listed, not the end of the run.",
    )
    p.add_argument("photo", help="the photo (JPEG, PNG, TIFF, WebP), or a folder of photos")
    p.add_argument("-o", "--output", required=True,
                   help="output file, the format following the extension; for a folder of photos, an "
                   "output folder (created if missing)")
    p.add_argument("--format", default="", metavar="EXT",
                   help="for a folder of photos: output extension, e.g. png or jpg (default: each photo's own)")
    p.add_argument("--detect", default="scratches,dust", metavar="KINDS",
                   help="damage to find: scratches, dust, both comma-separated, or none (default: scratches,dust)")
    p.add_argument("--sensitivity", type=float, default=DEFAULT_SENSITIVITY, metavar="S",
                   help="0 (only obvious damage) .. 1 (flag more); default 0.5")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                   help="damage detector: learned (the net in models/damage_detector.onnx for both kinds), "
                   "hand (the hand-made filters), hybrid (hand-made scratch filter + the net's dust map), "
                   f"or auto = learned when the net's model loads, else hand (default: {DEFAULT_DETECTOR})")
    p.add_argument("--mask", metavar="MASK.png",
                   help="fill this mask instead of detecting (white = damage); for a folder of photos, a "
                   "folder of masks matched by file stem (e.g. written by --save-mask and trimmed), or one "
                   "mask for every scan (dust on the scanner glass)")
    p.add_argument("--denoise", type=_denoise_arg, nargs="?", const=None, default=False, metavar="S",
                   help="non-local means on luminance; S = strength in grey levels, or 'auto' "
                   "(default when given without S: only if the photo measures as noisy)")
    p.add_argument("--auto-levels", action="store_true",
                   help="fade repair: per-channel auto levels, then CLAHE on L")
    p.add_argument("--keep-tone", action="store_true",
                   help="with --auto-levels: stretch the lightness alone, so a sepia or toned print keeps its "
                   "colour (each colour on its own also takes out a fading cast)")
    p.add_argument("--gray-world", action="store_true",
                   help="gray-world colour balance, judged on the edges (removes a cast; to keep a sepia tone "
                   "leave it off and add --keep-tone to --auto-levels)")
    p.add_argument("--sharpen", type=float, nargs="?", const=0.6, default=0.0, metavar="AMOUNT",
                   help="finish with an unsharp mask (default amount 0.6)")
    p.add_argument("--save-mask", metavar="MASK.png",
                   help="also write the damage mask (white = filled); for a folder of photos, a folder "
                   "(created if missing) that gets one mask per photo, named as the photo with .png")
    p.add_argument("--quality", type=int, default=None, metavar="Q", help=QUALITY_HELP)
    add_replace_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        if not 0.0 <= args.sensitivity <= 1.0:
            raise UsageError("--sensitivity must be between 0 and 1.")
        if args.quality is not None and not 1 <= args.quality <= 100:
            raise UsageError("--quality must be between 1 and 100.")
        if not 0.0 <= args.sharpen <= 3.0:  # also refuses nan and inf (inf turned pixels black)
            raise UsageError("--sharpen must be between 0 and 3 (the Restore panel's range).")
        if args.keep_tone and not args.auto_levels:
            raise UsageError("--keep-tone goes with --auto-levels (it is how the levels are stretched).")
        try:
            kinds = parse_kinds(args.detect)
        except ValueError as exc:
            raise UsageError(f"--detect: {exc}.") from exc
        if not kinds and args.detect.strip().lower() != "none":  # "," or "": a slip, not "detect nothing"
            raise UsageError("--detect: name the kinds (scratches, dust), or none.")
        if Path(args.photo).is_dir():
            return _run_folder(args, kinds, _steps(args))
        if not Path(args.photo).exists():  # before the output's checks: the photo is what is wrong
            raise CliError(f"Cannot read {args.photo}: there is no file or folder of that name.")
        if args.format:
            raise UsageError("--format is for a folder of photos; for one photo the extension of -o chooses.")
        if args.force or args.skip_existing:  # a loop of single runs must not take them for honoured
            raise UsageError("--force and --skip-existing are for a folder of photos; one photo's -o is replaced "
                             "as any output file is.")
        return _run_one(args, kinds, _steps(args))
    except BrokenPipeError:
        raise  # the reader went away (`| head`): main ends quietly
    except (CliError, EngineError, SaveError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)


#: the steps by the names of their options
STEP_OPTIONS = {"denoise": "denoise", "fade": "auto levels", "balance": "gray-world", "sharpen": "sharpen"}


def _repaired(steps: RepairSteps) -> str:
    """The repairs a result had, for its line (a repair-only run said only "nothing to fill", QA)."""
    return f"; repaired: {', '.join(STEP_OPTIONS[name] for name in steps.names)}" if steps.any else ""


def _steps(args: argparse.Namespace) -> RepairSteps:
    return RepairSteps(
        denoise=args.denoise is not False,
        denoise_strength=None if args.denoise is False else args.denoise,
        fade=args.auto_levels,
        keep_tone=args.keep_tone,
        balance=args.gray_world,
        sharpen=args.sharpen > 0,
        sharpen_amount=args.sharpen or 0.6,
    )


def _check_mask_name(save_mask: str) -> None:
    if Path(save_mask).suffix.lower() not in MASK_EXTENSIONS:
        # a JPEG's edges would blur into greys: not the mask that was filled
        raise UsageError("--save-mask: name the mask .png, .tif or .webp (a JPEG mask is lossy).")


def _warn_notes(result, name: str = "") -> None:
    for text in result.notes:
        if "unchanged" in text or "fell back" in text or "hand-made damage filters used" in text:
            warn(f"{name}: {text}" if name else text)


def _run_one(args: argparse.Namespace, kinds, steps: RepairSteps) -> int:
    check_output(args.output, args.photo, args.mask)
    if args.save_mask:
        if same_file(Path(args.save_mask), Path(args.output)):
            raise CliError("--save-mask and -o name the same file; give the damage mask its own name.")
        _check_mask_name(args.save_mask)
        check_output(args.save_mask, args.photo, args.mask)
    if args.mask and Path(args.mask).is_dir():
        raise UsageError(f"--mask {args.mask} is a folder; for one photo give one mask file.")
    loaded = load_photo(args.photo)
    mask = load_mask_for(args.mask, loaded.rgb, False) if args.mask else None
    bar = ProgressBar(Path(args.photo).name)
    try:
        result = restore(loaded.rgb, kinds, args.sensitivity, steps, FILL_SETTINGS, mask=mask,
                         detector=args.detector, progress=bar, deep=loaded.meta.deep)
    finally:
        bar.done()
    _warn_notes(result)
    for lost in write_image(args.output, result.image, result.meta_of(loaded.meta), args.quality):
        warn(f"{Path(args.output).name}: {lost}")
    if args.save_mask:
        write_mask(args.save_mask, result.mask)
    share = 100.0 * (result.mask > 0).mean()
    print(f"{args.output}: {share:.2f} % of pixels filled as damage ({result.method}){_repaired(steps)}")
    return 0


def _run_folder(args: argparse.Namespace, kinds, steps: RepairSteps) -> int:
    """Restore every photo of a folder: the detector and the fill's model are loaded once; a
    photo that fails is listed at the end and the others are done."""
    photos_dir, out_dir = Path(args.photo), Path(args.output)
    if out_dir.is_file() or (not out_dir.exists() and out_dir.suffix.lower() in READ_EXTENSIONS):
        raise UsageError(f"-o {out_dir}: for a folder of photos, name an output folder (created if missing).")
    masks = MaskSource.open(Path(args.mask), photos_dir) if args.mask else None
    mask_dir = Path(args.save_mask) if args.save_mask else None
    if mask_dir is not None and (mask_dir.is_file() or mask_dir.suffix.lower() in READ_EXTENSIONS):
        raise UsageError(f"--save-mask {mask_dir}: for a folder of photos name a folder for the masks "
                         "(each is written as <file name without extension>.png).")
    refuse_same_folder(("the photos", photos_dir), ("-o", out_dir), ("--save-mask", mask_dir),
                       ("--mask", masks.folder if masks is not None else None))
    every = folder_photos(photos_dir, masks)
    suffix = output_suffix(args.format)
    photos = photos_to_work(every, out_dir, suffix, args, mask_dir)
    if not photos:
        print(f"all {len(every)} photos have their results in {out_dir} already; nothing to do")
        return 0
    inputs = input_paths(every, masks)
    # once for the album, before any folder is made: the detector's note (when "auto" falls back)
    # is said once, and a model that does not load is one message
    try:
        detector, model, detector_note = choose_detector(args.detector, None) if masks is None and kinds else (
            args.detector, None, "")
    except EngineError as exc:  # a model that does not load: exit 1, as for one photo
        raise CliError(str(exc)) from exc
    if detector_note:
        warn(detector_note)
    backend = None
    if masks is not None or kinds:  # else there is nothing to fill: no model to load
        try:
            _stage, backend, backend_note, _owned = resolve_coarse(FILL_SETTINGS, None)
        except EngineError as exc:
            raise CliError(str(exc)) from exc
        if backend_note:
            note(backend_note)
    try:
        prepare_output_folder(out_dir, every, suffix)
        if mask_dir is not None:
            make_output_folder(mask_dir)
    except CliError:
        if backend is not None:
            backend.close()
        raise

    mask_names = Names("its mask {name}")  # a.jpg and a.png would both write the mask a.png

    def restore_one(photo: Path, target: Path, progress) -> set[str]:
        mask_file = None if mask_dir is None else mask_dir / (photo.stem + ".png")
        if mask_file is not None:
            if is_input(mask_file, inputs):
                raise CliError(f"its mask {mask_file.name} in {mask_dir} would replace one of the inputs")
            mask_names.check(mask_file)
        given = None if masks is None else masks.for_photo(photo)  # before the decode: a missing mask costs nothing
        loaded = load_photo(photo, FILL_SETTINGS.max_megapixels)
        mask = None if given is None else load_mask_for(given, loaded.rgb, False, masks.one)
        result = restore(loaded.rgb, kinds, args.sensitivity, steps, FILL_SETTINGS, mask=mask, detector=detector,
                         model=model, backend=backend, progress=progress, deep=loaded.meta.deep)
        _warn_notes(result, photo.name)
        if mask_file is not None:  # first: a result without its mask would be taken for done
            write_mask(mask_file, result.mask)
            mask_names.keep(mask_file, photo)
        unchanged = not result.mask.any() and not steps.any
        for lost in write_result(target, photo, result.meta_of(loaded.meta), result.image, args.quality, unchanged):
            warn(f"{target.name}: {lost}")
        say(f"{target}: {100.0 * (result.mask > 0).mean():.2f} % of pixels filled as damage ({result.method})"
            + _repaired(steps))
        flags = {CUT_OFF_FILE} if CUT_OFF in loaded.meta.notes else set()
        if unchanged:
            flags.add(EMPTY_MASK)
        return flags

    try:
        done = run_over_photos(photos, out_dir, suffix, inputs, restore_one)
    finally:
        if backend is not None:
            backend.close()
    print(f"{done.done} of {done.total} photos restored; written to {out_dir}")
    say_skipped(len(every) - len(photos), out_dir)
    return done.print_lists("no damage found or left in their masks, and no repair asked for")
