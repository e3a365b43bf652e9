"""`inpaint-studio batch`: masks matched by stem, goes on past bad files, lists failures."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.cli.main import main

FAST = ["--method", "telea", "--backend", "cpu"]


def _photo(seed: int, h: int = 90, w: int = 130) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h: int = 90, w: int = 130) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[30:60, 40:80] = 255
    return mask


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _folders(tmp_path):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir()
    masks.mkdir()
    return photos, masks, out


def test_batch_goes_on_past_bad_files_and_lists_them(capsys, tmp_path):
    photos, masks, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "good.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(_photo(3)).save(photos / "lonely.png")  # no mask of this name
    for stem in ("good", "broken"):
        Image.fromarray(_mask()).save(masks / f"{stem}.png")
    (photos / "notes.txt").write_text("not a photo: ignored")

    code, stdout, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    written = np.asarray(Image.open(out / "good.png"))
    assert np.array_equal(written[_mask() == 0], _photo(1)[_mask() == 0])
    assert "1 of 3 photos filled with opencv telea" in stdout
    failures = stderr[stderr.index("2 failed:") :]
    assert "broken.jpg" in failures and "lonely.png: no mask lonely.* in " in failures
    assert "good.png" not in failures
    assert "3/3" in stderr  # the progress bar reached the end


def test_batch_all_good_exits_zero_with_format_and_scaled_masks(capsys, tmp_path):
    photos, masks, out = _folders(tmp_path)
    for i, stem in enumerate(("a", "b")):
        Image.fromarray(_photo(10 + i)).save(photos / f"{stem}.png")
    Image.fromarray(_mask()).save(masks / "a.png")
    Image.fromarray(_mask()[::2, ::2]).save(masks / "b.jpg")  # half size, other extension: matched by stem
    code, stdout, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, "--format", "jpg", *FAST)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg"]
    assert "2 of 2 photos filled" in stdout and "failed" not in stderr
    assert "scaled" in stderr


def test_batch_mask_of_another_aspect_is_a_listed_failure(capsys, tmp_path):
    photos, masks, out = _folders(tmp_path)
    Image.fromarray(_photo(20)).save(photos / "x.png")
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(masks / "x.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 1 and "x.png:" in stderr and "aspect" in stderr


def test_batch_folder_errors(capsys, tmp_path):
    photos, masks, out = _folders(tmp_path)
    code, _, stderr = run_cli(capsys, "batch", tmp_path / "nowhere", "--masks", masks, "-o", out, *FAST)
    assert code == 2 and "nowhere" in stderr and "does not exist" in stderr
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 2 and "no photos" in stderr
    Image.fromarray(_photo(1)).save(photos / "p.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, "--method", "telea",
                              "--backend", "npu")
    assert code != 0 and "NPU" in stderr


def test_batch_into_its_own_photo_folder_never_overwrites_an_original(capsys, tmp_path):
    photos, masks, _ = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    Image.fromarray(_photo(2)).save(photos / "b.png")
    Image.fromarray(_photo(3)).save(photos / "b.jpg", quality=95)
    for stem in ("a", "b"):
        Image.fromarray(_mask()).save(masks / f"{stem}.png")
    originals = {p.name: p.read_bytes() for p in photos.iterdir()}

    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", photos, *FAST, "--format", "jpg")
    assert code == 1
    # a.png -> a.jpg is new and written; b.png -> b.jpg would replace the photo b.jpg
    assert "b.jpg in the output folder is one of the inputs" in stderr
    assert {p.name: p.read_bytes() for p in photos.iterdir() if p.name in originals} == originals
    assert (photos / "a.jpg").exists()


def test_batch_output_folder_that_cannot_be_made_is_one_line(capsys, tmp_path):
    photos, masks, _ = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    Image.fromarray(_mask()).save(masks / "a.png")
    (tmp_path / "file").write_text("a file, not a folder")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", tmp_path / "file" / "out", *FAST)
    assert code == 1 and "cannot create the output folder" in stderr  # a file that cannot be written: 1


def test_batch_unknown_format_is_refused_before_any_photo(capsys, tmp_path):
    photos, masks, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    Image.fromarray(_mask()).save(masks / "a.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST, "--format", "bmp")
    assert code == 2 and "--format bmp" in stderr and "0/1" not in stderr


def test_batch_whose_every_result_would_replace_its_photo_is_refused_up_front(capsys, tmp_path):
    photos, masks, _ = _folders(tmp_path)
    for stem in ("a", "b"):
        Image.fromarray(_photo(1)).save(photos / f"{stem}.png")
        Image.fromarray(_mask()).save(masks / f"{stem}.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", photos, *FAST)
    assert code == 2 and "every result would replace its photo" in stderr and "0 of 2" not in stderr
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", tmp_path / "o", *FAST, "--format", "gif")
    assert code == 2 and "--format gif: not a format this program writes" in stderr


def test_batch_same_folder_for_photos_and_masks_and_a_file_for_a_folder(capsys, tmp_path):
    photos, _, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", photos, "-o", out, *FAST)
    assert code == 2 and "photos and the masks are both in" in stderr and not out.exists()
    code, _, stderr = run_cli(capsys, "batch", photos / "a.png", "--masks", photos, "-o", out, *FAST)
    assert code == 2 and "a.png is a file, not a folder" in stderr


def test_batch_empty_masks_twin_masks_and_an_unforeseen_error(capsys, tmp_path, monkeypatch):
    """An empty mask is written unchanged and said so (not counted as filled); two masks with the
    photo's name are refused for that photo; an unforeseen error in one photo does not end the
    batch."""
    photos, masks, out = _folders(tmp_path)
    seeds = {"empty": 1, "good": 2, "twin": 3, "zboom": 4}
    for stem, seed in seeds.items():
        Image.fromarray(_photo(seed)).save(photos / f"{stem}.png")
    Image.fromarray(np.zeros((90, 130), np.uint8)).save(masks / "empty.png")
    for stem in ("good", "zboom"):
        Image.fromarray(_mask()).save(masks / f"{stem}.png")
    Image.fromarray(_mask()).save(masks / "twin.png")
    Image.fromarray(np.zeros((90, 130), np.uint8)).save(masks / "twin.webp", lossless=True)
    from app.cli import batch_cmd

    real = batch_cmd.inpaint

    def inpaint_that_breaks_on_one(image, mask, *args, **kwargs):
        if np.array_equal(image, _photo(seeds["zboom"])):
            raise RuntimeError("boom")
        return real(image, mask, *args, **kwargs)

    monkeypatch.setattr(batch_cmd, "inpaint", inpaint_that_breaks_on_one)
    code, stdout, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 1
    assert "1 of 4 photos filled" in stdout
    assert "1 written unchanged, their masks being empty: empty.png" in stderr
    assert "twin.png: several masks have its name (twin.png, twin.webp); keep one" in stderr
    assert "zboom.png: unexpected error (RuntimeError: boom)" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["empty.png", "good.png"]
    assert (out / "empty.png").read_bytes() == (photos / "empty.png").read_bytes()  # copied, not encoded again


def test_batch_with_one_mask_file_fills_the_same_place_in_every_photo(capsys, tmp_path):
    """--masks FILE: a date stamp in the same corner of every photo. Photos of another size
    with the mask's aspect ratio get it scaled; one of another aspect ratio is a listed failure;
    the mask file kept among the photos is not filled as one of them."""
    photos, _, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    Image.fromarray(_photo(2, 180, 260)).save(photos / "b.png")  # twice the size
    Image.fromarray(_photo(3, 130, 90)).save(photos / "portrait.png")
    stamp = photos / "stamp.png"
    Image.fromarray(_mask()).save(stamp)

    code, stdout, stderr = run_cli(capsys, "batch", photos, "--masks", stamp, "-o", out, *FAST)
    assert code == 1 and "2 of 3 photos filled" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "portrait.png:" in stderr[stderr.index("1 failed:"):] and "aspect ratio" in stderr
    a, b = np.asarray(Image.open(out / "a.png")), np.asarray(Image.open(out / "b.png"))
    assert np.array_equal(a[_mask() == 0], _photo(1)[_mask() == 0])
    assert not np.array_equal(a[_mask() > 0], _photo(1)[_mask() > 0])
    scaled = np.asarray(Image.fromarray(_mask()).resize((260, 180), Image.NEAREST))
    assert np.array_equal(b[scaled == 0], _photo(2, 180, 260)[scaled == 0])
    assert not np.array_equal(b[scaled > 0], _photo(2, 180, 260)[scaled > 0])
    assert "scaled" in stderr


def test_batch_masks_that_are_neither_folder_nor_file(capsys, tmp_path):
    photos, _, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", tmp_path / "gone.png", "-o", out, *FAST)
    assert code == 2 and "masks folder or file" in stderr and "gone.png does not exist" in stderr


def test_batch_lists_a_cut_off_photo_and_exits_non_zero_and_refuses_a_broken_single_mask(capsys, tmp_path):
    import io

    photos, masks, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    buf = io.BytesIO()
    Image.fromarray(_photo(2)).save(buf, "JPEG", quality=90)
    (photos / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    for stem in ("a", "cut"):
        Image.fromarray(_mask()).save(masks / f"{stem}.png")
    code, stdout, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 1 and "2 of 2 photos filled" in stdout
    assert "1 written from cut-off files" in stderr and "cut.jpg" in stderr and (out / "cut.jpg").exists()
    broken = tmp_path / "stamp.png"
    broken.write_bytes(b"not a png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", broken, "-o", tmp_path / "out2", *FAST)
    assert code == 1 and "stamp.png is not an image" in stderr and not (tmp_path / "out2").exists()


def test_batch_results_among_the_masks_are_refused_and_an_unreadable_folder_is_one_line(capsys, tmp_path, monkeypatch):
    photos, masks, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.jpg", quality=95)
    Image.fromarray(_mask()).save(masks / "a.png")
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", masks, *FAST)
    assert code == 2 and "-o and --masks name the same folder" in stderr and not (masks / "a.jpg").exists()
    # a folder this user may not list (tests run as root, who may: the refusal is the OS's)
    real_iterdir = type(photos).iterdir

    def iterdir(path):
        if path == photos:
            raise PermissionError(13, "Permission denied", str(path))
        return real_iterdir(path)

    monkeypatch.setattr(type(photos), "iterdir", iterdir)
    code, _, stderr = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 1 and f"cannot read the photos folder {photos}: permission denied" in stderr


def test_a_second_batch_into_the_same_folder_asks_for_force(capsys, tmp_path):
    photos, masks, out = _folders(tmp_path)
    Image.fromarray(_photo(1)).save(photos / "a.png")
    Image.fromarray(_mask()).save(masks / "a.png")
    assert run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)[0] == 0
    (out / "a.png").write_bytes(b"retouched by hand since")
    code, _out, err = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, *FAST)
    assert code == 2 and "would be replaced" in err and (out / "a.png").read_bytes() == b"retouched by hand since"
    code, stdout, _err = run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, "--skip-existing", *FAST)
    assert code == 0 and "nothing to do" in stdout and (out / "a.png").read_bytes() == b"retouched by hand since"
    assert run_cli(capsys, "batch", photos, "--masks", masks, "-o", out, "--force", *FAST)[0] == 0
    assert np.array_equal(np.asarray(Image.open(out / "a.png"))[_mask() == 0], _photo(1)[_mask() == 0])
