"""Restore a folder of scans (an album) with one set of choices: what the editor's "Restore a
folder of scans…" runs on a worker thread. No Qt. The detector and the fill's model are
loaded once; a photo that fails is reported and the others are done; no input file is ever
written, and twins (a.jpg beside a.png) never write one result. The command line's
`inpaint-studio restore FOLDER -o OUT` does the same with its own options and output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.engine import Cancelled, EngineError, InpaintSettings
from app.engine.pipeline import resolve_coarse
from app.io.atomic import SaveError
from app.io.folders import (
    FolderError,
    Names,
    is_input,
    make_folder,
    photo_files,
    result_name,
    same_file,
    write_mask,
    write_result,
)
from app.io.images import CUT_OFF, ImageReadError, read_image
from app.restore.choices import RestoreChoices
from app.restore.detect import choose_detector
from app.restore.pipeline import FILL_SETTINGS, restore
from app.restore.repair import RepairSteps

RESTORED, UNCHANGED, FAILED, SKIPPED = "restored", "unchanged", "failed", "skipped"
MASKS_FOLDER = "masks"  # beside the results: each photo's proposal, to trim and give back to the command line


@dataclass
class AlbumPhoto:
    """What became of one photo."""

    photo: Path
    # RESTORED, UNCHANGED (nothing found and no repair: its own file copied), FAILED, or SKIPPED (its
    # result was in the results folder already and the user chose to keep it: an album resumed)
    status: str
    text: str  # for people: "2.31 % filled as damage" or what went wrong
    target: Path | None = None
    notes: list[str] = field(default_factory=list)  # what the user should know (a cut-off file, a fallback)


@dataclass
class AlbumRun:
    photos: list[AlbumPhoto] = field(default_factory=list)
    total: int = 0
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)  # said once for the album (the detector fell back)

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.photos)


def album_photos(photos_dir: Path, out_dir: Path, mask_dir: Path | None = None) -> list[Path]:
    """The scans of `photos_dir`, checked against `out_dir` (and `mask_dir`) before any work:
    raises FolderError for a missing folder, one without photos, or results or masks that would
    land among the scans (also through another name for the folder)."""
    if not photos_dir.is_dir():
        raise FolderError(f"the scans folder {photos_dir} {'is a file' if photos_dir.exists() else 'does not exist'}")
    photos = photo_files(photos_dir, "scans folder")
    if not photos:
        raise FolderError(f"there are no photos in {photos_dir}")
    if same_file(out_dir, photos_dir):
        raise FolderError("the results would be written among the scans; choose another folder for them")
    if mask_dir is not None and same_file(mask_dir, photos_dir):
        raise FolderError(f"the masks would be written among the scans (the results' “{MASKS_FOLDER}” folder is "
                          "the scans folder); choose another folder for the results")
    if out_dir.is_file():
        raise FolderError(f"{out_dir} is a file; choose a folder for the results")
    return photos


def results_in_the_way(photos_dir: Path, out_dir: Path, save_masks: bool = False) -> list[Path]:
    """The files of `out_dir` (and its masks folder) the album would replace: a previous album's
    results, or anything else of those names, which the user may want to keep. Raises as
    `album_photos`."""
    mask_dir = out_dir / MASKS_FOLDER if save_masks else None
    photos = album_photos(photos_dir, out_dir, mask_dir)
    targets = [out_dir / result_name(p, "") for p in photos]
    if mask_dir is not None:
        targets += [mask_dir / (p.stem + ".png") for p in photos]
    return [t for t in dict.fromkeys(targets) if t.exists()]


def restore_album(
    photos_dir: Path,
    out_dir: Path,
    choices: RestoreChoices,
    steps: RepairSteps,
    *,
    save_masks: bool = False,
    skip_done: bool = False,
    settings: InpaintSettings = FILL_SETTINGS,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_photo: Callable[[AlbumPhoto], None] | None = None,
) -> AlbumRun:
    """Restore every scan of `photos_dir` into `out_dir` (made if missing; each result in its
    scan's own format, BMP as PNG) with `choices` (kinds, detector, sensitivity) and `steps`, the
    damage filled with `settings` (the editor passes its Run panel's method and texture).
    `skip_done`: a scan whose result is in `out_dir` already is left as it is (an album stopped
    and started again goes on where it was).
    `progress(fraction of the album, text)`; `cancel()` is polled inside each photo's work, and a
    cancelled photo writes nothing; `on_photo` hears of each photo as it ends. Raises FolderError
    (and the model's EngineError) before any photo is worked."""
    cancel = cancel or (lambda: False)
    mask_dir = out_dir / MASKS_FOLDER if save_masks else None
    photos = album_photos(photos_dir, out_dir, mask_dir)
    run = AlbumRun(total=len(photos))
    detector, model, backend, owned = choices.detector, None, None, False
    if choices.kinds:  # else nothing is filled: no detector or fill model to load (or to fail)
        detector, model, note = choose_detector(choices.detector, None)
        if note:
            run.notes.append(note)
        _stage, backend, backend_note, owned = resolve_coarse(settings, None)
        if backend_note:
            run.notes.append(backend_note)
    try:
        make_folder(out_dir, "results folder")
        if mask_dir is not None:
            make_folder(mask_dir, "masks folder")
        inputs = {p.resolve() for p in photos}
        written, masks_written = Names("{name}"), Names("the mask {name}")
        for index, photo in enumerate(photos):
            if cancel():
                run.cancelled = True
                break

            def within(_stage, _k, _n, fraction, index=index, name=photo.name):
                if progress is not None:
                    progress((index + fraction) / len(photos), f"{name} ({index + 1} of {len(photos)})")

            within("", 0, 1, 0.0)
            kept = out_dir / result_name(photo, "")
            if skip_done and kept.exists():
                outcome = AlbumPhoto(photo, SKIPPED, "in the results folder already: kept as it is", kept)
            else:
                try:
                    outcome = _restore_one(photo, out_dir, mask_dir, inputs, written, masks_written, choices,
                                           steps, settings, detector, model, backend, within, cancel)
                except Cancelled:
                    run.cancelled = True
                    break
            run.photos.append(outcome)
            if on_photo is not None:
                on_photo(outcome)
    finally:
        if owned and backend is not None:
            backend.close()
    if progress is not None and not run.cancelled:
        progress(1.0, "done")
    return run


def _restore_one(photo: Path, out_dir: Path, mask_dir: Path | None, inputs: set[Path], written: Names,
                 masks_written: Names, choices: RestoreChoices, steps: RepairSteps, settings: InpaintSettings,
                 detector: str, model, backend, progress, cancel) -> AlbumPhoto:
    target = out_dir / result_name(photo, "")
    mask_file = None if mask_dir is None else mask_dir / (photo.stem + ".png")
    notes: list[str] = []
    try:
        if is_input(target, inputs):
            raise FolderError(f"{target.name} would replace one of the scans; it is not overwritten")
        written.check(target)
        if mask_file is not None:
            try:  # a twin (a.jpg beside a.png) keeps its result; only its mask, an extra, is left out
                if is_input(mask_file, inputs):
                    raise FolderError(f"its mask {mask_file.name} would replace one of the scans")
                masks_written.check(mask_file)
            except FolderError as exc:
                notes.append(f"no mask saved: {exc}")
                mask_file = None
        loaded = read_image(photo, max_megapixels=settings.max_megapixels, partial=True)
        result = restore(loaded.rgb, choices.kinds, choices.sensitivity, steps, settings, detector=detector,
                         model=model, backend=backend, progress=progress, cancel=cancel, deep=loaded.meta.deep)
        unchanged = not result.mask.any() and not steps.any
        notes += _write(photo, target, mask_file, loaded, result, unchanged)
        written.keep(target, photo)
        if mask_file is not None:
            masks_written.keep(mask_file, photo)
    except Cancelled:
        raise
    except (FolderError, ImageReadError, EngineError, SaveError, ValueError) as exc:
        return AlbumPhoto(photo, FAILED, str(exc))
    except Exception as exc:  # noqa: BLE001 - one scan's unforeseen failure must not end the album
        return AlbumPhoto(photo, FAILED, f"unexpected error ({type(exc).__name__}: {exc})")
    if CUT_OFF in loaded.meta.notes:
        notes.append(f"{photo.name} is cut off: the part missing from the file stays plain")
    notes += [n for n in result.notes if "unchanged" in n or "fell back" in n]
    if unchanged:
        return AlbumPhoto(photo, UNCHANGED, "no damage found and no repair ticked: copied as it was", target, notes)
    share = 100.0 * (result.mask > 0).mean()
    text = f"{share:.2f} % filled as damage" if result.mask.any() else "no damage found"
    return AlbumPhoto(photo, RESTORED, text + (", repaired" if steps.any else ""), target, notes)


def _write(photo: Path, target: Path, mask_file: Path | None, loaded, result, unchanged: bool) -> list[str]:
    """The mask first (a result without its mask would be taken for done), then the result; if
    the result cannot be written the mask goes too: a scan that failed leaves nothing."""
    if mask_file is not None:
        write_mask(mask_file, result.mask)
    try:
        lost = write_result(target, photo, result.meta_of(loaded.meta), result.image, None, unchanged)
        return [f"{target.name}: {what}" for what in lost]
    except BaseException:
        if mask_file is not None:
            mask_file.unlink(missing_ok=True)
        raise
