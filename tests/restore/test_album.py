"""The album restore of the editor's "Restore a folder of scans" (app.restore.album): every scan
of a folder detected, filled and repaired into a results folder, past bad files, never over an
input, stoppable; and the dialog that runs it in the background."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.io.folders import FolderError
from app.io.images import read_image
from app.restore.album import FAILED, MASKS_FOLDER, RESTORED, UNCHANGED, restore_album
from app.restore.choices import RestoreChoices
from app.restore.repair import RepairSteps
from app.restore.synthetic import add_damage

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample.png"
HAND = RestoreChoices(detector="hand")  # the hand-made filters: no model, quick


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def album(tmp_path):
    """Two damaged scans (crops of the sample photo), a flat one with nothing to find, a file
    that is not an image, and twins c.png / c.jpg."""
    photo = read_image(SAMPLE).rgb
    scans = tmp_path / "scans"
    scans.mkdir()
    for seed, (stem, crop) in enumerate({"a": photo[96:288, 128:384], "b": photo[200:392, 250:506]}.items(), 11):
        Image.fromarray(add_damage(crop.copy(), np.random.default_rng(seed)).image).save(scans / f"{stem}.png")
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(scans / "flat.png")
    (scans / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(photo[:100, :120]).save(scans / "c.png")
    Image.fromarray(photo[100:200, :120]).save(scans / "c.jpg")
    return scans


def test_every_scan_is_restored_past_a_bad_file_and_twins_never_share_a_result(album, tmp_path):
    out = tmp_path / "restored"
    seen = []
    run = restore_album(album, out, HAND, RepairSteps(), save_masks=True, on_photo=seen.append)
    status = {p.photo.name: p.status for p in run.photos}
    assert seen == run.photos and run.total == 6 and not run.cancelled
    assert status["a.png"] == status["b.png"] == RESTORED
    assert status["flat.png"] == UNCHANGED and (out / "flat.png").read_bytes() == (album / "flat.png").read_bytes()
    broken = next(p for p in run.photos if p.photo.name == "broken.jpg")
    assert broken.status == FAILED and "broken.jpg" in broken.text and not (out / "broken.jpg").exists()
    # twins: c.jpg comes first; c.png would write its mask over c.jpg's: its result is written,
    # its mask (an extra) is left out and the line says so
    twin = next(p for p in run.photos if p.photo.name == "c.png")
    assert status["c.jpg"] != FAILED and twin.status != FAILED
    assert any("no mask saved" in note and "already wrote the mask c.png" in note for note in twin.notes)
    assert (out / "c.png").is_file() and (out / "c.jpg").is_file()
    for stem in ("a", "b"):
        before, after = rgb(album / f"{stem}.png"), rgb(out / f"{stem}.png")
        mask = rgb(out / MASKS_FOLDER / f"{stem}.png")[:, :, 0] > 0
        assert mask.any() and not np.array_equal(before, after)
        assert np.array_equal(before[~mask], after[~mask])  # outside the proposal bit-identical
    assert sorted(p.name for p in (out / MASKS_FOLDER).iterdir()) == ["a.png", "b.png", "c.png", "flat.png"]


def test_repairs_apply_to_every_scan_and_no_input_is_written(album, tmp_path):
    before = {p.name: p.read_bytes() for p in album.iterdir()}
    out = tmp_path / "restored"
    run = restore_album(album, out, RestoreChoices(kinds=()), RestoreChoices().steps(fade=True))
    assert {p.name: p.read_bytes() for p in album.iterdir()} == before
    assert {p.photo.name for p in run.photos if p.status == FAILED} == {"broken.jpg"}  # twins without masks: both
    assert (out / "c.png").is_file() and (out / "c.jpg").is_file()
    flat = next(p for p in run.photos if p.photo.name == "flat.png")
    assert flat.status == RESTORED and flat.text == "no damage found, repaired"  # a repair is work done
    a_in, a_out = rgb(album / "a.png"), rgb(out / "a.png")
    assert a_out.std() > a_in.std()  # auto levels + CLAHE stretched the faded crop


def test_a_stop_ends_the_album_and_the_scan_being_worked_writes_nothing(album, tmp_path):
    out = tmp_path / "restored"
    done = []
    polls_after_first = []

    def cancel():  # Stop pressed a few polls into the second scan's work
        if done:
            polls_after_first.append(1)
        return len(polls_after_first) > 3

    run = restore_album(album, out, HAND, RepairSteps(), save_masks=True, cancel=cancel, on_photo=done.append)
    assert run.cancelled and [p.photo.name for p in run.photos] == ["a.png"]
    assert sorted(p.name for p in out.rglob("*")) == ["a.png", "a.png", "masks"]  # the first scan's result and mask
    assert not (out / "b.png").exists()


def test_masks_never_land_among_the_scans(tmp_path):
    """Results into X with masks ticked write X/masks/*.png: with the scans in X/masks that would
    replace them by their masks; refused before any work."""
    scans = tmp_path / "X" / "masks"
    scans.mkdir(parents=True)
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(scans / "a.png")
    before = (scans / "a.png").read_bytes()
    with pytest.raises(FolderError, match="masks would be written among the scans"):
        restore_album(scans, tmp_path / "X", HAND, RepairSteps(), save_masks=True)
    assert (scans / "a.png").read_bytes() == before


def test_a_scan_whose_result_cannot_be_written_leaves_no_mask(album, tmp_path):
    out = tmp_path / "restored"
    (out / "a.png").mkdir(parents=True)  # a folder where a.png's result goes: the write fails
    run = restore_album(album, out, HAND, RepairSteps(), save_masks=True)
    failed = next(p for p in run.photos if p.photo.name == "a.png")
    assert failed.status == FAILED and not (out / MASKS_FOLDER / "a.png").exists()
    assert (out / MASKS_FOLDER / "b.png").is_file()  # the others as usual


def test_folders_are_checked_before_any_work(album, tmp_path):
    with pytest.raises(FolderError, match="does not exist"):
        restore_album(tmp_path / "nowhere", tmp_path / "out", HAND, RepairSteps())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderError, match="no photos"):
        restore_album(tmp_path / "empty", tmp_path / "out", HAND, RepairSteps())
    with pytest.raises(FolderError, match="among the scans"):
        restore_album(album, album, HAND, RepairSteps())
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(FolderError, match="is a file"):
        restore_album(album, tmp_path / "file.png", HAND, RepairSteps())


def test_the_dialog_runs_an_album_in_the_background_with_the_panels_choices(album, qtbot, tmp_path):
    from app.ui.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        win.files.open_path(str(album / "a.png"))
    panel = win.restore.panel
    panel.detector_combo.setCurrentIndex(panel.detector_combo.findData("hand"))
    win.actions["restore_folder"].trigger()
    dialog = win.restore.album
    assert dialog.isVisible() and Path(dialog.scans_edit.text()) == album  # the open photo's folder
    assert Path(dialog.results_edit.text()) == album / "restored"
    assert "Hand-made filters" in dialog.choices_label.text()
    win.run_panel.method.setCurrentIndex(win.run_panel.method.findData("telea"))
    win.run_panel.texture.setValue(0)  # the album fills as Fill detected damage does: the Run panel's choices
    assert "OpenCV Telea (fast) at Texture 0 %" in dialog.choices_label.text()
    dialog.results_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.finished_run, timeout=120000) as blocker:
        assert dialog.start() and not dialog.start_button.isEnabled() and dialog.stop_button.isEnabled()
    run = blocker.args[0]
    assert run.total == 6 and dialog.log.count() == 6 and dialog.start_button.isEnabled()
    failed = [dialog.log.item(i).text() for i in range(6) if dialog.log.item(i).text().startswith("✗")]
    assert len(failed) == 1 and failed[0].startswith("✗ broken.jpg ") and failed[0].count("broken.jpg") == 1
    assert "1 failed" in dialog.summary.text() and dialog.open_button.isEnabled()
    assert (tmp_path / "out" / "a.png").is_file()
    # the same button in the panel brings the same dialog back
    panel.album_button.click()
    assert win.restore.album is dialog
    dialog.scans_edit.setText(str(tmp_path / "nowhere"))
    with qtbot.waitSignal(dialog.start_failed, timeout=10000):
        dialog.start()
    assert "does not exist" in dialog.summary.text() and dialog.start_button.isEnabled()
    # nothing to detect and no repair ticked: nothing to do, said at once
    panel.scratches_box.setChecked(False)
    panel.dust_box.setChecked(False)
    assert "nothing" in dialog.choices_label.text()  # the label follows the panel
    dialog.scans_edit.setText(str(album))
    dialog.results_edit.setText(str(tmp_path / "out"))
    assert not dialog.start() and "Nothing to do" in dialog.summary.text()
    # results already in the folder (the first run's) are replaced only when the user says so
    dialog.sharpen_box.setChecked(True)
    before = (tmp_path / "out" / "a.png").read_bytes()
    assert not dialog.start()
    box = dialog.findChild(QMessageBox, "replace_box")
    assert box is not None and "would be replaced" in box.text() and "a.png" in box.text()
    assert {b.text() for b in box.buttons()} >= {"Replace Them", "Skip Those Scans"}
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert not dialog.running() and (tmp_path / "out" / "a.png").read_bytes() == before
    assert not dialog.start()
    box = dialog.findChild(QMessageBox, "replace_box")
    with qtbot.waitSignal(dialog.finished_run, timeout=120000) as blocker:
        next(b for b in box.buttons() if b.text() == "Replace Them").click()
        assert dialog.running()
        dialog.reject()  # Esc while an album runs stops it, as Close does (it does not go on unseen)
    assert blocker.args[0].cancelled and not dialog.isVisible()
    win.close()


def test_a_relative_results_folder_is_taken_inside_the_scans_folder(album, qtbot):
    from app.ui.album_dialog import AlbumDialog

    dialog = AlbumDialog(lambda: HAND)
    qtbot.addWidget(dialog)
    dialog.scans_edit.setText(str(album))
    dialog.results_edit.setText("done")
    assert dialog.folders() == (album, album / "done")
    dialog.scans_edit.setText("scans")
    assert dialog.folders() is None and "full path" in dialog.summary.text()


def test_a_question_left_open_starts_nothing_once_the_dialog_is_closed(album, qtbot, tmp_path):
    from app.ui.album_dialog import AlbumDialog

    dialog = AlbumDialog(lambda: HAND)
    qtbot.addWidget(dialog)
    dialog.show()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"retouched by hand")
    dialog.scans_edit.setText(str(album))
    dialog.results_edit.setText(str(tmp_path / "out"))
    dialog.sharpen_box.setChecked(True)
    assert not dialog.start()
    box = dialog.findChild(QMessageBox, "replace_box")
    assert box is not None and box.isVisible()
    assert not dialog.start() and len(dialog.findChildren(QMessageBox)) == 1  # no second question
    dialog.close()
    qtbot.wait(50)
    assert not dialog.running() and (tmp_path / "out" / "a.png").read_bytes() == b"retouched by hand"
    dialog.scans_edit.setText(str(album))
    dialog.results_edit.setText("~no_such_user_here/out")
    assert not dialog.start() and "could not be restored" in dialog.summary.text()


def test_the_replace_question_tells_masks_from_results(album, qtbot, tmp_path):
    from app.ui.album_dialog import AlbumDialog

    dialog = AlbumDialog(lambda: HAND)
    qtbot.addWidget(dialog)
    dialog.show()
    (tmp_path / "out" / "masks").mkdir(parents=True)
    (tmp_path / "out" / "a.png").write_bytes(b"an earlier result")
    (tmp_path / "out" / "masks" / "b.png").write_bytes(b"an earlier mask")
    dialog.scans_edit.setText(str(album))
    dialog.results_edit.setText(str(tmp_path / "out"))
    dialog.masks_box.setChecked(True)
    dialog.sharpen_box.setChecked(True)
    assert not dialog.start()
    text = dialog.findChild(QMessageBox, "replace_box").text()
    assert "a.png, masks/b.png." in text
    dialog.close()


def test_the_damage_is_filled_with_the_settings_given(album, tmp_path):
    """The editor passes its Run panel's method and texture: the fill follows them."""
    from app.engine.settings import InpaintSettings

    for method in ("telea", "ns"):
        restore_album(album, tmp_path / method, HAND, RepairSteps(), settings=InpaintSettings(method=method))
    telea, ns = rgb(tmp_path / "telea" / "a.png"), rgb(tmp_path / "ns" / "a.png")
    assert not np.array_equal(telea, ns)
    changed = np.any(telea != rgb(album / "a.png"), axis=2) | np.any(ns != rgb(album / "a.png"), axis=2)
    assert np.array_equal(telea[~changed], ns[~changed])  # only the filled damage differs


def test_an_album_started_again_can_skip_the_scans_already_done(album, tmp_path):
    """Stopped after the first scan, started again with skip_done: the finished result is kept as
    it is (maybe retouched since), the others are restored."""
    from app.restore.album import SKIPPED

    out = tmp_path / "restored"
    first = []
    restore_album(album, out, HAND, RepairSteps(), on_photo=first.append, cancel=lambda: bool(first))
    assert [p.photo.name for p in first] == ["a.png"]
    (out / "a.png").write_bytes(b"retouched by hand")
    run = restore_album(album, out, HAND, RepairSteps(), skip_done=True)
    status = {p.photo.name: p.status for p in run.photos}
    assert status["a.png"] == SKIPPED and (out / "a.png").read_bytes() == b"retouched by hand"
    assert status["b.png"] == RESTORED and (out / "b.png").is_file()
