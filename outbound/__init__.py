"""What leaves the machine: the address guard, the DNS resolver and the
guarded HTTP client that the crawl and the enrichment share (docs/architecture.md)."""
