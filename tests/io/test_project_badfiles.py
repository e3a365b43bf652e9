"""Bad files give a clear ProjectError: never a crash, a hang, or a write outside their folder."""

from __future__ import annotations

import functools
import io
import json
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.canvas.document import LayerKind
from app.io.project import ProjectError, inspect_project, load_project, save_project
from tests.io.conftest import make_doc


@functools.lru_cache(maxsize=1)
def valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.ora"
        save_project(make_doc(layers=3), path)
        return path.read_bytes()


@pytest.fixture
def valid() -> bytes:
    return valid_bytes()


def entries(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def rezip(data: bytes, replace: dict | None = None, drop=(), first=None, mime_deflated=False) -> bytes:
    """Rebuild a project with some entries replaced (name -> bytes) or dropped."""
    replace = replace or {}
    items = [(i.filename, replace.get(i.filename, d), i.compress_type) for i, d in entries(data) if i.filename not in drop]
    items += [(n, d, zipfile.ZIP_DEFLATED) for n, d in replace.items() if n not in {i[0] for i in items}]
    if first:
        items.sort(key=lambda item: item[0] != first)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload, method in items:
            if name == "mimetype" and mime_deflated:
                method = zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), payload, compress_type=method)
    return buf.getvalue()


def stack_of(data: bytes) -> str:
    return {i.filename: d for i, d in entries(data)}["stack.xml"].decode()


def png(w: int, h: int, mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, "PNG")
    return buf.getvalue()


def open_bad(tmp_path: Path, data: bytes, match: str) -> ProjectError:
    path = tmp_path / "bad.ora"
    path.write_bytes(data)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ProjectError, match=match) as info:
        load_project(path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere near
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 400
    return info.value


def test_valid_baseline_opens(tmp_path, valid):
    (tmp_path / "ok.ora").write_bytes(valid)
    assert len(load_project(tmp_path / "ok.ora").layers) == 3


@pytest.mark.parametrize("keep", [0, 10, 40, 100, 1000, -200, -22, -1])
def test_truncated(tmp_path, valid, keep):
    open_bad(tmp_path, valid[:keep], "not a readable|empty|damaged|incomplete|not an OpenRaster")


def test_corrupt_layer_bytes(tmp_path, valid):
    data = bytearray(valid)
    at = valid.index(b"IDAT", valid.index(b"data/photo.png")) + 20
    data[at : at + 30] = bytes(30)
    open_bad(tmp_path, bytes(data), "damaged")


def test_corrupt_png_with_valid_crc(tmp_path, valid):
    photo = {i.filename: d for i, d in entries(valid)}["data/photo.png"]
    broken = photo[:60] + bytes(len(photo) - 120) + photo[-60:]
    open_bad(tmp_path, rezip(valid, {"data/photo.png": broken}), "damaged|not a readable")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not a readable"),
        (b"\xff\xd8\xff\xe0 a jpeg renamed", "not a readable OpenRaster project: it is a JPEG image; open it as a photo"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "it is a PNG image"),
        (b"plain text", "it is not a zip archive"),
        (b"PK\x05\x06" + bytes(18), "empty archive"),
    ],
)
def test_not_a_zip(tmp_path, data, match):
    open_bad(tmp_path, data, match)


def test_wrong_mimetype(tmp_path, valid):
    err = open_bad(tmp_path, rezip(valid, {"mimetype": b"image/png"}), "not an OpenRaster project")
    assert "mimetype" in str(err)
    open_bad(tmp_path, rezip(valid, {"mimetype": b"image/openrastex"}), "its mimetype is 'image/openrastex'")
    open_bad(tmp_path, rezip(valid, first="stack.xml"), "first entry is not 'mimetype'")
    open_bad(tmp_path, rezip(valid, mime_deflated=True), "stored uncompressed")


def test_zip_bomb_declared_size_too_big(tmp_path, valid):
    zeros = bytes(300 << 20)  # 300 MB of nothing, ~300 kB deflated, for a 32x24 layer
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, payload in entries(valid):
            if info.filename == "data/mask-1.png":
                zf.writestr(info.filename, zeros, compress_type=zipfile.ZIP_DEFLATED)
            else:
                zf.writestr(info, payload)
    del zeros
    open_bad(tmp_path, buf.getvalue(), "zip bomb")


def _patch_sizes(data: bytes, name: bytes, file_size: int) -> bytes:
    """Rewrite the uncompressed size of `name` in its local header and central directory."""
    out = bytearray(data)
    local = 0
    while True:
        local = bytes(out).index(b"PK\x03\x04", local)
        n_len = struct.unpack("<H", out[local + 26 : local + 28])[0]
        if out[local + 30 : local + 30 + n_len] == name:
            out[local + 22 : local + 26] = struct.pack("<I", file_size)
            break
        local += 4
    central = 0
    while True:
        central = bytes(out).index(b"PK\x01\x02", central)
        n_len = struct.unpack("<H", out[central + 28 : central + 30])[0]
        if out[central + 46 : central + 46 + n_len] == name:
            out[central + 24 : central + 28] = struct.pack("<I", file_size)
            return bytes(out)
        central += 4


def test_zip_bomb_forged_ratio(tmp_path, valid):
    # a deflated entry that claims to inflate 2000x: no deflate stream can
    data = rezip(valid, {"inpaint-studio/project.json": b"{}" * 64})
    json_info = next(i for i, _ in entries(data) if i.filename == "inpaint-studio/project.json")
    forged = _patch_sizes(data, b"inpaint-studio/project.json", json_info.compress_size * 2000)
    open_bad(tmp_path, forged, "zip bomb")


def test_zip_bomb_real_data_larger_than_declared(tmp_path, valid):
    # stack.xml declares fewer bytes than it inflates to: reading stops at the declared size
    data = rezip(valid, {"stack.xml": stack_of(valid).encode() + b" " * 50000})
    forged = _patch_sizes(data, b"stack.xml", 300)
    open_bad(tmp_path, forged, "damaged|not well-formed|larger")


def test_png_bomb_header(tmp_path, valid):
    # a tiny PNG whose header claims 60000x60000: refused from the header, before decoding
    small = bytearray(png(1, 1, "L"))
    ihdr = small.index(b"IHDR")
    small[ihdr + 4 : ihdr + 12] = struct.pack(">II", 60000, 60000)
    small[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(small[ihdr : ihdr + 17])))
    open_bad(tmp_path, rezip(valid, {"data/mask-2.png": bytes(small)}), "does not fit|not a readable|do not match")


def test_huge_canvas_refused(tmp_path, valid):
    xml = stack_of(valid).replace('w="32"', 'w="90000"').replace('h="24"', 'h="90000"')
    open_bad(tmp_path, rezip(valid, {"stack.xml": xml.encode()}), "limit is 100 MP")


@pytest.mark.parametrize("src", ["../evil.png", "/etc/passwd", "data/../../x.png", "C:\\x.png", "data//mask-1.png", ""])
def test_path_escape_in_src(tmp_path, valid, src):
    xml = stack_of(valid).replace('src="data/mask-1.png"', f'src="{src}"')
    open_bad(tmp_path, rezip(valid, {"stack.xml": xml.encode()}), "unsafe")


def test_missing_layer_file(tmp_path, valid):
    open_bad(tmp_path, rezip(valid, drop=("data/mask-2.png",)), "missing")


def test_mismatched_layer_sizes(tmp_path, valid):
    open_bad(tmp_path, rezip(valid, {"data/photo.png": png(31, 24, "RGB")}), "sizes do not match")
    open_bad(tmp_path, rezip(valid, {"data/mask-1.png": png(40, 24)}), "does not fit")
    xml = stack_of(valid).replace('src="data/mask-1.png" x="0"', 'src="data/mask-1.png" x="5"')
    open_bad(tmp_path, rezip(valid, {"stack.xml": xml.encode()}), "does not fit")


def test_smaller_layer_at_an_offset_is_placed(tmp_path, valid):
    # as GIMP writes layers: only their bounds, with x/y
    part = np.zeros((5, 6, 4), np.uint8)
    part[..., 3] = 200
    buf = io.BytesIO()
    Image.fromarray(part, "RGBA").save(buf, "PNG")
    xml = stack_of(valid).replace('src="data/mask-1.png" x="0" y="0"', 'src="data/mask-1.png" x="10" y="7"')
    path = tmp_path / "offset.ora"
    path.write_bytes(rezip(valid, {"stack.xml": xml.encode(), "data/mask-1.png": buf.getvalue()}))
    layer = load_project(path).layers[0]
    assert layer.mask[7:12, 10:16].min() == 200 and np.count_nonzero(layer.mask) == 30


def test_newer_format_version(tmp_path, valid):
    xml = stack_of(valid).replace('inpaint:format-version="1"', 'inpaint:format-version="2"')
    err = open_bad(tmp_path, rezip(valid, {"stack.xml": xml.encode()}), "newer version")
    assert "format 2" in str(err)
    raw = json.loads({i.filename: d for i, d in entries(valid)}["inpaint-studio/project.json"])
    raw["format_version"] = 7
    open_bad(tmp_path, rezip(valid, {"inpaint-studio/project.json": json.dumps(raw).encode()}), "format 7")


def test_xml_entities_refused(tmp_path, valid):
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<image w="32" h="24"><stack><layer src="data/photo.png" name="&lol2;"/></stack></image>'
    )
    open_bad(tmp_path, rezip(valid, {"stack.xml": laughs.encode()}), "DOCTYPE")
    open_bad(tmp_path, rezip(valid, {"stack.xml": b"<image w='32' h='24'><stack>"}), "not well-formed")
    open_bad(tmp_path, rezip(valid, {"stack.xml": b"<image w='x' h='24'><stack/></image>"}), "not a whole number")
    open_bad(tmp_path, rezip(valid, {"stack.xml": b"<image w='32' h='24'><stack/></image>"}), "no layers")


def test_damaged_settings_fall_back_with_a_note(tmp_path, valid):
    raw = json.loads({i.filename: d for i, d in entries(valid)}["inpaint-studio/project.json"])
    raw["settings"]["cra"] = "yes"
    raw["settings"]["coarse_size"] = 1.5
    raw["settings"]["unknown_future_key"] = 3
    path = tmp_path / "s.ora"
    path.write_bytes(rezip(valid, {"inpaint-studio/project.json": json.dumps(raw).encode()}))
    doc = load_project(path)
    assert doc.settings.cra is True and doc.settings.coarse_size == 512  # defaults
    assert doc.settings.method == "telea"  # the good ones kept
    assert any("cra" in note for note in doc.meta.notes)


def test_foreign_file_without_our_attributes_opens(tmp_path, valid):
    # as another program re-saves it: plain layers, no extras
    xml = (
        '<image w="32" h="24" version="0.0.3"><stack>'
        '<layer name="strokes" src="data/mask-1.png" opacity="0.4"/>'
        '<layer name="background" src="data/photo.png"/></stack></image>'
    )
    path = tmp_path / "gimp.ora"
    path.write_bytes(rezip(valid, {"stack.xml": xml.encode()}, drop=("inpaint-studio/project.json",)))
    doc = load_project(path)
    assert [x.name for x in doc.layers] == ["strokes"] and doc.layers[0].opacity == pytest.approx(0.4)
    assert inspect_project(path).layers[-1].role == "photo"


def test_folder_and_missing_file(tmp_path):
    with pytest.raises(ProjectError, match="folder"):
        load_project(tmp_path)
    with pytest.raises(ProjectError, match="nope.ora cannot be opened"):
        load_project(tmp_path / "nope.ora")


# ------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def check_load(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.ora"
    path.write_bytes(data)
    try:
        doc = load_project(path)
    except ProjectError as exc:
        assert str(exc)
        return
    h, w = doc.photo.shape[:2]
    assert doc.photo.dtype == np.uint8 and doc.photo.shape == (h, w, 3)
    assert all(layer.mask.shape == (h, w) and layer.mask.dtype == np.uint8 for layer in doc.layers)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=st.data())
def test_fuzz_bytes(fuzz_dir, data):
    """Flip, overwrite, insert and cut raw bytes of the archive."""
    blob = bytearray(valid_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        if not blob:
            break
        op = data.draw(st.sampled_from(["flip", "set", "insert", "cut", "truncate"]))
        at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip":
            blob[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            blob[at : at + 4] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "cut":
            del blob[at : at + data.draw(st.integers(1, 64))]
        else:
            del blob[at:]
    check_load(fuzz_dir, bytes(blob))


@functools.lru_cache(maxsize=1)
def valid_entries() -> dict[str, bytes]:
    return {i.filename: d for i, d in entries(valid_bytes())}


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_entries(fuzz_dir, data):
    """Mutate one entry's content and rezip with valid CRCs: reaches the XML, JSON and PNG readers."""
    name = data.draw(st.sampled_from(sorted(valid_entries())))
    payload = bytearray(valid_entries()[name])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, max(len(payload) - 1, 0)))
        if name in ("stack.xml", "inpaint-studio/project.json"):
            token = data.draw(st.sampled_from(['"', "<", ">", "-1", "999999", "..", "/", "0", "e", "x", "", "1e309", "nan", "{", "]"]))
            payload[at : at + data.draw(st.integers(0, 4))] = token.encode()
        else:
            payload[at : at + 1] = data.draw(st.binary(min_size=0, max_size=3))
    check_load(fuzz_dir, rezip(valid_bytes(), {name: bytes(payload)}))



def test_unknown_xml_encoding_is_a_clean_error(tmp_path, valid):
    """Found by the fuzz test: an XML declaration naming a non-existent encoding made
    ElementTree raise LookupError, which escaped as a crash."""
    stack = stack_of(valid)
    body = stack.split("?>", 1)[1] if stack.startswith("<?xml") else stack
    data = rezip(valid, {"stack.xml": b"<?xml version='1.0' encoding='U-1TF-8'?>" + body.encode()})
    open_bad(tmp_path, data, "encoding")


def test_file_resaved_by_krita_keeps_masks_result_and_protect_by_name(tmp_path):
    """Krita re-saving our project (checked by hand with Krita 5.1: `krita X.ora --export
    --export-filename Y.ora`) drops our attributes, crops each layer to its content with
    an x/y offset, and keeps names, opacity, visibility and the masks' alpha exactly."""

    doc = make_doc(seed=5, w=40, h=30, layers=2)
    doc.layers[1].name = "Protect faces"

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    files, xml_layers = {}, []
    for i, layer in enumerate(reversed(doc.layers)):
        ys, xs = np.nonzero(layer.mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        rgba = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
        rgba[..., :3] = layer.color
        rgba[..., 3] = layer.mask[y0:y1, x0:x1]
        files[f"data/layer{i + 2}.png"] = png(Image.fromarray(rgba, "RGBA"))
        xml_layers.append(f'<layer name="{layer.name}" src="data/layer{i + 2}.png" x="{x0}" y="{y0}" '
                          f'opacity="{layer.opacity}" visibility="{"visible" if layer.visible else "hidden"}"/>')
    files["data/layer1.png"] = png(Image.fromarray(doc.result.image, "RGB").convert("RGBA"))
    files["data/layer0.png"] = png(Image.fromarray(doc.photo, "RGB").convert("RGBA"))
    xml = ('<image w="40" h="30" version="0.0.1"><stack>' + "".join(xml_layers)
           + '<layer name="Result (not applied)" src="data/layer1.png" x="0" y="0" visibility="hidden"/>'
           + '<layer name="Photo" src="data/layer0.png" x="0" y="0"/></stack></image>')
    path = tmp_path / "krita.ora"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "image/openraster", compress_type=zipfile.ZIP_STORED)
        zf.writestr("stack.xml", xml)
        for name, data in files.items():
            zf.writestr(name, data)
    back = load_project(path)
    assert np.array_equal(back.photo, doc.photo)
    assert [x.name for x in back.layers] == [x.name for x in doc.layers]
    for got, want in zip(back.layers, doc.layers):
        assert np.array_equal(got.mask, want.mask) and got.visible == want.visible
        assert got.opacity == pytest.approx(want.opacity)
    assert [x.kind for x in back.layers] == [LayerKind.FILL, LayerKind.PROTECT]  # by its name
    assert back.result is not None and np.array_equal(back.result.image, doc.result.image)
    assert any("another program" in note for note in back.meta.notes)


@pytest.mark.parametrize("flag_bit", [5, 6])  # "compressed patched data", "strong encryption"
def test_zip_flags_this_program_cannot_read(tmp_path, valid, flag_bit):
    # zipfile raises NotImplementedError for these; found by the byte fuzzer
    blob = bytearray(valid)
    entry = blob.find(b"PK\x01\x02", blob.find(b"PK\x01\x02") + 4)  # the second central entry
    flags = struct.unpack("<H", blob[entry + 8 : entry + 10])[0] | (1 << flag_bit)
    blob[entry + 8 : entry + 10] = struct.pack("<H", flags)
    open_bad(tmp_path, bytes(blob), "damaged|not a readable")
