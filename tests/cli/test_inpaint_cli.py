"""`inpaint-studio inpaint`, run in-process through app.cli.main.main (and once as a
subprocess): formats, metadata, odd photos and every bad input give a clear message,
never a traceback."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import app.cli.common as cli_common
from app.cli.main import main
from app.io.images import decode_image, read_image

H, W = 120, 200
FAST = ["--method", "telea", "--backend", "cpu"]


def _photo(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], 2)
    return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


def _mask(h: int = H, w: int = W) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3 : 2 * h // 3, w // 3 : w // 2] = 255
    return mask


def _save(path: Path, array: np.ndarray, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def files(tmp_path):
    photo = _save(tmp_path / "photo.png", _photo())
    mask = _save(tmp_path / "mask.png", _mask())
    return tmp_path, photo, mask


def _read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# ---------------------------------------------------------------- working runs


def test_inpaint_png_writes_the_fill_and_keeps_every_other_pixel(capsys, files):
    tmp, photo, mask = files
    out = tmp / "out.png"
    code, stdout, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0
    assert "1 region(s) filled with opencv telea" in stdout and "cpu" in stdout
    assert "Filling" in stderr and "Pasting back" in stderr  # the progress report, in words
    result, original, m = _read_rgb(out), _photo(), _mask()
    assert np.array_equal(result[m == 0], original[m == 0])
    assert not np.array_equal(result[m > 0], original[m > 0])


def test_inpaint_with_a_model_file_says_which_method_ran(capsys, files, tiny_model):
    tmp, photo, mask = files
    model = tiny_model("cli_model", size=64)
    code, stdout, _ = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "o.png", "--model", model,
                              "--backend", "cpu")
    assert code == 0 and "model: cli_model" in stdout


def test_progress_in_a_log_names_each_stage_once(capsys, tmp_path):
    """Without a terminal the stages are lines in a log: several hole regions alternate
    Filling / Pasting back, and each is said once, not per region."""
    photo = _save(tmp_path / "p.png", _photo())
    mask = np.zeros((H, W), np.uint8)
    for y, x in ((3, 3), (3, 185), (112, 3), (112, 185)):  # four holes in the corners, far apart
        mask[y : y + 4, x : x + 10] = 255
    mask_path = _save(tmp_path / "m.png", mask)
    code, stdout, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask_path, "-o", tmp_path / "o.png", *FAST)
    assert code == 0 and "4 region(s)" in stdout
    lines = [line for line in stderr.splitlines() if line.startswith("p.png: ")]
    assert len(lines) == len(set(lines)) and "p.png: Filling" in lines and "p.png: Pasting back" in lines


def test_invert_mask_fills_the_black_area(capsys, files):
    tmp, photo, _ = files
    black = _save(tmp / "black.png", 255 - _mask())  # HiFill style: black = fill
    out = tmp / "inv.png"
    code, _, _ = run_cli(capsys, "inpaint", photo, "--mask", black, "--invert-mask", "-o", out, *FAST)
    assert code == 0
    result, original, m = _read_rgb(out), _photo(), _mask()
    assert np.array_equal(result[m == 0], original[m == 0])
    assert not np.array_equal(result[m > 0], original[m > 0])
    # without the flag the same file would fill almost the whole photo: a different output
    code, _, _ = run_cli(capsys, "inpaint", photo, "--mask", black, "-o", tmp / "plain.png", *FAST)
    assert code == 0
    assert not np.array_equal(_read_rgb(tmp / "plain.png")[m == 0], original[m == 0])


def test_mask_with_alpha_paints_where_opaque(capsys, files):
    tmp, photo, _ = files
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = _mask()  # white everywhere, opaque only in the hole
    mask = _save(tmp / "alpha_mask.png", rgba)
    out = tmp / "o.png"
    assert run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)[0] == 0
    assert np.array_equal(_read_rgb(out)[_mask() == 0], _photo()[_mask() == 0])
    assert not np.array_equal(_read_rgb(out)[_mask() > 0], _photo()[_mask() > 0])
    # black strokes on a transparent layer (what a paint program exports): the strokes are the mask
    rgba[..., :3] = 0
    _save(mask, rgba)
    out2 = tmp / "o2.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out2, *FAST)
    assert code == 0 and "empty" not in stderr
    assert np.array_equal(_read_rgb(out2), _read_rgb(out))


def test_mask_of_another_size_with_the_same_aspect_is_scaled(capsys, files):
    tmp, photo, _ = files
    half = _mask()[::2, ::2]  # 100x60
    mask = _save(tmp / "half.png", half)
    out = tmp / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0
    assert "warning" in stderr and "100x60" in stderr and "scaled" in stderr and "200x120" in stderr
    scaled = np.asarray(Image.fromarray(half).resize((W, H), Image.NEAREST))
    result = _read_rgb(out)
    assert result.shape == (H, W, 3)
    assert np.array_equal(result[scaled == 0], _photo()[scaled == 0])


def test_mask_of_another_aspect_is_refused(capsys, files):
    tmp, photo, _ = files
    mask = _save(tmp / "square.png", np.zeros((100, 100), np.uint8))
    out = tmp / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 1
    assert "square.png is 100x100" in stderr and "200x120" in stderr and "aspect" in stderr
    assert not out.exists()


def test_empty_mask_writes_the_photo_unchanged_and_says_so(capsys, files):
    tmp, photo, _ = files
    mask = _save(tmp / "empty.png", np.zeros((H, W), np.uint8))
    out = tmp / "o.png"
    code, stdout, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "empty" in stderr and "unchanged" in stderr
    assert "nothing to fill" in stdout and "none on none" not in stdout
    assert np.array_equal(_read_rgb(out), _photo())
    # a JPEG too: its own file, not encoded again (QA: "unchanged" changed 60 % of its pixels)
    jpeg = tmp / "photo.jpg"
    Image.fromarray(_photo()).save(jpeg, quality=90)
    assert run_cli(capsys, "inpaint", jpeg, "--mask", mask, "-o", tmp / "o.jpg", *FAST)[0] == 0
    assert (tmp / "o.jpg").read_bytes() == jpeg.read_bytes()


def test_whole_photo_mask_is_refused(capsys, files):
    tmp, photo, _ = files
    mask = _save(tmp / "full.png", np.full((H, W), 255, np.uint8))
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "o.png", *FAST)
    assert code == 1 and "error:" in stderr and "whole photo" in stderr


# ---------------------------------------------------------------- unreadable input


def test_missing_photo(capsys, files):
    tmp, _, mask = files
    code, _, stderr = run_cli(capsys, "inpaint", tmp / "nope.jpg", "--mask", mask, "-o", tmp / "o.png", *FAST)
    assert code == 1 and "Cannot read nope.jpg" in stderr


def test_missing_mask(capsys, files):
    tmp, photo, _ = files
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", tmp / "nomask.png", "-o", tmp / "o.png", *FAST)
    assert code == 1 and "mask" in stderr and "nomask.png" in stderr


def test_not_an_image(capsys, files):
    tmp, _, mask = files
    junk = tmp / "junk.jpg"
    junk.write_bytes(b"just text pretending to be a photo " * 10)
    code, _, stderr = run_cli(capsys, "inpaint", junk, "--mask", mask, "-o", tmp / "o.png", *FAST)
    assert code == 1 and "junk.jpg is not an image" in stderr


def test_truncated_jpeg_is_filled_as_far_as_it_decodes_with_a_warning(capsys, files):
    tmp, _, mask = files
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, "JPEG", quality=90)
    cut = tmp / "cut.jpg"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out = tmp / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", cut, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "warning: cut.jpg: the file is cut off" in stderr
    decoded = decode_image(cut.read_bytes(), partial=True).rgb
    outside = np.asarray(Image.open(mask)) == 0
    assert np.array_equal(np.asarray(Image.open(out))[outside], decoded[outside])


def test_truncated_mask_is_refused(capsys, files):
    tmp, photo, mask = files
    data = mask.read_bytes()
    cut = tmp / "cut_mask.png"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", cut, "-o", out, *FAST)
    assert code == 1 and "cut_mask.png is damaged or truncated" in stderr
    assert not out.exists()


def test_unknown_output_extension(capsys, files):
    tmp, photo, mask = files
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "o.gif", *FAST)
    assert code == 1 and "o.gif" in stderr and ".png" in stderr


def test_output_folder_missing(capsys, files):
    tmp, photo, mask = files
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "absent" / "o.png", *FAST)
    assert code == 1 and "Cannot write in" in stderr and "absent" in stderr


def test_bad_option_values(capsys, files):
    tmp, photo, mask = files
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "o.jpg", "--quality", "0", *FAST)
    assert code == 2 and "--quality" in stderr  # a usage error, as in batch and as argparse's
    with pytest.raises(SystemExit) as info:  # argparse: usage and a message, exit 2
        main(["inpaint", str(photo), "--mask", str(mask), "-o", str(tmp / "o.png"), "--backend", "gpu"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'gpu'" in err and "Traceback" not in err


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_photo_beyond_the_pixel_limit_is_refused(capsys, files):
    tmp, _, mask = files
    huge = tmp / "huge.png"
    huge.write_bytes(_png_header(12000, 10000))  # 120 MP claimed, a few bytes on disk
    code, _, stderr = run_cli(capsys, "inpaint", huge, "--mask", mask, "-o", tmp / "o.png", *FAST)
    assert code == 1 and "error:" in stderr and "huge.png" in stderr


def test_pixel_limit_message(capsys, files, monkeypatch):
    """The limit itself, on a real photo: only the limit argument is changed."""
    tmp, photo, mask = files
    monkeypatch.setattr(cli_common, "read_image", lambda path, max_megapixels, partial: read_image(path, max_megapixels=0.01, partial=partial))
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "o.png", *FAST)
    assert code == 1 and "photo.png is 200x120" in stderr and "limit" in stderr and "memory" in stderr


def test_npu_backend_is_refused_with_a_reason(capsys, files, tiny_model):
    tmp, photo, mask = files
    out = tmp / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, "--method", "telea",
                              "--backend", "npu")
    assert code != 0 and "NPU" in stderr and "--backend cpu" in stderr
    model = tiny_model("npu_model", size=64)
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, "--model", model,
                              "--backend", "npu")
    assert code != 0 and "NPU backend cannot run" in stderr
    assert not out.exists()


# ---------------------------------------------------------------- odd photos


def test_sixteen_bit_grayscale_png(capsys, tmp_path):
    gray16 = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 65535 // (H * W)).astype(np.uint16)
    photo = tmp_path / "deep.png"
    Image.fromarray(gray16).save(photo)
    assert Image.open(photo).mode == "I;16"
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "note: deep.png: 16-bit grayscale" in stderr and "warning" not in stderr
    import cv2

    arr, keep = cv2.imread(str(out), cv2.IMREAD_UNCHANGED), _mask() == 0
    assert arr.dtype == np.uint16 and arr.shape == (H, W)  # written with its 16 bits, still gray (the fill is)
    assert np.array_equal(arr[keep], gray16[keep])  # bit-identical outside the mask
    # a filled pixel is the fill's 8-bit value scaled to 16 bits (or the source's, where the fill
    # gave the 8-bit value the source had)
    scaled_or_source = (arr % 257 == 0) | (arr == gray16)
    assert scaled_or_source[~keep].all() and (arr != gray16)[~keep].mean() > 0.5
    # a JPEG cannot keep 16 bits: said
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp_path / "o.jpg", *FAST)
    assert code == 0 and "8 bits per channel" in stderr


def test_rgba_png_keeps_its_alpha(capsys, tmp_path):
    rgba = np.dstack([_photo(), np.tile(np.arange(W, dtype=np.uint8), (H, 1))])
    photo = _save(tmp_path / "cut_out.png", rgba)
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "alpha" in stderr and "no transparency" not in stderr
    result = np.asarray(Image.open(out))
    assert result.shape == (H, W, 4)
    assert np.array_equal(result[:, :, 3], rgba[:, :, 3])  # alpha restored, everywhere
    keep = _mask() == 0
    assert np.array_equal(result[:, :, :3][keep], rgba[:, :, :3][keep])
    # a format without alpha gets the colour only, and the user is told
    out_jpg = tmp_path / "o.jpg"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out_jpg, *FAST)
    assert code == 0 and "o.jpg: JPEG has no transparency" in stderr
    assert Image.open(out_jpg).mode == "RGB"


def test_grayscale_photo(capsys, tmp_path):
    gray = _photo()[:, :, 0]
    photo = _save(tmp_path / "gray.png", gray)
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "grayscale" in stderr
    result = _read_rgb(out)
    keep = _mask() == 0
    for c in range(3):
        assert np.array_equal(result[:, :, c][keep], gray[keep])
    with Image.open(out) as written:
        assert written.mode == "L"  # and written gray, as it came (the fill stayed gray)


def test_cmyk_jpeg(capsys, tmp_path):
    photo = tmp_path / "print.jpg"
    Image.fromarray(_photo()).convert("CMYK").save(photo, quality=95)
    assert Image.open(photo).mode == "CMYK"
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / "o.png"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "CMYK" in stderr
    result = _read_rgb(out)
    expected = np.asarray(Image.open(photo).convert("RGB"))
    keep = _mask() == 0
    assert np.array_equal(result[keep], expected[keep])


def test_exif_rotated_jpeg_comes_out_upright(capsys, tmp_path):
    stored = _photo(seed=4, h=100, w=160)  # as stored on disk: landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    exif[0x010F] = "TestCam"
    photo = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(photo, quality=95, exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(photo)).convert("RGB"))
    assert upright.shape == (160, 100, 3)  # portrait as shown
    mask = _save(tmp_path / "m.png", _mask(160, 100))  # masks are painted on the upright photo
    out = tmp_path / "o.jpg"
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0 and "EXIF orientation" in stderr
    result = Image.open(out)
    assert result.size == (100, 160)
    assert result.getexif().get(0x0112, 1) == 1  # not rotated a second time by viewers
    assert result.getexif().get(0x010F) == "TestCam"  # the rest of EXIF is kept
    keep = _mask(160, 100) == 0
    diff = np.abs(np.asarray(result.convert("RGB")).astype(int) - upright)[keep]
    assert diff.mean() < 3  # JPEG re-encoding only
    # the same with a mask in the stored orientation: another aspect, refused
    sideways = _save(tmp_path / "side.png", _mask(100, 160))
    assert run_cli(capsys, "inpaint", photo, "--mask", sideways, "-o", out, *FAST)[0] == 1


def _icc_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("out_name", ["o.jpg", "o.png", "o.tif"])
def test_icc_profile_is_kept(capsys, tmp_path, out_name):
    icc = _icc_profile()
    photo = tmp_path / "tagged.jpg"
    Image.fromarray(_photo()).save(photo, quality=95, icc_profile=icc)
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / out_name
    assert run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)[0] == 0
    assert Image.open(out).info.get("icc_profile") == icc


def test_jpeg_quality_changes_the_file(capsys, files):
    tmp, photo, mask = files
    sizes = {}
    for q in (30, 95):
        out = tmp / f"q{q}.jpg"
        assert run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, "--quality", q, *FAST)[0] == 0
        sizes[q] = out.stat().st_size
    assert sizes[30] < 0.7 * sizes[95]


# ---------------------------------------------------------------- the console entry


def test_python_dash_m_app_runs_the_command_line(tmp_path):
    photo = _save(tmp_path / "p.png", _photo())
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / "o.png"
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "app", "inpaint", str(photo), "--mask", str(mask), "-o", str(out), *FAST],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "opencv telea" in proc.stdout
    assert np.array_equal(_read_rgb(out)[_mask() == 0], _photo()[_mask() == 0])
    # an error through the same entry: message, exit 1, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "app", "inpaint", str(tmp_path / "absent.png"), "--mask", str(mask), "-o", str(out),
         *FAST],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 1 and "absent.png" in proc.stderr and "Traceback" not in proc.stderr


def test_texture_option_sets_how_grainy_the_fill_is(capsys, tmp_path):
    rng = np.random.default_rng(4)
    grainy = np.clip(128 + rng.normal(0, 25, (300, 300, 3)), 0, 255).astype(np.uint8)
    photo = _save(tmp_path / "grain.png", grainy)
    m = np.zeros((300, 300), np.uint8)
    m[100:200, 100:200] = 255
    mask = _save(tmp_path / "m.png", m)
    spread = {}
    for texture in ("0", "1"):
        out = tmp_path / f"t{texture}.png"
        code, _, _ = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, "--texture", texture, *FAST)
        assert code == 0
        result = _read_rgb(out).astype(float)
        assert np.array_equal(result[m == 0], grainy[m == 0])
        spread[texture] = result[110:190, 110:190].std()
    assert spread["0"] < 5 and spread["1"] > 15  # smooth vs about the photo's own grain (25)
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp_path / "x.png", "--texture", "3", *FAST)
    assert code == 2 and "--texture" in stderr


@pytest.mark.parametrize("which", ["photo", "mask"])
def test_output_that_is_an_input_is_refused_before_any_work(capsys, files, which):
    tmp, photo, mask = files
    target = {"photo": photo, "mask": mask}[which]
    before = target.read_bytes()
    # the same file under another spelling of its path
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "." / target.name, *FAST)
    assert code == 1 and "is also an input" in stderr
    assert target.read_bytes() == before


def test_a_named_model_that_is_missing_is_an_error_not_a_silent_switch_to_telea(capsys, files):
    tmp, photo, mask = files
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "o.png",
                              "--model", tmp / "nowhere.onnx", "--backend", "cpu")
    assert code == 1 and "Model file not found" in stderr and "nowhere.onnx" in stderr
    assert not (tmp / "o.png").exists()


def test_lossless_webp_in_lossless_webp_out(capsys, files):
    tmp, _, mask = files
    photo = tmp / "photo.webp"
    Image.fromarray(_photo()).save(photo, "WEBP", lossless=True)
    out = tmp / "o.webp"
    code, _, _ = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", out, *FAST)
    assert code == 0
    keep = _mask() == 0
    assert np.array_equal(_read_rgb(out)[keep], _photo()[keep])  # bit-identical outside the mask


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`inpaint-studio project info P.ora | head -1`: when the pipe's reader has gone, the
    command stops without a traceback (exit 141, as a tool stopped by SIGPIPE)."""
    from app.io.project import save_project
    from tests.io.conftest import make_doc

    save_project(make_doc(layers=3), tmp_path / "p.ora")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONUNBUFFERED", None)  # stdout to a pipe is block-buffered, as for a user
    proc = subprocess.Popen([sys.executable, "-m", "app", "project", "info", str(tmp_path / "p.ora")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    proc.stdout.close()  # gone before the program writes its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "Error" not in err, err


def test_a_mask_given_with_a_project_is_an_error_not_ignored(capsys, tmp_path):
    """A project's visible fill layers are its mask: a --mask beside it would be silently unused."""
    from app.io.project import save_project
    from tests.io.conftest import make_doc

    save_project(make_doc(layers=3), tmp_path / "p.ora")
    mask = _save(tmp_path / "m.png", _mask())
    code, _, stderr = run_cli(capsys, "inpaint", tmp_path / "p.ora", "--mask", mask, "-o", tmp_path / "o.png", *FAST)
    assert code == 1 and "p.ora is a project" in stderr and "--mask" in stderr
    assert not (tmp_path / "o.png").exists()


def test_a_mistyped_command_is_named_not_opened_in_the_editor(capsys, tmp_path, monkeypatch):
    """`inpaint-studio restor photo.jpg -o out.jpg` opened the editor on a file called "restor"."""
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_cli(capsys, "restor", "photo.jpg", "-o", "out.jpg")
    assert code == 2 and "unknown command 'restor' (did you mean restore?)" in stderr
    code, _, stderr = run_cli(capsys, "frobnicate", "--help")
    assert code == 2 and "unknown command 'frobnicate'" in stderr


def test_a_forgotten_command_word_is_named_not_the_editor_opened(capsys, files):
    """`inpaint-studio photo.png --mask m.png -o out.png` opened the editor and ignored the rest."""
    tmp, photo, mask = files
    code, _, stderr = run_cli(capsys, photo, "--mask", mask, "-o", tmp / "o.png")
    assert code == 2 and f"inpaint-studio inpaint {photo} --mask MASK -o OUT" in stderr
    assert not (tmp / "o.png").exists()


def test_an_output_that_is_a_folder_is_refused_before_any_work(capsys, files):
    tmp, photo, mask = files
    (tmp / "out.png").mkdir()
    code, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", mask, "-o", tmp / "out.png", *FAST)
    assert code == 1 and "out.png is a folder" in stderr and "Filling" not in stderr


def test_sigterm_while_writing_leaves_no_half_written_file(tmp_path):
    """`kill` or `timeout` during the write: the temp file goes, the previous output stays."""
    photo = _save(tmp_path / "p.png", _photo())
    mask = _save(tmp_path / "m.png", _mask())
    out = tmp_path / "o.png"
    out.write_bytes(b"previous good file")
    root = Path(__file__).resolve().parents[2]
    script = ("import os, sys, time\n"
              "os.fsync = lambda fd: time.sleep(120)  # hold the write open, the temp file on disk\n"
              "from app.cli.main import main\n"
              f"sys.exit(main(['inpaint', {str(photo)!r}, '--mask', {str(mask)!r}, '-o', {str(out)!r}, "
              "'--method', 'telea']))\n")
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".o.png.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "terminated" in stderr and "Traceback" not in stderr
    assert out.read_bytes() == b"previous good file" and not list(tmp_path.glob(".o.png.*"))


def test_a_photo_given_as_the_mask_is_warned_about(capsys, tmp_path):
    photo = _save(tmp_path / "p.png", _photo())
    _, _, stderr = run_cli(capsys, "inpaint", photo, "--mask", photo, "-o", tmp_path / "o.png", *FAST)
    assert "warning: p.png does not look like a mask" in stderr


def test_a_photo_file_without_extension_still_opens_in_the_editor(tmp_path, monkeypatch):
    """The mistyped-command check must not stand between a user and a real file."""
    from app.ui import launch

    photo = tmp_path / "scan"  # a photo saved without an extension
    Image.fromarray(_photo()).save(photo, "PNG")
    opened = []
    monkeypatch.setattr(launch, "launch_editor", lambda argv: opened.append(argv) or 0)
    monkeypatch.chdir(tmp_path)
    assert main(["scan"]) == 0 and opened == [["scan"]]
