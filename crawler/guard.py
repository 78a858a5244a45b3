"""The address guard: which addresses the crawler may connect to.

Reported URLs are hostile input. A name that resolves to a loopback, private,
link-local, multicast or reserved address would turn the crawler against the
hotline's own network, so such targets are refused before connecting, after
every redirect, and for the address actually connected to (DNS rebinding).
Labs and tests allow loopback/private targets explicitly (HOSTWATCH_ALLOW_PRIVATE).
"""

from __future__ import annotations

import ipaddress


def forbidden_reason(address: str, *, allow_private: bool = False) -> str | None:
    """Why ``address`` must not be fetched, or None when it may be."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # Always refused, lab or not: these are never a web host.
    if ip.is_unspecified:
        return f"{ip} is unspecified"
    if ip.is_multicast:
        return f"{ip} is multicast"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is loopback"
    if ip.is_link_local:
        return f"{ip} is link-local"
    if ip.is_private:
        return f"{ip} is private"
    if ip.is_reserved:
        return f"{ip} is reserved"
    if not ip.is_global:
        return f"{ip} is not globally routable"
    return None
