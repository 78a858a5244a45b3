"""What leaves the machine: the address guard (guard) and the DNS resolver
(dns) that the crawl and the enrichment share, and the guarded HTTP client
(http) that the enrichment's RDAP requests go through (docs/architecture.md)."""
