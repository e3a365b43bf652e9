"""`inpaint-studio project new|info` and `inpaint-studio inpaint X.ora`, run in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.canvas.document import LayerKind
from app.cli.main import main
from app.io.project import load_project, save_project
from tests.io.conftest import make_doc


@pytest.fixture
def files(tmp_path):
    yy, xx = np.mgrid[0:48, 0:64]
    photo = np.dstack([xx * 2 + 100, yy * 3 + 80, (xx + yy) + 60]).astype(np.uint8)
    a = np.zeros((48, 64), np.uint8)
    a[10:20, 10:22] = 255
    b = np.zeros((48, 64), np.uint8)
    b[30:40, 40:50] = 255
    photo[12:18, 12:20] = 0  # a dark object under each mask
    photo[32:38, 42:48] = 0
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    Image.fromarray(b[::2, ::2]).save(tmp_path / "half.png")  # same aspect, half size
    Image.fromarray(np.zeros((10, 40), np.uint8)).save(tmp_path / "odd.png")
    return tmp_path, photo, a, b


def test_new_then_info(files, capsys):
    folder, photo, a, b = files
    out = folder / "p.ora"
    code = main(["project", "new", str(folder / "photo.png"), "--layer", f"wire={folder / 'a.png'}",
                 "--protect", f"face={folder / 'b.png'}", "--layer", str(folder / "half.png"), "--hidden", "half",
                 "-o", str(out)])
    assert code == 0
    assert "2 fill and 1 protect" in capsys.readouterr().out
    doc = load_project(out)
    assert np.array_equal(doc.photo, photo)
    assert [(x.name, x.kind, x.visible) for x in doc.layers] == [
        ("wire", LayerKind.FILL, True), ("half", LayerKind.FILL, False), ("face", LayerKind.PROTECT, True)
    ]
    by_name = {x.name: x for x in doc.layers}
    assert np.array_equal(by_name["wire"].mask, a) and np.array_equal(by_name["face"].mask, b)
    assert np.array_equal(by_name["half"].mask, b)  # scaled up, nearest neighbour

    capsys.readouterr()
    assert main(["project", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "64x48" in text and "wire" in text and "protect" in text and "hidden" in text
    assert main(["project", "info", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["role"] for row in data["layers"]][-1] == "photo"
    wire = next(row for row in data["layers"] if row["name"] == "wire")
    assert wire["painted"] == pytest.approx(120 / (64 * 48), abs=1e-6)


def test_new_refuses_to_overwrite_and_bad_masks(files, capsys):
    folder, *_ = files
    out = folder / "p.ora"
    out.write_bytes(b"keep me")
    assert main(["project", "new", str(folder / "photo.png"), "--layer", f"x={folder / 'a.png'}", "-o", str(out)]) == 1
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(["project", "new", str(folder / "photo.png"), "--layer", f"x={folder / 'odd.png'}", "-o",
                 str(folder / "q.ora")]) == 1
    assert "aspect" in capsys.readouterr().err
    assert main(["project", "new", str(folder / "photo.png"), "--layer", "=", "-o", str(folder / "q.ora")]) == 1
    assert main(["project", "new", str(folder / "photo.png"), "-o", str(folder / "q.png")]) == 1
    assert not (folder / "q.ora").exists()


def test_info_on_a_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.ora"
    bad.write_bytes(b"PK\x03\x04 nonsense")
    assert main(["project", "info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1


def test_inpaint_project_fills_visible_fill_layers_only(files, capsys):
    folder, photo, a, _b = files
    out = folder / "p.ora"
    assert main(["project", "new", str(folder / "photo.png"), "--layer", f"wire={folder / 'a.png'}",
                 "--layer", f"off={folder / 'b.png'}", "--hidden", "off", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["inpaint", str(out), "--method", "telea", "--backend", "cpu", "-o", str(folder / "out.png")]) == 0
    result = np.asarray(Image.open(folder / "out.png").convert("RGB"))
    assert np.array_equal(result[a == 0], photo[a == 0])  # outside the visible fill layer: bit-identical
    assert result[12:18, 12:20].min() > 40  # the object under the visible layer is gone
    assert (result[32:38, 42:48] == 0).all()  # the one under the hidden layer stays
    # to a project: the fill becomes the pending result layer
    assert main(["inpaint", str(out), "--method", "telea", "-o", str(folder / "done.ora")]) == 0
    done = load_project(folder / "done.ora")
    assert done.result is not None and np.array_equal(done.result.image, result)
    assert done.settings.method == "telea" and len(done.layers) == 2


def test_inpaint_project_without_fill_says_so(tmp_path, capsys):
    doc = make_doc(layers=0, result=False)
    save_project(doc, tmp_path / "empty.ora")
    assert main(["inpaint", str(tmp_path / "empty.ora"), "-o", str(tmp_path / "o.png")]) == 1
    assert "nothing to fill" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_inpaint_photo_still_needs_a_mask(files, capsys):
    folder, *_ = files
    assert main(["inpaint", str(folder / "photo.png"), "-o", str(folder / "o.png")]) == 2
    assert "--mask is required" in capsys.readouterr().err
