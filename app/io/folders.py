"""Folders of photos, as the folder commands and the editor's album restore work them: the photos
of a folder, the name of each one's result, results written without ever replacing an input,
and the names a run has written (twins a.jpg and a.png must not write one a.png). No Qt, no
printing: a problem is a `FolderError` naming it."""

from __future__ import annotations

import os
from pathlib import Path

from app.io.atomic import atomic_write
from app.io.images import (
    CUT_OFF,
    GRAY_AS_RGB,
    READ_EXTENSIONS,
    ROTATED_UPRIGHT,
    SAVE_FORMATS,
    ImageMeta,
    encode_image,
    format_for,
    write_image,
)


class FolderError(ValueError):
    """One photo's (or the folder's) problem, said in a line."""


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder: equal once resolved, or the same file seen
    through another name (a case-insensitive disk's ~/Scans and ~/scans, a hard link)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def is_input(target: Path, inputs: set[Path]) -> bool:
    """Whether writing `target` would replace one of `inputs` (resolved paths of the files a run
    reads), also through another name for it."""
    if target.resolve() in inputs:
        return True
    return target.exists() and any(same_file(target, path) for path in inputs)


def make_folder(folder: Path, what: str = "output folder") -> None:
    """Make the folder if missing; refuse one that cannot be made or written (now, not after
    working every photo)."""
    if folder.is_file():
        raise FolderError(f"{folder} is a file; name a folder for the results.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderError(f"cannot create the {what} {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK):
        raise FolderError(f"cannot write in the {what} {folder}: permission denied")


def photo_files(folder: Path, what: str = "photos folder") -> list[Path]:
    """The images of `folder` (not its subfolders; not hidden files such as the ._ copies macOS leaves)."""
    try:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in READ_EXTENSIONS and not p.name.startswith("."))
    except OSError as exc:
        raise FolderError(f"cannot read the {what} {folder}: {(exc.strerror or str(exc)).lower()}") from exc


def result_name(photo: Path, suffix: str) -> str:
    """The result's file name: the photo's stem with --format's suffix, else its own, or .png
    for a format read but not written (BMP): lossless, as the photo was."""
    own = photo.suffix if photo.suffix.lower() in SAVE_FORMATS else ".png"
    return photo.stem + (suffix or own)


def write_result(target: Path, photo: Path, meta: ImageMeta, image, quality: int | None, unchanged: bool) -> list[str]:
    """Write a photo's result with the photo's `meta` (its 16-bit pixels the result's, when
    repaired at 16 bits); one the run left unchanged is the photo's own file, copied (a JPEG is
    not encoded again) when it goes to the same format at the default quality. Returns what the
    file could not keep (write_image)."""
    same_format = photo.suffix.lower() in SAVE_FORMATS and format_for(photo) == format_for(target)
    # a photo turned upright from its EXIF tag is written upright, as every other result
    as_read = CUT_OFF not in meta.notes and ROTATED_UPRIGHT not in meta.notes
    if unchanged and same_format and quality is None and as_read:
        data = photo.read_bytes()
        with atomic_write(target) as handle:
            handle.write(data)
        return []
    return write_image(target, image, meta, quality)


class Names:
    """Files a run writes, by the photo that wrote them: a second photo of the same stem (a.jpg
    beside a.png) must not replace the first one's file. A photo that failed wrote nothing and
    holds no name."""

    def __init__(self, what: str) -> None:
        self.what = what  # "a.png" or "its mask a.png", for the message
        self.by: dict[str, str] = {}

    @staticmethod
    def _key(target: Path) -> str:
        return str(target).casefold()  # A.png and a.png are one file on macOS and Windows

    def check(self, target: Path) -> None:
        if self._key(target) in self.by:
            what = self.what.format(name=target.name)
            raise FolderError(f"{self.by[self._key(target)]} already wrote {what}; rename one of them")

    def keep(self, target: Path, photo: Path) -> None:
        self.by[self._key(target)] = photo.name


def write_mask(path: str | Path, mask) -> None:
    """A damage mask, one gray channel, lossless (a WebP too): exactly the pixels that were filled."""
    data = encode_image(mask[:, :, None].repeat(3, axis=2), format_for(path), ImageMeta(notes=[GRAY_AS_RGB]),
                        quality=100)
    with atomic_write(path) as handle:
        handle.write(data)
