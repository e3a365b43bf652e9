"""Reading and writing photos: RGB uint8 to edit, metadata kept.

Every photo becomes RGB uint8 HxWx3 with its EXIF orientation applied; what was
converted (16-bit, alpha, grayscale, CMYK) is reported in `ImageMeta.notes` so the
command line and the editor can tell the user. EXIF and the ICC profile are written
back on export, and an alpha channel is re-attached where the format keeps it.

A 16-bit PNG or TIFF is edited in 8 bits, but its 16-bit pixels are kept (`ImageMeta.deep`):
a PNG or TIFF export writes 16 bits, the source's value wherever the edits left a pixel as
it was read and the 8-bit value scaled up where they changed it (`deep_pixels`); applied
repairs, made at 16 bits, replace them (app.restore.pipeline.repair_deep). OpenCV
decodes them (Pillow reduces them to 8 bits); they are adopted only where they agree with
Pillow's reading, so an odd layout (premultiplied alpha) stays 8-bit, as noted; a TIFF whose colours are
separate planes, which both misread, is read by tifffile.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from app.engine.pipeline import is_gray
from app.io.atomic import atomic_write

# formats the product reads and writes, by extension
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
READ_EXTENSIONS = tuple(SAVE_FORMATS) + (".bmp",)
DEFAULT_MAX_MEGAPIXELS = 100.0
# the notes of a 16-bit photo: edited in 8 bits per channel, its 16-bit pixels kept for export
# (short: the editor shows them in its status bar)
KEPT_16_BIT = "16-bit colour, edited in 8 bits (repairs in 16); PNG and TIFF exports keep 16 bits where unchanged"
KEPT_16_BIT_GRAY = ("16-bit grayscale, edited in 8 bits (repairs in 16); PNG and TIFF exports keep 16 bits where "
                    "unchanged")
# ... and of one whose 16-bit pixels could not be decoded (exported with 8 bits per channel)
REDUCED_16_BIT = "16-bit colour reduced to 8-bit RGB (edited and exported with 8 bits per channel)"
REDUCED_16_BIT_GRAY = "16-bit grayscale reduced to 8-bit RGB"
ROTATED_UPRIGHT = "rotated upright from its EXIF orientation"
GRAY_AS_RGB = "grayscale shown as RGB"
# a photo file that ends early (a copy or a card write cut short), read with `partial=True`
CUT_OFF = ("the file is cut off: only the part that could be decoded is shown; the rest is plain "
           "gray or black, or has less detail")
# the notes of a gray source: exported gray while the edits keep it gray
GRAY_SOURCE = (GRAY_AS_RGB, KEPT_16_BIT_GRAY, REDUCED_16_BIT_GRAY)
# notes that tell, without anything lost (the command line prints them as notes, not warnings)
INFORMATIONAL_NOTES = (KEPT_16_BIT, KEPT_16_BIT_GRAY, ROTATED_UPRIGHT, GRAY_AS_RGB)
# the formats that keep 16 bits per channel
DEEP_FORMATS = ("PNG", "TIFF")
# EXIF tags a TIFF written by tifffile carries (as TIFF tags; it writes no EXIF sub-IFD)
TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)  # description, make, model, software, date, artist, copyright
TIFF_RESOLUTION_TAGS = (282, 283, 296)  # X/YResolution, ResolutionUnit
TIFF_BLOCK_TAGS = {700: 1, 33723: 7, 34377: 1}  # XMP, IPTC, Photoshop blocks: tag -> TIFF type (BYTE, UNDEFINED)
# what a TIFF written by tifffile cannot carry, by EXIF tag: the sub-IFDs tifffile does not write
EXIF_SUB_IFDS = {0x8769: "exposure and lens details", 0x8825: "GPS position"}
# Pillow modes of the 16-bit files whose pixels OpenCV decodes (not CMYK, Lab, float...)
DEEP_MODES = ("RGB", "RGBA", "I;16", "I;16B", "I;16L", "I")
DEEP_ROWS = 1024  # rows per pass when converting 16-bit pixels (bounds the temporaries on 50 MP photos)
# the formats that keep an alpha channel
ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
# a mask value above this counts as painted: in mask files, and in the editor's soft-edged
# layers, so the faint rim of a soft brush or eraser is not filled as if painted at full strength
PAINTED_ABOVE = 127

# A TIFF's first IFD is both its metadata and its pixel layout; Pillow's getexif() returns
# all of it. Written back as "EXIF" these would describe the *source's* strips, compression
# and sample format, and a TIFF export would take them over (a float SampleFormat makes the
# file unreadable). Only metadata is carried over.
TIFF_LAYOUT_TAGS = frozenset({
    254, 255,                 # (New)SubfileType
    256, 257, 258, 259,       # ImageWidth, ImageLength, BitsPerSample, Compression
    262, 263, 266,            # PhotometricInterpretation, Threshholding, FillOrder
    273, 277, 278, 279,       # StripOffsets, SamplesPerPixel, RowsPerStrip, StripByteCounts
    280, 281, 284, 317,       # Min/MaxSampleValue, PlanarConfiguration, Predictor
    320, 322, 323, 324, 325,  # ColorMap, TileWidth, TileLength, TileOffsets, TileByteCounts
    330, 338, 339, 340, 341,  # SubIFDs, ExtraSamples, SampleFormat, S(Min|Max)SampleValue
    347, 513, 514,            # JPEGTables, JPEGInterchangeFormat(Length)
    529, 530, 531, 532,       # YCbCr coefficients, subsampling, positioning; ReferenceBlackWhite
    34675,                    # InterColorProfile: the ICC profile travels on its own
})


class ImageReadError(Exception):
    """The file cannot be read as a photo; the message says why."""


class MaskSizeError(ImageReadError):
    """A mask whose aspect ratio is not the photo's: scaling it would misplace what is painted."""


@dataclass(eq=False)
class ImageMeta:
    exif: bytes | None = None
    icc_profile: bytes | None = None
    alpha: np.ndarray | None = None  # uint8 HxW, re-attached on save when the format allows
    source_format: str = ""
    notes: list[str] = field(default_factory=list)
    lossless_webp: bool = False  # the photo was a lossless WebP: a WebP export stays lossless by default
    dpi: tuple[float, float] | None = None  # the file's resolution (a scan's, for printing), carried to exports
    # a 16-bit source's pixels, upright, read-only uint16 HxWxC (C = 1 gray, 3 RGB, 4 RGBA); never
    # edited in place (applied repairs replace it): `deep_pixels` combines it with the edited 8-bit photo
    deep: np.ndarray | None = None


@dataclass(eq=False)
class LoadedImage:
    rgb: np.ndarray
    meta: ImageMeta


# Pillow reads a cut-off file only with its module-wide LOAD_TRUNCATED_IMAGES flag: every
# decode holds this lock (photos, masks and project layers: `load_pixels`), so a strict decode
# never runs while a partial one has the flag set
DECODE_LOCK = threading.Lock()


def read_image(path: str | Path, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS, partial: bool = False) -> LoadedImage:
    """Decode a photo file into RGB uint8 with orientation applied. With `partial`, a file
    that ends early is read as far as it goes (noted as CUT_OFF) instead of refused: a photo
    whose copy was cut short is still worth opening; a mask or a project layer is not."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        where = f" in {path.parent}" if str(path.parent) not in ("", ".") else ""  # two old.png differ by folder
        raise ImageReadError(f"Cannot read {path.name}{where}: {exc.strerror or exc}") from exc
    return decode_image(data, path.name, max_megapixels, partial)


def load_pixels(img: Image.Image, partial: bool = False) -> bool:
    """Decode `img`'s pixels; True when the file ended early and `partial` let it through."""
    with DECODE_LOCK:
        try:
            img.load()
            return False
        except OSError as exc:
            if not (partial and "truncated" in str(exc)):
                raise
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            img.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before
        return True


def decode_image(data: bytes, label: str = "image", max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 partial: bool = False) -> LoadedImage:
    # our own limit below replaces Pillow's bomb check, which would refuse photos under it
    # with a misleading message; the declared size is checked before any pixel is decoded
    Image.MAX_IMAGE_PIXELS = None
    if not data:
        raise ImageReadError(f"{label} is empty (0 bytes): nothing was saved in it, or it was cut off.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            megapixels = img.width * img.height / 1e6
            if megapixels > max_megapixels:
                raise ImageReadError(
                    f"{label} is {img.width}x{img.height} ({megapixels:.0f} MP); the limit is "
                    f"{max_megapixels:.0f} MP so that editing stays within memory."
                )
            # Pillow's TIFF decoder turns the pixels upright itself and drops the tag: read it first
            declared_orientation = img.tag_v2.get(274, 1) if img.format == "TIFF" else 1
            # each colour a plane of its own (a one-sample TIFF may say so too: it reads as any other)
            planar = img.format == "TIFF" and img.tag_v2.get(284, 1) == 2 and img.tag_v2.get(277, 1) > 1
            cut_off = load_pixels(img, partial)
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:  # Pillow's message names only its internal buffer
        if data[:2] == b"PK" and b"image/openraster" in data[:100]:  # the mimetype entry comes first
            raise ImageReadError(f"{label} is a project (OpenRaster .ora), not a photo; open it in the editor, or "
                                 "fill its layers with `inpaint-studio inpaint PROJECT.ora -o OUT`.") from exc
        if data[:4] in (b"II*\0", b"MM\0*"):
            raise ImageReadError(f"{label} is a TIFF file this program cannot read: damaged or cut off, or in a "
                                 "layout such as 16-bit grayscale with transparency (save that as RGB or RGBA).") from exc
        raise ImageReadError(f"{label} is not an image this program can read: not a JPEG, PNG, TIFF, WebP or BMP "
                             "file, or damaged from its first bytes.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{label} is not an image this program can read ({exc}).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{label} is damaged or truncated and cannot be decoded ({exc}).") from exc
    meta = ImageMeta(source_format=img.format or "", icc_profile=img.info.get("icc_profile"),
                     lossless_webp=img.format == "WEBP" and _webp_is_lossless(data), dpi=_dpi(img.info.get("dpi")))
    # Pillow reduces 16-bit colour PNGs and TIFFs to 8 bits on open; the PNG's IHDR bit depth
    # and the TIFF's BitsPerSample tell (and the colour type / photometric whether it is gray)
    sixteen = (img.format == "PNG" and len(data) > 25 and data[24] == 16) or (
        img.format == "TIFF" and _tiff_bits(img) > 8)
    gray = (img.format == "PNG" and len(data) > 25 and data[25] in (0, 4)) or (
        img.format == "TIFF" and img.tag_v2.get(262) in (0, 1))
    if cut_off:
        meta.notes.append(CUT_OFF)
    frames = getattr(img, "n_frames", 1)
    # a multi-page TIFF, an animated WebP: the rest would be dropped without a word (a camera
    # JPEG's embedded preview or gain map, an MPO frame, is not a page of the photo)
    if frames > 1 and img.format in ("TIFF", "WEBP"):
        kind = "frames" if img.format == "WEBP" else "pages"
        meta.notes.append(f"it has {frames} {kind}; only the first is edited and written")
    exif = img.getexif()
    meta.dpi = meta.dpi or _exif_dpi(exif)  # a WebP's (and some JPEGs') resolution is only in EXIF
    orientation = exif.get(0x0112, 1)
    if orientation != 1 or declared_orientation != 1:
        meta.notes.append(ROTATED_UPRIGHT)
    img = ImageOps.exif_transpose(img)
    if 0x0112 in exif:
        exif[0x0112] = 1  # the pixels are upright now; saying so keeps viewers from rotating twice
    for tag in TIFF_LAYOUT_TAGS.intersection(exif):
        del exif[tag]
    _keep_text_bytes(exif)
    try:
        meta.exif = exif.tobytes() if len(exif) else None
    except (TypeError, ValueError, struct.error, OSError):  # a damaged tag Pillow read but cannot write
        meta.exif = None
        meta.notes.append("its EXIF data is damaged and was left out")
    rgb, alpha = _to_rgb8(img, meta)
    if sixteen and planar:
        # Pillow and OpenCV both read a 16-bit planar TIFF's planes wrongly (stripes, false colours)
        deep = _planar_deep_source(data, declared_orientation, label)
        meta.deep, rgb, alpha = deep
        meta.notes = [KEPT_16_BIT] + [n for n in meta.notes if n not in (REDUCED_16_BIT_GRAY, GRAY_AS_RGB)]
    elif sixteen and img.mode in DEEP_MODES:
        deep = _deep_source(data, (orientation, declared_orientation), rgb, alpha)
        if deep is not None:
            meta.deep, rgb, alpha = deep
        note = (KEPT_16_BIT_GRAY if gray else KEPT_16_BIT) if deep is not None else (
            REDUCED_16_BIT_GRAY if gray else REDUCED_16_BIT)
        meta.notes = [note] + [n for n in meta.notes if n != REDUCED_16_BIT_GRAY]
    if not rgb.flags.writeable:  # a view of Pillow's buffer; the editor writes into the photo (Apply, undo)
        rgb = rgb.copy()
    meta.alpha = alpha
    return LoadedImage(rgb=rgb, meta=meta)


def _deep_source(data: bytes, orientations: tuple[int, int], rgb: np.ndarray,
                 alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(16-bit pixels, their 8-bit RGB, their 8-bit alpha or None) of a 16-bit PNG or TIFF:
    RGB(A) order (one channel for gray), upright, read-only. None unless OpenCV decodes them and
    they agree with Pillow's 8-bit reading `rgb`/`alpha` to within rounding: OpenCV does not
    un-premultiply alpha, reads planar TIFF strips wrongly and (by version) turns TIFFs upright
    itself or not; in all those cases the photo is edited and exported with Pillow's 8 bits."""
    import cv2

    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a side longer than OpenCV's limit, or a damaged file Pillow could read
        return None
    if arr is None or arr.dtype != np.uint16 or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    else:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    for candidate in dict.fromkeys((*orientations, 1)):  # PNGs are turned here; TIFFs by OpenCV 5 itself
        deep = _upright(arr, candidate)
        if deep.shape[:2] != rgb.shape[:2]:
            continue
        colour8 = to_8_bit(_colour_of(deep))
        if _differ_by_more_than_one(colour8, rgb[:, :, : colour8.shape[2]]):
            continue
        alpha8 = to_8_bit(deep[:, :, 3]) if deep.shape[2] == 4 else None
        if alpha8 is not None and alpha8.min() == 255:
            alpha8 = None  # opaque to the eye; an alpha of 65534 is still written back
            if deep[:, :, 3].min() == 65535:
                deep = deep[:, :, :3]
        elif alpha8 is not None and alpha is None:
            alpha8, deep = None, deep[:, :, :3]  # an alpha Pillow does not see (a 16-bit tRNS): ignored, as in 8 bits
        elif alpha8 is not None and _differ_by_more_than_one(alpha8, alpha):
            continue
        deep = np.ascontiguousarray(deep)
        deep.flags.writeable = False
        rgb8 = colour8 if colour8.shape[2] == 3 else np.ascontiguousarray(np.broadcast_to(colour8, rgb.shape))
        return deep, rgb8, alpha8
    return None


def _planar_deep_source(data: bytes, orientation: int, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """`_deep_source` of a 16-bit TIFF whose colours are separate planes, read by tifffile."""
    import tifffile

    try:
        arr = tifffile.imread(io.BytesIO(data), key=0)
    except Exception as exc:  # tifffile raises many kinds; each means the same here
        raise ImageReadError(f"{label} is a 16-bit TIFF with separate colour planes that could not be "
                             f"decoded ({exc}).") from exc
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[0] not in (3, 4):
        raise ImageReadError(f"{label} is a TIFF with separate colour planes in a layout this program cannot "
                             f"read ({arr.dtype}, {arr.shape}); save it with interleaved colours.")
    deep = np.ascontiguousarray(_upright(np.moveaxis(arr, 0, 2), orientation))
    if deep.shape[2] == 4 and deep[:, :, 3].min() == 65535:
        deep = np.ascontiguousarray(deep[:, :, :3])
    deep.flags.writeable = False
    alpha8 = to_8_bit(deep[:, :, 3]) if deep.shape[2] == 4 else None
    return deep, to_8_bit(deep[:, :, :3]), alpha8


def _dpi(value) -> tuple[float, float] | None:
    """A usable resolution from Pillow's info["dpi"] (None for missing, zero or absurd values)."""
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6):
        return None
    # a PNG stores pixels per metre: 600 dpi comes back as 599.9988
    return tuple(float(round(v)) if abs(v - round(v)) < 0.02 else v for v in (x, y))  # ppm rounding: < 0.013


def _exif_dpi(exif: Image.Exif) -> tuple[float, float] | None:
    """Dots per inch from EXIF's XResolution, YResolution and ResolutionUnit (2 inch, 3 cm)."""
    try:
        x, y, unit = float(exif[282]), float(exif[283]), int(exif.get(296, 2))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    scale = {2: 1.0, 3: 2.54}.get(unit)
    return None if scale is None else _dpi((x * scale, y * scale))


def _keep_text_bytes(exif: Image.Exif) -> None:
    """Pillow reads EXIF text as Latin-1 and writes it back as ASCII, turning "© José" into
    "? Jos?": non-ASCII text goes back as the bytes it was read from."""
    for ifd in [exif] + [exif.get_ifd(tag) for tag in (0x8769, 0x8825) if tag in exif]:  # get_ifd adds a missing one
        for tag, value in list(ifd.items()):
            if isinstance(value, str) and not value.isascii():
                ifd[tag] = value.encode("latin-1", "replace")


def _colour_of(deep: np.ndarray) -> np.ndarray:
    """The colour channels of 16-bit pixels (RGB, or the one gray channel), without the alpha."""
    return deep[:, :, :3] if deep.shape[2] >= 3 else deep[:, :, :1]


def _differ_by_more_than_one(a: np.ndarray, b: np.ndarray) -> bool:
    import cv2

    return bool(cv2.absdiff(a, b).max() > 1)  # Pillow truncates 16 to 8 bits where we round


def _upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """`arr` turned as Pillow's ImageOps.exif_transpose turns a photo of that EXIF orientation."""
    return {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation, lambda a: a)(arr)


def to_8_bit(values: np.ndarray) -> np.ndarray:
    """uint16 -> uint8, round(x / 257) (never halfway, so exact), in uint16 arithmetic: with
    v = x + 128 (at most 65535: 65407 and above all round to 255), v // 257 = (v - (v >> 8)) >> 8
    for every v < 65792; a tenth of the time of a division."""
    out = np.empty(values.shape, np.uint8)
    for y in range(0, values.shape[0], DEEP_ROWS):
        v = np.minimum(values[y : y + DEEP_ROWS], 65407)
        v += 128
        v -= v >> 8
        v >>= 8
        out[y : y + DEEP_ROWS] = v
    return out


def deep_pixels(rgb: np.ndarray, meta: ImageMeta | None, bgr: bool = False) -> np.ndarray | None:
    """The photo `rgb` (the edited 8-bit photo) at 16 bits per channel, uint16 HxWx3 (x4 with
    alpha; in BGR(A) order with `bgr`, as OpenCV writes; HxWx1 for a gray source the edits left
    gray): the source's 16-bit value wherever `rgb` still holds its 8-bit reduction, the 8-bit
    value x257 where an edit changed it. None when the photo has no 16-bit source (or another size)."""
    import cv2

    deep = None if meta is None else meta.deep
    if deep is None or deep.shape[:2] != rgb.shape[:2]:
        return None
    if deep.shape[2] == 1 and is_gray(rgb):
        return _gray_deep_pixels(rgb[:, :, 0], deep[:, :, 0])  # a gray scan stays gray: a third of the data
    has_alpha = deep.shape[2] == 4
    out = np.empty(rgb.shape[:2] + (4 if has_alpha else 3,), np.uint16)
    for y in range(0, rgb.shape[0], DEEP_ROWS):
        rows = slice(y, y + DEEP_ROWS)
        source = deep[rows, :, :3] if deep.shape[2] >= 3 else cv2.cvtColor(deep[rows], cv2.COLOR_GRAY2RGB)
        part = rgb[rows].astype(np.uint16) * np.uint16(257)
        # unchanged <=> round(source / 257) == edited <=> |source - 257 edited| <= 128, per channel
        diff = cv2.absdiff(source, part)
        largest = cv2.max(cv2.max(diff[:, :, 0], diff[:, :, 1]), diff[:, :, 2])  # 8x numpy's max(axis=2)
        unchanged = (largest <= 128).view(np.uint8)
        cv2.copyTo(np.ascontiguousarray(source), unchanged, part)
        out[rows, :, :3] = cv2.cvtColor(part, cv2.COLOR_RGB2BGR) if bgr else part
        if has_alpha:
            out[rows, :, 3] = deep[rows, :, 3]
    return out


def _gray_deep_pixels(gray: np.ndarray, source: np.ndarray) -> np.ndarray:
    """`deep_pixels` of a gray photo, HxWx1."""
    import cv2

    out = np.empty(gray.shape + (1,), np.uint16)
    for y in range(0, gray.shape[0], DEEP_ROWS):
        rows = slice(y, y + DEEP_ROWS)
        part = gray[rows].astype(np.uint16) * np.uint16(257)
        unchanged = (cv2.absdiff(source[rows], part) <= 128).view(np.uint8)
        cv2.copyTo(np.ascontiguousarray(source[rows]), unchanged, part)
        out[rows, :, 0] = part
    return out


def _tiff_bits(img: Image.Image) -> int:
    """A TIFF's bits per sample (BitsPerSample: one value, or one per channel)."""
    bits = img.tag_v2.get(258, 8)
    return max(bits, default=8) if isinstance(bits, tuple) else int(bits)


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP's image chunk is VP8L (lossless) rather than VP8 (lossy): walk the RIFF
    chunks (an extended file puts VP8X, ICCP, ALPH... before it)."""
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if fourcc in (b"VP8L", b"VP8 ", b"ANMF"):
            return fourcc == b"VP8L"
        pos += 8 + size + (size & 1)
    return False


def default_quality(fmt: str, meta: ImageMeta | None) -> int:
    """JPEG/WebP quality when the user gave none: 95, or 100 (lossless) for a WebP from a lossless WebP."""
    return 100 if fmt == "WEBP" and meta is not None and meta.lossless_webp else 95


def _to_rgb8(img: Image.Image, meta: ImageMeta) -> tuple[np.ndarray, np.ndarray | None]:
    mode = img.mode
    alpha = None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        if mode.startswith("I;16") or arr.max(initial=0) > 255:
            gray = to_8_bit(np.clip(arr, 0, 65535).astype(np.uint16))
        else:  # 32-bit integer pixels holding 8-bit values
            gray = np.clip(arr, 0, 255).astype(np.uint8)
        meta.notes.append(REDUCED_16_BIT_GRAY)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), None
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max(initial=1.0) or 1.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        meta.notes.append("floating-point image scaled to 8-bit RGB")
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        if mode == "LA":
            meta.notes.append(GRAY_AS_RGB)  # and written gray again while the edits keep it gray
        alpha = np.asarray(rgba)[:, :, 3].copy()
        if alpha.min() == 255:
            alpha = None
        else:
            meta.notes.append("alpha channel kept aside (the fill works on colour; PNG, TIFF and WebP exports "
                              "carry it again)")
        return np.ascontiguousarray(np.asarray(rgba)[:, :, :3]), alpha
    if mode == "CMYK":
        meta.notes.append("CMYK converted to RGB")
        meta.icc_profile = None  # a CMYK profile does not describe the RGB pixels
    elif mode in ("L", "1", "P"):
        if mode != "P":
            meta.notes.append(GRAY_AS_RGB)
    elif mode != "RGB" and mode.startswith(("RGB", "I;16")):
        meta.notes.append(f"{mode} reduced to 8-bit RGB")
    if mode not in ("RGB", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        # e.g. 16-bit RGB TIFF: Pillow has no RGB;16 conversion, go through numpy
        arr = np.asarray(img)
        if arr.dtype == np.uint16 and arr.ndim == 3:
            alpha = to_8_bit(arr[:, :, 3]) if arr.shape[2] == 4 else None
            return to_8_bit(arr[:, :, :3]), alpha
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), alpha


def format_for(path: str | Path) -> str:
    ext = Path(path).suffix.lower()
    if ext not in SAVE_FORMATS:
        raise ValueError(
            f"Cannot write {Path(path).name}: choose a file name ending in "
            + ", ".join(sorted(set(SAVE_FORMATS)))
        )
    return SAVE_FORMATS[ext]


def encode_image(rgb: np.ndarray, fmt: str, meta: ImageMeta | None = None, quality: int | None = None) -> bytes:
    """Encode the RGB uint8 photo to bytes in `fmt` (PNG, JPEG, TIFF, WEBP), keeping EXIF and ICC;
    at 16 bits per channel in PNG and TIFF when `meta` keeps a 16-bit source. `quality` None =
    `default_quality`."""
    quality = default_quality(fmt, meta) if quality is None else quality
    meta = meta or ImageMeta()
    deep = deep_pixels(rgb, meta, bgr=fmt == "PNG") if fmt in DEEP_FORMATS else None
    if deep is not None:
        return encode_png16(deep, meta.icc_profile, meta.exif, dpi=meta.dpi) if fmt == "PNG" else _tifffile_tiff(deep, meta)
    with_alpha = meta.alpha is not None and fmt in ALPHA_FORMATS and meta.alpha.shape == rgb.shape[:2]
    if any(note in meta.notes for note in GRAY_SOURCE) and (not with_alpha or fmt != "WEBP") and is_gray(rgb):
        # a grayscale photo whose edits stayed gray is written gray: a third of the size, and
        # its gray ICC profile still describes the pixels (it does not describe RGB ones)
        img = Image.fromarray(np.ascontiguousarray(rgb[:, :, 0]), "L")
    else:
        img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if with_alpha:
        img.putalpha(Image.fromarray(meta.alpha, "L"))  # gray + alpha: LA (WebP has no LA: RGBA)
    if fmt == "TIFF" and not _exif_tifffile_leaves_out(meta.exif):
        # Pillow's compressed TIFF writer (libtiff) holds the GIL for the whole encode (4 s for
        # 36 MP: a frozen editor during a "background" export); tifffile compresses strip by
        # strip with zlib, which lets go of it. It carries every tag such EXIF has.
        pixels = np.asarray(img)
        return _tifffile_tiff(pixels[:, :, None] if pixels.ndim == 2 else pixels, meta)
    options: dict = {}
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    # the block parsed where it is written again (TIFF, WebP with a resolution), once;
    # its non-ASCII text kept as the bytes read ("© José"), not Pillow's ASCII
    parsed = _parsed_exif(meta.exif) if fmt in ("TIFF", "WEBP") else None
    if parsed is not None:
        _keep_text_bytes(parsed)
    if meta.exif:
        options["exif"] = parsed if fmt == "TIFF" else meta.exif  # Pillow's TIFF writer parses it again
    if meta.dpi and fmt in ("PNG", "JPEG", "TIFF"):
        options["dpi"] = meta.dpi
    elif meta.dpi and fmt == "WEBP":  # WebP has no resolution field of its own: EXIF's carries it
        parsed[282], parsed[283], parsed[296] = float(meta.dpi[0]), float(meta.dpi[1]), 2
        options["exif"] = parsed.tobytes()
    if fmt == "JPEG":
        options |= {"quality": int(quality), "subsampling": 0 if quality >= 90 else 2, "optimize": True}
    elif fmt == "WEBP":
        options |= {"quality": int(quality), "lossless": quality >= 100}
    elif fmt == "TIFF" and not parsed.keys() & {0x8769, 0x8825}:
        # compressed TIFF goes through libtiff, which refuses EXIF with sub-blocks (exposure,
        # GPS: every camera photo's); Pillow's own writer keeps them, uncompressed
        options["compression"] = "tiff_deflate"
    elif fmt == "PNG":
        options["compress_level"] = 6
    buf = io.BytesIO()
    try:
        img.save(buf, fmt, **options)
    except OSError:
        # Pillow gives an optimized JPEG a buffer of 1-2 bytes per pixel, too small for a very
        # grainy photo at high quality ("broken data stream"); without optimizing it streams
        if not options.get("optimize"):
            raise
        options["optimize"] = False
        buf = io.BytesIO()
        img.save(buf, fmt, **options)
    return buf.getvalue()


def encode_png16(bgr: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None,
                 level: int = 6, dpi: tuple[float, float] | None = None) -> bytes:
    """A 16-bit PNG of uint16 BGR(A) or gray (HxWx1) pixels (OpenCV's order) with the ICC profile and EXIF
    block (Pillow writes no 16-bit colour PNG; OpenCV writes no metadata: its chunks are added)."""
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, int(level)]
    if level <= 1:  # the fast level (projects, autosaves): run-length matching is quicker and no larger here
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, encoded = cv2.imencode(".png", bgr, params)
    if not ok:
        raise ValueError("OpenCV could not encode the 16-bit PNG")
    extra = b""
    if icc_profile:
        extra += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(bytes(icc_profile)))
    if exif:
        extra += _png_chunk(b"eXIf", bytes(exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    if dpi:  # pHYs: pixels per metre
        extra += _png_chunk(b"pHYs", struct.pack(">IIB", round(dpi[0] / 0.0254), round(dpi[1] / 0.0254), 1))
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length + type, its 13 bytes, CRC: iCCP must precede IDAT
    view = memoryview(encoded).cast("B")
    return b"".join((view[:ihdr_end], extra, view[ihdr_end:]))  # one copy of a file of hundreds of MB


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _tifffile_tiff(pixels: np.ndarray, meta: ImageMeta) -> bytes:
    """A deflate TIFF of HxWxC pixels, 8 or 16 bits (C: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA),
    by tifffile (Pillow writes no 16-bit colour TIFF), with the ICC profile and EXIF's text tags
    (camera, date, copyright...) as TIFF tags."""
    import tifffile

    tags = []
    if meta.icc_profile:
        tags.append((34675, 7, len(meta.icc_profile), bytes(meta.icc_profile), True))
    exif = _parsed_exif(meta.exif)
    for tag in TIFF_TEXT_TAGS:
        value = exif.get(tag)
        if tag == 270 and isinstance(value, str) and value.lstrip().startswith('{"shape"'):
            continue  # tifffile's own description of the source's array shape, stale once turned or edited
        if isinstance(value, str) and value.strip("\0"):  # as the bytes read: tifffile refuses non-ASCII str
            tags.append((tag, "s", 0, value.strip("\0").encode("latin-1", "replace"), True))
    for tag, kind in TIFF_BLOCK_TAGS.items():
        if isinstance(value := exif.get(tag), bytes) and value:
            tags.append((tag, kind, len(value), value, True))
    # the scan's resolution matters for printing: the photo's own (its header's, else its EXIF's),
    # as every other format writes it; a broken one is left out
    options = {"resolution": meta.dpi, "resolutionunit": 2} if meta.dpi else {}
    try:
        xres, yres, unit = float(exif[282]), float(exif[283]), int(exif.get(296, 2))
        if not options and min(xres, yres) > 0 and max(xres, yres) < 1e7 and unit in (1, 2, 3):
            options = {"resolution": (xres, yres), "resolutionunit": unit}
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        pass
    buf = io.BytesIO()
    gray, alpha = pixels.shape[2] in (1, 2), pixels.shape[2] in (2, 4)
    tifffile.imwrite(buf, pixels[:, :, 0] if pixels.shape[2] == 1 else pixels,
                     photometric="minisblack" if gray else "rgb", compression="zlib", metadata=None,
                     software=False, extrasamples=(2,) if alpha else None, extratags=tags, **options)
    return buf.getvalue()


def _parsed_exif(exif: bytes | None) -> Image.Exif:
    parsed = Image.Exif()
    if exif:
        try:
            parsed.load(bytes(exif))
        except (SyntaxError, ValueError, struct.error, OSError):
            pass
    return parsed


def _exif_tifffile_leaves_out(exif: bytes | None) -> list[str]:
    """What of `exif` a TIFF written by tifffile does not carry, in words (16-bit exports are
    written so; 8-bit ones only when this is empty)."""
    carried = {*TIFF_TEXT_TAGS, *TIFF_RESOLUTION_TAGS, *TIFF_BLOCK_TAGS, 0x0112}
    left = [tag for tag in _parsed_exif(exif) if tag not in carried]
    named = [EXIF_SUB_IFDS[tag] for tag in left if tag in EXIF_SUB_IFDS]
    if len(named) < len(left):
        named.append("other EXIF tags")
    return named


def write_image(path: str | Path, rgb: np.ndarray, meta: ImageMeta | None = None,
                quality: int | None = None) -> list[str]:
    """Write atomically; the format comes from the extension. Returns what the file could
    not keep of the photo, for the user (e.g. a transparent photo written as JPEG)."""
    fmt = format_for(path)
    data = encode_image(rgb, fmt, meta, quality)
    with atomic_write(path) as handle:
        handle.write(data)
    return lost_in(fmt, meta) + _mostly_eight_bit(rgb, meta, fmt)


def _mostly_eight_bit(rgb: np.ndarray, meta: ImageMeta | None, fmt: str) -> list[str]:
    """A 16-bit export in which most pixels were edited (tone and noise repairs change them all)
    has 8-bit precision there: say so. Estimated on every 8th row."""
    if meta is None or meta.deep is None or fmt not in DEEP_FORMATS or meta.deep.shape[:2] != rgb.shape[:2]:
        return []
    deep = meta.deep[::8]
    source = to_8_bit(_colour_of(deep))
    changed = float((source != rgb[::8]).any(axis=2).mean())
    if changed < 0.25:
        return []
    return [f"the edits changed {changed:.0%} of the pixels; those have 8-bit precision in the 16-bit file"]


def lost_in(fmt: str, meta: ImageMeta | None) -> list[str]:
    """What a file of `fmt` cannot keep of a photo with `meta`."""
    lost = []
    if meta is not None and meta.alpha is not None and fmt not in ALPHA_FORMATS:
        lost.append(f"{fmt} has no transparency: the transparent parts were written as the colours stored under them")
    if meta is not None and meta.deep is not None:
        if fmt not in DEEP_FORMATS:
            lost.append(f"{fmt} has 8 bits per channel (PNG and TIFF keep 16)")
        elif fmt == "TIFF" and (left := _exif_tifffile_leaves_out(meta.exif)):
            lost.append(f"16-bit TIFF: not kept from EXIF: {', '.join(left)} (a PNG keeps them)")
    return lost


def read_mask(path: str | Path, size: tuple[int, int] | None = None, invert: bool = False) -> np.ndarray:
    """Read a mask image as uint8 0/255 (255 = fill). Any channel layout; > PAINTED_ABOVE is painted.

    With `size` (width, height) a mask of another size is scaled to it (nearest
    neighbour, so it stays binary) — callers say so to the user.
    """
    mask = _mask_of(read_image(path), invert)
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        mask = _scaled_mask(mask, size)
    return mask


def _mask_of(loaded: LoadedImage, invert: bool) -> np.ndarray:
    """White (bright) = fill; on a layer with transparent parts, the painted (opaque) pixels
    are the mask whatever their colour: strokes on a transparent layer are often black."""
    alpha = loaded.meta.alpha
    bright = loaded.rgb.max(axis=2) > PAINTED_ABOVE
    if alpha is not None:
        opaque = alpha > PAINTED_ABOVE
        # dark strokes only (no bright opaque pixel): the strokes are where it is opaque; else
        # the bright opaque pixels, so one transparent pixel does not turn a black ground into fill
        painted = opaque if not (bright & opaque).any() else bright & opaque
    else:
        painted = bright
    mask = np.where(painted, 255, 0).astype(np.uint8)
    return 255 - mask if invert else mask


def _scaled_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize(tuple(size), Image.NEAREST)).copy()  # nearest: stays 0/255


@dataclass(eq=False)
class MaskFile:
    mask: np.ndarray  # uint8 0/255 at the photo's size
    scaled_from: tuple[int, int] | None  # the file's (width, height) when it was scaled
    doubt: str | None  # why the file may be a photo rather than a mask, for the user


def read_mask_for(path: str | Path, size: tuple[int, int], invert: bool = False,
                  loaded: LoadedImage | None = None) -> MaskFile:
    """Read a mask for a photo of `size` (width, height). A mask of another size with the
    photo's aspect ratio is scaled to it (nearest neighbour: callers say so); another aspect
    ratio would put the painted areas in the wrong places, so it is refused. A file that looks
    like a photo (colours, many grey levels) is read all the same, with a `doubt` to show.
    `loaded`: the file already decoded (one mask for many photos), read again otherwise."""
    loaded = loaded or read_image(path)
    mask = _mask_of(loaded, invert)
    doubt = _photo_like(loaded.rgb, Path(path).name)
    (w, h), (mh, mw) = size, mask.shape
    if (mw, mh) == (w, h):
        return MaskFile(mask, None, doubt)
    if abs(mw / mh - w / h) > 0.01 * (w / h):
        raise MaskSizeError(f"The mask {Path(path).name} is {mw}x{mh} but the photo is {w}x{h}, with another "
                            "aspect ratio; make a mask of the photo's size.")
    return MaskFile(_scaled_mask(mask, (w, h)), (mw, mh), doubt)


def _photo_like(rgb: np.ndarray, name: str) -> str | None:
    """A mask is black and white, maybe soft-edged, maybe in one colour: many different colours,
    or grey levels between over much of it, mean a photo was picked by mistake. On a sample."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    sample = rgb[::step, ::step]
    coarse = (sample >> 4).astype(np.int32)  # 16 levels per channel
    colours = np.unique(coarse[:, :, 0] << 8 | coarse[:, :, 1] << 4 | coarse[:, :, 2]).size
    gray = sample.max(axis=2)
    midtones = float(((gray > 40) & (gray < 215)).mean())
    if colours > 100 or midtones > 0.6:  # a feathered mask has many midtones, a photo more
        return (f"{name} does not look like a mask ({'many colours' if colours > 100 else 'many grey levels'}): "
                "brighter than mid-grey counts as painted")
    return None


def reduced_from_16_bit(meta: ImageMeta) -> bool:
    """Whether the photo was read from 16 bits per channel and only its 8-bit reduction is
    kept (exports have 8 bits per channel); False when `meta.deep` keeps the 16 bits."""
    return meta.deep is None and (REDUCED_16_BIT in meta.notes or REDUCED_16_BIT_GRAY in meta.notes)
