"""`inpaint-studio restore` end to end on a synthetic damaged photo."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.cli.main import main
from app.io.images import read_image
from app.restore.synthetic import add_damage
from tests.restore.conftest import mosaic_photo

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample.png"


@pytest.fixture
def damaged(tmp_path):
    clean = read_image(SAMPLE).rgb[96:352, 128:448].copy()  # a real photo: the learned detector's domain
    dmg = add_damage(clean, np.random.default_rng(11))
    path = tmp_path / "old.png"
    Image.fromarray(dmg.image).save(path)
    return clean, dmg, path


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_restore_fills_detected_damage_and_keeps_the_rest(damaged, tmp_path, capsys):
    clean, dmg, path = damaged
    out, mask_path = tmp_path / "out.png", tmp_path / "mask.png"
    assert main(["restore", str(path), "-o", str(out), "--save-mask", str(mask_path)]) == 0
    result = np.asarray(Image.open(out).convert("RGB"))
    mask = np.asarray(Image.open(mask_path).convert("L"))
    assert mask.any()
    assert np.array_equal(result[mask == 0], dmg.image[mask == 0])  # untouched outside the mask
    assert psnr(result, clean) > psnr(dmg.image, clean) + 3
    said = capsys.readouterr()
    assert "% of pixels filled" in said.out
    # the detection (most of a restore's time) is a stage of its own, before the fill
    assert said.err.index("Detecting damage") < said.err.index("Filling")


@pytest.mark.parametrize("name", ["mask.tif", "mask.webp"])
def test_the_saved_mask_is_lossless_and_gray_where_the_format_has_gray(damaged, tmp_path, name):
    _, _, path = damaged
    png, other = tmp_path / "mask.png", tmp_path / name
    assert main(["restore", str(path), "-o", str(tmp_path / "a.png"), "--save-mask", str(png)]) == 0
    assert main(["restore", str(path), "-o", str(tmp_path / "b.png"), "--save-mask", str(other)]) == 0
    saved = Image.open(png)
    assert saved.mode == "L" and set(np.unique(np.asarray(saved))) == {0, 255}
    assert np.array_equal(np.asarray(Image.open(other).convert("L")), np.asarray(saved))  # lossless
    if name.endswith(".tif"):  # one channel (WebP has no gray mode: lossless RGB is its best)
        assert Image.open(other).mode == "L"


def test_a_jpeg_mask_is_refused_before_the_work(damaged, tmp_path, capsys):
    _, _, path = damaged
    assert main(["restore", str(path), "-o", str(tmp_path / "o.png"), "--save-mask", str(tmp_path / "m.jpg")]) == 2
    assert "a JPEG mask is lossy" in capsys.readouterr().err and not (tmp_path / "o.png").exists()


def test_restore_with_repairs_and_detect_choice(damaged, tmp_path):
    _, dmg, path = damaged
    out = tmp_path / "out.jpg"
    assert main(["restore", str(path), "-o", str(out), "--detect", "dust", "--sensitivity", "0.7",
                 "--denoise", "4", "--auto-levels"]) == 0
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == dmg.image.shape
    none_out = tmp_path / "none.png"
    assert main(["restore", str(path), "-o", str(none_out), "--detect", "none"]) == 0
    assert np.array_equal(np.asarray(Image.open(none_out).convert("RGB")), dmg.image)


@pytest.mark.parametrize(
    "args, text",
    [
        (["--detect", "mould"], "unknown damage kind"),
        (["--sensitivity", "3"], "between 0 and 1"),
        (["-o", "x.bmpx"], "choose a file name"),
        (["--save-mask", "absent/m.png"], "the folder does not exist"),
        (["--save-mask", "old.png"], "is also an input"),
        (["--save-mask", "o.png"], "--save-mask and -o name the same file"),
        (["--sharpen", "inf"], "--sharpen must be between 0 and 3"),
        (["--sharpen", "nan"], "--sharpen must be between 0 and 3"),
        (["--save-mask", "m.gif"], "name the mask .png, .tif or .webp"),
        (["--detect", ","], "name the kinds"),
        (["--keep-tone"], "--keep-tone goes with --auto-levels"),
        (["--skip-existing"], "--force and --skip-existing are for a folder"),
    ],
)
def test_restore_bad_arguments_give_a_message(damaged, tmp_path, capsys, monkeypatch, args, text):
    _, _, path = damaged
    monkeypatch.chdir(tmp_path)  # relative names in `args` are beside the photo
    argv = ["restore", str(path), "-o", str(tmp_path / "o.png")] + args
    # a wrong value is a usage error (2, as argparse's); a file problem 1
    usage = ("between", "kind", "name the mask", "goes with", "are for a folder")
    assert main(argv) == (2 if any(w in text for w in usage) else 1)
    assert text in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_restore_denoise_is_limited_to_the_panels_range(damaged, tmp_path, capsys):
    _, _, path = damaged
    with pytest.raises(SystemExit) as stop:
        main(["restore", str(path), "-o", str(tmp_path / "o.png"), "--denoise", "31"])
    assert stop.value.code == 2 and "between 0 and 30 grey levels (the Restore panel's range)" in capsys.readouterr().err


def test_restore_missing_photo(tmp_path, capsys):
    assert main(["restore", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png")]) == 1
    assert "Cannot read" in capsys.readouterr().err


def test_gray_world_flag_removes_a_cast(tmp_path):
    clean = mosaic_photo()
    cast = np.clip(clean * np.array([1.2, 1.0, 0.8]), 0, 255).astype(np.uint8)
    path = tmp_path / "cast.png"
    Image.fromarray(cast).save(path)
    colour = {}
    for name, extra in (("plain", []), ("balanced", ["--gray-world"])):
        out = tmp_path / f"{name}.png"
        assert main(["restore", str(path), "-o", str(out), "--detect", "none"] + extra) == 0
        means = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3).mean(axis=0)
        colour[name] = means / means.mean()
    original = clean.reshape(-1, 3).mean(axis=0) / clean.mean()
    assert np.abs(colour["plain"] - original).max() > 0.15
    assert np.abs(colour["balanced"] - original).max() < 0.04


def chroma(rgb):
    """The mean chroma (Lab): how strong a sepia print's tone is."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(float)
    return float(np.hypot(lab[:, :, 1] - 128, lab[:, :, 2] - 128).mean())


def test_keep_tone_keeps_a_sepia_print_sepia_through_auto_levels(tmp_path, capsys):
    gray = read_image(SAMPLE).rgb[96:352, 128:448].mean(axis=2, keepdims=True) / 255.0
    sepia = np.clip((0.25 + 0.5 * gray) * np.array([1.0, 0.85, 0.62]) * 255, 0, 255).astype(np.uint8)
    path = tmp_path / "sepia.png"
    Image.fromarray(sepia).save(path)
    tone = {}
    for name, extra in (("per-channel", []), ("kept", ["--keep-tone"])):
        out = tmp_path / f"{name}.png"
        assert main(["restore", str(path), "-o", str(out), "--detect", "none", "--auto-levels"] + extra) == 0
        assert "; repaired: auto levels" in capsys.readouterr().out  # not only "nothing to fill"
        result = np.asarray(Image.open(out).convert("RGB"))
        tone[name] = chroma(result)
        lightness = cv2.cvtColor(result, cv2.COLOR_RGB2LAB)[:, :, 0]
        assert lightness.min() < 20 and lightness.max() > 235  # the contrast comes back either way
    assert tone["per-channel"] < 0.1 * chroma(sepia)  # the tone was taken out
    # kept as it was: not taken out, and not doubled (QA: the three channels stretched alike doubled it)
    assert 0.8 * chroma(sepia) < tone["kept"] < 1.2 * chroma(sepia)
