"""Reading and writing photos: RGB uint8 in, RGB uint8 out, metadata kept.

Every photo becomes RGB uint8 HxWx3 with its EXIF orientation applied; what was
converted (16-bit, alpha, grayscale, CMYK) is reported in `ImageMeta.notes` so the
command line and the editor can tell the user. EXIF and the ICC profile are written
back on export, and an alpha channel is re-attached where the format keeps it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.io.atomic import atomic_write

# formats the product reads and writes, by extension
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
READ_EXTENSIONS = tuple(SAVE_FORMATS) + (".bmp",)
DEFAULT_MAX_MEGAPIXELS = 100.0
# the notes of a photo whose 16 bits are edited and exported in 8 bits per channel
REDUCED_16_BIT = "16-bit colour reduced to 8-bit RGB (edited and exported with 8 bits per channel)"
REDUCED_16_BIT_GRAY = "16-bit grayscale reduced to 8-bit RGB"
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


@dataclass(eq=False)
class LoadedImage:
    rgb: np.ndarray
    meta: ImageMeta


def read_image(path: str | Path, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> LoadedImage:
    """Decode a photo file into RGB uint8 with orientation applied."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        where = f" in {path.parent}" if str(path.parent) not in ("", ".") else ""  # two old.png differ by folder
        raise ImageReadError(f"Cannot read {path.name}{where}: {exc.strerror or exc}") from exc
    return decode_image(data, path.name, max_megapixels)


def decode_image(data: bytes, label: str = "image", max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> LoadedImage:
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
            img.load()
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:  # Pillow's message names only its internal buffer
        raise ImageReadError(f"{label} is not an image this program can read: not a JPEG, PNG, TIFF or WebP "
                             "file, or damaged from its first bytes.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{label} is not an image this program can read ({exc}).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{label} is damaged or truncated and cannot be decoded ({exc}).") from exc
    meta = ImageMeta(source_format=img.format or "", icc_profile=img.info.get("icc_profile"),
                     lossless_webp=img.format == "WEBP" and _webp_is_lossless(data))
    if img.mode in ("RGB", "RGBA") and (
            (img.format == "PNG" and len(data) > 25 and data[24] == 16)
            or (img.format == "TIFF" and _tiff_bits(img) > 8)):
        # Pillow reduces 16-bit colour PNGs and TIFFs to 8 bits on open; the PNG's IHDR bit
        # depth and the TIFF's BitsPerSample tell
        meta.notes.append(REDUCED_16_BIT)
    exif = img.getexif()
    if exif.get(0x0112, 1) != 1:
        meta.notes.append("rotated upright from its EXIF orientation")
    img = ImageOps.exif_transpose(img)
    if 0x0112 in exif:
        exif[0x0112] = 1  # the pixels are upright now; saying so keeps viewers from rotating twice
    for tag in TIFF_LAYOUT_TAGS.intersection(exif):
        del exif[tag]
    meta.exif = exif.tobytes() if len(exif) else None
    rgb, alpha = _to_rgb8(img, meta)
    if not rgb.flags.writeable:  # a view of Pillow's buffer; the editor writes into the photo (Apply, undo)
        rgb = rgb.copy()
    meta.alpha = alpha
    return LoadedImage(rgb=rgb, meta=meta)


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
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        gray = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
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
            meta.notes.append("grayscale shown as RGB")
    elif mode != "RGB" and mode.startswith(("RGB", "I;16")):
        meta.notes.append(f"{mode} reduced to 8-bit RGB")
    if mode not in ("RGB", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        # e.g. 16-bit RGB TIFF: Pillow has no RGB;16 conversion, go through numpy
        arr = np.asarray(img)
        if arr.dtype == np.uint16 and arr.ndim == 3:
            rgb = (arr[:, :, :3].astype(np.uint32) * 255 + 32767) // 65535
            if arr.shape[2] == 4:
                alpha = ((arr[:, :, 3].astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
            return np.ascontiguousarray(rgb.astype(np.uint8)), alpha
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
    """Encode RGB uint8 to bytes in `fmt` (PNG, JPEG, TIFF, WEBP), keeping EXIF and ICC.
    `quality` None = `default_quality`."""
    quality = default_quality(fmt, meta) if quality is None else quality
    meta = meta or ImageMeta()
    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if meta.alpha is not None and fmt in ALPHA_FORMATS and meta.alpha.shape == rgb.shape[:2]:
        img.putalpha(Image.fromarray(meta.alpha, "L"))
    options: dict = {}
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    if meta.exif:
        options["exif"] = meta.exif
    if fmt == "JPEG":
        options |= {"quality": int(quality), "subsampling": 0 if quality >= 90 else 2, "optimize": True}
    elif fmt == "WEBP":
        options |= {"quality": int(quality), "lossless": quality >= 100}
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
    elif fmt == "PNG":
        options["compress_level"] = 6
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def write_image(path: str | Path, rgb: np.ndarray, meta: ImageMeta | None = None,
                quality: int | None = None) -> list[str]:
    """Write atomically; the format comes from the extension. Returns what the file could
    not keep of the photo, for the user (e.g. a transparent photo written as JPEG)."""
    fmt = format_for(path)
    data = encode_image(rgb, fmt, meta, quality)
    with atomic_write(path) as handle:
        handle.write(data)
    return lost_in(fmt, meta)


def lost_in(fmt: str, meta: ImageMeta | None) -> list[str]:
    """What a file of `fmt` cannot keep of a photo with `meta`."""
    if meta is not None and meta.alpha is not None and fmt not in ALPHA_FORMATS:
        return [f"{fmt} has no transparency: the transparent parts were written as the colours stored under them"]
    return []


def read_mask(path: str | Path, size: tuple[int, int] | None = None, invert: bool = False) -> np.ndarray:
    """Read a mask image as uint8 0/255 (255 = fill). Any channel layout; > PAINTED_ABOVE is painted.

    With `size` (width, height) a mask of another size is scaled to it (nearest
    neighbour, so it stays binary) — callers say so to the user.
    """
    loaded = read_image(path)
    gray = loaded.rgb.max(axis=2)
    if loaded.meta.alpha is not None:
        gray = np.where(loaded.meta.alpha > PAINTED_ABOVE, gray, 0).astype(np.uint8)
    mask = np.where(gray > PAINTED_ABOVE, 255, 0).astype(np.uint8)
    if invert:
        mask = 255 - mask
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        mask = _scaled_mask(mask, size)
    return mask


def _scaled_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize(tuple(size), Image.NEAREST)).copy()  # nearest: stays 0/255


def read_mask_for(path: str | Path, size: tuple[int, int],
                  invert: bool = False) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read a mask for a photo of `size` (width, height): (mask, the file's size if it was
    scaled, else None). A mask of another size with the photo's aspect ratio is scaled to it
    (nearest neighbour: callers say so); another
    aspect ratio would put the painted areas in the wrong places, so it is refused."""
    mask = read_mask(path, invert=invert)
    (w, h), (mh, mw) = size, mask.shape
    if (mw, mh) == (w, h):
        return mask, None
    if abs(mw / mh - w / h) > 0.01 * (w / h):
        raise MaskSizeError(f"The mask {Path(path).name} is {mw}x{mh} but the photo is {w}x{h}, with another "
                            "aspect ratio; make a mask of the photo's size.")
    return _scaled_mask(mask, (w, h)), (mw, mh)


def reduced_from_16_bit(meta: ImageMeta) -> bool:
    """Whether the photo was read from 16 bits per channel (and is edited in 8)."""
    return REDUCED_16_BIT in meta.notes or REDUCED_16_BIT_GRAY in meta.notes
