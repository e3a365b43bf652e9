"""`inpaint-studio batch PHOTOS_DIR --masks MASKS_DIR|MASK -o OUT_DIR`: fill many photos.

Masks are matched by file stem; one mask file instead of a folder fills the same place in
every photo (a date stamp, a watermark, a sensor spot), scaled to photos of its aspect ratio
and another size. A bad file is reported and skipped; the run goes on and lists the failures
at the end, exiting non-zero if there were any."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import (
    CliError,
    add_engine_options,
    load_mask_for,
    load_photo,
    note,
    settings_from,
    warn,
)
from app.cli.folder import (
    CUT_OFF_FILE,
    EMPTY_MASK,
    MaskSource,
    add_replace_options,
    check_folder,
    folder_photos,
    input_paths,
    output_suffix,
    photos_to_work,
    prepare_output_folder,
    refuse_same_folder,
    run_over_photos,
    say_skipped,
)
from app.engine import EngineError, inpaint
from app.engine.pipeline import resolve_coarse
from app.io.folders import write_result
from app.io.images import CUT_OFF


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
    add_replace_options(p)
    add_engine_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    photos_dir, out_dir = Path(args.photos), Path(args.output)
    try:
        check_folder(photos_dir, "photos folder")
        masks = MaskSource.open(Path(args.masks), photos_dir)
        refuse_same_folder(("-o", out_dir), ("--masks", masks.folder))
        settings = settings_from(args)
        every = folder_photos(photos_dir, masks)
        suffix = output_suffix(args.format)
        photos = photos_to_work(every, out_dir, suffix, args)
        # one backend and one loaded model for the whole batch (a bad model: said before the folder is made)
        stage, backend, backend_note, _owned = resolve_coarse(settings, None)
        try:
            prepare_output_folder(out_dir, every, suffix)
        except CliError:
            backend.close()
            raise
    except (CliError, EngineError) as exc:  # 2 for a wrong option or value; 1 for a file or model that failed
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    if backend_note:
        note(backend_note)
    if not photos:
        backend.close()
        print(f"all {len(every)} photos have their results in {out_dir} already; nothing to do")
        return 0
    inputs = input_paths(every, masks)

    def fill(photo: Path, target: Path, progress) -> set[str]:
        mask_file = masks.for_photo(photo)  # before the photo's decode: a missing mask costs nothing
        loaded = load_photo(photo, settings.max_megapixels)
        mask = load_mask_for(mask_file, loaded.rgb, args.invert_mask, masks.one)
        result = inpaint(loaded.rgb, mask, settings, backend=backend, progress=progress)
        for text in result.notes:
            if "fell back" in text:
                warn(f"{photo.name}: {text}")
        for lost in write_result(target, photo, loaded.meta, result.image, args.quality, not mask.any()):
            warn(f"{target.name}: {lost}")
        return {flag for flag, on in ((CUT_OFF_FILE, CUT_OFF in loaded.meta.notes), (EMPTY_MASK, not mask.any())) if on}

    try:
        done = run_over_photos(photos, out_dir, suffix, inputs, fill)
    finally:
        backend.close()
    print(f"{done.done} of {done.total} photos filled with {stage.label} on {backend.name}; written to {out_dir}")
    say_skipped(len(every) - len(photos), out_dir)
    return done.print_lists()
