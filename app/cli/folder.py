"""What the folder commands (`batch`, `restore` of a folder) share: the photos of a folder,
masks matched by file stem or one mask for all, an output folder checked before any work,
and a run over the photos that goes on past a bad file and lists every failure at the end."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.cli.common import CliError, ProgressBar, UsageError, line_start, same_file
from app.engine import EngineError
from app.engine.settings import STAGE_TEXT
from app.io import folders
from app.io.atomic import SaveError
from app.io.folders import FolderError, Names, is_input, result_name
from app.io.images import (
    SAVE_FORMATS,
    ImageReadError,
    LoadedImage,
    format_for,
    read_image,
)

#: what a photo's processing may report besides success; listed by name after the run
CUT_OFF_FILE = "cut off"  # written from a file that ends early: its lower part is plain
EMPTY_MASK = "empty mask"  # written unchanged: nothing to fill


def photo_files(folder: Path, what: str = "photos folder") -> list[Path]:
    """The images of `folder` (folders.photo_files); one that cannot be read fails (exit 1)."""
    try:
        return folders.photo_files(folder, what)
    except FolderError as exc:
        raise CliError(str(exc)) from exc


def check_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        why = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"the {what} {folder} {why}")


def refuse_same_folder(*named: tuple[str, Path | None]) -> None:
    """Refuse two roles given one folder (results written among the masks they were filled
    with, masks among the photos): the next run would read them as each other."""
    given = [(name, path) for name, path in named if path is not None]
    for i, (name_a, a) in enumerate(given):
        for name_b, b in given[i + 1 :]:
            if same_file(a, b):
                raise UsageError(f"{name_a} and {name_b} name the same folder {a}; give each its own folder")


def say(text: str) -> None:
    """A line on stdout, the progress bar's line on a terminal cleared first."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    print(text, flush=True)


def output_suffix(fmt: str) -> str:
    """'.png' for --format png (checked: a format this program writes); '' = each photo's own."""
    suffix = ("." + fmt.lstrip(".").lower()) if fmt else ""
    if suffix and suffix not in SAVE_FORMATS:  # one message now, not one per photo at the end
        writable = ", ".join(sorted({ext.lstrip(".") for ext in SAVE_FORMATS}))
        raise UsageError(f"--format {fmt}: not a format this program writes; choose one of {writable}")
    return suffix


def add_replace_options(parser) -> None:
    """--force and --skip-existing: what to do with files of an earlier run in the output folders."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--force", action="store_true",
                       help="for a folder: replace the files already in the output folders (an earlier run's)")
    group.add_argument("--skip-existing", action="store_true",
                       help="for a folder: leave each photo whose result is in the output folder already as it "
                       "is (a stopped run goes on where it was; a mask it wrote without its result is replaced)")


def photos_to_work(photos: list[Path], out_dir: Path, suffix: str, args, mask_dir: Path | None = None) -> list[Path]:
    """The photos to work, checked before any work: with --skip-existing those whose result is
    in `out_dir` already are left out; files of an earlier run in the way (results, masks in
    `mask_dir`, perhaps trimmed by hand since) are refused unless --force."""
    # twins (a.jpg beside a.png) share a mask name, and a result name under --format: a file of
    # that name may be the other twin's, so it says nothing of this photo being done (QA)
    results, stems = Counter(result_name(p, suffix).casefold() for p in photos), Counter(p.stem.casefold() for p in photos)
    twin = {p: results[result_name(p, suffix).casefold()] > 1 or (mask_dir is not None and stems[p.stem.casefold()] > 1)
            for p in photos}
    photos = [p for p in photos
              if not (args.skip_existing and not twin[p] and (out_dir / result_name(p, suffix)).exists())]
    if args.force:
        return photos
    in_the_way = [out_dir / result_name(p, suffix) for p in photos]
    if mask_dir is not None:  # resuming: a mask without its result is a stopped run's, unless it may be a twin's
        in_the_way += [mask_dir / (p.stem + ".png") for p in photos if not args.skip_existing or twin[p]]
    inputs = {p.resolve() for p in photos}  # one of them in the way fails on its own, with its own message
    in_the_way = [t for t in dict.fromkeys(in_the_way) if t.exists() and t.resolve() not in inputs]
    if in_the_way:
        names = ", ".join(str(t) for t in in_the_way[:4]) + (f" and {len(in_the_way) - 4} more" if len(in_the_way) > 4
                                                             else "")
        raise UsageError(f"{len(in_the_way)} file(s) of an earlier run would be replaced: {names}. Add --force to "
                         "replace them, or --skip-existing to keep each result there and skip its photo.")
    return photos


def say_skipped(skipped: int, out_dir: Path) -> None:
    if skipped:
        print(f"{skipped} skipped, their results being in {out_dir} already (--skip-existing)")


def prepare_output_folder(out_dir: Path, photos: list[Path], suffix: str) -> None:
    """Refuse, before any photo is worked, an output folder whose every result would replace its
    own photo, or that cannot be made or written; make it if missing."""
    if out_dir.exists() and all(same_file(out_dir / result_name(p, suffix), p) for p in photos):
        raise UsageError(f"every result would replace its photo in {out_dir}; choose another output folder "
                         "or another --format")
    make_output_folder(out_dir)


def make_output_folder(out_dir: Path) -> None:
    """Make the folder if missing; refuse one that cannot be made or written (exit 1, as a file
    that cannot be written)."""
    try:
        folders.make_folder(out_dir)
    except FolderError as exc:
        raise CliError(str(exc)) from exc


@dataclass
class MaskSource:
    """Masks for the photos of a folder: a folder of masks matched by file stem, or one mask
    file for every photo (decoded once)."""

    path: Path
    one: LoadedImage | None = None
    by_stem: dict[str, list[Path]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, photos_dir: Path) -> MaskSource:
        if path.is_file():
            try:  # read once, now: a broken mask is one message, not one failure per photo
                return cls(path, one=read_image(path))
            except ImageReadError as exc:
                raise CliError(f"the mask {exc}") from exc
        check_folder(path, "masks folder or file")
        if same_file(photos_dir, path):  # every photo would be its own mask
            raise UsageError(f"the photos and the masks are both in {photos_dir}; put the masks in a folder of "
                             "their own (a mask has the photo's file stem)")
        source = cls(path)
        for mask_file in photo_files(path, "masks folder"):
            source.by_stem.setdefault(mask_file.stem, []).append(mask_file)
        return source

    @property
    def folder(self) -> Path | None:
        """The masks folder; None for one mask file."""
        return self.path if self.one is None else None

    def files(self) -> list[Path]:
        return [self.path] if self.one is not None else [m for same in self.by_stem.values() for m in same]

    def for_photo(self, photo: Path) -> Path:
        if self.one is not None:
            return self.path
        if photo.stem not in self.by_stem:
            raise CliError(f"no mask {photo.stem}.* in {self.path}")
        if len(self.by_stem[photo.stem]) > 1:  # which one was meant is not ours to guess
            raise CliError("several masks have its name (" + ", ".join(m.name for m in self.by_stem[photo.stem])
                           + "); keep one")
        return self.by_stem[photo.stem][0]


def folder_photos(photos_dir: Path, masks: MaskSource | None) -> list[Path]:
    """The photos to work: the folder's images, without a mask file kept among them."""
    photos = [p for p in photo_files(photos_dir) if masks is None or masks.one is None or not same_file(p, masks.path)]
    if not photos:
        raise UsageError(f"no photos in {photos_dir}")
    return photos


def input_paths(photos: list[Path], masks: MaskSource | None) -> set[Path]:
    """Every file the run reads: none of them is ever written."""
    return {p.resolve() for p in photos} | ({m.resolve() for m in masks.files()} if masks is not None else set())


#: process(photo, target, progress) -> the flags of this photo (CUT_OFF_FILE, EMPTY_MASK), raising
#: CliError/EngineError/SaveError/ValueError for a failure of this photo alone
Process = Callable[[Path, Path, Callable | None], set[str]]


@dataclass
class FolderRun:
    total: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    flagged: dict[str, list[str]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.total - len(self.failures) - len(self.flagged.get(EMPTY_MASK, ()))

    def print_lists(self, unchanged_why: str = "their masks being empty") -> int:
        """The photos to look at, on stderr; the exit code (1 when any failed or was cut off)."""
        unchanged = self.flagged.get(EMPTY_MASK, [])
        if unchanged:
            print(f"{len(unchanged)} written unchanged, {unchanged_why}: {', '.join(unchanged)}", file=sys.stderr)
        cut_off = self.flagged.get(CUT_OFF_FILE, [])
        if cut_off:  # written, but their lower part is plain: a script must not take them for whole
            print(f"{len(cut_off)} written from cut-off files (the part missing from the file stays plain): "
                  f"{', '.join(cut_off)}", file=sys.stderr)
        if self.failures:
            print(f"{len(self.failures)} failed:", file=sys.stderr)
            for name, why in self.failures:
                print(f"  {name}: {why}", file=sys.stderr)
        return 1 if self.failures or cut_off else 0


def run_over_photos(photos: list[Path], out_dir: Path, suffix: str, inputs: set[Path], process: Process) -> FolderRun:
    """Work each photo into out_dir/<stem><suffix or its own>; a photo's failure is recorded
    and the run goes on. No input file is ever overwritten, and no two photos write one file."""
    run = FolderRun(len(photos))
    written = Names("{name}")  # a.png and a.jpg would both write a.<ext>: refuse the second
    try:
        for index, photo in enumerate(photos, 1):
            draw_progress(index - 1, len(photos), photo.name)
            try:
                target = out_dir / result_name(photo, suffix)
                format_for(target)
                if is_input(target, inputs):
                    raise CliError(f"{target.name} in the output folder is one of the inputs; it is not "
                                   "overwritten (choose another output folder)")
                written.check(target)
                flags = process(photo, target, _within(index - 1, len(photos), photo.name))
                written.keep(target, photo)
                for flag in flags:
                    run.flagged.setdefault(flag, []).append(photo.name)
            except BrokenPipeError:
                raise  # the reader of the output went away (`| head`): the run ends, not this photo
            except (CliError, EngineError, SaveError, ValueError) as exc:
                run.failures.append((photo.name, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one photo's unforeseen failure must not end the run
                run.failures.append((photo.name, f"unexpected error ({type(exc).__name__}: {exc})"))
    except BrokenPipeError:
        raise
    except BaseException:  # stopped (Ctrl+C, kill): what is written stays; say what, for a rerun
        if written.by:
            print(f"{line_start()}stopped at {photo.name}; written before it: {', '.join(written.by.values())}",
                  file=sys.stderr)
        raise
    draw_progress(len(photos), len(photos), "")
    if sys.stderr.isatty():  # end the bar's line
        print(file=sys.stderr)
    return run


def _within(done: int, total: int, name: str):
    """The engine's progress inside one photo, drawn on a terminal (a big photo takes many
    seconds); a log gets a line as each stage starts (a 36 MP scan's restore takes minutes)."""
    if not sys.stderr.isatty():
        return ProgressBar(name)

    def report(stage: str, _step: int, _steps: int, fraction: float) -> None:
        draw_progress(done, total, f"{name}: {STAGE_TEXT.get(stage, stage)} {fraction:.0%}", done + fraction)
    return report


def draw_progress(done: int, total: int, name: str, position: float | None = None) -> None:
    width = 30
    filled = int(width * (done if position is None else position) / max(total, 1))
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name}"
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line[:100].ljust(100))
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
