"""Fixtures shared by the Ascend backend tests."""

from __future__ import annotations

import sys

import pytest

from tests.engine.acl_double import make_acl


@pytest.fixture
def acl(monkeypatch):
    """The in-process `acl` stand-in, installed as the module the backend imports."""
    module = make_acl()
    monkeypatch.setitem(sys.modules, "acl", module)
    return module
