"""The `acl` stand-in itself follows ascend-acl.md: if it did not, the backend tests would prove nothing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.engine.backends.tiling import TileShape
from tests.engine.acl_double import ACL_DEVICE, make_acl
from tests.engine.acl_double.helpers import convert, tiny_generator

H2D, D2H, D2D = 1, 2, 3


@pytest.fixture
def acl():
    module = make_acl(memory_bytes=1 << 20)
    assert module.init() == 0
    assert module.rt.set_device(0) == 0
    ctx, ret = module.rt.create_context(0)
    assert ret == 0 and isinstance(ctx, int)
    module.ctx = ctx
    return module


def test_return_shapes_follow_section_1(acl):
    stream, ret = acl.rt.create_stream()
    assert ret == 0 and isinstance(stream, int)
    assert acl.rt.get_run_mode() == (1, 0)
    assert acl.rt.get_device_count() == (1, 0)
    ds = acl.mdl.create_dataset()
    assert isinstance(ds, int)
    buf = acl.create_data_buffer(0, 0)
    assert acl.mdl.add_dataset_buffer(ds, buf) == (ds, 0)
    assert acl.mdl.get_dataset_num_buffers(ds) == 1
    assert acl.destroy_data_buffer(buf) == 0 and acl.mdl.destroy_dataset(ds) == 0
    assert acl.rt.destroy_stream(stream) == 0
    assert acl.get_recent_err_msg() is None


def test_init_once_and_nothing_before_init():
    module = make_acl()
    assert module.rt.set_device(0) == 100001
    assert module.init() == 0 and module.init() == 100002


def test_malloc_alignment_accounting_and_garbage(acl):
    ptr, ret = acl.rt.malloc(100, 2)
    assert ret == 0 and ptr % 64 == 0
    assert acl.double.used == 160  # 100 rounded up to 128, plus 32
    out = np.zeros(25, np.float32)
    assert acl.rt.memcpy(acl.util.numpy_to_ptr(out), 100, ptr, 100, D2H) == 0
    assert np.isnan(out).all()  # device memory is not zeroed
    assert acl.rt.malloc(2 << 20, 2) == (0, 207001)  # more than the device has
    assert "207001" in acl.get_recent_err_msg()
    assert acl.rt.free(ptr) == 0 and acl.double.used == 0


def test_memcpy_checks_sizes_and_kinds_and_moves_bytes(acl):
    dev, _ = acl.rt.malloc(64, 2)
    src = np.arange(16, dtype=np.float32)
    host = acl.util.numpy_to_ptr(src)
    assert acl.rt.memcpy(dev, 32, host, 64, H2D) == 100000  # count > dst_max
    assert acl.rt.memcpy(dev, 64, host, 64, D2H) == 100000  # wrong direction
    assert acl.rt.memcpy(dev, 4096, host, 64, H2D) == 100000  # dst_max past the buffer
    assert acl.rt.memcpy(dev, 64, host, 64, H2D) == 0
    data = b"\x00" * 64  # acllite's pattern: memcpy into a bytes object through bytes_to_ptr
    assert acl.rt.memcpy(acl.util.bytes_to_ptr(data), 64, dev, 64, D2H) == 0
    np.testing.assert_array_equal(np.frombuffer(data, np.float32), src)
    pinned, _ = acl.rt.malloc_host(64)
    assert acl.rt.memcpy(pinned, 64, dev, 64, D2H) == 0
    np.testing.assert_array_equal(np.frombuffer(acl.util.ptr_to_bytes(pinned, 64), np.float32), src)
    assert acl.rt.free_host(pinned) == 0 and acl.rt.free(dev) == 0


def test_device_run_mode_wants_device_to_device():
    module = make_acl(run_mode=ACL_DEVICE)
    module.init(), module.rt.set_device(0), module.rt.create_context(0)
    dev, _ = module.rt.malloc(64, 2)
    host = module.util.numpy_to_ptr(np.zeros(16, np.float32))
    assert module.rt.memcpy(dev, 64, host, 64, H2D) == 100000
    assert module.rt.memcpy(dev, 64, host, 64, D2D) == 0


def test_context_is_bound_to_the_thread_that_set_it(acl):
    seen = {}

    def other():
        seen["malloc"] = acl.rt.malloc(64, 2)
        seen["set"] = acl.rt.set_context(acl.ctx)
        seen["after"] = acl.rt.malloc(64, 2)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["malloc"] == (0, 107002) and seen["set"] == 0 and seen["after"][1] == 0
    assert acl.rt.free(seen["after"][0]) == 0


def test_no_device():
    module = make_acl(devices=0)
    module.init()
    assert module.rt.get_device_count() == (0, 207004)
    assert module.rt.set_device(0) == 207004


def test_teardown_leaks_are_reported(acl):
    _ptr, _ = acl.rt.malloc(64, 2)
    _stream, _ = acl.rt.create_stream()
    assert acl.rt.destroy_context(acl.ctx) == 0
    assert acl.rt.reset_device(0) == 0
    assert acl.double.violations and "still alive" in acl.double.violations[0]
    assert acl.double.live()["device_allocations"] == 1 and acl.double.live()["streams"] == 1


def test_models_run_in_their_context_with_exact_inputs(acl, tmp_path):
    path = tiny_generator(tmp_path)
    _gen, mm = convert(path, TileShape(8, 8, 8))
    model_id, ret = acl.mdl.load_from_file(str(mm))
    assert ret == 0
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, model_id) == 0
    assert acl.mdl.get_num_inputs(desc) == 2 and acl.mdl.get_input_size_by_index(desc, 0) == 256
    assert acl.mdl.get_input_dims(desc, 1) == ({"name": "x2", "dimCount": 2, "dims": [8, 8]}, 0)
    ins, outs = acl.mdl.create_dataset(), acl.mdl.create_dataset()
    for size, ds in ((256, ins), (128, ins), (256, outs)):  # the second input is too small
        ptr, _ = acl.rt.malloc(size, 2)
        acl.mdl.add_dataset_buffer(ds, acl.create_data_buffer(ptr, size))
    assert acl.mdl.execute(model_id, ins, outs) == 100017
    _other, _ = acl.rt.create_context(0)  # now current: not the model's context
    assert acl.mdl.execute(model_id, ins, outs) == 107004
    assert acl.rt.set_context(acl.ctx) == 0
    acl.double.inject("mdl.execute", 507011)
    assert acl.mdl.execute(model_id, ins, outs) == 507011
    assert acl.mdl.load_from_file(str(tmp_path / "missing.om")) == (0, 100003)
