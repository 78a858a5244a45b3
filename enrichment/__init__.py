"""Who serves each URL: DNS, network, address holder, CDN, hoster, jurisdiction."""


from kernel.errors import EnrichmentError

__all__ = ["EnrichmentError"]
