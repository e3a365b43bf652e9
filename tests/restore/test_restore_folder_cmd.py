"""`inpaint-studio restore FOLDER -o OUT_DIR`: an album of scans restored in one run."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.cli.main import main
from app.io.images import read_image
from app.restore.synthetic import add_damage

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample.png"


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def album(tmp_path):
    """Two damaged scans (crops of the sample photo) and one file that is not an image."""
    photo = read_image(SAMPLE).rgb
    scans = tmp_path / "scans"
    scans.mkdir()
    clean = {"a": photo[96:288, 128:384].copy(), "b": photo[200:392, 250:506].copy()}
    damaged, visible = {}, {}
    for seed, (stem, image) in enumerate(clean.items(), 11):
        damage = add_damage(image, np.random.default_rng(seed))
        damaged[stem], visible[stem] = damage.image, damage.visible > 0
        Image.fromarray(damaged[stem]).save(scans / f"{stem}.png")
    (scans / "c.jpg").write_bytes(b"not a jpeg")
    return scans, clean, damaged, visible


def test_a_folder_is_restored_photo_by_photo_and_a_bad_file_is_listed(album, tmp_path, capsys):
    scans, clean, damaged, visible = album
    out, masks = tmp_path / "out", tmp_path / "masks"
    code = main(["restore", str(scans), "-o", str(out), "--save-mask", str(masks), "--format", "png"])
    said = capsys.readouterr()
    assert code == 1  # c.jpg failed: a script must see it
    assert "2 of 3 photos restored" in said.out and "1 failed:\n  c.jpg: " in said.err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in masks.iterdir()) == ["a.png", "b.png"]
    for stem in ("a", "b"):
        result, mask = rgb(out / f"{stem}.png"), np.asarray(Image.open(masks / f"{stem}.png"))
        assert mask.ndim == 2 and mask.any()
        assert np.array_equal(result[mask == 0], damaged[stem][mask == 0])  # untouched outside the damage
        seen = visible[stem]  # the damage: the grain over the whole scan is left as it is
        err_before = np.abs(damaged[stem].astype(float) - clean[stem])[seen].mean()
        assert np.abs(result.astype(float) - clean[stem])[seen].mean() < 0.7 * err_before  # b: a scratch on dark missed
        assert f"{stem}.png: " in said.out and "% of pixels filled as damage" in said.out
    assert {p.name for p in scans.iterdir()} == {"a.png", "b.png", "c.jpg"}  # the album as it was


def test_trimmed_masks_from_a_folder_are_filled_instead_of_detecting(album, tmp_path, capsys):
    scans, _, damaged, _ = album
    (scans / "c.jpg").unlink()
    masks = tmp_path / "masks"
    masks.mkdir()
    keep_a = np.zeros(damaged["a"].shape[:2], np.uint8)
    keep_a[40:60, 50:90] = 255  # the user kept one patch of the proposal
    Image.fromarray(keep_a).save(masks / "a.png")
    Image.fromarray(np.zeros_like(keep_a)).save(masks / "b.png")  # and trimmed all of b's away
    out = tmp_path / "out"
    assert main(["restore", str(scans), "-o", str(out), "--mask", str(masks)]) == 0
    a, b = rgb(out / "a.png"), rgb(out / "b.png")
    assert np.array_equal(a[keep_a == 0], damaged["a"][keep_a == 0]) and not np.array_equal(a, damaged["a"])
    assert np.array_equal(b, damaged["b"])
    # one mask for every scan: dust on the scanner glass is in the same place on each
    out2 = tmp_path / "out2"
    assert main(["restore", str(scans), "-o", str(out2), "--mask", str(masks / "a.png")]) == 0
    for stem in ("a", "b"):
        result = rgb(out2 / f"{stem}.png")
        assert np.array_equal(result[keep_a == 0], damaged[stem][keep_a == 0])
        assert not np.array_equal(result[keep_a > 0], damaged[stem][keep_a > 0])
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, text",
    [
        (["-o", "out.png"], "for a folder of photos, name an output folder"),
        (["-o", "out", "--save-mask", "m.png"], "name a folder for the masks"),
        (["-o", "out", "--save-mask", "out"], "-o and --save-mask name the same folder"),
        (["-o", "out", "--save-mask", "scans"], "the photos and --save-mask name the same folder"),
        (["-o", "out", "--save-mask", "m.jpg"], "name a folder for the masks"),
        (["-o", "out", "--format", "gif"], "--format gif: not a format this program writes"),
        (["-o", "out", "--mask", "nowhere"], "the masks folder or file nowhere does not exist"),
        (["-o", "out", "--mask", "scans"], "the photos and the masks are both in"),
    ],
)
def test_folder_usage_errors_are_said_before_any_work(album, tmp_path, capsys, monkeypatch, args, text):
    monkeypatch.chdir(tmp_path)
    assert main(["restore", "scans"] + args) == 2
    assert text in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_results_among_their_masks_and_masks_among_the_photos_are_refused(album, tmp_path, capsys):
    scans = album[0]
    masks = tmp_path / "masks"
    masks.mkdir()
    for args, text in (
        (["-o", str(masks), "--mask", str(masks)], "-o and --mask name the same folder"),
        (["-o", str(tmp_path / "out"), "--mask", str(masks), "--save-mask", str(masks)],
         "--save-mask and --mask name the same folder"),
    ):
        assert main(["restore", str(scans)] + args) == 2
        assert text in capsys.readouterr().err
    assert not any(masks.iterdir())


def test_twin_names_keep_their_own_files_and_a_failed_twin_does_not_block_the_other(album, tmp_path, capsys):
    scans, _, damaged, _ = album
    Image.fromarray(damaged["b"]).save(scans / "a.jpg", quality=95)  # a.jpg beside a.png: the same stem
    out, masks = tmp_path / "out", tmp_path / "masks"
    assert main(["restore", str(scans), "-o", str(out), "--save-mask", str(masks), "--format", "png"]) == 1
    err = capsys.readouterr().err
    # a.jpg went first and wrote a.png and its mask; a.png may replace neither
    assert "a.png: a.jpg already wrote a.png; rename one of them" in err
    assert sorted(p.name for p in masks.iterdir()) == ["a.png", "b.png"]
    # a twin that fails holds no name: the other is still restored
    (scans / "a.jpg").write_bytes(b"broken")
    out2 = tmp_path / "out2"
    assert main(["restore", str(scans), "-o", str(out2), "--format", "png"]) == 1
    err = capsys.readouterr().err
    assert "a.jpg: " in err and "already wrote" not in err and (out2 / "a.png").exists()


def test_twins_without_format_keep_their_results_and_refuse_the_second_mask(album, tmp_path, capsys):
    scans, _, damaged, _ = album
    (scans / "c.jpg").unlink()
    Image.fromarray(damaged["b"]).save(scans / "a.jpg", quality=95)
    out, masks = tmp_path / "out", tmp_path / "masks"
    assert main(["restore", str(scans), "-o", str(out), "--save-mask", str(masks)]) == 1
    err = capsys.readouterr().err
    assert "a.png: a.jpg already wrote its mask a.png; rename one of them" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]  # a.png failed before writing anything


def test_a_reader_that_goes_away_ends_the_run(album, tmp_path, monkeypatch):
    """`restore ALBUM -o OUT | head -1`: the run stops at the broken pipe (main's exit 141), it
    does not go on restoring every scan and count each as failed."""
    from app.cli import restore_cmd

    def closed_pipe(text):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(restore_cmd, "say", closed_pipe)
    scans = album[0]
    out = tmp_path / "out"
    assert main(["restore", str(scans), "-o", str(out), "--detect", "none"]) == 141
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_a_scan_with_nothing_to_do_is_listed_as_unchanged(album, tmp_path, capsys):
    scans, _, damaged, _ = album
    (scans / "c.jpg").unlink()
    Image.fromarray(damaged["a"]).save(scans / "d.bmp")  # read, but not a format we write
    (scans / "._a.png").write_bytes(b"macOS keeps its metadata here")  # hidden: not a photo
    assert main(["restore", str(scans), "-o", str(tmp_path / "out"), "--detect", "none"]) == 0
    said = capsys.readouterr()
    assert "0 of 3 photos restored" in said.out and "3 written unchanged" in said.err
    assert np.array_equal(rgb(tmp_path / "out" / "d.png"), damaged["a"])  # a BMP comes back lossless, as PNG
    # a photo left as it was is its own file, not encoded again
    assert (tmp_path / "out" / "a.png").read_bytes() == (scans / "a.png").read_bytes()


def test_a_missing_folder_is_named_as_what_is_wrong(tmp_path, capsys):
    assert main(["restore", str(tmp_path / "album"), "-o", str(tmp_path / "restored")]) == 1
    assert "there is no file or folder of that name" in capsys.readouterr().err


def test_format_is_refused_for_one_photo_and_a_folder_mask(album, tmp_path, capsys):
    scans, _, _, _ = album
    assert main(["restore", str(scans / "a.png"), "-o", str(tmp_path / "o.png"), "--format", "jpg"]) == 2
    assert "--format is for a folder of photos" in capsys.readouterr().err
    assert main(["restore", str(scans / "a.png"), "-o", str(tmp_path / "o.png"), "--mask", str(tmp_path)]) == 2
    assert "is a folder; for one photo give one mask file" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_a_stopped_run_says_what_was_written_before_the_stop(album, tmp_path, capsys, monkeypatch):
    from app.cli import restore_cmd

    real, calls = restore_cmd.restore, []

    def stopped_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl+C while the second scan is worked
        return real(*args, **kwargs)

    monkeypatch.setattr(restore_cmd, "restore", stopped_on_the_second)
    scans = album[0]
    out = tmp_path / "out"
    assert main(["restore", str(scans), "-o", str(out), "--detect", "none"]) == 130
    assert "stopped at b.png; written before it: a.png" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_a_second_run_replaces_nothing_unasked(album, tmp_path, capsys):
    """Masks trimmed by hand since the first run, and its results, are not replaced without
    --force (QA: a second run with the same --save-mask folder destroyed the trimmed masks);
    --skip-existing goes on where a run stopped."""
    scans, *_ = album
    out, masks = tmp_path / "out", tmp_path / "masks"
    assert main(["restore", str(scans), "-o", str(out), "--save-mask", str(masks), "--detect", "dust"]) == 1
    (masks / "a.png").write_bytes(trimmed := (masks / "b.png").read_bytes())  # "trimmed by hand"
    capsys.readouterr()
    second = tmp_path / "second"
    assert main(["restore", str(scans), "-o", str(second), "--save-mask", str(masks), "--detect", "dust"]) == 2
    err = capsys.readouterr().err
    assert "2 file(s) of an earlier run would be replaced" in err and "--force" in err and "--skip-existing" in err
    assert (masks / "a.png").read_bytes() == trimmed and not second.exists()
    # a stopped run: one result is there already, and is kept; the others are worked
    (out / "b.png").unlink()  # its mask is there: written first, then the run stopped
    kept = (out / "a.png").read_bytes()
    assert main(["restore", str(scans), "-o", str(out), "--save-mask", str(masks), "--detect", "dust",
                 "--skip-existing"]) == 1  # c.jpg fails
    said = capsys.readouterr()
    assert "1 of 2 photos restored" in said.out and "1 skipped" in said.out
    assert (out / "a.png").read_bytes() == kept and (out / "b.png").is_file()
    assert (masks / "a.png").read_bytes() == trimmed  # the skipped photo's mask is left as it is
    assert main(["restore", str(scans), "-o", str(out), "--save-mask", str(masks), "--detect", "dust",
                 "--force"]) == 1
    assert (masks / "a.png").read_bytes() != trimmed


def test_skip_existing_does_not_take_a_twins_file_for_a_photos_own(album, tmp_path, capsys):
    """a.jpg beside a.png: the mask a.png, and the result a.png under --format png, may be the
    other twin's; --skip-existing must not skip a twin for it, nor replace it unasked (QA)."""
    scans, *_ = album
    Image.open(scans / "a.png").convert("RGB").rotate(90).save(scans / "a.jpg", quality=95)
    out, masks = tmp_path / "out", tmp_path / "masks"
    argv = ["restore", str(scans), "-o", str(out), "--save-mask", str(masks), "--detect", "dust", "--format", "png"]
    assert main(argv) == 1  # a.png's result and mask: a.jpg wrote them first
    first_mask, first_result = (masks / "a.png").read_bytes(), (out / "a.png").read_bytes()
    capsys.readouterr()
    assert main(argv + ["--skip-existing"]) == 2
    assert "would be replaced" in capsys.readouterr().err
    assert (masks / "a.png").read_bytes() == first_mask and (out / "a.png").read_bytes() == first_result
