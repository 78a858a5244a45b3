"""Who serves each URL: DNS, network, address holder, CDN, hoster, jurisdiction."""


class EnrichmentError(Exception):
    """Root of the enrichment package's errors."""
