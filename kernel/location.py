"""A CDN edge is no server location (#14).

The address that answered for a CDN-fronted target is the CDN's edge: its
location says where the CDN answers, not where the material is hosted. So a
CDN-fronted case has no server location (it counts as "server unknown"), and
the edge's location is kept apart. The one rule for every reader of a
location: the attribution (enrichment/attribute.py, `hostwatch whois`), the
reports (reports/location.py), the API's case listing.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["server_and_edge"]

L = TypeVar("L")


def server_and_edge(cdn_fronted: bool, located: L, unknown: L) -> tuple[L, L]:
    """Where the answering address stood, ``located``, as the pair (server
    location, CDN edge location); ``unknown`` fills the side it is not.

    A CDN-fronted target's location is its edge's, and its server location is
    ``unknown``; any other target's is its server location, with no edge."""
    return (unknown, located) if cdn_fronted else (located, unknown)
