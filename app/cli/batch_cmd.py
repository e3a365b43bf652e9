"""`inpaint-studio batch PHOTOS_DIR --masks MASKS_DIR|MASK -o OUT_DIR`: fill many photos.

Masks are matched by file stem; one mask file instead of a folder fills the same place in
every photo (a date stamp, a watermark, a sensor spot), scaled to photos of its aspect ratio
and another size. A bad file is reported and skipped; the run goes on and lists the failures
at the end, exiting non-zero if there were any."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.cli.common import CliError, add_engine_options, load_mask_for, load_photo, same_file, settings_from
from app.engine import EngineError, inpaint
from app.engine.pipeline import resolve_coarse
from app.engine.settings import STAGE_TEXT
from app.io.atomic import SaveError
from app.io.images import CUT_OFF, READ_EXTENSIONS, SAVE_FORMATS, ImageReadError, format_for, read_image, write_image


def register(sub) -> None:
    p = sub.add_parser("batch", help="fill every photo of a folder with its mask",
                       description="Fill each photo of PHOTOS_DIR with the mask of the same stem in MASKS_DIR, "
                                   "or with one mask file for every photo.")
    p.add_argument("photos", help="folder of photos")
    p.add_argument("--masks", required=True, metavar="MASKS_DIR|MASK",
                   help="folder of masks, matched to photos by file stem; or one mask file for every photo "
                        "(the same place in each: a date stamp, a watermark)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    p.add_argument("--format", default="", metavar="EXT",
                   help="output extension, e.g. png or jpg (default: the photo's own)")
    p.add_argument("--invert-mask", action="store_true", help="black = fill")
    add_engine_options(p)
    p.set_defaults(run=run)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READ_EXTENSIONS)


def run(args: argparse.Namespace) -> int:
    photos_dir, masks_dir, out_dir = Path(args.photos), Path(args.masks), Path(args.output)
    one_mask = masks_dir if masks_dir.is_file() else None  # the same mask for every photo
    for folder, what in ((photos_dir, "photos folder"), (masks_dir, "masks folder or file")):
        if not folder.is_dir() and folder is not one_mask:
            why = "is a file, not a folder" if folder.exists() else "does not exist"
            print(f"error: the {what} {folder} {why}", file=sys.stderr)
            return 2
    one_mask_read = None
    if one_mask is not None:  # read once, now: a broken mask is one message, not one failure per photo
        try:
            one_mask_read = read_image(one_mask)
        except ImageReadError as exc:
            print(f"error: the mask {exc}", file=sys.stderr)
            return 2
    if one_mask is None and same_file(photos_dir, masks_dir):  # every photo would be its own mask
        print(f"error: the photos and the masks are both in {photos_dir}; put the masks in a folder of their "
              "own (a mask has the photo's file stem)", file=sys.stderr)
        return 2
    try:
        settings = settings_from(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    masks: dict[str, list[Path]] = {}
    for mask_file in _files(masks_dir) if one_mask is None else ():
        masks.setdefault(mask_file.stem, []).append(mask_file)
    # a mask file kept among the photos is not one of them
    photos = [p for p in _files(photos_dir) if one_mask is None or not same_file(p, one_mask)]
    if not photos:
        print(f"error: no photos in {photos_dir}", file=sys.stderr)
        return 2
    suffix = ("." + args.format.lstrip(".").lower()) if args.format else ""  # PNG: a.png, as on any disk
    if out_dir.exists() and all(same_file(out_dir / (p.stem + (suffix or p.suffix)), p) for p in photos):
        # each result would replace its own photo (refused per photo below): say it once, up front
        print(f"error: every result would replace its photo in {out_dir}; choose another output folder "
              "or another --format", file=sys.stderr)
        return 2
    if suffix and suffix.lower() not in SAVE_FORMATS:  # one message now, not one per photo at the end
        writable = ", ".join(sorted({ext.lstrip(".") for ext in SAVE_FORMATS}))
        print(f"error: --format {args.format}: not a format this program writes; choose one of {writable}",
              file=sys.stderr)
        return 2
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create the output folder {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not os.access(out_dir, os.W_OK):  # now, not after filling every photo
        print(f"error: cannot write in the output folder {out_dir}: permission denied", file=sys.stderr)
        return 2
    inputs = {p.resolve() for p in photos} | {m.resolve() for same_stem in masks.values() for m in same_stem}
    if one_mask is not None:
        inputs.add(one_mask.resolve())
    failures: list[tuple[str, str]] = []
    unchanged: list[str] = []  # photos whose mask is empty: written as they are, and said so
    cut_off: list[str] = []  # photos whose file ends early: filled as far as they decode, and listed
    written: dict[Path, str] = {}  # a.png and a.jpg would both write a.<ext>: refuse the second
    # one backend and one loaded model for the whole batch
    try:
        stage, backend, note, _owned = resolve_coarse(settings, None)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if note:
        print(note, file=sys.stderr)
    try:
        for index, photo in enumerate(photos, 1):
            _draw(index - 1, len(photos), photo.name)
            try:
                if one_mask is None and photo.stem not in masks:
                    raise CliError("no mask with this name")
                if one_mask is None and len(masks[photo.stem]) > 1:  # which one was meant is not ours to guess
                    raise CliError("several masks have its name (" + ", ".join(m.name for m in masks[photo.stem])
                                   + "); keep one")
                target = out_dir / (photo.stem + (suffix or photo.suffix))
                format_for(target)
                if target.resolve() in inputs:
                    raise CliError(f"{target.name} in the output folder is one of the inputs; it is not "
                                   "overwritten (choose another output folder)")
                if target in written:
                    raise CliError(f"{written[target]} already writes {target.name}; rename one of them")
                written[target] = photo.name
                loaded = load_photo(photo, settings.max_megapixels)
                if CUT_OFF in loaded.meta.notes:
                    cut_off.append(photo.name)
                mask = load_mask_for(one_mask or masks[photo.stem][0], loaded.rgb, args.invert_mask, one_mask_read)
                if not mask.any():
                    unchanged.append(photo.name)
                result = inpaint(loaded.rgb, mask, settings, backend=backend,
                                 progress=_within(index - 1, len(photos), photo.name))
                for note in result.notes:
                    if "fell back" in note:
                        print(f"\nwarning: {photo.name}: {note}", file=sys.stderr)
                for lost in write_image(target, result.image, loaded.meta, args.quality):
                    print(f"\nwarning: {target.name}: {lost}", file=sys.stderr)
            except (CliError, EngineError, SaveError, ValueError) as exc:
                failures.append((photo.name, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one photo's unforeseen failure must not end the batch
                failures.append((photo.name, f"unexpected error ({type(exc).__name__}: {exc})"))
        _draw(len(photos), len(photos), "")
    finally:
        backend.close()
    print(file=sys.stderr)
    unchanged = [name for name in unchanged if name not in {failed for failed, _ in failures}]
    done = len(photos) - len(failures) - len(unchanged)
    print(f"{done} of {len(photos)} photos filled with {stage.label} on {backend.name}; written to {out_dir}")
    if unchanged:
        print(f"{len(unchanged)} written unchanged, their masks being empty: {', '.join(unchanged)}",
              file=sys.stderr)
    cut_off = [name for name in cut_off if name not in {failed for failed, _ in failures}]
    if cut_off:  # written, but their lower part is plain: a script must not take them for whole
        print(f"{len(cut_off)} written from cut-off files (the part missing from the file stays plain): "
              f"{', '.join(cut_off)}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for name, why in failures:
            print(f"  {name}: {why}", file=sys.stderr)
    return 1 if failures or cut_off else 0


def _within(done: int, total: int, name: str):
    """The engine's progress inside one photo, drawn on a terminal (a big photo takes many
    seconds); a log gets one line per photo only."""
    if not sys.stderr.isatty():
        return None

    def report(stage: str, _step: int, _steps: int, fraction: float) -> None:
        _draw(done, total, f"{name}: {STAGE_TEXT.get(stage, stage)} {fraction:.0%}", done + fraction)
    return report


def _draw(done: int, total: int, name: str, position: float | None = None) -> None:
    width = 30
    filled = int(width * (done if position is None else position) / max(total, 1))
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name}"
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line[:100].ljust(100))
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
