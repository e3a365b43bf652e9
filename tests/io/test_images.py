"""Photo and mask I/O: every photo becomes RGB uint8 upright, conversions are reported,
EXIF/ICC/alpha survive a save, bad files raise ImageReadError with a message."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from app.io.images import (
    CUT_OFF,
    KEPT_16_BIT,
    KEPT_16_BIT_GRAY,
    REDUCED_16_BIT,
    REDUCED_16_BIT_GRAY,
    ROTATED_UPRIGHT,
    ImageMeta,
    ImageReadError,
    decode_image,
    encode_image,
    encode_png16,
    format_for,
    read_image,
    read_mask,
    reduced_from_16_bit,
    to_8_bit,
    write_image,
)


def _rgb(seed: int = 0, h: int = 24, w: int = 36) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _bytes(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_lossless_round_trip(fmt):
    rgb = _rgb()
    quality = 100 if fmt == "WEBP" else 95  # WebP is lossless at 100
    loaded = decode_image(encode_image(rgb, fmt, quality=quality))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    assert np.array_equal(loaded.rgb, rgb)
    assert loaded.meta.notes == [] and loaded.meta.alpha is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_icc_and_exif_survive_encode(fmt):
    icc = _icc()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x829A] = 0.01  # exposure time and GPS: the sub-blocks of every camera's EXIF
    exif.get_ifd(0x8825)[1] = "N"
    meta = ImageMeta(icc_profile=icc, exif=exif.tobytes(), dpi=(300.0, 300.0))
    data = encode_image(_rgb(), fmt, meta)
    img = Image.open(io.BytesIO(data))
    assert img.info.get("icc_profile") == icc
    back = img.getexif()
    assert back.get(0x010F) == "TestCam"
    assert back.get_ifd(0x8769).get(0x829A) == 0.01 and back.get_ifd(0x8825).get(1) == "N"
    assert decode_image(data).meta.icc_profile == icc


def test_an_optimized_jpeg_of_pure_grain_at_quality_100_is_written():
    """Pillow's buffer for optimized JPEGs holds 2 bytes a pixel; grain at quality 100 needs more."""
    grain = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    data = encode_image(grain, "JPEG", ImageMeta(), quality=100)
    assert len(data) > 2 * 300 * 400
    assert np.abs(decode_image(data).rgb.astype(int) - grain).mean() < 3


def test_jpeg_quality_is_applied():
    rgb = _rgb(h=96, w=96)
    assert len(encode_image(rgb, "JPEG", quality=20)) < 0.6 * len(encode_image(rgb, "JPEG", quality=95))


def test_write_image_is_atomic_and_replaces(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    write_image(target, _rgb())
    assert np.array_equal(read_image(target).rgb, _rgb())
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left behind


def test_format_for():
    assert format_for("a/b.JPG") == "JPEG" and format_for("x.tiff") == "TIFF"
    with pytest.raises(ValueError, match="x.gif"):
        format_for("x.gif")


# ---------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_reset(orientation):
    stored = _rgb(seed=orientation, h=20, w=32)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _bytes(Image.fromarray(stored), "PNG", exif=exif.tobytes())
    loaded = decode_image(data)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(loaded.rgb, expected)
    assert loaded.rgb.shape[:2] == ((20, 32) if orientation < 5 else (32, 20))
    assert any("EXIF orientation" in n for n in loaded.meta.notes) == (orientation != 1)
    saved = Image.open(io.BytesIO(encode_image(loaded.rgb, "JPEG", loaded.meta)))
    assert saved.getexif().get(0x0112, 1) == 1


# ---------------------------------------------------------------- conversions


def test_rgba_alpha_is_kept_aside_and_restored():
    rgba = np.dstack([_rgb(), np.arange(24 * 36, dtype=np.uint32).reshape(24, 36).astype(np.uint8)])
    loaded = decode_image(_bytes(Image.fromarray(rgba), "PNG"))
    assert np.array_equal(loaded.rgb, rgba[:, :, :3]) and np.array_equal(loaded.meta.alpha, rgba[:, :, 3])
    assert any("alpha" in n for n in loaded.meta.notes)
    back = np.asarray(Image.open(io.BytesIO(encode_image(loaded.rgb, "PNG", loaded.meta))))
    assert np.array_equal(back, rgba)
    assert Image.open(io.BytesIO(encode_image(loaded.rgb, "JPEG", loaded.meta))).mode == "RGB"


def test_opaque_alpha_is_dropped_silently():
    rgba = np.dstack([_rgb(), np.full((24, 36), 255, np.uint8)])
    loaded = decode_image(_bytes(Image.fromarray(rgba), "PNG"))
    assert loaded.meta.alpha is None and loaded.meta.notes == []


def test_grayscale_and_palette():
    gray = _rgb()[:, :, 0]
    loaded = decode_image(_bytes(Image.fromarray(gray), "PNG"))
    assert np.array_equal(loaded.rgb, np.repeat(gray[:, :, None], 3, axis=2))
    assert any("grayscale" in n for n in loaded.meta.notes)
    pal = Image.fromarray(_rgb()).quantize(16)
    loaded = decode_image(_bytes(pal, "PNG"))
    assert np.array_equal(loaded.rgb, np.asarray(pal.convert("RGB")))


def test_sixteen_bit_grayscale():
    gray16 = (np.arange(24 * 36, dtype=np.uint32).reshape(24, 36) * 77).astype(np.uint16)
    loaded = decode_image(_bytes(Image.fromarray(gray16), "PNG"))
    expected = np.round(gray16 / 65535 * 255).astype(np.uint8)
    assert np.array_equal(loaded.rgb[:, :, 1], expected)
    assert np.array_equal(loaded.meta.deep[:, :, 0], gray16)
    assert loaded.meta.notes == [KEPT_16_BIT_GRAY]


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_sixteen_bit_rgb_keeps_its_sixteen_bits(tmp_path, ext):
    rgb16 = np.random.default_rng(1).integers(0, 65536, (24, 36, 3)).astype(np.uint16)
    path = tmp_path / f"deep{ext}"
    assert cv2.imwrite(str(path), rgb16[:, :, ::-1])  # OpenCV writes BGR
    loaded = read_image(path)
    assert np.array_equal(loaded.rgb, np.round(rgb16.astype(np.float64) / 65535 * 255).astype(np.uint8))
    assert np.array_equal(loaded.meta.deep, rgb16) and not loaded.meta.deep.flags.writeable
    assert loaded.meta.notes == [KEPT_16_BIT]  # said (Pillow alone reduces it silently)
    assert not reduced_from_16_bit(loaded.meta)
    # an 8-bit TIFF is not reported
    assert cv2.imwrite(str(tmp_path / "flat.tif"), np.zeros((8, 8, 3), np.uint8))
    flat = read_image(tmp_path / "flat.tif")
    assert flat.meta.notes == [] and flat.meta.deep is None


def _png16(rgb16: np.ndarray, icc: bytes | None = None, exif: bytes | None = None) -> bytes:
    return encode_png16(np.ascontiguousarray(rgb16[:, :, [2, 1, 0, 3][: rgb16.shape[2]]]), icc, exif)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_export_keeps_every_unchanged_pixel(tmp_path, fmt):
    """The promise of the README: outside the edits the export is the source, bit for bit, at
    16 bits; an edited pixel is its 8-bit value scaled to 16 bits. ICC and EXIF travel along."""
    rng = np.random.default_rng(4)
    rgb16 = rng.integers(0, 65536, (30, 40, 3)).astype(np.uint16)
    exif = Image.Exif()
    exif[0x010F] = "Nikon"  # Make
    exif[0x0132] = "2024:06:01 10:00:00"  # DateTime
    source = tmp_path / "scan.png"
    icc = _icc()  # once: the profile carries its creation time
    source.write_bytes(_png16(rgb16, icc, exif.tobytes()))
    loaded = read_image(source)
    assert loaded.meta.icc_profile == icc  # read from the chunk encode_png16 wrote
    edited = loaded.rgb.copy()
    edited[5:12, 8:20] = (200, 10, 60)  # what a fill does
    out = tmp_path / f"out.{fmt.lower()}"
    assert write_image(out, edited, loaded.meta) == []
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert back.dtype == np.uint16
    hole = np.zeros((30, 40), bool)
    hole[5:12, 8:20] = True
    assert np.array_equal(back[~hole], rgb16[~hole])
    assert np.all(back[hole] == np.array([200, 10, 60]) * 257)
    with Image.open(out) as img:
        assert img.info.get("icc_profile") == icc
        assert img.getexif().get(0x010F) == "Nikon" and img.getexif().get(0x0132) == "2024:06:01 10:00:00"
    # an 8-bit format says what it could not keep
    assert any("8 bits per channel" in note for note in write_image(tmp_path / "out.jpg", edited, loaded.meta))


def test_sixteen_bit_tiff_export_carries_what_tiff_tags_can_and_names_the_rest(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "Nikon"
    exif[282] = exif[283] = 1200.0  # a 1200 dpi scan
    exif[296] = 2
    exif[700] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"  # XMP
    meta = ImageMeta(exif=exif.tobytes(), deep=np.zeros((4, 4, 3), np.uint16))
    # the make, the resolution and the XMP block are TIFF tags: kept, nothing to say
    assert write_image(tmp_path / "a.tif", np.zeros((4, 4, 3), np.uint8), meta) == []
    with Image.open(tmp_path / "a.tif") as img:
        assert img.info.get("dpi") == (1200, 1200) and img.getexif().get(0x010F) == "Nikon"
        assert img.tag_v2.get(700) == exif[700]
    exif.get_ifd(0x8769)[0x829A] = 0.01  # ExposureTime: in the EXIF sub-IFD
    meta.exif = exif.tobytes()
    lost = write_image(tmp_path / "b.tif", np.zeros((4, 4, 3), np.uint8), meta)
    assert lost == ["16-bit TIFF: not kept from EXIF: exposure and lens details (a PNG keeps them)"]
    assert write_image(tmp_path / "b.png", np.zeros((4, 4, 3), np.uint8), meta) == []  # PNG keeps all of it


def test_sixteen_bit_tiff_export_leaves_out_a_broken_resolution(tmp_path):
    exif = Image.Exif()
    exif[282], exif[283], exif[296] = 0.0, 300.0, 7  # zero dpi, an unknown unit
    meta = ImageMeta(exif=exif.tobytes(), deep=np.full((4, 4, 3), 1000, np.uint16))
    write_image(tmp_path / "a.tif", np.zeros((4, 4, 3), np.uint8), meta)
    assert cv2.imread(str(tmp_path / "a.tif"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


@pytest.mark.parametrize("orientation", range(1, 9))
def test_sixteen_bit_png_is_turned_upright_as_pillow_turns_it(orientation):
    rgba16 = np.random.default_rng(orientation).integers(0, 65536, (10, 16, 4)).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _png16(rgba16, None, exif.tobytes())
    loaded = decode_image(data)
    upright8 = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGBA"))
    assert loaded.rgb.shape == upright8.shape[:2] + (3,) and loaded.meta.notes[0] == KEPT_16_BIT
    assert np.abs(loaded.rgb.astype(int) - upright8[:, :, :3]).max() <= 1  # Pillow truncates, we round
    assert np.array_equal(loaded.meta.deep[:, :, 3] // 256, upright8[:, :, 3])  # the 16-bit alpha, upright
    out = encode_image(loaded.rgb, "PNG", loaded.meta)
    assert np.array_equal(cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, [2, 1, 0, 3]],
                          loaded.meta.deep)


def test_sixteen_bit_tiff_with_an_orientation_tag_is_upright(tmp_path):
    import tifffile

    rgb16 = np.random.default_rng(6).integers(0, 65536, (10, 16, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "turned.tif", rgb16, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    loaded = read_image(tmp_path / "turned.tif")
    assert loaded.meta.deep is not None and loaded.rgb.shape == (16, 10, 3)
    assert np.array_equal(loaded.meta.deep, np.rot90(rgb16, -1)) and ROTATED_UPRIGHT in loaded.meta.notes


def test_nearly_opaque_sixteen_bit_alpha_is_kept_bit_for_bit():
    rgba16 = np.full((6, 8, 4), 40000, np.uint16)
    rgba16[..., 3] = 65535
    rgba16[2, 3, 3] = 65500  # shows as 255, but is not 65535
    loaded = decode_image(_png16(rgba16))
    assert loaded.meta.alpha is None  # nothing to show
    out = encode_image(loaded.rgb, "PNG", loaded.meta)
    assert np.array_equal(cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)[..., 3], rgba16[..., 3])


def test_premultiplied_sixteen_bit_tiff_stays_with_pillows_eight_bits(tmp_path):
    """OpenCV does not un-premultiply alpha; its pixels would show half as bright where the
    photo is half transparent. They disagree with Pillow's reading, so they are not adopted."""
    import tifffile

    rgba16 = np.full((8, 8, 4), 32768, np.uint16)
    rgba16[..., :3] = (20000, 10000, 5000)  # (40000, 20000, 10000) at 50 %, premultiplied
    tifffile.imwrite(tmp_path / "pre.tif", rgba16, photometric="rgb", extrasamples=(1,))
    loaded = read_image(tmp_path / "pre.tif")
    assert loaded.meta.deep is None and loaded.meta.notes[0] == REDUCED_16_BIT
    assert reduced_from_16_bit(loaded.meta)
    assert np.abs(loaded.rgb[0, 0].astype(int) - np.array([40000, 20000, 10000]) // 257).max() <= 1


def test_a_sixteen_bit_photo_opencv_refuses_opens_in_eight_bits(tmp_path):
    import tifffile

    tall = (np.arange(4 * 1_100_000, dtype=np.uint32) % 65536).astype(np.uint16).reshape(1_100_000, 4)
    tifffile.imwrite(tmp_path / "tall.tif", tall)  # taller than OpenCV's limit: cv2.error, not a crash
    loaded = read_image(tmp_path / "tall.tif")
    assert loaded.meta.deep is None and loaded.meta.notes[0] == REDUCED_16_BIT_GRAY
    assert loaded.rgb.shape == (1_100_000, 4, 3)


def test_cmyk_jpeg_becomes_rgb_without_its_profile():
    cmyk = Image.fromarray(_rgb()).convert("CMYK")
    loaded = decode_image(_bytes(cmyk, "JPEG", quality=95, icc_profile=b"\0" * 128))
    assert loaded.rgb.shape == (24, 36, 3)
    assert any("CMYK" in n for n in loaded.meta.notes)
    assert loaded.meta.icc_profile is None  # a CMYK profile does not describe RGB pixels


@pytest.mark.parametrize("source", ["RGB PNG", "RGB JPEG", "WebP", "gray", "palette", "RGBA", "CMYK", "16-bit gray"])
def test_decoded_photo_is_a_writable_array_of_its_own(source):
    # Apply and undo write into the document's photo in place; a read-only view of Pillow's
    # buffer made Apply fail (and PySide crash) on every photo opened from a file
    rgb = _rgb()
    img = {
        "RGB PNG": Image.fromarray(rgb), "RGB JPEG": Image.fromarray(rgb), "WebP": Image.fromarray(rgb),
        "gray": Image.fromarray(rgb[:, :, 0]), "palette": Image.fromarray(rgb).quantize(16),
        "RGBA": Image.fromarray(np.dstack([rgb, np.full((24, 36), 9, np.uint8)])),
        "CMYK": Image.fromarray(rgb).convert("CMYK"), "16-bit gray": Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257),
    }[source]
    fmt = {"RGB JPEG": "JPEG", "CMYK": "JPEG", "WebP": "WEBP"}.get(source, "PNG")
    loaded = decode_image(_bytes(img, fmt))
    assert loaded.rgb.flags.writeable and loaded.rgb.flags.c_contiguous
    loaded.rgb[0, 0] = 1  # what Apply does


# ---------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="Cannot read gone.png") as caught:
        read_image(tmp_path / "gone.png")
    assert f"in {tmp_path}:" in str(caught.value)  # which of two files of that name


def test_not_an_image():
    with pytest.raises(ImageReadError, match="x.jpg is not an image") as caught:
        decode_image(b"hello" * 100, "x.jpg")
    # says which files it reads, not Pillow's "<_io.BytesIO object at 0x...>"
    assert "JPEG, PNG, TIFF, WebP or BMP" in str(caught.value) and "object at" not in str(caught.value)


def test_empty_file_says_it_is_empty(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"zero.jpg is empty \(0 bytes\)"):
        read_image(tmp_path / "zero.jpg")


@pytest.mark.parametrize(("fmt", "fill"), [("JPEG", 128), ("PNG", 0)])
def test_truncated_file_is_refused_unless_partial_is_asked_for(fmt, fill, tmp_path):
    """A cut-off file is refused by default (masks, project layers); a photo read with
    `partial` shows what decoded, the rest plain, and says so."""
    data = _bytes(Image.fromarray(_rgb(h=256, w=64)), fmt)
    cut = data[: len(data) // 2]
    with pytest.raises(ImageReadError, match="damaged or truncated"):
        decode_image(cut, "cut")
    whole, part = decode_image(data, "whole").rgb, decode_image(cut, "cut", partial=True)
    assert part.rgb.shape == whole.shape and part.meta.notes == [CUT_OFF]
    assert np.array_equal(part.rgb[:64], whole[:64])  # the top decoded as from the whole file
    assert (part.rgb[-16:] == fill).all() and not (whole[-16:] == fill).all()
    (tmp_path / "cut.png").write_bytes(cut)
    with pytest.raises(ImageReadError, match="cut.png is damaged or truncated"):
        read_mask(tmp_path / "cut.png")
    assert read_image(tmp_path / "cut.png", partial=True).meta.notes == [CUT_OFF]


def test_a_whole_file_read_with_partial_is_read_as_ever():
    data = _bytes(Image.fromarray(_rgb(h=64, w=64)), "JPEG")
    loaded = decode_image(data, "whole", partial=True)
    assert np.array_equal(loaded.rgb, decode_image(data, "whole").rgb) and loaded.meta.notes == []


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_megapixel_limit_argument():
    data = _bytes(Image.fromarray(_rgb(h=100, w=200)), "PNG")
    with pytest.raises(ImageReadError, match=r"p.png is 200x100 .*the limit is"):
        decode_image(data, "p.png", max_megapixels=0.01)
    assert decode_image(data, "p.png", max_megapixels=0.03).rgb.shape == (100, 200, 3)


# Finding: Pillow's decompression-bomb guard (89.5 MP warning, made an error here; 179 MP
# error) fires before the program's own 100 MP limit, so the limit message is never shown
# and photos between 89.5 and 100 MP are refused as "not an image".
def test_huge_photo_gets_the_limit_message():
    with pytest.raises(ImageReadError, match=r"12000x10000 .*the limit is 100 MP"):
        decode_image(_png_header(12000, 10000), "huge.png")


def test_photo_under_the_limit_is_not_refused_as_not_an_image():
    with pytest.raises(ImageReadError) as info:
        decode_image(_png_header(10000, 9500), "big.png")  # header only: it must fail as truncated
    assert "truncated" in str(info.value)


# ---------------------------------------------------------------- masks


def test_read_mask_thresholds_inverts_and_scales(tmp_path):
    values = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (8, 1))  # 8 x 32
    path = tmp_path / "m.png"
    Image.fromarray(values).save(path)
    mask = read_mask(path)
    assert set(np.unique(mask)) == {0, 255}
    assert np.array_equal(mask > 0, values > 127)
    assert np.array_equal(read_mask(path, invert=True), 255 - mask)
    big = read_mask(path, size=(64, 16))
    assert big.shape == (16, 64) and set(np.unique(big)) == {0, 255}
    assert np.array_equal(big[::2, ::2], mask)  # nearest neighbour: no new values, no shift


def test_read_mask_colour_and_alpha(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4, :, 0] = 255  # red strokes count as painted
    path = tmp_path / "red.png"
    Image.fromarray(rgb).save(path)
    assert np.array_equal(read_mask(path)[:, 0], [255] * 4 + [0] * 4)
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[:, :4, 3] = 0  # white but transparent: not painted
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    assert np.array_equal(read_mask(path)[0], [0] * 4 + [255] * 4)


def test_tiff_layout_tags_are_not_carried_as_exif(tmp_path):
    # OpenCV writes LZW strips with a SampleFormat tag; those described the source's pixels and,
    # written back as EXIF, made a TIFF export unreadable (SampleFormat 3 = float)
    rgb = _rgb(h=300, w=40)
    source = tmp_path / "scan.tif"
    assert cv2.imwrite(str(source), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert 339 in Image.open(source).getexif()  # the case this test is about
    loaded = read_image(source)
    kept = Image.Exif()
    kept.load(loaded.meta.exif or b"")
    assert not {256, 257, 258, 259, 273, 278, 279, 339}.intersection(kept)
    for fmt in ("TIFF", "JPEG", "PNG"):
        out = tmp_path / f"out.{fmt.lower()}"
        write_image(out, loaded.rgb, loaded.meta)
        again = read_image(out)
        if fmt == "JPEG":  # a JPEG's EXIF holds no strips of the source's
            assert not {273, 279, 339}.intersection(Image.open(out).getexif())
        else:
            assert np.array_equal(again.rgb, rgb)
    # a camera TIFF's real metadata still travels
    with_make = Image.fromarray(rgb)
    info = Image.Exif()
    info[0x010F] = "ScanCo"
    with_make.save(tmp_path / "made.tif", exif=info.tobytes())
    out = tmp_path / "made-out.jpg"
    write_image(out, read_image(tmp_path / "made.tif").rgb, read_image(tmp_path / "made.tif").meta)
    assert Image.open(out).getexif().get(0x010F) == "ScanCo"


@pytest.mark.parametrize("lossless", [True, False])
def test_a_lossless_webp_is_written_back_lossless_by_default(tmp_path, lossless):
    rgb = _rgb(h=48, w=64)
    source = tmp_path / "in.webp"
    Image.fromarray(rgb).save(source, "WEBP", lossless=lossless, quality=90)
    loaded = read_image(source)
    assert loaded.meta.lossless_webp is lossless
    write_image(tmp_path / "out.webp", loaded.rgb, loaded.meta)  # no quality given
    again = read_image(tmp_path / "out.webp")
    assert again.meta.lossless_webp is lossless
    if lossless:
        assert np.array_equal(again.rgb, rgb)
    # an extended WebP (VP8X first, with an ICC chunk) is read the same way
    Image.fromarray(rgb).save(tmp_path / "icc.webp", "WEBP", lossless=lossless, icc_profile=_icc())
    assert read_image(tmp_path / "icc.webp").meta.lossless_webp is lossless


def test_non_ascii_exif_text_survives_a_round_trip(tmp_path):
    """Pillow writes EXIF text back as ASCII ("© José" became "? Jos?"); the bytes read are kept."""
    exif = Image.Exif()
    exif[0x013B] = "José Müller".encode()  # Artist, UTF-8 as cameras and editors write it
    exif[0x8298] = "© 2024 José".encode()  # Copyright
    Image.fromarray(_rgb()).save(tmp_path / "a.jpg", quality=95, exif=exif.tobytes(), dpi=(300, 300))
    loaded = read_image(tmp_path / "a.jpg")
    deep = ImageMeta(exif=loaded.meta.exif, deep=np.zeros(loaded.rgb.shape, np.uint16))
    for fmt in ("jpg", "png", "tif", "16-bit tif", "webp"):  # WebP: EXIF written again with the dpi
        meta, fmt = (deep, "tif") if fmt == "16-bit tif" else (loaded.meta, fmt)
        write_image(tmp_path / f"out.{fmt}", loaded.rgb, meta)
        with Image.open(tmp_path / f"out.{fmt}") as img:
            back = img.getexif()
        assert back[0x013B].encode("latin-1") == "José Müller".encode(), fmt
        assert back[0x8298].encode("latin-1") == "© 2024 José".encode(), fmt


def test_resolution_known_only_from_png_header_is_carried(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "scan.png", dpi=(600, 600))  # pHYs only, no EXIF
    loaded = read_image(tmp_path / "scan.png")
    assert loaded.meta.dpi == (600.0, 600.0)
    for fmt in ("png", "tif", "jpg"):
        write_image(tmp_path / f"out.{fmt}", loaded.rgb, loaded.meta)
        with Image.open(tmp_path / f"out.{fmt}") as img:
            assert tuple(round(v) for v in img.info["dpi"]) == (600, 600), fmt
    # WebP has no resolution field: it goes into EXIF, and is read back from there
    write_image(tmp_path / "out.webp", loaded.rgb, loaded.meta)
    with Image.open(tmp_path / "out.webp") as img:
        assert img.getexif()[282] == 600 and img.getexif()[296] == 2
    assert read_image(tmp_path / "out.webp").meta.dpi == (600.0, 600.0)
    # and at 16 bits
    rgb16 = np.random.default_rng(8).integers(0, 65536, (12, 9, 3)).astype(np.uint16)
    deep = decode_image(encode_png16(rgb16, dpi=(600.0, 600.0)))
    assert deep.meta.dpi == (600.0, 600.0) and deep.meta.deep is not None
    for fmt in ("png", "tif"):
        write_image(tmp_path / f"deep.{fmt}", deep.rgb, deep.meta)
        with Image.open(tmp_path / f"deep.{fmt}") as img:
            assert tuple(round(v) for v in img.info["dpi"]) == (600, 600), fmt


def test_tiff_orientation_is_reported_though_the_decoder_turns_it(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "turned8.tif", _rgb(), photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    loaded = read_image(tmp_path / "turned8.tif")
    assert loaded.rgb.shape == (36, 24, 3) and ROTATED_UPRIGHT in loaded.meta.notes


def test_tifffiles_shape_description_is_not_carried_to_a_turned_export(tmp_path):
    import tifffile

    rgb16 = np.random.default_rng(7).integers(0, 65536, (10, 16, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", rgb16, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    loaded = read_image(tmp_path / "scan.tif")
    write_image(tmp_path / "out.tif", loaded.rgb, loaded.meta)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert "ImageDescription" not in tif.pages[0].tags and tif.pages[0].shape == (16, 10, 3)


def test_an_unreadable_tiff_layout_is_named(tmp_path):
    import tifffile

    la16 = np.zeros((8, 8, 2), np.uint16)
    tifffile.imwrite(tmp_path / "la16.tif", la16, photometric="minisblack", extrasamples=(2,))
    with pytest.raises(ImageReadError, match="TIFF file this program cannot read.*16-bit grayscale with transparency"):
        read_image(tmp_path / "la16.tif")


def test_a_gray_scan_is_exported_gray_until_an_edit_adds_colour(tmp_path):
    gray16 = np.random.default_rng(9).integers(0, 65536, (12, 9)).astype(np.uint16)
    loaded = decode_image(_bytes(Image.fromarray(gray16), "PNG"))
    edited = loaded.rgb.copy()
    edited[2:4, 2:4] = 90  # a gray fill
    write_image(tmp_path / "g.tif", edited, loaded.meta)
    back = cv2.imread(str(tmp_path / "g.tif"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (12, 9) and back[3, 3] == 90 * 257 and back[8, 8] == gray16[8, 8]
    edited[5, 5] = (200, 10, 10)  # a colour one
    write_image(tmp_path / "c.png", edited, loaded.meta)
    back = cv2.imread(str(tmp_path / "c.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (12, 9, 3) and np.array_equal(back[8, 8], [gray16[8, 8]] * 3)
    edited[5, 5] = 90
    write_image(tmp_path / "g.jpg", edited, loaded.meta)  # an 8-bit format: gray, as from an 8-bit gray scan
    assert Image.open(tmp_path / "g.jpg").mode == "L"


def test_an_export_mostly_changed_by_tone_repairs_says_it_is_8_bit_there(tmp_path):
    rgb16 = np.random.default_rng(10).integers(0, 65536, (64, 48, 3)).astype(np.uint16)
    loaded = decode_image(_png16(rgb16))
    filled = loaded.rgb.copy()
    filled[:8, :8] = 0
    assert write_image(tmp_path / "fill.png", filled, loaded.meta) == []
    toned = np.clip(loaded.rgb.astype(int) + 9, 0, 255).astype(np.uint8)  # what auto levels does
    notes = write_image(tmp_path / "toned.png", toned, loaded.meta)
    assert len(notes) == 1 and "8-bit precision" in notes[0]


def test_a_photo_read_as_a_mask_is_doubted_a_mask_is_not(tmp_path):
    from pathlib import Path

    from app.io.images import read_mask_for

    resources = Path(__file__).resolve().parents[2] / "resources"
    photo = read_image(resources / "rocket.jpg").rgb
    size = (photo.shape[1], photo.shape[0])
    doubted = read_mask_for(resources / "rocket.jpg", size)
    assert doubted.doubt is not None and "does not look like a mask" in doubted.doubt
    assert read_mask_for(resources / "sample_mask.png", (512, 512)).doubt is None  # the bundled mask
    soft = np.zeros((120, 160), np.uint8)
    cv2.circle(soft, (80, 60), 40, 255, -1)
    Image.fromarray(cv2.GaussianBlur(soft, (0, 0), 6)).save(tmp_path / "soft.png")  # a feathered mask
    red = np.zeros((120, 160, 3), np.uint8)
    red[30:90, 40:120] = (255, 0, 0)  # one colour on black: a mask painted in red
    Image.fromarray(red).save(tmp_path / "red.png")
    assert read_mask_for(tmp_path / "soft.png", (160, 120)).doubt is None
    assert read_mask_for(tmp_path / "red.png", (160, 120)).doubt is None


def test_a_project_given_as_a_photo_is_named_as_a_project(tmp_path):
    import zipfile

    path = tmp_path / "work.ora"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "image/openraster")  # stored first, as the spec asks
        z.writestr("stack.xml", "<image/>")
    with pytest.raises(ImageReadError, match=r"work\.ora is a project \(OpenRaster \.ora\), not a photo"):
        read_image(path)


def test_a_multi_page_tiff_says_only_its_first_page_is_used(tmp_path):
    pages = [Image.fromarray(np.full((20, 30, 3), v, np.uint8)) for v in (10, 200)]
    pages[0].save(tmp_path / "two.tif", save_all=True, append_images=pages[1:])
    loaded = read_image(tmp_path / "two.tif")
    assert loaded.meta.notes == ["it has 2 pages; only the first is edited and written"]
    assert (loaded.rgb == 10).all()


def test_an_opaque_black_and_white_mask_with_one_transparent_pixel_is_read_by_brightness(tmp_path):
    from app.io.images import read_mask_for

    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[10:20, 10:20, :3] = 255  # white strokes on an opaque black ground
    rgba[0, 0, 3] = 0  # one transparent pixel (an eraser slip)
    Image.fromarray(rgba).save(tmp_path / "m.png")
    mask = read_mask_for(tmp_path / "m.png", (50, 50)).mask
    assert (mask > 0).sum() == 100 and mask[15, 15] == 255


def test_a_camera_jpeg_with_an_embedded_preview_is_not_called_multi_page(tmp_path):
    """An MPO (a JPEG with an embedded second picture) opens with 2 frames: not pages."""
    frames = [Image.fromarray(np.full((20, 30, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "cam.jpg", "MPO", save_all=True, append_images=frames[1:])
    assert not any("pages" in note for note in read_image(tmp_path / "cam.jpg").meta.notes)


def test_a_gray_photo_with_transparency_is_written_gray_with_its_alpha():
    la = np.zeros((20, 30, 2), np.uint8)
    la[..., 0] = np.arange(30) * 8
    la[..., 1] = 200
    buf = io.BytesIO()
    Image.fromarray(la, "LA").save(buf, "PNG")
    loaded = decode_image(buf.getvalue())
    for fmt in ("PNG", "TIFF"):
        written = Image.open(io.BytesIO(encode_image(loaded.rgb, fmt, loaded.meta)))
        assert written.mode == "LA" and np.array_equal(np.asarray(written), la), fmt


def test_an_8_bit_tiff_keeps_the_photos_resolution_profile_and_text_tags(tmp_path):
    """Written by tifffile (Pillow's libtiff held the GIL through the encode): the resolution is
    the photo's own (its header's, as PNG and JPEG exports use), not a differing EXIF one."""
    import tifffile

    exif = Image.Exif()
    exif[271], exif[272], exif[282], exif[283], exif[296] = "Nikon", "F3", 72.0, 72.0, 2
    rgb = _rgb(h=20, w=30)
    meta = ImageMeta(exif=exif.tobytes(), icc_profile=b"\0\0\0\x10fake-profile", dpi=(300.0, 300.0))
    write_image(tmp_path / "o.tif", rgb, meta)
    back = Image.open(tmp_path / "o.tif")
    assert back.info["dpi"] == (300.0, 300.0) and np.array_equal(np.asarray(back), rgb)
    assert back.info["icc_profile"] == meta.icc_profile
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        tags = tif.pages[0].tags
        assert tags["Make"].value == "Nikon" and tags["Model"].value == "F3"
        assert tags["SamplesPerPixel"].value == 3 and tags["Compression"].value != 1


@pytest.mark.parametrize("orientation, samples", [(1, 3), (6, 3), (1, 4)])
def test_a_sixteen_bit_tiff_with_separate_colour_planes_reads_right(tmp_path, orientation, samples):
    """Pillow and OpenCV both misread 16-bit planar TIFFs (stripes, false colours): QA got one
    back scrambled with exit code 0. tifffile reads them; the 16 bits are kept and turned upright."""
    import tifffile

    rng = np.random.default_rng(samples)
    pixels = rng.integers(0, 65536, (30, 40, samples)).astype(np.uint16)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(pixels, 2, 0), photometric="rgb", planarconfig="separate",
                     extrasamples=[2] if samples == 4 else None, extratags=[(274, "H", 1, orientation, True)])
    loaded = read_image(path)
    upright = np.rot90(pixels, -1) if orientation == 6 else pixels
    assert np.array_equal(loaded.meta.deep, upright)
    assert np.array_equal(loaded.rgb, to_8_bit(upright[:, :, :3]))
    if samples == 4:
        assert np.array_equal(loaded.meta.alpha, to_8_bit(upright[:, :, 3]))
    assert loaded.meta.notes[0] == KEPT_16_BIT
