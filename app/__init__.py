"""Inpaint Studio: remove objects from photos and repair old photos."""

__version__ = "0.1.0"
