"""Evidence packs, part two (render): the content of every file of the pack.

From an `EvidenceData` and its `Findings` (both from `reports.evidence_data`),
each function here renders one file, as text (Markdown, CSV) or as a JSON
document (a dict; `reports.evidence` encodes it):

- the tables: cases.csv, checks.csv, runs.csv, attributions.csv, notices.csv
  and orders.csv (their columns, and the cells of a row: `check_cells()` is
  what `hostwatch verify` compares too);
- the data documents: figures.json (`figures_document()`), hoster.json
  (`hoster_document()`), pack.json (`pack_document()`), dsa.json
  (`dsa_document()`);
- the documents for people: `jurisdiction_md()` says why the hoster is (not)
  Dutch-hosted, `method_md()` how hostwatch checks, counts and judges,
  `dsa_md()` the DSA points for ACM, `atkm_md()` the removal orders and their
  deadlines for ATKM (and, per case, where the server stood against where
  the hoster is established, flagged where the two part: reports.location),
  and `readme_md()` lists the pack's files.

Why a module of its own: rendering only reads. Every figure and judgement is
worked out beforehand, once, by `reports.evidence_data.findings()`; nothing
here reads the store or calls back into the collecting module for a
computation, and nothing here imports `reports.evidence`, which builds the
pack from these renderings and writes it.

Written for a regulator's lawyer: plain sentences, case ids rather than URLs
(URLs are in cases.csv), every name from the internet escaped for Markdown.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from enrichment.jurisdiction import EU_MEMBER_STATES
from kernel import __version__
from kernel.deadlines import Judgement, Outcome
from kernel.model import PdqSource, RunHealth, Verdict, VerdictGroup
from kernel.text import printable
from reports.csvsafe import csv_text, rfc3339
from reports.evidence_data import CaseLocation, EvidenceData, Findings, Judged
from reports.location import FLAG_TEXT, LocationFlag, server_location_of
from reports.perceptual import counts_text, rule_text
from reports.takedown import Clock, Duration
from store.models import Attribution, Case, Check, CrawlRun, Hoster, HosterAlias, Notice

__all__ = [
    "ATTRIBUTION_COLUMNS",
    "ATTRIBUTION_LOCATION_COLUMNS",
    "ATTRIBUTION_OPERATOR_COLUMNS",
    "CASE_COLUMNS",
    "CASE_LOCATION_COLUMNS",
    "CHECK_COLUMNS",
    "CHECK_COLUMNS_BEFORE_PDQ",
    "HANDLING_TEXT",
    "MANIFEST",
    "NOTICE_COLUMNS",
    "ORDER_COLUMNS",
    "PACK_FORMAT",
    "PERSISTENCE_DAYS",
    "RUN_COLUMNS",
    "atkm_md",
    "attribution_cells",
    "attributions_csv",
    "case_cells",
    "cases_csv",
    "check_cells",
    "checks_csv",
    "dsa_document",
    "dsa_md",
    "figures_document",
    "hoster_document",
    "jurisdiction_md",
    "method_md",
    "notices_csv",
    "orders_csv",
    "pack_document",
    "readme_md",
    "run_cells",
    "runs_csv",
    "server_location_summary",
]

PACK_FORMAT = "hostwatch-evidence/1"
# The pack's checksum file (reports.evidence writes it; the README lists it).
MANIFEST = "MANIFEST.sha256"

# ---------------------------------------------------------------- tables

CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "source", "external_id", "url", "url_normalised", "host", "category",
    "reported_at", "state", "last_verdict", "last_checked_at", "last_served_at",
    "removed_after", "removed_at", "reappearances", "check_count", "ref_sha256", "ref_pdq",
    "ref_pdq_source", "ref_pdq_check_id", "attribution_id")
# Per case, from its attribution of record (#14): who is established where,
# where the server stood, and the flag when the two disagree
# (reports.location). Packs written before them lack these columns.
CASE_LOCATION_COLUMNS = ("hoster_country", "server_country", "server_country_source",
                         "geoip_built_at", "location_flag")
CASE_COLUMNS = (*CASE_COLUMNS, *CASE_LOCATION_COLUMNS)
RUN_COLUMNS = ("run_id", "started_at", "finished_at", "status", "method", "health",
               "health_reason", "controls", "tool_version")
CHECK_COLUMNS = (
    "check_id", "case_id", "run_id", "checked_at", "method", "verdict", "http_status", "url",
    "final_url", "redirect_chain", "peer_ip", "content_type", "content_length",
    "bytes_received", "truncated", "body_sha256", "body_pdq", "pdq_quality", "pdq_distance",
    "reference_match", "reason", "error_kind", "headers", "tool_version", "imported",
    "prev_hash", "record_hash")
# checks.csv of packs written before the PDQ fields (#12): `hostwatch verify`
# still compares their rows, column by column.
CHECK_COLUMNS_BEFORE_PDQ = tuple(
    name for name in CHECK_COLUMNS if name not in ("pdq_quality", "pdq_distance"))
ATTRIBUTION_COLUMNS: tuple[str, ...] = (
    "attribution_id", "check_id", "case_id", "of_record", "attributed_at", "hostname",
    "cname_chain", "nameservers", "ip", "asn", "prefix", "as_name", "as_country",
    "network_name", "network_handle", "rdap_org", "rdap_org_country", "rdap_country",
    "abuse_email", "cdn", "cdn_evidence", "hoster_id", "hoster", "hoster_country", "dsa_role",
    "jurisdiction", "dutch", "sources")
# Where each check's serving address stood (#14), after the columns of older packs.
ATTRIBUTION_LOCATION_COLUMNS = ("server_country", "server_country_source", "geoip_built_at")
# The reseller through which the block was registered, where RDAP names one
# (#14: the network operator beside the AS and the holder), after those.
ATTRIBUTION_OPERATOR_COLUMNS = ("rdap_reseller",)
ATTRIBUTION_COLUMNS = (*ATTRIBUTION_COLUMNS, *ATTRIBUTION_LOCATION_COLUMNS,
                       *ATTRIBUTION_OPERATOR_COLUMNS)
NOTICE_COLUMNS = (
    "notice_id", "case_id", "sent_at", "channel", "recipient", "reference", "trusted_flagger",
    "due_at", "outcome", "decisive_check_at_start", "last_decisive_check_before",
    "first_decisive_check_after")
# deadline_at: as the order states it; due_at: when it is judged (capped to the
# regime's legal maximum).
ORDER_COLUMNS = (
    "order_id", "case_id", "issuer", "legal_basis", "reference", "issued_at", "deadline_at",
    "regime", "due_at", "outcome", "decisive_check_at_start", "last_decisive_check_before",
    "first_decisive_check_after")


def check_cells(check: Check) -> list[Any]:
    """One checks.csv row (before cell escaping); `hostwatch verify` compares it too."""
    return [check.id if name == "check_id" else getattr(check, name) for name in CHECK_COLUMNS]


def run_cells(run: CrawlRun) -> list[Any]:
    """A run's row: whether its vantage point was healthy, and its control fetches."""
    return [run.id, run.started_at, run.finished_at, run.status, run.method, run.health,
            run.health_reason,
            json.dumps(run.controls, sort_keys=True) if run.controls is not None else None,
            run.tool_version]


def case_cells(case: Case, location: CaseLocation | None = None) -> list[Any]:
    """One cases.csv row (before cell escaping): the case, and ``location``
    (from its attribution of record; None: nothing known)."""
    loc = location or CaseLocation(None, None, None, None, None)
    values = {"case_id": case.id, "hoster_country": loc.hoster_country,
              "server_country": loc.server_country,
              "server_country_source": loc.server_country_source,
              "geoip_built_at": loc.geoip_built_at,
              "location_flag": loc.flag.value if loc.flag else None}
    return [values[name] if name in values else getattr(case, name) for name in CASE_COLUMNS]


def attribution_cells(row: Attribution, of_record: bool) -> list[Any]:
    values = {"attribution_id": row.id, "of_record": of_record}
    return [values[name] if name in values else getattr(row, name)
            for name in ATTRIBUTION_COLUMNS]


def cases_csv(data: EvidenceData, found: Findings) -> str:
    return csv_text(CASE_COLUMNS, [case_cells(c, found.locations.get(c.id))
                                   for c in data.cases])


def checks_csv(data: EvidenceData) -> str:
    return csv_text(CHECK_COLUMNS, [check_cells(c) for c in data.checks])


def runs_csv(data: EvidenceData) -> str:
    return csv_text(RUN_COLUMNS, [run_cells(r) for r in data.runs])


def attributions_csv(data: EvidenceData) -> str:
    of_record = {case.attribution_id for case in data.cases}
    return csv_text(ATTRIBUTION_COLUMNS, [
        attribution_cells(a, a.id in of_record) for a in data.attributions])


def notices_csv(data: EvidenceData, found: Findings) -> str:
    """Every notice, judged against its own due_at."""
    per_notice = found.per_notice
    notice_rows = [[n.id, n.case_id, n.sent_at, n.channel, n.recipient, n.reference,
                    n.trusted_flagger, n.due_at, per_notice[n.id].outcome.value,
                    per_notice[n.id].at_start, per_notice[n.id].last_before,
                    per_notice[n.id].first_after]
                   for n in data.notices]
    return csv_text(NOTICE_COLUMNS, notice_rows)


def orders_csv(data: EvidenceData, found: Findings) -> str:
    """Every order; those with a regime judged against their due_at."""
    per_order = found.per_order
    order_rows = []
    for o in data.orders:
        j = per_order.get(o.id)
        order_rows.append([o.id, o.case_id, o.issuer, o.legal_basis, o.reference, o.issued_at,
                           o.deadline_at, o.regime, o.due_at,
                           j.outcome.value if j else "not judged (no regime)",
                           j.at_start if j else None, j.last_before if j else None,
                           j.first_after if j else None])
    return csv_text(ORDER_COLUMNS, order_rows)


# ---------------------------------------------------------------- data documents


# figures.json's per-case location: cases.csv's cells of these columns (#14).
_FIGURES_LOCATION = ("server_country", "server_country_source", "location_flag")


def _csv_location(case: Case, found: Findings) -> dict[str, Any]:
    """A case's location as its cases.csv row has it (the same cells)."""
    cells = dict(zip(CASE_COLUMNS, case_cells(case, found.locations.get(case.id)),
                     strict=True))
    return {name: cells[name] for name in _FIGURES_LOCATION}


def figures_document(data: EvidenceData, found: Findings) -> dict[str, Any]:
    """The figures.json document; per case also where its server stood and
    its location flag (packs written before them lack these keys)."""
    by_case = {case.id: case for case in data.cases}
    return {
        "hoster": data.hoster.legal_name,
        "cases": len(data.cases),
        "check_resolution_hours": found.check_resolution_hours,
        "clocks": {clock.value: asdict(found.takedown[clock]) for clock in Clock},
        "per_case": [{
            "case_id": t.case_id,
            "external_id": by_case[t.case_id].external_id,
            "state": by_case[t.case_id].state,
            "reported_at": t.reported_at,
            "first_notice_at": t.first_notice_at,
            "order_issued_at": t.order_issued_at,
            "removed_after": t.removed_after,
            "removed_at": t.removed_at,
            "last_checked_at": t.last_checked_at,
            "reappearances": t.reappearances,
            "durations": {clock.value: _duration(found.durations[t.case_id][clock])
                          for clock in Clock},
            **_csv_location(by_case[t.case_id], found),
        } for t in found.case_times],
        "deadlines": {
            "counts": found.deadline_counts,
            "judgements": [_judged(item) for item in found.counted],
        },
    }


def _duration(found: Duration | None) -> dict[str, Any] | None:
    return asdict(found) if found is not None else None


def _judged(item: Judged) -> dict[str, Any]:
    j = item.judgement
    return {"case_id": item.case_id, "subject": item.subject, "regime": j.regime.value,
            "start": j.start, "deadline_at": item.stated, "due_at": j.deadline,
            "capped": item.stated is not None and item.stated > j.deadline,
            "outcome": j.outcome.value,
            "decisive_check_at_start": j.at_start,
            "last_decisive_check_before": j.last_before,
            "first_decisive_check_after": j.first_after}


def hoster_document(hoster: Hoster, aliases: Sequence[HosterAlias] = ()) -> dict[str, Any]:
    """hoster.json: the hoster, and every way its sources named it (``aliases``:
    how its attributions were matched to this one company)."""
    return {"key": hoster.key, "legal_name": hoster.legal_name, "country": hoster.country,
            "asns": list(hoster.asns or []), "dsa_role": hoster.dsa_role,
            "abuse_contact": hoster.abuse, "cdn": hoster.cdn, "source": hoster.source,
            "updated_at": hoster.updated_at,
            "aliases": [{"kind": a.kind, "value": a.value, "seen_as": a.seen_as,
                         "first_seen": a.first_seen} for a in aliases]}


def pack_document(data: EvidenceData) -> dict[str, Any]:
    """pack.json: what the pack is, when and by which tool, and the chain head."""
    return {
        "format": PACK_FORMAT,
        "tool": "hostwatch",
        "tool_version": __version__,
        "generated_at": data.generated_at,
        "for": data.audience.value,
        "hoster": {"key": data.hoster.key, "legal_name": data.hoster.legal_name},
        "period": {"reported_since": data.since, "reported_until": data.until},
        "store": data.store_url,
        "chain_head": {"check_id": data.head_check_id, "record_hash": data.head_hash},
        "counts": {"cases": len(data.cases), "checks": len(data.checks),
                   "attributions": len(data.attributions), "notices": len(data.notices),
                   "orders": len(data.orders)},
        "served_checks": sum(Verdict(c.verdict).group is VerdictGroup.SERVED
                             for c in data.checks),
    }


# ---------------------------------------------------------------- documents for people

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})
PERSISTENCE_DAYS = (1, 7, 30)


def _md(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, datetime):
        return rfc3339(value)
    # Whitespace folds to one line; what remains unprintable (ESC, NUL, bidi
    # overrides a server wrote) is shown as an escape, never acted on.
    return printable(" ".join(str(value).split())).translate(_MD_SPECIAL)


def _establishment(hoster: Hoster) -> str:
    country = (hoster.country or "").upper()
    if not country:
        return "of unknown establishment (no country of establishment is known)"
    if country == "NL":
        return ("established in the Netherlands (NL): Dutch-hosted by establishment, "
                "within ATKM's reach")
    if country in EU_MEMBER_STATES:
        return (f"established in another EU member state ({country}): not Dutch-hosted by "
                "establishment")
    return f"established outside the EU ({country}): not Dutch-hosted by establishment"


def jurisdiction_md(data: EvidenceData) -> str:
    h = data.hoster
    lines = [f"# Jurisdiction: {_md(h.legal_name)}", "",
             f"Hoster of record: **{_md(h.legal_name)}** (key {_md(h.key)}), "
             f"{_establishment(h)}. Its data comes from: {_md(h.source)} "
             "(registry = hostwatch's registry of hosting companies; rdap = the "
             "registrant the regional internet registry names; asn_names = the name "
             "and country of the network's autonomous system).", "",
             "\"Dutch-hosted\" has two meanings. *By establishment* (this pack's "
             "jurisdiction, ATKM's reach, the DSA's supervision): the company that "
             "hosts the case (the hoster of record) is established in the Netherlands. "
             "*By server location* (what hotline statistics count as hosted in the "
             "Netherlands): the server stood there. A US company's Amsterdam data "
             "centre is Dutch-hosted by server location, not by establishment; where an "
             "address block is registered decides neither. The server location of each "
             "case is below and in cases.csv; atkm.md flags the cases where the two "
             "meanings part.", "",
             "## How each case was attributed", "",
             "Each case belongs to the hoster of its *attribution of record*: the "
             "attribution of its newest check that reached an address (by check "
             "time, ties by check id: the order in which checks were imported "
             "does not matter). The "
             "attributions of record of the cases in this pack:", ""]
    by_id = {a.id: a for a in data.attributions}
    groups: dict[tuple[Any, ...], list[Case]] = defaultdict(list)
    for case in data.cases:
        a = by_id.get(case.attribution_id or -1)
        if a is None:
            continue
        key = (a.jurisdiction, a.dutch, a.hoster_country, a.asn, a.as_name, a.as_country,
               a.network_name, a.rdap_org, a.rdap_org_country, a.rdap_country, a.cdn,
               json.dumps(a.sources or {}, sort_keys=True), a.server_country,
               a.server_country_source, a.geoip_built_at, a.rdap_reseller)
        groups[key].append(case)
    cdn_seen = False
    for key, cases in groups.items():
        (juris, dutch, country, asn, as_name, as_country, net_name, org, org_country,
         net_country, cdn, sources_json, server, server_source, built, reseller) = key
        sources = json.loads(sources_json)
        ids = ", ".join(str(c.id) for c in cases[:20]) + (", ..." if len(cases) > 20 else "")
        lines += [f"### {len(cases)} case(s): {ids}", "",
                  f"- jurisdiction: **{_md(juris)}** (Dutch-hosted by establishment: "
                  f"{'yes' if dutch else 'no'}); decided by: "
                  f"{_md(sources.get('jurisdiction', 'not recorded'))}",
                  f"- hoster's country of establishment: {_md(country)} (source: "
                  f"{_md(sources.get('hoster_country', 'not recorded'))}); hoster chosen by: "
                  f"{_md(sources.get('hoster', 'not recorded'))}",
                  f"- network: AS{_md(asn)} {_md(as_name)}, AS country {_md(as_country)} "
                  f"(source: {_md(sources.get('asn', 'not recorded'))})",
                  f"- address holder (RDAP): network {_md(net_name)}, organisation "
                  f"{_md(org)}, the organisation's own country {_md(org_country)}, the "
                  f"network's registration country {_md(net_country)} (source: "
                  f"{_md(sources.get('rdap_org', sources.get('rdap', 'none')))})"]
        if reseller:  # only where the registry's answer names one
            lines.append(f"- reseller block holder (RDAP): {_md(reseller)}, the third party "
                         "through which the address block was registered (source: "
                         f"{_md(sources.get('rdap_reseller', 'not recorded'))})")
        if cdn and server:  # reports/location.py: an edge is no server location
            lines.append(f"- server location: unknown: served through the CDN {_md(cdn)}, "
                         f"whose answering edge ({_md(server)}) is not where the material "
                         "is hosted")
        else:
            lines.append("- server location: " + _server_text(CaseLocation(
                server_location_of(cdn, server), server_source, built, country, None)))
        if org_country and net_country and org_country != net_country:
            lines.append(f"- the address block is registered in {_md(net_country)} but its "
                         f"holder is established in {_md(org_country)}: the holder's "
                         "establishment counts, not where the block is registered")
        if cdn:
            cdn_seen = True
            lines.append(f"- served through the CDN {_md(cdn)}: the CDN is an "
                         "intermediary (evidence: "
                         f"{_md(sources.get('cdn', 'not recorded'))})")
        lines.append("")
    if not groups:
        lines += ["(no case in this pack)", ""]
    lines += _identity_lines(data)
    lines += _other_company_lines(data, h.id)
    lines += ["## CDN caveat", "",
              "A content delivery network (Cloudflare, Akamai, Fastly, CloudFront...) "
              "answers from its own edge addresses and hides the origin server. A case "
              "served through a CDN names the CDN as intermediary and its origin hoster "
              "as unknown; it is never counted as hosted in the CDN's country. "
              + ("Some cases of this pack were served through a CDN (above)."
                 if cdn_seen else "No case of this pack was served through a CDN."), ""]
    return "\n".join(lines)


_ALIAS_KINDS = {
    "registry": "hostwatch's registry entry",
    "asn": "an AS number the registry entry lists",
    "rdap_handle": "the RDAP registrant's organisation handle",
    "legal_name": "the registry's legal name",
    "rdap_org": "the RDAP registrant's name",
    "as_name": "the AS name",
    "key": "a key this hoster had before two records of it were merged",
}


def _other_company_lines(data: EvidenceData, hoster_id: int) -> list[str]:
    """The cases with checks attributed to another company: moved, or named
    otherwise for the same address.

    A hoster is one company (legal entity) whichever source named it, so
    hoster_id differs only when the company named did. The material moved
    only when it was served from another address: the same address named
    as another company's (RDAP down one night, the AS name of the network's
    upstream decided) is a disagreement of sources about one server, and a
    hoster contesting the pack would rightly say nothing moved.
    """
    ours: dict[int, set[str]] = defaultdict(set)
    for a in data.attributions:
        if a.hoster_id == hoster_id and a.ip:
            ours[a.case_id].add(a.ip)
    moved: dict[int, set[str]] = defaultdict(set)
    renamed: dict[int, set[str]] = defaultdict(set)
    for a in data.attributions:
        if a.hoster_id is None or a.hoster_id == hoster_id:
            continue
        if a.ip and a.ip in ours[a.case_id]:
            source = (a.sources or {}).get("hoster", "not recorded")
            renamed[a.case_id].add(f"{a.hoster or '?'} (on the same address {a.ip}, "
                                   f"named by {source})")
        else:
            moved[a.case_id].add(a.hoster or "?")
    lines: list[str] = []
    if moved:
        others = sorted(set().union(*moved.values()))
        lines += ["## Cases that moved to another hoster", "",
                  "Material moves between hosters. Cases " + ", ".join(map(str, sorted(moved)))
                  + " have checks attributed to another company (another legal entity: "
                  + _md("; ".join(others)) + "; at another address; see attributions.csv, "
                  "columns hoster_id, ip and of_record); they are in this pack because their "
                  "attribution of record is to this hoster.", ""]
    if renamed:
        others = sorted(set().union(*renamed.values()))
        lines += ["## Cases whose address another source named otherwise", "",
                  "Cases " + ", ".join(map(str, sorted(renamed))) + " have checks on an "
                  "address that this hoster's attributions also hold, where another source "
                  "named another company: " + _md("; ".join(others)) + ". The material did "
                  "not move: the sources disagree about who holds the address (e.g. RDAP "
                  "did not answer that day and the AS name, which names the network's "
                  "operator rather than a reseller, decided). The case belongs to the "
                  "hoster of its attribution of record (see attributions.csv, column "
                  "sources).", ""]
    return lines


def _identity_lines(data: EvidenceData) -> list[str]:
    """How the sources name this hoster: the evidence that its checks are one company's."""
    if not data.aliases:
        return []
    lines = ["## How this hoster was identified", "",
             "One company is one hoster, whichever source named it on a check (the "
             "registry, the RDAP registrant, the AS name). Names are compared without "
             "case, accents, punctuation and the spelling of the legal form (B.V. = BV); "
             "a different legal form, country of establishment or RDAP handle is "
             "another company. The sources named this hoster as (the column "
             "hoster_identity in the attributions' sources says which matched each "
             "check):", ""]
    for alias in data.aliases:
        lines.append(f"- {_md(_ALIAS_KINDS.get(alias.kind, alias.kind))}: "
                     f"{_md(alias.seen_as)} (compared as {_md(alias.value)}; first seen "
                     f"{alias.first_seen:%Y-%m-%d %H:%M} UTC)")
    return [*lines, ""]


def method_md(data: EvidenceData, found: Findings) -> str:
    rules = data.rules
    suspect = [r for r in data.runs if r.health == RunHealth.SUSPECT.value]
    resolution = found.check_resolution_hours
    res_text = (f"In this pack the median gap between the last check that found the "
                f"material served and the first that found it gone is {resolution:g} h: "
                f"removal times are accurate to about half of that."
                if resolution is not None else
                "No case in this pack has a confirmed removal, so no check gap is stated.")
    return "\n".join([
        "# Method", "",
        "**No material is ever stored or included.** In the Netherlands even gaining "
        "access to child sexual abuse material is an offence. hostwatch reads each "
        "response body only to compute its SHA-256 hash (and, for an image that is not "
        "the reported file, its PDQ perceptual hash) in memory, then drops it. The "
        "store holds status codes, selected headers, sizes, hashes, addresses and "
        "verdicts; this pack holds the same: hashes, URLs and metadata, never a body, "
        "image, thumbnail or screenshot.", "",
        "## The checks", "",
        "Every reported URL is re-checked over HTTP every night, and also at and just "
        "after the deadline of every open removal order. Checks a hotline made before "
        "it used hostwatch can be imported (`imported` = true in checks.csv). Each "
        "check records when it was made (UTC), the HTTP status, the address actually "
        "connected to (peer_ip), the redirects and the final URL, and the SHA-256 of "
        "the body (with whether it matches the hash of the reported file; for an image "
        "with other bytes, its PDQ hash, quality and distance: see below).", "",
        "A check ends in one verdict:", "",
        "- **served**: `online` (the material is served), `reencoded` (the same picture "
        "in other bytes: see below);",
        "- **gone**: `http_gone` (404/410), `legal_block` (451), `placeholder` (a "
        "'removed' page or image), `redirect_away` (to a home or login page), "
        "`nxdomain` (the name no longer exists), `changed` (something is served, but "
        "not the reported file);",
        "- **transient**: time-outs, refused connections, server errors (5xx), TLS and "
        "DNS failures, 401/403 and similar: these say nothing about the material;",
        "- `blocked_address`: hostwatch refused to connect (a private address).", "",
        "## Same picture, other bytes (PDQ)", "",
        rule_text(data.pdq), "",
        "In this pack: " + counts_text(found.pdq) + _learned_text(data), "",
        "## When a case counts as removed", "",
        f"A case counts as removed after {rules.confirmations} consecutive gone checks "
        f"spanning at least {rules.min_hours:g} hours (transient checks neither count "
        f"nor break the run), or after {rules.transient_days:g} days of nothing but "
        "failed checks. These are the settings at the time this pack was written. The "
        "moment of removal is only known to lie between the last check that found the "
        "material served (the report, if none did) and the first gone check of the "
        "confirmed run (cases.csv: removed_after, removed_at). Material served again "
        "after a removal is a *reappearance*: it is counted, and the removal is "
        "measured again from scratch.", "",
        "## Suspect runs", "",
        "Each crawl run is judged when it ends (runs.csv, checks.csv: run_id). A run is "
        "*suspect* when its vantage point was broken: a control URL that must be served "
        "was not, at the start or the end of the run, or an anomalous share of cases "
        "failed at network level at once (a dead resolver, a blocked uplink). A suspect "
        "run's checks are kept and shown here, but its gone and failed checks count "
        "toward no removal: a removal is confirmed, and dated, by the gone checks of "
        "healthy runs only. Its served checks do count: served is evidence from any "
        "vantage point. "
        + (f"Suspect runs among those that checked this pack's cases: "
           f"{', '.join(str(r.id) for r in suspect)}."
           if suspect else "No run that checked this pack's cases was suspect."), "",
        "## Clocks", "",
        "Time to removal is measured on three clocks: from the **report** (when the "
        "hotline learned of the material), from the **first notice** to the hoster, "
        "and from the **first removal order**. On each clock the removal interval "
        "becomes hours since the clock started; its midpoint is the estimate and its "
        "width the uncertainty (figures.json, per_case). When a clock starts inside "
        "the interval, the lower bound is 0. A case whose removal was already seen "
        "before the clock started has no time on that clock: it is counted in the "
        "totals but not in the time figures, so that it neither flatters nor harms "
        "the hoster.", "",
        "## Cases not (yet) removed: censoring", "",
        "A case still online was followed until its last check: it is *right-"
        "censored* there. It counts as 'not removed for at least that long', not as "
        "'never removed'.", "",
        "## Kaplan–Meier", "",
        "The median and 90th-percentile time to removal and the shares removed within "
        "24 hours, 72 hours and 7 days come from a Kaplan–Meier survival curve over "
        "the cases' estimates, confirmed removals being the events and still-online "
        "cases censored. The median is the first time the curve reaches 50 % still "
        "online; it is empty (not reached) when fewer than half the cases were seen "
        "removed. 95 % confidence intervals use the exponential Greenwood formula. A "
        "bound the data do not give is open: null in figures.json (ci_lower_hours, "
        "ci_upper_hours). That is the case when the confidence band reaches the level "
        "only where the curve reaches 0 (every case followed was removed; the band is "
        "undefined there): a single removed case has a median with two open bounds, "
        "never an interval of zero width. A "
        "share is empty when the time lies beyond the longest follow-up.", "",
        "## Deadlines", "",
        "Three deadlines are judged: the 24-hour norm after a notice (notice_24h), "
        "an ATKM removal order's own deadline, at most 12 hours after it was issued "
        "(atkm_order), and one hour for a terrorist-content order (terrorist_1h). An "
        "order that states a later deadline (orders.csv: deadline_at) is judged at the "
        "legal maximum (due_at). Each deadline is judged as of the time this pack was "
        "written (pack.json: generated_at). A deadline not yet passed then is "
        "**pending**, whatever the checks found so far. Once it has passed, it is "
        "**already_gone** when the material was gone when the notice was sent or the "
        "order issued (the last served-or-gone check at or before that moment found it "
        "gone: decisive_check_at_start) and no check from then to the deadline found "
        "it served: there was nothing left to remove, so this is not compliance; "
        "**met** when the last served-or-gone check at or before the deadline found "
        "the material gone; **breached** when the first served-or-gone check after it "
        "found the material served and no check before it had found it gone; "
        "**undecided** when the checks do not bracket it (for example served before "
        "and gone after: the removal may have come just in time or just too late). "
        "Transient checks are skipped; checks at one instant that disagree count as "
        "served. figures.json counts each case's first notice and "
        "each order with a regime; notices.csv and orders.csv judge every notice and "
        "order against its own deadline. A nightly check cannot prove a breach of a "
        "1- or 12-hour deadline by itself; hostwatch therefore also checks at each "
        "order's deadline.", "",
        "## Check resolution", "", res_text, "",
        "## Who the hoster is", "",
        "The hoster of record comes from hostwatch's registry of hosting companies "
        "(matched by network number or organisation), else from the registrant the "
        "regional internet registry names (RDAP), else from the network's name. Where "
        "the registry's answer names a reseller through which the address block was "
        "registered, it is recorded beside the network and its holder "
        "(attributions.csv: rdap_reseller; jurisdiction.md) and does not decide the "
        "hoster. See "
        "jurisdiction.md and attributions.csv (column sources: where each fact came "
        "from).", "",
        "## Where the server stood", "",
        "Beside the hoster's country of establishment, each check's attribution "
        "records the country where the serving address is located (server_country): "
        "from an IP geolocation database in the MaxMind DB format (source geoip, with "
        "the database's build time, geoip_built_at), or, without one or for an "
        "address it does not know, the country the regional internet registry's "
        "network object states for the address block (source rdap; never the "
        "holder's postal address); never a guess. It is recorded with each check "
        "and not rewritten by a later database. Hotline statistics count a case as "
        "hosted in the Netherlands by where the server stood; ATKM's reach follows "
        "where the hoster is established.", "",
        "## Integrity", "",
        "Checks are never changed or deleted. Each check's record_hash is the SHA-256 "
        "of its fields and of the previous check's record_hash (prev_hash), so the "
        "checks form one chain: a changed or removed check breaks it. pack.json names "
        "the newest link when this pack was written (chain_head). MANIFEST.sha256 "
        "lists the SHA-256 of every other file of the pack (`sha256sum -c "
        "MANIFEST.sha256` checks them); `hostwatch verify --pack FOLDER` also checks "
        "the chain in the store and that every check in checks.csv is still stored "
        "unchanged.", ""])


def _learned_text(data: EvidenceData) -> str:
    """Which check each learned reference PDQ came from (cases.csv says it too)."""
    learned = [f"case {case.id} from check {case.ref_pdq_check_id}" for case in data.cases
               if case.ref_pdq_source == PdqSource.LEARNED.value]
    return f" Learned references: {'; '.join(learned)}." if learned else ""


def _handling(notice: Notice, case: Case, judgement: Judgement) -> str:
    if judgement.outcome is Outcome.PENDING:
        return "deadline_pending"
    if judgement.outcome is Outcome.ALREADY_GONE:
        return "removed_before_notice"
    if judgement.outcome is Outcome.MET:
        return "removed_within_24h"
    if (case.removed_at is not None and case.removed_after is not None
            and case.removed_after >= notice.due_at):
        return "removed_later"
    if case.removed_at is None and case.state in ("online", "reappeared"):
        return "still_online"
    if case.state == "pending_removal":
        return "removal_not_yet_confirmed"
    if case.state == "unchecked":
        return "never_checked"
    return "undecided"


HANDLING_TEXT = {
    "removed_within_24h": "removed within 24 h",
    "removed_later": "removed, but later than 24 h",
    "still_online": "still online (not removed)",
    "removed_before_notice": "already gone before the notice (not counted as compliance)",
    "deadline_pending": "the 24 h have not yet passed (pending)",
    "removal_not_yet_confirmed": "gone, removal not yet confirmed",
    "never_checked": "never checked",
    "undecided": "undecided (the checks do not bracket the deadline)",
}


def server_location_summary(data: EvidenceData, found: Findings) -> dict[str, Any]:
    """Where this hoster's cases were served from (#14), from the same
    per-case locations as cases.csv and atkm.md: cases per server country,
    cases with none (unknown, or CDN-fronted), and served from NL / abroad."""
    countries: dict[str, int] = defaultdict(int)
    for case in data.cases:
        loc = found.locations.get(case.id)
        if loc is not None and loc.server_country is not None:
            countries[loc.server_country] += 1
    located = sum(countries.values())
    return {"cases_per_server_country": dict(sorted(countries.items(),
                                                    key=lambda item: (-item[1], item[0]))),
            "cases_without_server_country": len(data.cases) - located,
            "cases_served_from_nl": countries.get("NL", 0),
            "cases_served_from_abroad": located - countries.get("NL", 0)}


def dsa_document(data: EvidenceData, found: Findings) -> dict[str, Any]:
    """The DSA points (dsa.json): contact point, notices, persistence, trusted
    flaggers, and where the cases' servers stood (packs written before it lack
    ``server_location``)."""
    h = data.hoster
    by_case = {c.id: c for c in data.cases}
    per_notice = found.per_notice
    rdap_abuse = sorted({a.abuse_email for a in data.attributions
                         if a.abuse_email and a.hoster_id == h.id})
    per = []
    for n in data.notices:
        case = by_case[n.case_id]
        j = per_notice[n.id]
        per.append({"notice_id": n.id, "case_id": n.case_id, "external_id": case.external_id,
                    "sent_at": n.sent_at, "due_at": n.due_at, "recipient": n.recipient,
                    "trusted_flagger": n.trusted_flagger,
                    "handling": _handling(n, case, j), "deadline_outcome": j.outcome.value,
                    "removed_after": case.removed_after, "removed_at": case.removed_at})
    handled = {key: sum(p["handling"] == key for p in per) for key in HANDLING_TEXT}
    first: dict[int, datetime] = {}
    for n in data.notices:
        first.setdefault(n.case_id, n.sent_at)
    served: dict[int, list[datetime]] = defaultdict(list)
    for check in data.checks:
        if Verdict(check.verdict).group is VerdictGroup.SERVED:
            served[check.case_id].append(check.checked_at)
    persistence: list[dict[str, Any]] = []
    days_served: list[float] = []
    for case_id, start in sorted(first.items()):
        later = [t for t in served.get(case_id, []) if t >= start]
        last = max(later) if later else None
        days_after = round((last - start).total_seconds() / 86400, 3) if last else None
        if days_after is not None:
            days_served.append(days_after)
        persistence.append({"case_id": case_id, "first_notice_at": start,
                            "last_seen_served_at": last,
                            "days_seen_served_after_first_notice": days_after})
    days = {str(n): sum(1 for d in days_served if d >= n) for n in PERSISTENCE_DAYS}
    flagged = [n.id for n in data.notices if n.trusted_flagger]
    return {
        "hoster": h.legal_name,
        "country_of_establishment": h.country,
        "dsa_role": h.dsa_role,
        "competent_coordinator": _coordinator(h),
        "contact_point": {"abuse_contact": h.abuse,
                          "status": "known" if h.abuse else "missing",
                          "source": h.source, "rdap_abuse_contacts": rdap_abuse},
        "notices": {"received": len(per), "cases_with_notice": len(first),
                    "handling": handled, "per_notice": per},
        "persistence_after_first_notice": {
            "cases_seen_served_at_least_days_after": days, "per_case": persistence},
        "trusted_flagger_notices": {"count": len(flagged), "notice_ids": flagged},
        "server_location": server_location_summary(data, found),
    }


def _coordinator(hoster: Hoster) -> str:
    country = (hoster.country or "").upper()
    if country == "NL":
        return "ACM (Netherlands): the hoster's main establishment is in the Netherlands"
    if country in EU_MEMBER_STATES:
        return (f"the Digital Services Coordinator of {country} (main establishment, "
                "DSA Art. 56), not ACM")
    if country:
        return (f"established outside the EU ({country}): the coordinator of the member "
                "state of its EU legal representative (DSA Art. 13); ACM only if that "
                "representative is in the Netherlands")
    return "unknown: the hoster's country of establishment is not known"


def dsa_md(data: EvidenceData, document: dict[str, Any]) -> str:
    h = data.hoster
    contact = document["contact_point"]
    notices = document["notices"]
    lines = [f"# DSA points: {_md(h.legal_name)}", "",
             f"Country of establishment: {_md(h.country)}; DSA role: {_md(h.dsa_role)}. "
             f"Competent Digital Services Coordinator: {_md(document['competent_coordinator'])}.",
             "", "## Contact point (Art. 11–12, Art. 16 notice mechanism)", "",
             (f"Abuse contact known: {_md(contact['abuse_contact'])} (source: "
              f"{_md(contact['source'])})." if contact["abuse_contact"] else
              "Abuse contact **missing**: no abuse address is known for this hoster."),
             "", "## Notices received and how they were handled", "",
             f"{notices['received']} notice(s) about {notices['cases_with_notice']} case(s):",
             ""]
    lines += [f"- {HANDLING_TEXT[key]}: {count}" for key, count in notices["handling"].items()
              if count]
    lines += ["", "| notice | case | sent (UTC) | due (UTC) | trusted flagger | handling |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {p['notice_id']} | {p['case_id']} ({_md(p['external_id'])}) | "
              f"{_md(p['sent_at'])} | {_md(p['due_at'])} | "
              f"{'yes' if p['trusted_flagger'] else 'no'} | {HANDLING_TEXT[p['handling']]} |"
              for p in notices["per_notice"]]
    persistence = document["persistence_after_first_notice"]
    lines += ["", "## Persistence after notice", "",
              "Cases a check still found served at least N days after their first notice:",
              ""]
    lines += [f"- {n} day(s): {count}"
              for n, count in persistence["cases_seen_served_at_least_days_after"].items()]
    flagged = document["trusted_flagger_notices"]
    lines += ["", "## Trusted-flagger notices (Art. 22)", "",
              f"{flagged['count']} notice(s) came from a trusted flagger. Art. 22 priority "
              "binds online platforms only (not plain hosting services, not micro or small "
              f"enterprises); this hoster's DSA role is {_md(h.dsa_role)}.", ""]
    lines += _server_summary_lines(document.get("server_location"))
    lines += ["Deadline judgements and the method: figures.json, method.md.", ""]
    return "\n".join(lines)


def _server_summary_lines(summary: dict[str, Any] | None) -> list[str]:
    """dsa.md's account of dsa.json's server_location."""
    if summary is None:
        return []
    per_country = ", ".join(f"{_md(country)} {n}"
                            for country, n in summary["cases_per_server_country"].items())
    return ["## Where the servers stood", "",
            "DSA supervision follows where the hoster is established (above); hotline "
            "statistics count where the server stood. Per case from the attribution of "
            "its newest check that reached an address (cases.csv: server_country):", "",
            f"- served from the Netherlands: {summary['cases_served_from_nl']}",
            f"- served from abroad: {summary['cases_served_from_abroad']}",
            f"- server location unknown (or CDN-fronted): "
            f"{summary['cases_without_server_country']}",
            f"- per server country: {per_country or 'none'}", ""]


def atkm_md(data: EvidenceData, found: Findings) -> str:
    h = data.hoster
    per_order = found.per_order
    by_case = {c.id: c for c in data.cases}
    lines = [f"# ATKM: removal orders and their deadlines: {_md(h.legal_name)}", ""]
    if (h.country or "").upper() != "NL":
        lines += [f"**ATKM removal orders reach only providers established in the "
                  f"Netherlands.** The hoster of record, {_md(h.legal_name)}, is "
                  f"{_establishment(h)}, so an ATKM order does not bind it. Its cases are "
                  "listed for information (e.g. a Dutch caching or conduit provider may "
                  "be reachable instead).", ""]
    else:
        lines += [f"The hoster of record, {_md(h.legal_name)}, is {_establishment(h)}: "
                  "ATKM removal orders reach it.", ""]
    lines += ["## Orders", "",
              f"Outcomes as of {_md(data.generated_at)}, when this pack was written: a "
              "deadline not yet passed then is *pending*. *already_gone*: the material was "
              "gone before the order was issued and stayed gone (not compliance). The "
              "order's deadline is shown as stated and as judged: a deadline later than "
              "the legal maximum (12 hours for an ATKM order, 1 hour for a "
              "terrorist-content order) is judged at that maximum.", "",
              "| order | case | issuer | reference | issued (UTC) | regime | "
              "deadline as stated (UTC) | judged at (UTC) | outcome | "
              "last decisive check before | first decisive check after |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for o in data.orders:
        j = per_order.get(o.id)
        case = by_case[o.case_id]
        due = _md(o.due_at) + (" (capped)" if o.deadline_at > o.due_at else "")
        lines.append(
            f"| {o.id} | {o.case_id} ({_md(case.external_id)}) | {_md(o.issuer)} | "
            f"{_md(o.reference or '-')} | {_md(o.issued_at)} | {_md(o.regime or 'none')} | "
            f"{_md(o.deadline_at)} | {due} | "
            f"{j.outcome.value if j else 'not judged (no regime)'} | "
            f"{_md(j.last_before) if j and j.last_before else '-'} | "
            f"{_md(j.first_after) if j and j.first_after else '-'} |")
    if not data.orders:
        lines.append("| (no orders) | | | | | | | | | | |")
    counts = found.deadline_counts
    lines += ["", "## Deadline outcomes per regime", ""]
    lines += [f"- {regime}: " + ", ".join(f"{outcome} {n}" for outcome, n in c.items())
              for regime, c in counts.items()]
    lines += ["", "notice_24h counts each case's first notice; the orders count one each. "
              "How a deadline is judged: method.md.", ""]
    lines += _location_lines(data, found)
    return "\n".join(lines)


def _server_text(loc: CaseLocation) -> str:
    """Where a case's server stood and where that was read, for people."""
    if loc.server_country is None:
        return "unknown"
    if loc.server_country_source == "geoip":
        built = (f", built {loc.geoip_built_at:%Y-%m-%d}" if loc.geoip_built_at else "")
        return f"{_md(loc.server_country)} (geolocation database{built})"
    if loc.server_country_source == "rdap":
        return f"{_md(loc.server_country)} (RDAP network's country)"
    return f"{_md(loc.server_country)} (source {_md(loc.server_country_source)})"


def _location_lines(data: EvidenceData, found: Findings) -> list[str]:
    """Per case: where the server stood, where the hoster is established, and
    the cases where the two meanings of "hosted in the Netherlands" part."""
    lines = ["## Where the server stood and where the hoster is established", "",
             "\"Hosted in the Netherlands\" means two things. Hotline statistics (IWF, "
             "INHOPE, Offlimits) count a case as hosted in the Netherlands when **the "
             "server stands there**; ATKM's removal orders (and the DSA's supervision) "
             "follow where the hosting company is **established**. Per case, from the "
             "attribution of its newest check that reached an address (cases.csv: "
             "hoster_country, server_country, server_country_source, geoip_built_at, "
             "location_flag):", "",
             "| case | server stood in | hoster established in | flag |",
             "|---|---|---|---|"]
    by_flag: dict[LocationFlag, list[Case]] = defaultdict(list)
    for case in data.cases:
        loc = found.locations.get(case.id) or CaseLocation(None, None, None, None, None)
        if loc.flag is not None:
            by_flag[loc.flag].append(case)
        lines.append(f"| {case.id} ({_md(case.external_id)}) | {_server_text(loc)} | "
                     f"{_md(loc.hoster_country)} | {f'`{loc.flag.value}`' if loc.flag else '-'} |")
    if not data.cases:
        lines.append("| (no cases) | | | |")
    lines += ["", "### Cases where the two meanings part", ""]
    for flag in LocationFlag:
        cases = by_flag.get(flag, [])
        listed = (", ".join(f"{c.id} ({_md(c.external_id)})" for c in cases)
                  if cases else "none")
        lines.append(f"- `{flag.value}`: {FLAG_TEXT[flag]}. Cases: {listed}.")
    lines += ["", "A case whose server location or establishment is unknown is not "
              "flagged. Where the server stood comes from the geolocation database "
              "(HOSTWATCH_GEOIP_DB, with its build date) or, without one or for an "
              "address it does not know, from the country the regional internet "
              "registry's network object states (RDAP), "
              "which is where the block is registered and usually, not always, where "
              "it is used.", ""]
    return lines


def readme_md(data: EvidenceData, names: Sequence[str]) -> str:
    h = data.hoster
    about = {
        "README.md": "this list",
        "cases.csv": ("every case of this hoster: ids, URL as reported, category, times, "
                      "state, where its server stood and where its hoster is established"),
        "checks.csv": ("every check of those cases (UTC times, verdict, hashes and PDQ "
                       "distance, hash chain)"),
        "runs.csv": "the crawl runs that made those checks: healthy or suspect, and why",
        "attributions.csv": "who served each check, with the source of every fact",
        "notices.csv": "notices to the hoster, each judged against the 24-hour norm",
        "orders.csv": "removal orders, their regime, deadline and outcome",
        "figures.json": "time to removal per clock, per case, deadline judgements",
        "hoster.json": "the hoster: legal name, country, networks, DSA role, abuse contact",
        "jurisdiction.md": "why this hoster is (not) Dutch-hosted by establishment, and "
                           "where its servers stood",
        "method.md": "how hostwatch checks, counts and judges; no material is stored",
        "dsa.md": "the DSA points for ACM", "dsa.json": "the DSA points, as data",
        "atkm.md": ("removal orders and their deadline outcomes for ATKM; where each "
                    "case's server stood, and the cases whose hoster is established on "
                    "the other side of the Dutch border"),
        "pack.json": "what, when, which tool version, the hash-chain head",
        MANIFEST: "SHA-256 of every other file (sha256sum -c MANIFEST.sha256)",
    }
    period = ""
    if data.since or data.until:
        period = (f" reported from {_md(data.since) if data.since else 'the start'} "
                  f"until {_md(data.until) if data.until else 'now'}")
    lines = [f"# Evidence pack: {_md(h.legal_name)} (for {data.audience.value.upper()})", "",
             f"Written {rfc3339(data.generated_at)} by hostwatch {__version__}: "
             f"{len(data.cases)} case(s){period} whose hoster of record is "
             f"{_md(h.legal_name)}, with {len(data.checks)} check(s). "
             "No material is stored or included.", ""]
    lines += [f"- `{name}`: {about.get(name, '')}" for name in names]
    return "\n".join([*lines, ""])
