"""`inpaint-studio project new|info`: prepare and inspect .ora projects from scripts.

    inpaint-studio project new PHOTO --layer NAME=MASK.png [--protect NAME=MASK.png] ... -o X.ora
    inpaint-studio project info X.ora [--json]

`inpaint-studio inpaint X.ora -o OUT` (in inpaint_cmd) runs the engine on a project's
visible fill layers, keeping its visible protect layers out of the source; see run_project.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.canvas.document import Document, InpaintOutcome, LayerKind
from app.cli.common import CliError, ProgressBar, check_output_place, load_mask_for, load_photo, warn
from app.engine.settings import InpaintSettings
from app.io.project import ProjectError, inspect_project, load_project, save_project


def register(sub) -> None:
    p = sub.add_parser("project", help="make or inspect an .ora project (photo + mask layers)",
                       description="Prepare and inspect OpenRaster projects that keep the mask layers.")
    actions = p.add_subparsers(dest="project_action", metavar="ACTION")
    new = actions.add_parser("new", help="make a project from a photo and mask images",
                             description="Make an .ora project from PHOTO, one mask layer per --layer/--protect.")
    new.add_argument("photo", help="the photo (JPEG, PNG, TIFF, WebP)")
    new.add_argument("--layer", action="append", default=[], metavar="NAME=MASK.png",
                     help="a fill layer from a mask image (white = fill); repeat for more layers")
    new.add_argument("--protect", action="append", default=[], metavar="NAME=MASK.png",
                     help="a protect layer: its area is never copied into a fill")
    new.add_argument("--hidden", action="append", default=[], metavar="NAME", help="make layer NAME hidden")
    new.add_argument("--invert-mask", action="store_true", help="black = painted in every mask image")
    new.add_argument("-o", "--output", required=True, help="the project file to write (.ora)")
    new.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    new.set_defaults(run=run_new)
    info = actions.add_parser("info", help="list a project's layers and settings",
                              description="Check a project and list its layers (top of the stack first).")
    info.add_argument("project", help="an .ora project")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    info.set_defaults(run=run_info)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _split_layer(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep:
        return Path(spec).stem, spec
    if not name.strip() or not path:
        raise CliError(f"--layer/--protect take NAME=MASK.png, not '{spec}'.")
    return name.strip(), path


def _bar(label: str):
    bar = ProgressBar(label)
    return bar, (lambda stage, fraction: bar(stage, 0, 1, fraction))


def run_new(args: argparse.Namespace) -> int:
    out = Path(args.output)
    try:
        if out.suffix.lower() != ".ora":
            raise CliError(f"{out.name}: a project file name ends in .ora")
        if out.exists() and not args.force:
            raise CliError(f"{out} exists; pass --force to overwrite it.")
        specs = [(s, LayerKind.FILL) for s in args.layer] + [(s, LayerKind.PROTECT) for s in args.protect]
        if not specs:
            warn("no --layer given: the project holds the photo only.")
        loaded = load_photo(args.photo)
        doc = Document(photo=loaded.rgb, meta=loaded.meta, settings=InpaintSettings(), source_path=str(args.photo))
        for spec, kind in specs:
            name, path = _split_layer(spec)
            layer = doc.new_layer(name, kind, load_mask_for(path, loaded.rgb, args.invert_mask))
            layer.visible = name not in args.hidden
            doc.layers.append(layer)
        unknown = set(args.hidden) - {layer.name for layer in doc.layers}
        if unknown:
            raise CliError(f"--hidden names no layer: {', '.join(sorted(unknown))}")
        bar, progress = _bar(out.name)
        try:
            save_project(doc, out, progress=progress)
        finally:
            bar.done()
    except (CliError, ProjectError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kinds = [layer.kind for layer in doc.layers]
    w, h = doc.size
    print(f"{out}: {w}x{h}, {kinds.count(LayerKind.FILL)} fill and {kinds.count(LayerKind.PROTECT)} protect layer(s)")
    return 0


def run_info(args: argparse.Namespace) -> int:
    try:
        info = inspect_project(args.project)
        doc = load_project(args.project)  # a full check: every layer decodes
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    masks = iter(reversed(doc.layers))  # info lists the top of the stack first
    rows = []
    for entry in info.layers:
        row = {"name": entry.name, "role": entry.role, "visible": entry.visible, "opacity": entry.opacity, "src": entry.src}
        if entry.role == "mask":
            layer = next(masks)
            row |= {"kind": layer.kind.value, "locked": layer.locked, "color": "#{:02x}{:02x}{:02x}".format(*layer.color),
                    "painted": round(float(np.count_nonzero(layer.mask)) / layer.mask.size, 6)}
        elif entry.role == "result":
            row |= {"method": entry.method, "backend": entry.backend}
        rows.append(row)
    if args.json:
        print(json.dumps({"width": info.width, "height": info.height, "format_version": info.format_version,
                          "app_version": info.app_version, "layers": rows, "settings": doc.settings.to_dict(),
                          "notes": doc.meta.notes}, indent=1))
        return 0
    print(f"{Path(args.project).name}: {info.width}x{info.height}, project format {info.format_version}"
          + (f" (Inpaint Studio {info.app_version})" if info.app_version else ""))
    print("layers, top first:")
    for row in rows:
        shown = "visible" if row["visible"] else "hidden "
        if row["role"] == "mask":
            print(f"  {row['kind']:<8} {shown} {row['opacity']:>4.0%}  {row['name']}  "
                  f"({row['painted']:.1%} painted{', locked' if row['locked'] else ''})")
        elif row["role"] == "result":
            print(f"  {'result':<8} {shown}        {row['name']}  ({row['method']} on {row['backend']})")
        else:
            print(f"  {'photo':<8} {shown}        {row['name']}")
    changed = {k: v for k, v in doc.settings.to_dict().items() if v != getattr(InpaintSettings(), k)}
    print("engine settings: " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"))
    for note in doc.meta.notes:
        print(f"note: {note}")
    return 0


def run_project(args: argparse.Namespace, cli_settings: InpaintSettings) -> int:
    """`inpaint X.ora -o OUT`: fill the visible fill layers, keeping visible protect layers out
    of the source. OUT is an image (format from its extension) or an .ora: the project again,
    with the fill as its pending result layer."""
    from app.engine import EngineError, inpaint
    from app.io.atomic import SaveError
    from app.io.images import format_for, write_image

    out = Path(args.output)
    try:
        if out.suffix.lower() != ".ora":
            format_for(out)
        check_output_place(out, args.photo)  # before the work, not after it
        doc = load_project(args.photo)
        fill = doc.combined_mask(LayerKind.FILL)
        if not fill.any():
            raise CliError(f"{Path(args.photo).name} has no visible fill layer with painted pixels: nothing to fill.")
        protect = doc.combined_mask(LayerKind.PROTECT)
        settings = _merge_settings(doc.settings, cli_settings)
        bar = ProgressBar(Path(args.photo).name)
        try:
            result = inpaint(doc.photo, fill, settings, protect=protect if protect.any() else None, progress=bar)
        finally:
            bar.done()
        for note in result.notes:
            print(note, file=sys.stderr)
        if out.suffix.lower() == ".ora":
            doc.result = InpaintOutcome(result.image, result.method, result.backend)
            doc.settings = settings
            save_project(doc, out)
        else:
            for lost in write_image(out, result.image, doc.meta, args.quality):
                warn(f"{out.name}: {lost}")
    except (CliError, ProjectError, EngineError, SaveError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {result.regions} region(s) filled with {result.method} on {result.backend}")
    return 0


def _merge_settings(saved: InpaintSettings, cli: InpaintSettings) -> InpaintSettings:
    """The project's settings, with whatever the command line set away from its defaults."""
    defaults = InpaintSettings()
    changes = {k: v for k, v in cli.to_dict().items() if v != getattr(defaults, k)}
    return saved.with_(**changes)
