"""Opening photos, recent files, exporting images, importing/exporting mask layers.

Decoding and encoding run off the GUI thread (app/ui/background.py): a 24 MP JPEG takes
about a second. Errors come back as messages; nothing is lost (writes are atomic).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QSettings, QStandardPaths, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QWidget

from app.canvas.document import Document
from app.canvas.session import EditSession
from app.io.atomic import atomic_write
from app.io.images import READ_EXTENSIONS, SAVE_FORMATS, MaskFile, format_for, read_image, read_mask_for, write_image
from app.ui.background import BackgroundTasks
from app.ui.launch import SAMPLE_PHOTO
from app.ui.messages import confirm_overwrite, show_error

MAX_RECENT = 10
OPEN_FILTER = "Photos (" + " ".join(f"*{ext}" for ext in READ_EXTENSIONS) + ");;All files (*)"
EXPORT_FILTERS = {
    "PNG (*.png)": ".png", "JPEG (*.jpg *.jpeg)": ".jpg", "TIFF (*.tif *.tiff)": ".tif", "WebP (*.webp)": ".webp",
}


def save_suggestion(source: str | None, name: str) -> str:
    """Where a save dialog starts: `name` beside the photo, unless that folder is not the user's
    to write in (the bundled sample photo sits in the program's own folder) — then Pictures."""
    folder = Path(source).parent if source else None
    if folder is None or folder == SAMPLE_PHOTO.parent or not os.access(folder, os.W_OK):
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        folder = Path(pictures) if pictures and Path(pictures).is_dir() else Path.home()
    return str(folder / name)


def new_document(path: str, max_megapixels: float) -> Document:
    """Decode a photo into a fresh document with one empty fill layer (runs off the GUI thread)."""
    loaded = read_image(path, max_megapixels=max_megapixels, partial=True)
    doc = Document(photo=loaded.rgb, meta=loaded.meta, source_path=str(path))
    doc.layers.append(doc.new_layer("Mask 1"))
    return doc


def _natural_key(path: Path) -> tuple:
    """Sort key by which "scan2" comes before "scan10", as file managers list them; names equal
    but for case or leading zeros ("scan1", "scan01") still get an order of their own."""
    parts = [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.stem.lower())]
    return parts, path.stem, path.suffix.lower(), path.name  # the stem first: scan2.ora beside scan2.png


def sibling_photo(path: str | Path, step: int) -> Path | None:
    """The photo `step` places after (negative: before) `path` in its folder, in the file
    manager's order; None past either end. `path` itself need not be a photo (a project).
    Raises OSError when the folder cannot be read."""
    path = Path(path)
    photos = [p for p in path.parent.iterdir() if p.suffix.lower() in READ_EXTENSIONS and p.is_file()]
    if path.suffix.lower() not in READ_EXTENSIONS:  # a project stands where its photo does (scan2.ora: scan2.png)
        photos = [p for p in photos if p.stem.lower() != path.stem.lower()]
    ordered = sorted({*photos, path}, key=_natural_key)
    index = ordered.index(path) + step
    return ordered[index] if 0 <= index < len(ordered) and ordered[index] != path else None


def file_stem(name: str) -> str:
    """A layer name as a file name: / and the characters no file system takes become _."""
    return "".join("_" if c in '/\\:*?"<>|' or ord(c) < 32 else c for c in name).strip(" .") or "layer"


def encode_mask_png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask), "L").save(buf, "PNG")
    return buf.getvalue()


class FileController(QObject):
    document_loaded = Signal(object)  # Document, decoded off the GUI thread
    notice = Signal(str)
    recent_changed = Signal()
    busy_changed = Signal(bool)

    def __init__(self, session: EditSession, window: QWidget, settings: QSettings | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.window = session, window
        self.settings = settings or QSettings("InpaintStudio", "Inpaint Studio")
        self.tasks = BackgroundTasks(self)
        self.jpeg_quality = 92
        # asked before another photo replaces the document (the project controller asks
        # about unsaved changes); True = go on now, False = it calls back when answered
        self.confirm_replace: Callable[[Callable[[], None]], bool] = lambda proceed: True
        # set by the project controller: .ora paths (recent files, drops) open as projects
        self.open_project: Callable[[str], None] | None = None
        self._sibling_tried: Path | None = None  # a photo that failed to open: Next/Previous step on from it

    # ---------------------------------------------------------------- open
    def open_dialog(self) -> None:
        if not self.confirm_replace(self.open_dialog):
            return
        start = str(Path(self.recent_files()[0]).parent) if self.recent_files() else ""
        path, _ = QFileDialog.getOpenFileName(self.window, "Open photo", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str, remember: bool = True) -> None:
        if self.open_project is not None and path.lower().endswith(".ora"):
            self.open_project(path)  # it asks about unsaved changes itself
            return
        if not self.confirm_replace(lambda: self.open_path(path, remember)):
            return
        name = Path(path).name
        self.notice.emit(f"Opening {name}…")
        self.busy_changed.emit(True)
        limit = self.session.document.settings.max_megapixels

        def done(doc: Document) -> None:
            self.busy_changed.emit(False)
            self._sibling_tried = None
            doc.settings = doc.settings.with_choices_of(self.session.document.settings)
            doc.restore = self.session.document.restore  # the Restore panel's choices carry over too
            if remember:
                self.add_recent(path)
            self.document_loaded.emit(doc)
            notes = "; ".join(doc.meta.notes)
            # Save Project suggests this name: the work saved on this photo is likely there (QA: Page Up
            # back to a photo showed it without its layers, and no word of the project beside it)
            project = Path(path).with_suffix(".ora")
            beside = f"; the project {project.name} beside it may hold your layers for it" if project.is_file() else ""
            self.notice.emit(f"Opened {name}" + (f" ({notes})" if notes else "") + beside)

        def failed(exc: Exception) -> None:
            self.busy_changed.emit(False)
            self._sibling_tried = Path(path)
            self.notice.emit(f"Could not open {name}")
            self.forget_if_gone(path)
            show_error(self.window, "Cannot open photo", str(exc))

        self.tasks.run(lambda: new_document(path, limit), done, failed)

    def open_sibling(self, step: int) -> None:
        """Open the next (step 1) or previous (-1) photo in the open photo's folder: a scanned
        album is worked through photo by photo. Unsaved work is asked about first."""
        source = self.session.document.source_path
        if not source or Path(source).parent == SAMPLE_PHOTO.parent:
            self.notice.emit("Open a photo from a folder first; Page Down then opens the next one in it.")
            return
        # a photo of the folder that did not open (damaged, too big): step on from it, not onto it again
        tried = self._sibling_tried
        if tried is not None and tried.parent == Path(source).parent and str(tried) != source:
            source = str(tried)
        try:
            found = sibling_photo(source, step)
        except OSError as exc:
            self.notice.emit(f"Cannot list the photos of {Path(source).parent}: {exc.strerror or exc}")
            return
        if found is None:
            self.notice.emit(f"{'Last' if step > 0 else 'First'} photo in {Path(source).parent.name or 'this folder'}.")
            return
        self.open_path(str(found))

    # ---------------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent_files", files[:MAX_RECENT])
        self.recent_changed.emit()

    def forget_if_gone(self, path: str) -> None:
        """Drop a file that no longer exists from the recent list (it failed to open); one on a
        drive or share that is not there now stays."""
        if not Path(path).exists() and Path(path).parent.is_dir():
            gone = str(Path(path).resolve())
            self.settings.setValue("recent_files", [p for p in self.recent_files() if p != gone])
            self.recent_changed.emit()

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        menu.setToolTipsVisible(True)  # the full path of each entry
        files = self.recent_files()
        names = [Path(p).name for p in files]
        for path, name in zip(files, names, strict=True):
            # two photos of the same name (old.png here and there) are told apart by their folder
            label = f"{name}  —  {Path(path).parent}" if names.count(name) > 1 else name
            action = menu.addAction(label)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if files:
            menu.addSeparator()
            menu.addAction("Clear list").triggered.connect(self._clear_recent)
        else:
            menu.addAction("(none)").setEnabled(False)

    def _clear_recent(self) -> None:
        self.settings.setValue("recent_files", [])
        self.recent_changed.emit()

    # ---------------------------------------------------------------- export
    def export_image(self) -> tuple:
        """What Export writes: the pending result if there is one (with its 16-bit pixels, repairs
        of a 16-bit scan), else the working photo."""
        doc, result = self.session.document, self.session.document.result
        if result is None:
            return doc.photo, doc.meta
        return result.image, doc.meta if result.deep is None else dataclasses.replace(doc.meta, deep=result.deep)

    def export_dialog(self) -> None:
        doc = self.session.document
        stem = Path(doc.source_path).stem if doc.source_path else "photo"
        # the photo's own format first: a PNG or TIFF stays lossless unless the user picks JPEG
        source_suffix = Path(doc.source_path).suffix.lower() if doc.source_path else ""
        suffix = {".png": ".png", ".tif": ".tif", ".tiff": ".tif", ".webp": ".webp"}.get(source_suffix, ".jpg")
        suggestion = save_suggestion(doc.source_path, f"{stem}-edited{suffix}")
        last = str(self.settings.value("export/folder", "") or "")
        if last and Path(last).is_dir() and os.access(last, os.W_OK):  # an album goes to one folder
            suggestion = str(Path(last) / Path(suggestion).name)
        start_filter = next(name for name, ext in EXPORT_FILTERS.items() if ext == suffix)
        typed, chosen = QFileDialog.getSaveFileName(self.window, "Export image", suggestion,
                                                    ";;".join(EXPORT_FILTERS), start_filter)
        # "trip.2024.06" has a suffix that is no image format: the chosen type's is added
        known = Path(typed).suffix.lower() in SAVE_FORMATS
        path = typed if known else typed + EXPORT_FILTERS.get(chosen, ".png")
        if not typed or not confirm_overwrite(self.window, typed, path):
            return
        try:
            fmt = format_for(path)
        except ValueError as exc:
            show_error(self.window, "Cannot export", str(exc))
            return
        # a lossless WebP stays lossless unless the user lowers it (not remembered for later exports)
        keep_lossless = fmt == "WEBP" and doc.meta.lossless_webp
        quality = 100 if keep_lossless else self.jpeg_quality
        if fmt in ("JPEG", "WEBP"):
            label = "WebP quality (1–100; 100 = lossless):" if fmt == "WEBP" else "JPEG quality (1–100):"
            quality, ok = QInputDialog.getInt(self.window, "Quality", label, quality, 1, 100)
            if not ok:
                return
            if not keep_lossless:
                self.jpeg_quality = quality
        self.export_to(path, quality)

    def export_to(self, path: str, quality: int = 92) -> None:
        image, meta = self.export_image()
        snapshot = image.copy()  # the user may go on editing while this encodes
        name = Path(path).name
        # what Export writes while a result waits is the result: say so, it is not applied yet
        pending = ["with the pending result, not applied yet"] if self.session.document.result is not None else []
        self.notice.emit(f"Exporting {name}…")
        self.busy_changed.emit(True)

        def done(lost: list[str]) -> None:
            self.busy_changed.emit(False)
            self.settings.setValue("export/folder", str(Path(path).parent))  # where the next export goes
            said = pending + lost
            self.notice.emit(f"Exported {name}" + (f" ({'; '.join(said)})" if said else ""))

        def failed(exc: Exception) -> None:
            self.busy_changed.emit(False)
            self.notice.emit(f"Export of {name} failed")
            show_error(self.window, "Export failed", str(exc))

        self.tasks.run(lambda: write_image(path, snapshot, meta, quality), done, failed)

    # ---------------------------------------------------------------- mask layers
    def import_mask_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Import mask image", "", OPEN_FILTER)
        if path:
            self.import_mask(path)

    def import_mask(self, path: str) -> None:
        doc = self.session.document
        size = doc.size
        name = Path(path).name

        def load() -> MaskFile:
            return read_mask_for(path, size)  # another aspect ratio is refused, as on the command line

        def done(read: MaskFile) -> None:
            if self.session.document is not doc:
                return  # another photo was opened meanwhile
            self.session.add_layer(name=Path(path).stem, mask=np.ascontiguousarray(read.mask))
            scaled = read.scaled_from
            self.notice.emit(f"Imported {name} as a layer" + (
                f" (scaled from {scaled[0]}x{scaled[1]} to the photo's size)" if scaled else ""))
            if read.doubt:  # a photo picked by mistake: the layer is there (undoable), but say so
                self.notice.emit(f"Imported as a layer, but {read.doubt}.")

        def failed(exc: Exception) -> None:
            show_error(self.window, "Cannot import mask", str(exc) or f"{name} is not an image this program can read.")

        self.tasks.run(load, done, failed)

    def export_layer_dialog(self) -> None:
        layer = self.session.active_layer()
        if layer is None:
            self.notice.emit("No layer to export.")
            return
        start = save_suggestion(self.session.document.source_path, f"{file_stem(layer.name)}.png")
        path, _ = QFileDialog.getSaveFileName(self.window, "Export layer", start, "PNG (*.png)")
        final = path if path.lower().endswith(".png") else path + ".png"
        if path and confirm_overwrite(self.window, path, final):
            self.export_layer(final)

    def export_layer(self, path: str) -> None:
        layer = self.session.active_layer()
        if layer is None:
            return
        mask = layer.mask.copy()
        name = Path(path).name

        def write() -> None:
            data = encode_mask_png(mask)
            with atomic_write(path) as handle:
                handle.write(data)

        self.tasks.run(write, lambda _v: self.notice.emit(f"Exported layer to {name}"),
                       lambda exc: show_error(self.window, "Layer export failed", str(exc)))
