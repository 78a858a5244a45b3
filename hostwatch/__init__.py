"""hostwatch: re-check reported abuse-material URLs without keeping the material."""

__version__ = "0.1.0"
