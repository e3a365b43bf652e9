"""`inpaint-studio inpaint PHOTO --mask MASK -o OUT`: fill one photo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import (
    CliError,
    ProgressBar,
    add_engine_options,
    check_output,
    load_mask_for,
    load_photo,
    settings_from,
    warn,
)
from app.engine import EngineError, inpaint
from app.io.atomic import SaveError
from app.io.folders import write_result


def register(sub) -> None:
    p = sub.add_parser("inpaint", help="fill the masked pixels of one photo",
                       description="Fill the pixels of PHOTO where MASK is white and write OUT.")
    p.add_argument("photo", help="the photo (JPEG, PNG, TIFF, WebP), or an .ora project (its visible fill layers)")
    p.add_argument("--mask", help="mask image: white = fill (see --invert-mask); not used with an .ora project")
    p.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    p.add_argument("--invert-mask", action="store_true", help="black = fill (the HiFill sample masks)")
    add_engine_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.photo).suffix.lower() == ".ora":
        from app.cli.project_cmd import run_project

        try:
            if args.mask or args.invert_mask:  # the user means a mask this command would not use
                raise CliError(f"{Path(args.photo).name} is a project: its visible fill layers are the mask, so "
                               "--mask and --invert-mask do not apply. Import the mask as a layer in the editor, "
                               "or fill the photo itself with --mask.")
            settings = settings_from(args)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code
        return run_project(args, settings)
    if not args.mask:
        print("error: --mask is required for a photo (an .ora project carries its own mask layers).", file=sys.stderr)
        return 2
    try:
        check_output(args.output, args.photo, args.mask)
        settings = settings_from(args)
        loaded = load_photo(args.photo, settings.max_megapixels)
        mask = load_mask_for(args.mask, loaded.rgb, args.invert_mask)
        bar = ProgressBar(Path(args.photo).name)
        try:
            result = inpaint(loaded.rgb, mask, settings, progress=bar)
        finally:
            bar.done()
        for note in result.notes:
            warn(note) if "unchanged" in note or "fell back" in note else print(note, file=sys.stderr)
        # an empty mask: the photo's own file when the format stays (a JPEG is not encoded again)
        unchanged = result.regions == 0
        for lost in write_result(Path(args.output), Path(args.photo), loaded.meta, result.image, args.quality,
                                 unchanged):
            warn(f"{Path(args.output).name}: {lost}")
    except (CliError, EngineError, SaveError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    if result.regions == 0:
        print(f"{args.output}: nothing to fill (empty mask); the photo was written unchanged")
    else:
        print(f"{args.output}: {result.regions} region(s) filled with {result.method} on {result.backend}")
    return 0
