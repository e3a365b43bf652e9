"""The saved file follows the OpenRaster spec: checked with a strict reader written from the
spec (tests/io/ora_strict.py) and with pyora when it is installed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest

from app.io.project import NS, save_project
from tests.io.conftest import make_doc
from tests.io.ora_strict import composite, read_strict


@pytest.fixture
def saved(tmp_path):
    doc = make_doc(layers=4)
    path = tmp_path / "p.ora"
    save_project(doc, path)
    return doc, path


def test_mimetype_first_and_stored(saved):
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype"
        assert first.compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
    assert path.read_bytes()[30:54] == b"mimetypeimage/openraster"


def test_stack_xml_well_formed_and_every_src_present(saved):
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        root = ET.fromstring(zf.read("stack.xml"))
        names = set(zf.namelist())
    srcs = [el.get("src") for el in root.iter("layer")]
    assert srcs and all(src in names for src in srcs)
    assert {"mergedimage.png", "Thumbnails/thumbnail.png", "stack.xml"} <= names


def test_strict_reader_sees_every_layer_exactly(saved):
    doc, path = saved
    ora = read_strict(path)
    assert (ora.width, ora.height) == (32, 24)
    photo, result, masks = ora.layers[-1], ora.layers[-2], ora.layers[:-2]
    assert np.array_equal(photo.rgba[:, :, :3], doc.photo) and (photo.rgba[:, :, 3] == 255).all()
    assert photo.visible and not result.visible  # the pending result is there, hidden
    assert np.array_equal(result.rgba[:, :, :3], doc.result.image)
    for layer, stored in zip(reversed(doc.layers), masks):  # top of the stack first
        assert stored.name == layer.name
        assert stored.visible == layer.visible
        assert stored.opacity == pytest.approx(layer.opacity)
        assert np.array_equal(stored.rgba[:, :, 3], layer.mask)  # the mask is the alpha, exactly
        painted = layer.mask > 0
        assert (stored.rgba[painted][:, :3] == layer.color).all()  # shown in the layer colour
        assert stored.attrib[f"{{{NS}}}kind"] == layer.kind.value


def test_merged_image_is_the_composite_of_the_visible_layers(saved):
    _, path = saved
    ora = read_strict(path)
    expected = composite(ora)
    assert np.allclose(expected[:, :, 3], 1.0)
    diff = np.abs(np.round(expected[:, :, :3] * 255) - ora.merged[:, :, :3].astype(np.float64))
    assert diff.max() <= 1.0
    assert ora.thumbnail.shape[:2] == (24, 32)  # small images are not enlarged


def test_thumbnail_at_most_256(tmp_path):
    doc = make_doc(w=600, h=300, layers=1, result=False)
    save_project(doc, tmp_path / "big.ora")
    ora = read_strict(tmp_path / "big.ora")
    assert ora.thumbnail.shape[:2] == (128, 256)


def test_pyora_reads_the_layers(saved):
    pyora = pytest.importorskip("pyora")
    doc, path = saved
    project = pyora.Project.load(str(path))
    assert tuple(project.dimensions) == (32, 24)
    layers = list(project.iter_layers)  # bottom first
    assert [x.name for x in layers] == ["Photo", "Result (not applied)"] + [x.name for x in doc.layers]
    assert [x.visible for x in layers[2:]] == [x.visible for x in doc.layers]
    photo = np.asarray(layers[0].get_image_data(raw=True).convert("RGB"))
    assert np.array_equal(photo, doc.photo)
    for stored, layer in zip(layers[2:], doc.layers):
        rgba = np.asarray(stored.get_image_data(raw=True).convert("RGBA"))
        assert np.array_equal(rgba[:, :, 3], layer.mask)
        assert stored.opacity == pytest.approx(layer.opacity)
