"""hostwatch's kernel: the domain and its pure rules, importing nothing else of hostwatch.

Verdicts and their groups (model), configuration (config), URL rules (urls),
log redaction (redact), hoster-name rules (orgnames), CDN rules (cdn), a CDN
edge is no server location (location), case state (state), deadlines
(deadlines), the deadline-check schedule (schedule), a case's durations
(durations) and the roots of the error tree (errors).
Every other package builds on this one; see docs/architecture.md.
"""

__version__ = "0.1.0"
