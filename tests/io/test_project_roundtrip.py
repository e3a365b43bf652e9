"""Save then open: every pixel of every layer and every setting comes back."""

from __future__ import annotations

import numpy as np
import pytest

from app.canvas.document import Document, LayerKind
from app.io.project import ProjectCancelled, inspect_project, load_project, save_project
from tests.io.conftest import make_doc


def assert_same(a: Document, b: Document) -> None:
    assert np.array_equal(a.photo, b.photo)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.mask, lb.mask), la.name
        assert (la.name, la.kind, la.visible, la.locked, tuple(la.color)) == (lb.name, lb.kind, lb.visible, lb.locked, tuple(lb.color))
        assert la.opacity == lb.opacity
    order_a = np.argsort([x.uid for x in a.layers])
    order_b = np.argsort([x.uid for x in b.layers])
    assert list(order_a) == list(order_b)  # creation order survives
    assert a.settings == b.settings
    assert (a.result is None) == (b.result is None)
    if a.result is not None:
        assert np.array_equal(a.result.image, b.result.image)
        assert (a.result.method, a.result.backend, a.result.notes) == (b.result.method, b.result.backend, b.result.notes)
        assert np.array_equal(a.result.mask, b.result.mask)
    assert a.meta.exif == b.meta.exif
    assert a.meta.icc_profile == b.meta.icc_profile
    assert a.meta.source_format == b.meta.source_format
    assert a.meta.lossless_webp == b.meta.lossless_webp
    assert a.meta.dpi == b.meta.dpi
    if a.meta.alpha is None:
        assert b.meta.alpha is None
    else:
        assert np.array_equal(a.meta.alpha, b.meta.alpha)


@pytest.mark.parametrize("kwargs", [{}, {"result": False}, {"layers": 0}, {"alpha": True}, {"layers": 9, "seed": 4}])
def test_round_trip_every_pixel_and_setting(tmp_path, kwargs):
    doc = make_doc(**kwargs)
    path = tmp_path / "p.ora"
    save_project(doc, path)
    back = load_project(path)
    assert_same(doc, back)
    assert back.source_path == str(path)
    # and again: a re-saved project is the same project
    save_project(back, tmp_path / "q.ora")
    assert_same(doc, load_project(tmp_path / "q.ora"))


def test_uids_are_fresh_but_keep_creation_order(tmp_path):
    doc = make_doc(layers=4)
    doc.layers.reverse()  # stack order differs from creation order
    save_project(doc, tmp_path / "p.ora")
    back = load_project(tmp_path / "p.ora")
    assert [x.name for x in back.layers] == [x.name for x in doc.layers]
    assert not {x.uid for x in back.layers} & {x.uid for x in doc.layers}  # no clash with live layers
    assert list(np.argsort([x.uid for x in back.layers])) == list(np.argsort([x.uid for x in doc.layers]))


def test_combined_masks_survive(tmp_path):
    doc = make_doc(layers=5)
    save_project(doc, tmp_path / "p.ora")
    back = load_project(tmp_path / "p.ora")
    for kind in LayerKind:
        assert np.array_equal(doc.combined_mask(kind), back.combined_mask(kind))


def test_progress_reaches_one_and_is_monotonic(tmp_path):
    doc = make_doc()
    seen = []
    save_project(doc, tmp_path / "p.ora", progress=lambda s, f: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    seen.clear()
    load_project(tmp_path / "p.ora", progress=lambda s, f: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_cancelled_save_and_open_change_nothing(tmp_path):
    path = tmp_path / "p.ora"
    first = make_doc(seed=1)
    save_project(first, path)
    before = path.read_bytes()
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(ProjectCancelled):
        save_project(make_doc(seed=2), path, cancel=cancel)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.ora"]
    calls.clear()
    with pytest.raises(ProjectCancelled):
        load_project(path, cancel=cancel)


def test_inspect_lists_layers_without_decoding(tmp_path):
    doc = make_doc(layers=2)
    save_project(doc, tmp_path / "p.ora")
    info = inspect_project(tmp_path / "p.ora")
    assert (info.width, info.height) == (32, 24)
    assert [e.role for e in info.layers] == ["mask", "mask", "result", "photo"]
    assert [e.name for e in info.layers if e.role == "mask"] == [x.name for x in reversed(doc.layers)]
    assert info.settings == doc.settings


@pytest.mark.parametrize("alpha", [False, True])
def test_sixteen_bit_photo_keeps_its_sixteen_bits_through_a_project(tmp_path, alpha):
    """A 16-bit scan, filled, saved as a project and opened again: the photo layer is stored at 16
    bits, so an export after reopening still has the source's value at every pixel not filled."""
    import zipfile

    from app.io.images import KEPT_16_BIT, deep_pixels, to_8_bit

    doc = make_doc(result=False)
    h, w = doc.photo.shape[:2]
    deep = np.random.default_rng(9).integers(0, 65536, (h, w, 4 if alpha else 3)).astype(np.uint16)
    deep.flags.writeable = False
    doc.meta.deep, doc.meta.notes = deep, [KEPT_16_BIT]
    doc.photo = to_8_bit(deep[:, :, :3])
    if alpha:
        doc.meta.alpha = to_8_bit(deep[:, :, 3])
    doc.photo[2:9, 3:20] = (250, 0, 9)  # an applied fill
    save_project(doc, tmp_path / "scan.ora")
    with zipfile.ZipFile(tmp_path / "scan.ora") as zf:
        assert zf.read("data/photo.png")[24] == 16  # IHDR bit depth: other programs see the 16 bits too
    back = load_project(tmp_path / "scan.ora")
    assert_same(doc, back)
    assert np.array_equal(deep_pixels(back.photo, back.meta), deep_pixels(doc.photo, doc.meta))
    kept = deep_pixels(back.photo, back.meta)
    filled = np.zeros((h, w), bool)
    filled[2:9, 3:20] = True
    assert np.array_equal(kept[~filled], deep[~filled]) and np.all(kept[filled][:, :3] == np.array([250, 0, 9]) * 257)
    assert back.meta.notes[0] == KEPT_16_BIT


@pytest.mark.parametrize("layout", [1, 3, 4])
def test_a_pending_16_bit_repair_keeps_its_16_bits_through_a_project(tmp_path, layout):
    """Repairs previewed on a 16-bit scan (gray, colour, with alpha), saved pending: reopened,
    the result still carries its 16-bit pixels in the photo's layout, for Apply to keep."""
    from app.canvas.document import InpaintOutcome
    from app.io.images import to_8_bit
    from app.restore.pipeline import repair_deep
    from app.restore.repair import RepairSteps

    doc = make_doc(result=False)
    h, w = doc.photo.shape[:2]
    rng = np.random.default_rng(layout)
    deep = rng.integers(9000, 40000, (h, w, layout)).astype(np.uint16)
    deep.flags.writeable = False
    doc.meta.deep = deep
    doc.photo = to_8_bit(np.repeat(deep, 3, axis=2) if layout == 1 else deep[:, :, :3])
    if layout == 4:
        doc.meta.alpha = to_8_bit(deep[:, :, 3])
    image, repaired = repair_deep(doc.photo, deep, RepairSteps(fade=True))
    assert repaired.shape == deep.shape
    doc.result = InpaintOutcome(image, "repair: fade", "cpu", deep=repaired)
    save_project(doc, tmp_path / "scan.ora")
    back = load_project(tmp_path / "scan.ora")
    assert np.array_equal(back.result.image, image)
    assert back.result.deep is not None and np.array_equal(back.result.deep, repaired)
    assert not back.result.deep.flags.writeable


def test_restore_choices_round_trip_and_damaged_ones_fall_back(tmp_path):
    """The Restore panel's choices are kept; a hand-edited project.json with values of the wrong
    kind or out of range opens with defaults (named in the notes) and clamped numbers."""
    import json
    import zipfile

    from app.restore.choices import RestoreChoices

    doc = make_doc(seed=3, w=40, h=30, layers=1)
    doc.restore = RestoreChoices(kinds=("scratches",), detector="hybrid", sensitivity=0.25, denoise_strength=None,
                                 clip_limit=2.5, balance_strength=0.3, sharpen_amount=0.9, keep_tone=True)
    save_project(doc, tmp_path / "p.ora")
    assert load_project(tmp_path / "p.ora").restore == doc.restore
    assert inspect_project(tmp_path / "p.ora").restore == doc.restore

    with zipfile.ZipFile(tmp_path / "p.ora") as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    extras = json.loads(entries["inpaint-studio/project.json"])
    extras["restore"] = {"kinds": ["scratches", "mould"], "detector": "psychic", "sensitivity": 7,
                         "denoise_strength": 10**400,  # no float holds it
                         "clip_limit": "high", "sharpen_amount": float("nan"),
                         "balance_strength": 0.01, "future_option": 1, "keep_tone": "yes"}
    entries["inpaint-studio/project.json"] = json.dumps(extras).encode()
    with zipfile.ZipFile(tmp_path / "bad.ora", "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)
    info = inspect_project(tmp_path / "bad.ora")
    default = RestoreChoices()
    assert info.restore == RestoreChoices(sensitivity=1.0, balance_strength=0.1)
    assert (info.restore.kinds, info.restore.detector, info.restore.clip_limit) == (
        default.kinds, default.detector, default.clip_limit)
    assert info.restore.denoise_strength is None and info.restore.sharpen_amount == default.sharpen_amount
    assert any("kinds, detector, denoise_strength, clip_limit, sharpen_amount, keep_tone" in note
               for note in info.notes)
    assert load_project(tmp_path / "bad.ora").restore == info.restore
    # an older project has no restore choices at all: the defaults, without a note
    del extras["restore"]
    entries["inpaint-studio/project.json"] = json.dumps(extras).encode()
    with zipfile.ZipFile(tmp_path / "old.ora", "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)
    old = inspect_project(tmp_path / "old.ora")
    assert old.restore == default and not any("restore" in note for note in old.notes)
    # values finer than the controls show are rounded to them (the panel would show 0.33)
    assert RestoreChoices.from_dict({"sensitivity": 0.333, "clip_limit": 2.004}).sensitivity == 0.33
