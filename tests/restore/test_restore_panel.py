"""The restore panel: live proposal off the GUI thread, debounced, stale results dropped."""

import threading

import numpy as np
import pytest

from app.restore.detect import detect_damage
from app.restore.repair import RepairSteps, apply_repairs
from app.restore.synthetic import add_damage
from app.ui.restore_panel import DEBOUNCE_MS, READY_TEXT, LatestOnly, RestorePanel
from tests.restore.conftest import smooth_photo


@pytest.fixture
def damaged():
    return add_damage(smooth_photo(), np.random.default_rng(2)).image


@pytest.fixture
def panel(qtbot):
    p = RestorePanel()
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_photo_gives_a_proposal_matching_the_detector(qtbot, panel, damaged):
    panel.set_photo(damaged)
    qtbot.wait(DEBOUNCE_MS + 100)
    assert not panel.detector.busy()  # a new photo waits for Detect: no surprise layer
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
        panel.detect_button.click()
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.5))
    assert "Detected damage:" in panel.status_label.text()


def test_slider_moves_are_debounced_into_one_proposal_at_the_final_value(qtbot, panel, damaged):
    panel.set_photo(damaged)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        panel.detect_button.click()
    got = []
    panel.proposal_ready.connect(got.append)
    for v in (60, 70, 80, 90):
        panel.sensitivity_slider.setValue(v)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        pass
    qtbot.wait(400)
    panel.detector.wait()
    assert len(got) == 1
    assert np.array_equal(got[0], detect_damage(damaged, ("scratches", "dust"), 0.9))


def test_kind_checkboxes_choose_detectors(qtbot, panel, damaged):
    panel.set_photo(damaged)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        panel.detect_button.click()
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
        panel.scratches_box.setChecked(False)
    assert panel.kinds() == ("dust",)
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("dust",), 0.5))


def test_detection_runs_off_the_gui_thread(qtbot):
    runner = LatestOnly()
    threads = []

    def job(cancel):
        threads.append(threading.get_ident())
        return 1

    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.submit(job)
    assert threads and threads[0] != threading.get_ident()


def test_stale_results_are_dropped(qtbot):
    runner = LatestOnly()
    gate, started = threading.Event(), threading.Event()
    seen, cancelled = [], []

    def slow(cancel):
        started.set()
        gate.wait(5)
        cancelled.append(cancel())
        return "old"

    runner.finished.connect(seen.append)
    runner.submit(slow)
    assert started.wait(5)
    runner.submit(lambda cancel: "new")
    gate.set()
    with qtbot.waitSignal(runner.finished, timeout=5000):
        pass
    runner.wait()
    qtbot.wait(50)
    assert seen == ["new"]
    assert cancelled == [True]  # the superseded job could see it was superseded


def test_a_job_superseded_before_it_starts_never_runs(qtbot):
    runner = LatestOnly()
    started, gate, ran = threading.Event(), threading.Event(), []

    def blocker(cancel):
        started.set()
        gate.wait(5)

    runner.submit(blocker)  # occupies the single worker thread...
    assert started.wait(5)  # ...once it runs (a job superseded before it starts never does)
    runner.submit(lambda cancel: ran.append("middle"))
    with qtbot.waitSignal(runner.finished, timeout=5000) as sig:
        runner.submit(lambda cancel: "last")
        gate.set()
    assert sig.args[0] == "last" and ran == []


def test_failure_is_reported_as_a_message(qtbot):
    runner = LatestOnly()

    def bad(cancel):
        raise ValueError("boom")

    with qtbot.waitSignal(runner.failed, timeout=5000) as sig:
        runner.submit(bad)
    assert "boom" in sig.args[0]


def test_repair_toggles_preview_and_request(qtbot, panel, damaged):
    panel.set_photo(damaged)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        panel.detect_button.click()
    with qtbot.waitSignal(panel.repair_preview, timeout=10000) as sig:
        panel.fade_box.setChecked(True)
    steps = panel.repair_steps()
    assert steps == RepairSteps(fade=True, clip_limit=1.5, denoise_strength=None, sharpen_amount=0.6)
    assert sig.args[0] == steps
    with qtbot.waitSignal(panel.repair_preview, timeout=10000) as balanced:
        panel.balance_box.setChecked(True)
    assert balanced.args[0] == RepairSteps(fade=True, balance=True)
    with qtbot.waitSignal(panel.repair_preview, timeout=10000):
        panel.balance_box.setChecked(False)
    assert np.array_equal(sig.args[1], apply_repairs(damaged, steps))
    base = damaged[::-1].copy()  # e.g. a pending fill result
    panel.set_repair_source(base)
    with qtbot.waitSignal(panel.repair_preview, timeout=10000) as sig:
        panel.clahe_clip.setValue(3.0)
    assert np.array_equal(sig.args[1], apply_repairs(base, panel.repair_steps()))
    panel.denoise_box.setChecked(True)
    panel.denoise_strength.setValue(5.0)
    assert panel.repair_steps().denoise_strength == 5.0
    with qtbot.waitSignal(panel.repair_requested, timeout=1000) as req:
        panel.apply_button.click()
    assert req.args[0].denoise and req.args[0].fade
    with qtbot.waitSignal(panel.fill_requested, timeout=1000):
        panel.fill_button.click()


def test_without_a_photo_buttons_are_disabled(panel):
    assert not panel.fill_button.isEnabled()
    assert not panel.detect_button.isEnabled()
    assert not panel.apply_button.isEnabled()


@pytest.fixture
def analyses(monkeypatch):
    """Records the photos the panel analyses (the real analysis still runs)."""
    from app.ui import restore_panel

    seen = []
    real = restore_panel.analyse_damage

    def spy(rgb, kinds, **kw):
        seen.append((rgb.shape, tuple(kinds)))
        return real(rgb, kinds, **kw)

    monkeypatch.setattr(restore_panel, "analyse_damage", spy)
    return seen


def test_the_photo_is_analysed_once_and_slider_moves_only_threshold(qtbot, panel, damaged, analyses):
    panel.set_photo(damaged)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        panel.detect_button.click()
    assert len(analyses) == 1 and panel.analysis() is not None
    for v in (20, 85):
        with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
            panel.sensitivity_slider.setValue(v)
        assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), v / 100))
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
        panel.scratches_box.setChecked(False)
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("dust",), 0.85))
    assert len(analyses) == 1  # nothing of the analysis was recomputed


@pytest.mark.parametrize("detector", ["hand", "learned"])
def test_only_the_checked_kinds_are_analysed_and_the_rest_is_added_later(qtbot, panel, damaged, analyses, detector):
    panel.detector_combo.setCurrentIndex(panel.detector_combo.findData(detector))
    panel.set_photo(damaged)
    panel.scratches_box.setChecked(False)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
        panel.detect_button.click()
    assert analyses == [(damaged.shape, ("dust",))]
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("dust",), 0.5, detector=detector))
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
        panel.scratches_box.setChecked(True)
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.5, detector=detector))
    assert panel.analysis().kinds == ("scratches", "dust")
    # the hand-made scratch filter runs when asked for; the net's one pass gave both kinds at once
    assert len(analyses) == (2 if detector == "hand" else 1)


def test_a_new_photo_supersedes_the_running_analysis(qtbot, panel, damaged, analyses):
    first = np.ascontiguousarray(np.tile(damaged, (4, 4, 1)))  # big enough to be still running
    panel.set_photo(first)
    panel.detect_button.click()
    qtbot.waitUntil(lambda: len(analyses) == 1, timeout=5000)
    panel.set_photo(damaged, live=True)  # e.g. another photo opened
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000) as sig:
        pass
    panel.analyser.wait()
    panel.detector.wait()
    qtbot.wait(50)
    assert sig.args[0].shape == damaged.shape[:2]
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.5))
    assert panel.analysis().shape == damaged.shape[:2]


def test_analysis_progress_shows_in_the_status(qtbot, panel, damaged):
    texts = []
    panel.set_photo(np.ascontiguousarray(np.tile(damaged, (2, 2, 1))))
    panel.status_label.setText = lambda t, _set=panel.status_label.setText: (texts.append(t), _set(t))
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000):
        panel.detect_button.click()
    shown = [t for t in texts if t.startswith("Analysing the photo…")]
    assert any(t.endswith("%") for t in shown)
    assert texts[-1].startswith("Detected damage:")


def test_a_shown_panel_analyses_ahead_of_detect_without_proposing(qtbot, panel, damaged, analyses):
    """On screen with a photo, the costly analysis starts at once in the background; no layer
    is proposed until Detect, which then needs no second analysis."""
    proposals = []
    panel.proposal_ready.connect(proposals.append)
    panel.set_photo(damaged)
    assert analyses == []  # hidden (another tab in front): nothing runs
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: panel.analysis() is not None, timeout=20000)
    qtbot.wait(DEBOUNCE_MS + 100)
    assert len(analyses) == 1 and proposals == []
    assert panel.status_label.text() == READY_TEXT  # not a stale "Analysing… 100 %"
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000) as sig:
        panel.detect_button.click()
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.5))
    assert len(analyses) == 1


def test_detect_during_the_early_analysis_proposes_when_it_ends(qtbot, panel, damaged, analyses):
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_photo(damaged)
    assert panel.analyser.busy() or panel.analysis() is not None
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000) as sig:
        panel.detect_button.click()
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.5))
    assert len(analyses) == 1


def test_the_detector_choice_starts_the_analysis_over_with_that_detector(qtbot, panel, damaged, analyses):
    panel.set_photo(damaged)
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        panel.detect_button.click()
    for name in ("learned", "hand"):
        with qtbot.waitSignal(panel.proposal_ready, timeout=20000) as sig:
            panel.detector_combo.setCurrentIndex(panel.detector_combo.findData(name))
        assert panel.analysis().detector == name
        assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.5, detector=name))
    assert len(analyses) == 3  # one per detector: an analysis is never reused across detectors


def test_stop_ends_the_analysis_and_nothing_restarts_it_until_detect(qtbot, panel, damaged, monkeypatch):
    """A big scan's analysis takes minutes on a slow machine: Stop (shown while it runs)
    ends it at its next poll; it does not start again by itself (a shown panel, a slider
    move), only on Detect, which then proposes."""
    from app.ui import restore_panel

    real, polls, gave_up = restore_panel.analyse_damage, [], threading.Event()

    def slow(rgb, kinds, cancel=None, **kw):  # the real analysis after a long wait that polls
        while not (cancel and cancel()):
            polls.append(1)
            if len(polls) > 400:  # 4 s: a run Stop did not end goes on to the real analysis
                return real(rgb, kinds, cancel=cancel, **kw)
            threading.Event().wait(0.01)
        gave_up.set()
        return None

    monkeypatch.setattr(restore_panel, "analyse_damage", slow)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_photo(damaged)
    qtbot.waitUntil(lambda: panel.stop_button.isVisible() and bool(polls), timeout=5000)
    panel.stop_button.click()
    assert gave_up.wait(2) and not panel.stop_button.isVisible()
    assert "stopped" in panel.status_label.text()
    proposals = []
    panel.proposal_ready.connect(proposals.append)
    panel.hide()
    panel.show()  # brought to the front again
    panel.sensitivity_slider.setValue(70)
    qtbot.wait(DEBOUNCE_MS + 200)
    assert not panel.analyser.busy() and proposals == [] and panel.analysis() is None
    monkeypatch.setattr(restore_panel, "analyse_damage", real)
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000) as sig:
        panel.detect_button.click()
    assert np.array_equal(sig.args[0], detect_damage(damaged, ("scratches", "dust"), 0.7))


def test_keep_the_tone_previews_linked_levels_and_is_a_choice(qtbot, panel, damaged):
    from app.restore.choices import RestoreChoices

    panel.set_photo(damaged)
    with qtbot.waitSignal(panel.repair_preview, timeout=10000):
        panel.fade_box.setChecked(True)
    with qtbot.waitSignal(panel.choices_changed), qtbot.waitSignal(panel.repair_preview, timeout=10000) as sig:
        panel.keep_tone_box.setChecked(True)
    assert sig.args[0] == RepairSteps(fade=True, keep_tone=True) and panel.choices().keep_tone
    assert np.array_equal(sig.args[1], apply_repairs(damaged, RepairSteps(fade=True, keep_tone=True)))
    panel.show_choices(RestoreChoices())  # another photo's (a project's) choices
    assert not panel.keep_tone_box.isChecked()
