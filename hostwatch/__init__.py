"""hostwatch: re-check reported abuse-material URLs without keeping the material."""

from kernel import __version__

__all__ = ["__version__"]
