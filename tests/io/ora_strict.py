"""A strict OpenRaster reader written from the specification, independent of app/io/project.py.

https://www.openraster.org/baseline/file-layout-spec.html and layer-stack-spec.html:
- a zip whose first entry is `mimetype`, stored (no compression, no extra field in the local
  header so the text sits at byte 38), holding exactly "image/openraster";
- `stack.xml`: root <image w h [version]> with one root <stack>; <layer src [name x y opacity
  visibility composite-op]>; layers listed top first;
- every src a PNG inside the zip; `mergedimage.png` the full-size composite;
- `Thumbnails/thumbnail.png` at most 256x256.
Each rule violated raises SpecViolation. Layers come back as RGBA uint8 arrays.
"""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


class SpecViolation(AssertionError):
    pass


@dataclass
class OraLayer:
    name: str
    src: str
    x: int
    y: int
    opacity: float
    visible: bool
    composite_op: str
    attrib: dict
    rgba: np.ndarray  # HxWx4 uint8 as stored


@dataclass
class OraImage:
    width: int
    height: int
    layers: list[OraLayer]  # top first
    merged: np.ndarray  # HxWx4
    thumbnail: np.ndarray
    names: list[str]


def _png_rgba(data: bytes, what: str) -> np.ndarray:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SpecViolation(f"{what} is not a PNG")
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img.convert("RGBA")).copy()


def read_strict(path) -> OraImage:
    raw = Path(path).read_bytes()
    # local file header of the first entry: signature, version, flags, method, ..., name len, extra len
    if raw[:4] != b"PK\x03\x04":
        raise SpecViolation("not a zip file (no local header at byte 0)")
    method, = struct.unpack("<H", raw[8:10])
    name_len, extra_len = struct.unpack("<HH", raw[26:30])
    if method != 0:
        raise SpecViolation("mimetype must be stored without compression")
    if raw[30 : 30 + name_len] != b"mimetype":
        raise SpecViolation("first entry must be 'mimetype'")
    if extra_len != 0:
        raise SpecViolation("mimetype local header must have no extra field")
    if raw[38:54] != b"image/openraster":
        raise SpecViolation("mimetype content must start at byte 38 and be image/openraster")
    zf = zipfile.ZipFile(io.BytesIO(raw))
    infos = zf.infolist()
    if infos[0].filename != "mimetype" or zf.read("mimetype") != b"image/openraster":
        raise SpecViolation("mimetype entry wrong")
    if zf.testzip() is not None:
        raise SpecViolation("CRC error")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise SpecViolation("duplicate entries")
    root = ET.fromstring(zf.read("stack.xml"))  # ParseError = not well formed
    if root.tag != "image":
        raise SpecViolation("stack.xml root must be <image>")
    w, h = int(root.attrib["w"]), int(root.attrib["h"])
    stacks = [c for c in root if c.tag == "stack"]
    if len(stacks) != 1:
        raise SpecViolation("<image> must hold exactly one <stack>")
    layers = []
    for el in stacks[0].iter("layer"):
        src = el.attrib["src"]
        if src not in names:
            raise SpecViolation(f"layer src {src} missing from the zip")
        if src.startswith("/") or ".." in src.split("/"):
            raise SpecViolation(f"layer src {src} escapes the archive")
        rgba = _png_rgba(zf.read(src), src)
        x, y = int(el.attrib.get("x", 0)), int(el.attrib.get("y", 0))
        if x < 0 or y < 0 or x + rgba.shape[1] > w or y + rgba.shape[0] > h:
            raise SpecViolation(f"layer {src} ({rgba.shape[1]}x{rgba.shape[0]} at {x},{y}) outside {w}x{h}")
        opacity = float(el.attrib.get("opacity", 1.0))
        if not 0.0 <= opacity <= 1.0:
            raise SpecViolation("opacity outside 0..1")
        visibility = el.attrib.get("visibility", "visible")
        if visibility not in ("visible", "hidden"):
            raise SpecViolation(f"visibility {visibility!r}")
        layers.append(
            OraLayer(el.attrib.get("name", ""), src, x, y, opacity, visibility == "visible",
                     el.attrib.get("composite-op", "svg:src-over"), dict(el.attrib), rgba)
        )
    merged = _png_rgba(zf.read("mergedimage.png"), "mergedimage.png")
    if merged.shape[:2] != (h, w):
        raise SpecViolation("mergedimage.png must have the image size")
    thumb = _png_rgba(zf.read("Thumbnails/thumbnail.png"), "thumbnail")
    if thumb.shape[0] > 256 or thumb.shape[1] > 256:
        raise SpecViolation("thumbnail larger than 256x256")
    return OraImage(w, h, layers, merged, thumb, names)


def composite(image: OraImage) -> np.ndarray:
    """src-over of the visible layers, bottom to top, onto transparent: RGBA float 0..1."""
    out = np.zeros((image.height, image.width, 4), np.float64)
    for layer in reversed(image.layers):
        if not layer.visible:
            continue
        if layer.composite_op != "svg:src-over":
            raise SpecViolation(f"this reader composites only svg:src-over, not {layer.composite_op}")
        src = layer.rgba.astype(np.float64) / 255.0
        a = src[:, :, 3:] * layer.opacity
        region = out[layer.y : layer.y + src.shape[0], layer.x : layer.x + src.shape[1]]
        out_a = a + region[:, :, 3:] * (1 - a)
        rgb = np.where(out_a > 0, (src[:, :, :3] * a + region[:, :, :3] * region[:, :, 3:] * (1 - a)) / np.maximum(out_a, 1e-12), 0)
        region[:, :, :3] = rgb
        region[:, :, 3:] = out_a
    return out
