"""How the reports explain perceptual matching (#12), and how far it reached.

A check whose bytes differ from the reported file but whose picture is the
same (PDQ, `crawler.perceptual`) is `reencoded`: served, not `changed`. That
is only possible for a case with a reference PDQ: from the report (the
import's ``pdq`` column) or learned from the first check whose SHA-256
matched the reported file. Readers of a report or an evidence pack need the
rule (threshold, quality floor) and how many cases it could apply to: a case
without a reference PDQ is compared by SHA-256 only, and a re-encoded copy of
it still reads as `changed`. The hoster report (`reports.hosters`) and the
evidence pack (`reports.evidence_docs`) both take their wording from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crawler.perceptual import DEFAULT_MIN_QUALITY, DEFAULT_THRESHOLD
from kernel.config import Config
from kernel.model import PdqSource, Verdict

__all__ = ["PdqCounts", "PdqRule", "counts_text", "pdq_counts", "rule_text"]


@dataclass(frozen=True)
class PdqRule:
    """The PDQ settings a report states (HOSTWATCH_PDQ, _THRESHOLD, _MIN_QUALITY)."""

    enabled: bool = True
    threshold: int = DEFAULT_THRESHOLD
    min_quality: int = DEFAULT_MIN_QUALITY

    @classmethod
    def from_config(cls, config: Config) -> PdqRule:
        return cls(config.pdq, config.pdq_threshold, config.pdq_min_quality)


@dataclass(frozen=True)
class PdqCounts:
    """How many of a report's cases could be matched by picture, and how often were."""

    cases: int = 0
    from_report: int = 0  # cases whose reference PDQ came with the report
    learned: int = 0  # cases whose reference PDQ hostwatch learned from a SHA-256 match
    reencoded_checks: int = 0  # checks that found the same picture in other bytes

    @property
    def matchable(self) -> int:
        return self.from_report + self.learned


def pdq_counts(sources: Iterable[str | None], verdicts: Iterable[str]) -> PdqCounts:
    """Counts from the cases' ``ref_pdq_source`` and their checks' verdicts."""
    listed = list(sources)
    return PdqCounts(
        cases=len(listed),
        from_report=sum(source == PdqSource.REPORT.value for source in listed),
        learned=sum(source == PdqSource.LEARNED.value for source in listed),
        reencoded_checks=sum(verdict == Verdict.REENCODED.value for verdict in verdicts))


def rule_text(rule: PdqRule) -> str:
    """How the same picture is recognised, in words (settings as given)."""
    text = (
        "A served file whose SHA-256 is not that of the reported file may still be the "
        "same picture: recompressed, stripped of its metadata, converted (WebP, AVIF) or "
        "resized by the hoster, its CDN or an image service. hostwatch decodes such an "
        "image in memory, computes its PDQ perceptual hash (Meta's PDQ, the hash "
        "hotlines exchange) and drops the pixels at once; only the hash, its PDQ quality "
        "(0-100) and its distance to the case's reference PDQ are kept (checks: "
        "body_pdq, pdq_quality, pdq_distance), never the image, a thumbnail or the "
        "pixels. When at most "
        f"{rule.threshold} of the 256 bits differ and the quality is at least "
        f"{rule.min_quality}, the check is `reencoded`: the same picture, still served, "
        "counted as online and never as removal; a copy turned by a quarter or half turn, "
        "or mirrored, is usually the same picture too. A flat, tiny or noise-like image (quality "
        f"under {rule.min_quality}) never matches; beyond {rule.threshold} bits the check "
        "is `changed`, and so are bytes that are no picture at all. An image that could "
        "not be decoded within hostwatch's limits (pixel cap, time-out, a damaged file) "
        "is served without comparison (`online`, reference_match empty): it is never "
        "counted as removal. The reason of each check names the hash that matched and the "
        "distance; reference_match is true for a match by SHA-256 or by picture. The "
        "reported file itself is decoded once, to learn its PDQ, when the report gave "
        "none. A case's reference PDQ comes from the report (the hotline's hash of "
        "the reported file; ref_pdq_source = report) or, when the report gave none, is "
        "learned from the first check whose SHA-256 matched the reported file "
        "(ref_pdq_source = learned, ref_pdq_check_id = that check): the hash of the "
        "picture, never the picture. A case with neither is compared by SHA-256 only.")
    if not rule.enabled:
        text += (" Perceptual matching was switched off (HOSTWATCH_PDQ=0) when this was "
                 "written: new checks compare by SHA-256 only.")
    return text


def counts_text(counts: PdqCounts) -> str:
    """How many cases could be matched by picture, and how many checks were."""
    return (
        f"{counts.matchable} of {counts.cases} cases could be matched by picture (with a "
        f"reference PDQ: {counts.from_report} from the report, {counts.learned} learned from "
        f"a SHA-256 match); the other {counts.cases - counts.matchable} by SHA-256 only. "
        f"{counts.reencoded_checks} "
        f"{'check found' if counts.reencoded_checks == 1 else 'checks found'} the same "
        "picture in other bytes (`reencoded`).")
