"""Projects as OpenRaster (.ora) files: the photo, every mask layer and the pending result.

Layout of the zip (OpenRaster 0.0.x; GIMP, Krita and MyPaint open it):

    mimetype                      "image/openraster", first entry, stored uncompressed
    stack.xml                     the layer stack, top layer first
    data/photo.png                the photo (RGB, or RGBA when the photo has alpha; ICC embedded;
                                  16 bits per channel when it came from a 16-bit file)
    data/result.png               the pending engine result, hidden (only when there is one)
    data/mask-<n>.png             one RGBA layer per mask: the layer colour, alpha = the mask
    mergedimage.png               the visible layers composited, full size
    Thumbnails/thumbnail.png      the same, at most 256x256
    inpaint-studio/project.json   our extras: format version, engine settings, the Restore panel's choices, photo metadata
    inpaint-studio/exif.bin       the photo's EXIF block, byte for byte (when it has one)
    inpaint-studio/icc.icc        the photo's ICC profile, byte for byte (when it has one)
    inpaint-studio/result-mask.png the mask the pending result was made with (Apply clears it)

Per-layer extras (role, kind, colour, locked, creation order) are attributes in our own
XML namespace on each <layer>, as the spec allows; other programs ignore them. A file
re-saved by another program (which drops them) still opens: the bottom layer is the
photo and every other layer a fill mask taken from its alpha.

A mask is stored exactly: alpha = the uint8 mask value, so any mask survives a round trip.

Reading never extracts anything to disk and checks every declared size before
decompressing; every problem becomes a ProjectError with a message for the user.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import time
import warnings
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from app import __version__
from app.canvas.document import LAYER_COLOURS, Document, InpaintOutcome, LayerKind, MaskLayer
from app.engine.settings import InpaintSettings
from app.io.atomic import SaveError, atomic_write
from app.io.images import DECODE_LOCK, ImageMeta, ImageReadError, decode_image, deep_pixels, encode_png16, load_pixels
from app.restore.choices import RestoreChoices

FORMAT_VERSION = 1
MIMETYPE = b"image/openraster"
ORA_VERSION = "0.0.5"
NS = "urn:inpaint-studio:ora:1"
EXTRA_JSON = "inpaint-studio/project.json"
EXIF_ENTRY = "inpaint-studio/exif.bin"
ICC_ENTRY = "inpaint-studio/icc.icc"
PHOTO_SRC = "data/photo.png"
RESULT_SRC = "data/result.png"
RESULT_NAME = "Result (not applied)"  # also how a file re-saved by another program shows our result
RESULT_MASK = "inpaint-studio/result-mask.png"  # the fill mask the pending result was made with
THUMB_SIZE = 256

# PNG zlib levels, chosen with bench/project_io.py (24 MP photo + 8 masks): the photo is
# noise to zlib (level 6 costs ~3x the time of level 1 for a few % of size), masks are long
# runs that level 1 already squeezes to almost nothing.
PHOTO_LEVEL = 1
MASK_LEVEL = 6
MERGED_LEVEL = 1

# limits for reading untrusted files
MAX_LAYERS = 256
MAX_ENTRIES = 1024
MAX_SIDE = 100_000
MAX_XML_BYTES = 4 << 20
# what reading a damaged or foreign archive raises (zipfile's NotImplementedError: "compressed
# patched data", "strong encryption" flags)
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, NotImplementedError)
MAX_JSON_BYTES = 4 << 20
MAX_BLOB_BYTES = 32 << 20  # EXIF / ICC
MAX_DEFLATE_RATIO = 1100  # deflate cannot compress better than ~1032:1: a higher declared ratio is forged
PNG_SLACK = 32 << 20  # room for PNG chunks (ICC, text) beyond the raw pixels

_ns = f"{{{NS}}}"
ET.register_namespace("inpaint", NS)

Progress = Callable[[str, float], None]
Cancel = Callable[[], bool]


class ProjectError(Exception):
    """A project cannot be read or written; the message says why, in words for the user."""


class ProjectCancelled(ProjectError):
    """The user cancelled a save or an open; nothing was changed."""


# ---------------------------------------------------------------------------- saving


@dataclass
class _Step:
    label: str
    weight: float
    run: Callable[[], None]


def save_project(
    doc: Document,
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    photo_level: int = PHOTO_LEVEL,
    mask_level: int = MASK_LEVEL,
) -> None:
    """Write `doc` to `path` atomically: the previous file stays intact until the new one
    is complete and on disk. `progress(label, fraction)` is called before each step and at
    the end with 1.0; `cancel()` is polled between steps (raises ProjectCancelled)."""
    path = Path(path)
    _check_document(doc)
    layers = list(doc.layers)
    srcs = [f"data/mask-{i + 1}.png" for i in range(len(layers))]
    merged_holder: dict[str, Image.Image] = {}

    def save(handle) -> None:
        zf = zipfile.ZipFile(handle, "w", allowZip64=True)
        with zf:

            def put(name: str, data: bytes, compress: bool = False) -> None:
                info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
                info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)

            photo_bytes: list[bytes] = []

            def photo() -> None:
                photo_bytes.append(_photo_png(doc, photo_level))
                put(PHOTO_SRC, photo_bytes[0])

            steps = [
                _Step("header", 0.2, lambda: (put("mimetype", MIMETYPE), put("stack.xml", _stack_xml(doc, srcs), True))),
                _Step("photo", 6.0, photo),
            ]
            if doc.result is not None:
                steps.append(_Step("result", 6.0, lambda: put(RESULT_SRC, _result_png(doc.result, photo_level))))
                if doc.result.mask is not None:
                    steps.append(_Step("result mask", 0.5, lambda: put(RESULT_MASK, _gray_png(doc.result.mask, mask_level))))
            for i, layer in enumerate(layers):
                steps.append(
                    _Step(
                        f"layer {i + 1} of {len(layers)}",
                        1.0,
                        lambda layer=layer, src=srcs[i]: put(src, _mask_png(layer, mask_level)),
                    )
                )

            def merged() -> None:
                rgb = _composite(doc)
                img = Image.fromarray(rgb, "RGB")
                merged_holder["img"] = img
                if doc.meta.alpha is None and doc.meta.deep is None and photo_bytes and np.array_equal(rgb, doc.photo):
                    put("mergedimage.png", photo_bytes[0])  # nothing drawn over the photo
                else:
                    put("mergedimage.png", _encode_png(img, MERGED_LEVEL))

            def thumb() -> None:
                img = merged_holder.pop("img")
                img.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.BILINEAR, reducing_gap=2.0)
                put("Thumbnails/thumbnail.png", _encode_png(img, 6))

            def extras() -> None:
                put(EXTRA_JSON, _project_json(doc), True)
                if doc.meta.exif:
                    put(EXIF_ENTRY, bytes(doc.meta.exif), True)
                if doc.meta.icc_profile:
                    put(ICC_ENTRY, bytes(doc.meta.icc_profile), True)

            steps += [_Step("merged image", 6.0, merged), _Step("thumbnail", 0.3, thumb), _Step("extras", 0.1, extras)]
            _run_steps(steps, progress, cancel, "Saving")
        # the zip's central directory is written when `with zf` closes; then atomic_write
        # fsyncs and renames: report that last step separately
        if progress:
            progress("finishing", 0.99)

    try:
        with atomic_write(path) as handle:
            save(handle)
    except ProjectError:
        raise
    except SaveError as exc:
        raise ProjectError(str(exc)) from exc
    except OSError as exc:
        raise ProjectError(
            f"Cannot save {path.name}: {exc.strerror or exc}. The previous file is unchanged."
        ) from exc
    except MemoryError as exc:
        raise ProjectError(f"Not enough memory to save {path.name}; the previous file is unchanged.") from exc
    if progress:
        progress("saved", 1.0)


def snapshot(doc: Document) -> Document:
    """A copy of `doc` that a background save can read while the user goes on editing
    (arrays copied; layer uids kept)."""
    meta = ImageMeta(
        exif=doc.meta.exif, icc_profile=doc.meta.icc_profile,
        alpha=None if doc.meta.alpha is None else doc.meta.alpha.copy(),
        source_format=doc.meta.source_format, notes=list(doc.meta.notes), lossless_webp=doc.meta.lossless_webp,
        dpi=doc.meta.dpi, deep=doc.meta.deep,  # read-only, never edited: shared
    )
    result = None
    if doc.result is not None:
        r = doc.result
        result = InpaintOutcome(r.image.copy(), r.method, r.backend, None if r.mask is None else r.mask.copy(),
                                list(r.notes), r.confined, r.layers, r.restricted, r.settings,
                                deep=r.deep)  # read-only: shared
    layers = [
        MaskLayer(name=x.name, mask=x.mask.copy(), kind=x.kind, visible=x.visible, locked=x.locked,
                  color=tuple(x.color), opacity=x.opacity, uid=x.uid)
        for x in doc.layers
    ]
    return Document(photo=doc.photo.copy(), layers=layers, result=result, meta=meta, settings=doc.settings,
                    source_path=doc.source_path, restore=doc.restore)


def _run_steps(steps: list[_Step], progress: Progress | None, cancel: Cancel | None, verb: str) -> None:
    total = sum(s.weight for s in steps) or 1.0
    done = 0.0
    for step in steps:
        if cancel and cancel():
            raise ProjectCancelled(f"{verb} cancelled; nothing was changed.")
        if progress:
            progress(step.label, min(done / total, 0.98))
        step.run()
        done += step.weight


def _check_document(doc: Document) -> None:
    photo = doc.photo
    if not isinstance(photo, np.ndarray) or photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ProjectError("The photo must be an RGB uint8 image to be saved.")
    h, w = photo.shape[:2]
    for layer in doc.layers:
        if layer.mask.shape != (h, w) or layer.mask.dtype != np.uint8:
            raise ProjectError(f"Layer '{layer.name}' does not match the photo's size ({w}x{h}).")
    if doc.result is not None and doc.result.image.shape != photo.shape:
        raise ProjectError("The pending result does not match the photo's size.")
    if doc.result is not None and doc.result.mask is not None and doc.result.mask.shape != (h, w):
        raise ProjectError("The pending result's mask does not match the photo's size.")


def _encode_png(img: Image.Image, level: int, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=int(level), **options)
    return buf.getvalue()


def _rgb_png(rgb: np.ndarray, level: int) -> bytes:
    return _encode_png(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), level)


def _result_png(result: InpaintOutcome, level: int) -> bytes:
    """The pending result; repairs of a 16-bit scan at their 16 bits (colour only: an alpha is
    the photo's), so Apply after reopening keeps them."""
    deep = result.deep
    if deep is None:
        return _rgb_png(result.image, level)
    colour = np.ascontiguousarray(deep[:, :, :3] if deep.shape[2] >= 3 else deep)
    bgr = np.ascontiguousarray(colour[:, :, ::-1]) if colour.shape[2] == 3 else colour  # OpenCV writes BGR
    return encode_png16(bgr, level=level)


def _gray_png(mask: np.ndarray, level: int) -> bytes:
    return _encode_png(Image.fromarray(np.ascontiguousarray(mask), "L"), level)


def _photo_png(doc: Document, level: int) -> bytes:
    deep = deep_pixels(doc.photo, doc.meta, bgr=True)
    if deep is not None:  # a 16-bit photo layer: reading it back gives this photo and its 16 bits
        return encode_png16(deep, doc.meta.icc_profile, level=level, dpi=doc.meta.dpi)
    img = Image.fromarray(np.ascontiguousarray(doc.photo), "RGB")
    alpha = doc.meta.alpha
    if alpha is not None and alpha.shape == doc.photo.shape[:2] and alpha.dtype == np.uint8:
        img.putalpha(Image.fromarray(np.ascontiguousarray(alpha), "L"))
    options = {"icc_profile": bytes(doc.meta.icc_profile)} if doc.meta.icc_profile else {}
    if doc.meta.dpi:
        options["dpi"] = doc.meta.dpi  # the photo layer's pHYs: read back as the photo's resolution
    return _encode_png(img, level, **options)


def _mask_png(layer: MaskLayer, level: int) -> bytes:
    """An indexed PNG whose palette is the layer colour throughout and whose tRNS makes
    index i exactly i/255 opaque: pixel index = mask value. GIMP and Krita show it as the
    coloured overlay (RGBA in the layer colour, alpha = mask) while it costs one byte per
    pixel to encode and decode instead of four."""
    img = Image.fromarray(np.ascontiguousarray(layer.mask), "P")
    img.putpalette(list(np.asarray(layer.color, np.uint8)) * 256)
    return _encode_png(img, level, transparency=_IDENTITY_ALPHA)


_IDENTITY_ALPHA = bytes(range(256))


def _hex(colour) -> str:
    r, g, b = (int(c) & 255 for c in colour)
    return f"#{r:02x}{g:02x}{b:02x}"


def _stack_xml(doc: Document, srcs: list[str]) -> bytes:
    h, w = doc.photo.shape[:2]
    root = ET.Element("image", {"version": ORA_VERSION, "w": str(w), "h": str(h), _ns + "format-version": str(FORMAT_VERSION)})
    stack = ET.SubElement(root, "stack")
    # top of the stack first: the last document layer is drawn last, i.e. on top
    for layer, src in reversed(list(zip(doc.layers, srcs))):
        ET.SubElement(
            stack,
            "layer",
            {
                "name": layer.name,
                "src": src,
                "x": "0",
                "y": "0",
                "opacity": _fmt_float(layer.opacity),
                "visibility": "visible" if layer.visible else "hidden",
                "composite-op": "svg:src-over",
                _ns + "role": "mask",
                _ns + "kind": LayerKind(layer.kind).value,
                _ns + "color": _hex(layer.color),
                _ns + "locked": "true" if layer.locked else "false",
                _ns + "uid": str(int(layer.uid)),
            },
        )
    if doc.result is not None:
        ET.SubElement(
            stack,
            "layer",
            {
                "name": RESULT_NAME,
                "src": RESULT_SRC,
                "x": "0",
                "y": "0",
                "opacity": "1",
                "visibility": "hidden",
                _ns + "role": "result",
                _ns + "method": doc.result.method,
                _ns + "backend": doc.result.backend,
            },
        )
    ET.SubElement(
        stack,
        "layer",
        {"name": "Photo", "src": PHOTO_SRC, "x": "0", "y": "0", "opacity": "1", "visibility": "visible", _ns + "role": "photo"},
    )
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="utf-8")


def _fmt_float(value: float) -> str:
    return repr(float(value))  # repr round-trips a float exactly


def _project_json(doc: Document) -> bytes:
    data = {
        "format_version": FORMAT_VERSION,
        "app": "inpaint-studio",
        "app_version": __version__,
        "settings": doc.settings.to_dict(),
        "restore": doc.restore.to_dict(),
        "photo": {"source_format": doc.meta.source_format, "notes": list(doc.meta.notes),
                  "lossless_webp": doc.meta.lossless_webp},
        "source_name": Path(doc.source_path).name if doc.source_path else None,
    }
    if doc.result is not None:
        data["result_notes"] = [str(n) for n in doc.result.notes]
        # the layers it filled, by their place in the stack (uids are handed out anew on opening)
        data["result_layers"] = [i for i, layer in enumerate(doc.layers) if layer.uid in doc.result.layers]
        data["result_restricted"] = doc.result.restricted
        if doc.result.settings is not None:
            data["result_settings"] = doc.result.settings.to_dict()
    return json.dumps(data, indent=1, sort_keys=True).encode("utf-8")


def _composite(doc: Document) -> np.ndarray:
    """The photo with the visible layers over it (each layer's colour at opacity x mask),
    in the order the stack draws them (the result layer is hidden until applied). Integer
    maths on the painted pixels only."""
    out = doc.photo.copy()
    flat = out.reshape(-1, 3)
    for layer in doc.layers:
        weight = round(min(max(float(layer.opacity), 0.0), 1.0) * 255)
        if not layer.visible or weight == 0:
            continue
        idx = np.flatnonzero(layer.mask)
        if idx.size == 0:
            continue
        k = (layer.mask.reshape(-1)[idx].astype(np.uint32) * weight)[:, None]  # 0..65025
        colour = np.asarray(layer.color, np.uint32)
        mixed = (flat[idx].astype(np.uint32) * (65025 - k) + colour * k + 32512) // 65025
        flat[idx] = mixed.astype(np.uint8)
    return out


# ---------------------------------------------------------------------------- reading


@dataclass
class LayerEntry:
    """One <layer> of stack.xml, as read (before its pixels are decoded)."""

    name: str
    src: str
    x: int
    y: int
    opacity: float
    visible: bool
    role: str  # "photo", "result", "mask"
    kind: LayerKind = LayerKind.FILL
    color: tuple[int, int, int] | None = None
    locked: bool = False
    uid: int | None = None
    method: str = ""
    backend: str = ""


@dataclass
class ProjectInfo:
    """What `inspect_project` finds without decoding any pixels."""

    width: int
    height: int
    format_version: int
    layers: list[LayerEntry]  # top of the stack first
    settings: InpaintSettings
    notes: list[str] = field(default_factory=list)
    app_version: str | None = None
    restore: RestoreChoices = field(default_factory=RestoreChoices)  # the Restore panel's choices


def inspect_project(path: str | Path) -> ProjectInfo:
    """Read and check a project's structure (mimetype, sizes, stack.xml, extras)."""
    path = Path(path)
    with _open_zip(path) as (zf, label):
        return _read_structure(zf, label)


def load_project(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    max_megapixels: float = 100.0,
    label: str | None = None,
) -> Document:
    """Open a project. Raises ProjectError (with a message for the user) on any bad file;
    `label` names the file in it (default: its name; an autosave is named after its photo)."""
    path = Path(path)
    with _open_zip(path, label) as (zf, name):
        info = _read_structure(zf, name, max_megapixels)
        try:
            doc = _read_pixels(zf, name, info, progress, cancel)
        except ProjectError:
            raise
        except MemoryError as exc:
            raise ProjectError(f"{name} needs more memory than is available to open.") from exc
        except (*ARCHIVE_ERRORS, TypeError, LookupError) as exc:
            raise ProjectError(f"{name} is damaged and cannot be read ({_short(exc)}).") from exc
    doc.source_path = str(path)
    if progress:
        progress("opened", 1.0)
    return doc


def _image_kind(head: bytes) -> str:
    """The photo format a file starts like, or ""."""
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return ""


class _open_zip:
    """Context manager: an open, basically sane zip (mimetype first and stored, declared sizes
    plausible, no forged compression ratios) or a ProjectError."""

    def __init__(self, path: Path, label: str | None = None):
        self.path = path
        self.label = label or path.name
        self.handle = None
        self.zf = None

    def __enter__(self):
        label = self.label
        try:
            self.handle = open(self.path, "rb")
        except IsADirectoryError as exc:
            raise ProjectError(f"{label} is a folder, not a project file.") from exc
        except OSError as exc:
            raise ProjectError(f"{label} cannot be opened: {exc.strerror or exc}") from exc
        try:
            self.zf = zipfile.ZipFile(self.handle)
            _check_archive(self.zf, label)
        except ProjectError:
            self._close()
            raise
        except (*ARCHIVE_ERRORS, KeyError) as exc:
            try:
                self.handle.seek(0)
                head = self.handle.read(12)
            except OSError:
                head = b"PK"  # unreadable now: report it as the damaged archive it seemed
            self._close()
            if head[:2] != b"PK":  # not a damaged project: another kind of file (often a photo)
                kind = _image_kind(head)
                raise ProjectError(f"{label} is not a readable OpenRaster project: it is "
                                   + (f"a {kind} image; open it as a photo." if kind else "not a zip archive.")) from exc
            raise ProjectError(f"{label} is not a readable OpenRaster project: the zip archive is damaged or truncated ({_short(exc)}).") from exc
        return self.zf, label

    def __exit__(self, *exc_info):
        self._close()
        return False

    def _close(self):
        for obj in (self.zf, self.handle):
            if obj is not None:
                try:
                    obj.close()
                except (OSError, ValueError, zipfile.BadZipFile):
                    pass


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _check_archive(zf: zipfile.ZipFile, label: str) -> None:
    infos = zf.infolist()
    if not infos:
        raise ProjectError(f"{label} is an empty archive, not an OpenRaster project.")
    if len(infos) > MAX_ENTRIES:
        raise ProjectError(f"{label} holds {len(infos)} files; a project has far fewer. It is not a valid project.")
    first = infos[0]
    if first.filename != "mimetype":
        raise ProjectError(f"{label} is not an OpenRaster project: its first entry is not 'mimetype'.")
    if first.compress_type != zipfile.ZIP_STORED or first.file_size != len(MIMETYPE):
        raise ProjectError(f"{label} is not an OpenRaster project: 'mimetype' must be stored uncompressed and say image/openraster.")
    names = set()
    for info in infos:
        if info.filename in names:
            raise ProjectError(f"{label} is damaged: '{info.filename}' appears twice in the archive.")
        names.add(info.filename)
        if info.flag_bits & 0x1:
            raise ProjectError(f"{label} is encrypted; projects are never encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ProjectError(f"{label} uses a compression method this program does not read.")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ProjectError(f"{label} is damaged or forged: '{info.filename}' declares sizes that do not match.")
        if info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1) + 1024:
            raise ProjectError(
                f"{label} looks like a zip bomb: '{info.filename}' claims a compression ratio no real file has."
            )
    mimetype = _read_entry(zf, "mimetype", len(MIMETYPE), label)
    if mimetype != MIMETYPE:
        shown = mimetype[:40].decode("ascii", "replace")
        raise ProjectError(f"{label} is not an OpenRaster project: its mimetype is '{shown}', not image/openraster.")


def _read_entry(zf: zipfile.ZipFile, name: str, limit: int, label: str) -> bytes:
    """Read one entry, never producing more than `limit` (or its declared size) bytes:
    a forged size header cannot make us inflate more than we agreed to."""
    try:
        info = zf.getinfo(name)
    except KeyError as exc:
        raise ProjectError(f"{label} is incomplete: '{name}' is missing.") from exc
    if info.file_size > limit:
        raise ProjectError(
            f"{label} looks like a zip bomb or is damaged: '{name}' declares {info.file_size:,} bytes "
            f"(at most {limit:,} expected)."
        )
    chunks = []
    got = 0
    with zf.open(info) as stream:
        while True:
            chunk = stream.read(min(1 << 20, info.file_size - got + 1))
            if not chunk:
                break
            got += len(chunk)
            if got > info.file_size:
                raise ProjectError(f"{label} is damaged or forged: '{name}' is larger than its header says.")
            chunks.append(chunk)
    data = b"".join(chunks)
    if len(data) != info.file_size:
        raise ProjectError(f"{label} is damaged: '{name}' is shorter than its header says.")
    return data


_SRC_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .()+,\-/]*$")


def _check_src(src: str, names: set[str], label: str) -> str:
    parts = src.split("/")
    if (
        not src
        or not _SRC_OK.match(src)
        or src.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or ":" in src
        or "\\" in src
    ):
        raise ProjectError(f"{label} is unsafe or damaged: a layer points to '{src[:80]}', outside the project.")
    if src not in names:
        raise ProjectError(f"{label} is incomplete: layer file '{src[:80]}' is missing.")
    return src


def _int_attr(el: ET.Element, name: str, default: int | None, label: str, lo: int, hi: int) -> int:
    raw = el.get(name)
    if raw is None:
        if default is None:
            raise ProjectError(f"{label}: stack.xml lacks the '{_plain(name)}' attribute.")
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise ProjectError(f"{label}: stack.xml has '{_plain(name)}=\"{raw[:20]}\"', not a whole number.") from exc
    if not lo <= value <= hi:
        raise ProjectError(f"{label}: stack.xml has '{_plain(name)}={value}', outside {lo}..{hi}.")
    return value


def _plain(name: str) -> str:
    return name.replace(_ns, "inpaint:")


def _float_attr(el: ET.Element, name: str, default: float) -> float:
    try:
        value = float(el.get(name, default))
    except ValueError:
        return default
    if not math.isfinite(value):
        return default
    return min(max(value, 0.0), 1.0)


def _colour_attr(raw: str | None) -> tuple[int, int, int] | None:
    if raw and re.fullmatch(r"#[0-9a-fA-F]{6}", raw):
        return int(raw[1:3], 16), int(raw[3:5], 16), int(raw[5:7], 16)
    return None


def _parse_xml(data: bytes, label: str) -> ET.Element:
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise ProjectError(f"{label}: stack.xml declares a DOCTYPE or entities; a project never does, so it is refused.")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ProjectError(f"{label}: stack.xml is not well-formed XML ({exc}).") from exc
    except LookupError as exc:  # an XML declaration naming an encoding that does not exist
        raise ProjectError(f"{label}: stack.xml declares an unknown text encoding ({exc}).") from exc


def _layers_of(stack: ET.Element, depth: int = 0):
    if depth > 16:
        raise ProjectError("stack.xml nests groups more than 16 deep.")
    for child in stack:
        if child.tag == "layer":
            yield child
        elif child.tag == "stack":
            yield from _layers_of(child, depth + 1)


def _read_structure(zf: zipfile.ZipFile, label: str, max_megapixels: float = 100.0) -> ProjectInfo:
    try:
        return _read_structure_inner(zf, label, max_megapixels)
    except ProjectError:
        raise
    except (*ARCHIVE_ERRORS, KeyError, RecursionError) as exc:
        raise ProjectError(f"{label} is damaged and cannot be read ({_short(exc)}).") from exc


def _read_structure_inner(zf: zipfile.ZipFile, label: str, max_megapixels: float) -> ProjectInfo:
    names = set(zf.namelist())
    root = _parse_xml(_read_entry(zf, "stack.xml", MAX_XML_BYTES, label), label)
    if root.tag != "image":
        raise ProjectError(f"{label}: stack.xml does not describe an image (root <{str(root.tag)[:30]}>).")
    w = _int_attr(root, "w", None, label, 1, MAX_SIDE)
    h = _int_attr(root, "h", None, label, 1, MAX_SIDE)
    if w * h > max_megapixels * 1e6:
        raise ProjectError(
            f"{label} is {w}x{h} ({w * h / 1e6:.0f} MP); the limit is {max_megapixels:.0f} MP so that editing stays within memory."
        )
    version = _int_attr(root, _ns + "format-version", 0, label, 0, 2**31)
    notes: list[str] = []
    extras: dict = {}
    if EXTRA_JSON in names:
        raw = _read_entry(zf, EXTRA_JSON, MAX_JSON_BYTES, label)
        try:
            extras = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ProjectError(f"{label}: {EXTRA_JSON} is damaged ({_short(exc)}).") from exc
        if not isinstance(extras, dict):
            raise ProjectError(f"{label}: {EXTRA_JSON} is damaged (not an object).")
        json_version = extras.get("format_version", version)
        if not isinstance(json_version, int) or isinstance(json_version, bool) or json_version < 0:
            raise ProjectError(f"{label}: {EXTRA_JSON} has an invalid format version.")
        version = max(version, json_version)
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"{label} was saved by a newer version of Inpaint Studio (project format {version}; this version "
            f"reads up to {FORMAT_VERSION}). Update the program to open it; the file was not changed."
        )
    stacks = [c for c in root if c.tag == "stack"]
    if len(stacks) != 1:
        raise ProjectError(f"{label}: stack.xml must hold exactly one root <stack>.")
    elements = list(_layers_of(stacks[0]))
    if not elements:
        raise ProjectError(f"{label} has no layers.")
    if len(elements) > MAX_LAYERS:
        raise ProjectError(f"{label} has {len(elements)} layers; at most {MAX_LAYERS} are supported.")
    if any(c.tag == "stack" for c in stacks[0].iter() if c is not stacks[0]):
        notes.append("layer groups were flattened")
    layers = [_layer_entry(el, names, label, w, h) for el in elements]
    roles = [layer.role for layer in layers]
    if "photo" not in roles:
        # written by another program that dropped our attributes (Krita re-saving our file
        # keeps names, opacity, visibility and the masks exactly): the bottom layer is the
        # photo, our result layer is known by its name, and kinds by the layer names
        layers[-1].role = "photo"
        for index, layer in enumerate(layers[:-1]):
            if layer.name == RESULT_NAME and layer.x == 0 and layer.y == 0 and "result" not in roles:
                layer.role = roles[index] = "result"
            elif "protect" in layer.name.lower():
                layer.kind = LayerKind.PROTECT
        if len(layers) > 1:
            notes.append("no Inpaint Studio layer roles found (saved by another program): the bottom layer is taken "
                         "as the photo, and layers named 'protect…' as protect layers")
    if roles.count("photo") > 1:
        raise ProjectError(f"{label} marks more than one layer as the photo.")
    if roles.count("result") > 1:
        raise ProjectError(f"{label} marks more than one layer as the result.")
    settings = _settings_from(extras.get("settings"), notes)
    restore = RestoreChoices.from_dict(extras.get("restore"), notes)
    app_version = extras.get("app_version") if isinstance(extras.get("app_version"), str) else None
    return ProjectInfo(w, h, version, layers, settings, notes, app_version, restore)


def _layer_entry(el: ET.Element, names: set[str], label: str, w: int, h: int) -> LayerEntry:
    src = _check_src(str(el.get("src", "")), names, label)
    name = str(el.get("name", "") or Path(src).stem)[:200]
    x = _int_attr(el, "x", 0, label, -MAX_SIDE, MAX_SIDE)
    y = _int_attr(el, "y", 0, label, -MAX_SIDE, MAX_SIDE)
    role = el.get(_ns + "role", "mask")
    if role not in ("photo", "result", "mask"):
        role = "mask"
    kind_raw = el.get(_ns + "kind", "fill")
    kind = LayerKind(kind_raw) if kind_raw in ("fill", "protect") else LayerKind.FILL
    uid_raw = el.get(_ns + "uid")
    uid = int(uid_raw) if uid_raw and uid_raw.isdigit() and len(uid_raw) < 19 else None
    return LayerEntry(
        name=name,
        src=src,
        x=x,
        y=y,
        opacity=_float_attr(el, "opacity", 1.0),
        visible=el.get("visibility", "visible") != "hidden",
        role=role,
        kind=kind,
        color=_colour_attr(el.get(_ns + "color")),
        locked=el.get(_ns + "locked") == "true",
        uid=uid,
        method=str(el.get(_ns + "method", ""))[:200],
        backend=str(el.get(_ns + "backend", ""))[:200],
    )


def _settings_from(raw, notes: list[str]) -> InpaintSettings:
    """Engine settings from project.json; a value of the wrong type keeps its default."""
    if raw is None:
        return InpaintSettings()
    if not isinstance(raw, dict):
        notes.append("engine settings were damaged; defaults are used")
        return InpaintSettings()
    defaults = InpaintSettings()
    kept = {}
    for f in fields(InpaintSettings):
        if f.name not in raw:
            continue
        value, default = raw[f.name], getattr(defaults, f.name)
        ok = (
            (isinstance(default, bool) and isinstance(value, bool))
            or (isinstance(default, int) and not isinstance(default, bool) and type(value) is int)
            or (isinstance(default, float) and type(value) in (int, float) and math.isfinite(value))
            or (isinstance(default, str) and isinstance(value, str))
            or (f.name == "model_path" and (value is None or isinstance(value, str)))
        )
        if ok:
            kept[f.name] = float(value) if isinstance(default, float) else value
        else:
            notes.append(f"engine setting '{f.name}' was damaged; its default is used")
    return InpaintSettings.from_dict(kept)


def _png_limit(w: int, h: int, channels: int = 4, depth_bytes: int = 2) -> int:
    # an uncompressed PNG at up to 16 bits per channel, plus zlib block headers and chunks
    raw = h * (1 + w * channels * depth_bytes)
    return int(raw * 1.01) + PNG_SLACK


def _open_png(data: bytes, entry: LayerEntry, label: str, w: int, h: int, full: bool) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with DECODE_LOCK:  # chunks read while a cut-off photo is decoded would pass cut off too
                img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ProjectError(f"{label}: layer '{entry.name}' is not a readable image ({_short(exc)}).") from exc
    if img.format != "PNG":
        raise ProjectError(f"{label}: layer '{entry.name}' is {img.format or 'not'} a PNG; OpenRaster layers are PNG.")
    lw, lh = img.size
    if full:
        if (lw, lh) != (w, h) or entry.x or entry.y:
            raise ProjectError(
                f"{label}: the {entry.role} layer is {lw}x{lh} at ({entry.x}, {entry.y}) but the image is {w}x{h}; "
                "the layer sizes do not match."
            )
    elif entry.x < 0 or entry.y < 0 or entry.x + lw > w or entry.y + lh > h:
        raise ProjectError(
            f"{label}: layer '{entry.name}' ({lw}x{lh} at {entry.x}, {entry.y}) does not fit the {w}x{h} image; "
            "the layer sizes do not match."
        )
    return img


def _load_png(img: Image.Image, entry: LayerEntry, label: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            load_pixels(img)  # strict: a cut-off layer is refused
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error, EOFError, Image.DecompressionBombError) as exc:
        raise ProjectError(f"{label}: layer '{entry.name}' is damaged or truncated ({_short(exc)}).") from exc
    return img


def _mask_from(img: Image.Image) -> np.ndarray:
    if img.mode == "P" and img.info.get("transparency") == _IDENTITY_ALPHA:
        return np.asarray(img).copy()  # our own layers: index = alpha = mask
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info) or img.mode == "La":
        return np.asarray(img.convert("RGBA"))[:, :, 3].copy()
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.uint32)
        return (arr * 255 // max(int(arr.max(initial=1)), 255 if arr.max(initial=0) <= 255 else 65535)).astype(np.uint8)
    return np.asarray(img.convert("L")).copy()


def _read_pixels(zf, label, info: ProjectInfo, progress: Progress | None, cancel: Cancel | None) -> Document:
    w, h = info.width, info.height
    photo_entry = next(layer for layer in info.layers if layer.role == "photo")
    result_entry = next((layer for layer in info.layers if layer.role == "result"), None)
    mask_entries = [layer for layer in info.layers if layer.role == "mask"]
    state: dict = {}

    def read_rgb(entry: LayerEntry) -> tuple[np.ndarray, ImageMeta]:
        data = _read_entry(zf, entry.src, _png_limit(w, h), label)
        _open_png(data, entry, label, w, h, full=True)  # header check before any decoding
        try:
            loaded = decode_image(data, f"{label}: {entry.role} layer", max_megapixels=max(w * h / 1e6, 1.0) + 1)
        except ImageReadError as exc:
            raise ProjectError(str(exc)) from exc
        if loaded.rgb.shape[:2] != (h, w):
            raise ProjectError(f"{label}: the {entry.role} layer does not match the image size {w}x{h}.")
        return loaded.rgb, loaded.meta

    def photo() -> None:
        state["photo"] = read_rgb(photo_entry)

    def result() -> None:
        state["result"] = read_rgb(result_entry)
        if RESULT_MASK in zf.namelist():
            entry = LayerEntry("result mask", RESULT_MASK, 0, 0, 1.0, False, "result mask")
            data = _read_entry(zf, RESULT_MASK, _png_limit(w, h), label)
            state["result_mask"] = _mask_from(_load_png(_open_png(data, entry, label, w, h, full=True), entry, label))

    def mask(entry: LayerEntry) -> None:
        data = _read_entry(zf, entry.src, _png_limit(w, h), label)
        img = _load_png(_open_png(data, entry, label, w, h, full=False), entry, label)
        part = _mask_from(img)
        if (part.shape[1], part.shape[0]) == (w, h):
            full = part
        else:
            full = np.zeros((h, w), np.uint8)
            full[entry.y : entry.y + part.shape[0], entry.x : entry.x + part.shape[1]] = part
        state.setdefault("masks", {})[id(entry)] = full

    def blobs() -> None:
        names = set(zf.namelist())
        state["exif"] = _read_entry(zf, EXIF_ENTRY, MAX_BLOB_BYTES, label) if EXIF_ENTRY in names else None
        state["icc"] = _read_entry(zf, ICC_ENTRY, MAX_BLOB_BYTES, label) if ICC_ENTRY in names else None

    steps = [_Step("photo", 6.0, photo)]
    if result_entry is not None:
        steps.append(_Step("result", 6.0, result))
    for i, entry in enumerate(mask_entries):
        steps.append(_Step(f"layer {i + 1} of {len(mask_entries)}", 1.0, lambda entry=entry: mask(entry)))
    steps.append(_Step("extras", 0.1, blobs))
    _run_steps(steps, progress, cancel, "Opening")

    rgb, meta = state["photo"]
    if state["icc"]:
        meta.icc_profile = state["icc"]
    meta.exif = state["exif"]
    meta.notes = meta.notes + info.notes
    extras_all = _extras(zf, label)
    extras_meta = extras_all.get("photo") if isinstance(extras_all.get("photo"), dict) else None
    if extras_meta:
        meta.source_format = str(extras_meta.get("source_format", meta.source_format))[:40]
        meta.lossless_webp = extras_meta.get("lossless_webp") is True
        saved_notes = extras_meta.get("notes")
        if isinstance(saved_notes, list):
            meta.notes = [str(n)[:300] for n in saved_notes[:50]] + info.notes
    doc = Document(photo=rgb, meta=meta, settings=info.settings, restore=info.restore)
    if result_entry is not None:
        notes = extras_all.get("result_notes") if isinstance(extras_all.get("result_notes"), list) else []
        result_rgb, result_meta = state["result"]
        doc.result = InpaintOutcome(
            result_rgb, result_entry.method, result_entry.backend, mask=state.get("result_mask"),
            notes=[str(n)[:300] for n in notes[:50]], deep=_result_deep(result_meta.deep, meta.deep),
        )
    # document order is bottom to top; fresh uids are handed out in the saved creation order
    bottom_up = list(reversed(mask_entries))
    by_creation = sorted(range(len(bottom_up)), key=lambda i: (bottom_up[i].uid is None, bottom_up[i].uid or 0, i))
    made: dict[int, MaskLayer] = {}
    for i in by_creation:
        entry = bottom_up[i]
        made[i] = MaskLayer(
            name=entry.name,
            mask=state["masks"][id(entry)],
            kind=entry.kind,
            visible=entry.visible,
            locked=entry.locked,
            color=entry.color or LAYER_COLOURS[i % len(LAYER_COLOURS)],
            opacity=entry.opacity,
        )
    doc.layers = [made[i] for i in range(len(bottom_up))]
    if doc.result is not None:
        filled = extras_all.get("result_layers")
        if isinstance(filled, list):
            doc.result.layers = tuple(doc.layers[i].uid for i in filled
                                      if isinstance(i, int) and 0 <= i < len(doc.layers))
            doc.result.restricted = extras_all.get("result_restricted") is True and bool(doc.result.layers)
        if isinstance(extras_all.get("result_settings"), dict):
            doc.result.settings = _settings_from(extras_all["result_settings"], [])
    return doc


def _result_deep(result_deep: np.ndarray | None, photo_deep: np.ndarray | None) -> np.ndarray | None:
    """A 16-bit result layer's pixels as the photo's next 16-bit source (`_result_png`): with the
    photo's alpha, in the photo's layout; None when the photo has no 16-bit source."""
    if result_deep is None or photo_deep is None or result_deep.shape[:2] != photo_deep.shape[:2]:
        return None
    if photo_deep.shape[2] == 4 and result_deep.shape[2] == 3:
        result_deep = np.dstack([result_deep, photo_deep[:, :, 3]])
        result_deep.flags.writeable = False
    elif (photo_deep.shape[2] == 1) != (result_deep.shape[2] == 1):
        return None  # not a layout this editor wrote
    return result_deep


def _extras(zf, label) -> dict:
    if EXTRA_JSON not in zf.namelist():
        return {}
    try:
        extras = json.loads(_read_entry(zf, EXTRA_JSON, MAX_JSON_BYTES, label).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return {}
    return extras if isinstance(extras, dict) else {}
