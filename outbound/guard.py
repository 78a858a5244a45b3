"""The address guard: which addresses the crawler may connect to.

Reported URLs are hostile input. A name that resolves to a loopback, private,
link-local, multicast or reserved address would turn the crawler against the
hotline's own network (or a cloud metadata service), so such targets are
refused before connecting, after every redirect, and for the address actually
connected to (DNS rebinding).

Labs and tests let chosen non-public networks through with
HOSTWATCH_ALLOW_PRIVATE: ``1`` for loopback and the private ranges, or a list
of networks such as ``127.0.0.0/8`` (the test suite's choice, so that a
redirect to 10.0.0.5 is still refused). Unspecified and multicast addresses
are refused whatever the setting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4, Teredo,
# IPv4-compatible): through them "64:ff9b::a9fe:a9fe" reaches 169.254.169.254.
# They are refused unless a lab network allows them explicitly.
EMBEDS_IPV4 = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "::/96",
    "::ffff:0:0:0/96"))  # the last: IPv4-translated (SIIT), not IPv4-mapped
# Ranges IANA's special-purpose registries mark not globally reachable that
# older Python versions' ipaddress tables call global (the guard must not
# depend on the interpreter's version).
NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "fec0::/10", "3fff::/20", "5f00::/16"))

def parse_networks(items: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def forbidden_reason(address: str, allow: Sequence[Network] = ()) -> str | None:
    """Why ``address`` must not be fetched, or None when it may be.

    ``allow``: non-public networks let through (empty in production).
    """
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (isinstance(ip, ipaddress.IPv6Address) and not ip.is_loopback and not ip.is_unspecified
            and any(ip in net for net in EMBEDS_IPV4)):
        if _allowed(ip, allow):
            return None
        return f"{ip} embeds an IPv4 address (NAT64/6to4/Teredo)"
    if ip.is_unspecified:
        return f"{ip} is unspecified"
    if ip.is_multicast:
        return f"{ip} is multicast"
    if ip.is_global and not any(ip.version == net.version and ip in net
                                for net in NOT_GLOBAL):
        return None
    if _allowed(ip, allow):
        return None
    if ip.is_loopback:
        return f"{ip} is loopback"
    if ip.is_link_local:
        return f"{ip} is link-local"
    if ip.is_private:
        return f"{ip} is private"
    if ip.is_reserved:
        return f"{ip} is reserved"
    return f"{ip} is not globally routable"


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in allow)
