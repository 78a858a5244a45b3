"""When a case needs a real browser, and how a host says "removed".

Pure: no browser, no I/O beyond reading the rule files.

Rules come from the shipped file (``crawler/data/browser_rules.toml``) and
the user's file (HOSTWATCH_BROWSER_RULES), the user's first so they win::

    [fallback]
    enabled = true                 # an HTML shell with scripts and no media -> browser

    [removed]                      # for every host checked in the browser
    texts = ["this image has been removed"]
    selectors = [".removed-notice"]

    [[host]]
    pattern = "*.gallery.example"  # a host name pattern (fnmatch, case-insensitive)
    browser = "always"             # always | fallback | never
    removed_texts = ["This image has been removed"]
    removed_selectors = ["div.hw-removed-notice"]

    [[host]]
    pattern = "*.consent.example"  # a site that shows its content after a consent click
    browser = "always"
    actions = [
      { click = "button#accept-all" },         # click the first visible match, any frame
      { wait_for = "main img", timeout = 8 },  # wait until a visible match exists
    ]

``always``: the case is checked in the browser and never by a plain GET.
``fallback`` (the default): a plain GET first; the browser only when its page
looks like a shell (`looks_like_shell`). ``never``: the plain GET decides.

``actions`` (consent walls; none unless a host rule lists them): steps the
browser takes on the host's pages after they first settle and before they
are read, in order (crawler.browser.actions). Each is one table with exactly
one of ``click`` or ``wait_for`` (a selector: CSS, or Playwright's own such
as ``text=Accept all``) and an optional ``timeout`` in seconds (default
ACTION_TIMEOUT; the page's HOSTWATCH_BROWSER_TIMEOUT bounds all of them). As
for the "removed" texts, only the first host rule that matches applies.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from crawler.verdict import DATA, BodyFeatures, is_textual
from kernel.errors import ConfigError

SHIPPED = DATA / "browser_rules.toml"
ACTION_TIMEOUT = 5.0  # seconds an action waits for its selector unless the rule says otherwise


class BrowserRulesError(ConfigError):
    """A browser rule file cannot be used; the message names the file and the entry."""


class BrowserUse(StrEnum):
    ALWAYS = "always"
    FALLBACK = "fallback"
    NEVER = "never"


class ActionKind(StrEnum):
    CLICK = "click"  # click the first visible match
    WAIT_FOR = "wait_for"  # wait until a visible match exists


@dataclass(frozen=True)
class Action:
    """One step a host's pages need before they are read (a consent click)."""

    kind: ActionKind
    selector: str  # the rule file's, never the page's
    timeout: float = ACTION_TIMEOUT

    def __str__(self) -> str:
        return f"{self.kind.value} {self.selector}"


@dataclass(frozen=True)
class HostRule:
    pattern: str
    browser: BrowserUse = BrowserUse.FALLBACK
    removed_texts: tuple[str, ...] = ()
    removed_selectors: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()

    def matches(self, host: str) -> bool:
        return fnmatchcase(host.lower().rstrip("."), self.pattern)


@dataclass(frozen=True)
class Removed:
    """What says "removed" on one host's pages: texts (lowercase) and CSS selectors."""

    texts: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrowserRules:
    hosts: tuple[HostRule, ...] = ()
    fallback: bool = True
    removed: Removed = Removed()

    @classmethod
    def load(cls, user_file: str = "", *, shipped: Path | None = SHIPPED) -> BrowserRules:
        """The user's rules (a path; empty = none) before the shipped ones."""
        parts = [_parse(Path(user_file))] if user_file else []
        if shipped is not None:
            parts.append(_parse(shipped))
        hosts = tuple(rule for part in parts for rule in part.hosts)
        fallback = parts[0].fallback if parts else True
        texts = _unique(t for part in parts for t in part.removed.texts)
        selectors = _unique(s for part in parts for s in part.removed.selectors)
        return cls(hosts, fallback, Removed(texts, selectors))

    def rule_for(self, host: str) -> HostRule | None:
        return next((rule for rule in self.hosts if rule.matches(host)), None)

    def use(self, host: str) -> BrowserUse:
        rule = self.rule_for(host)
        if rule is not None:
            return rule.browser
        return BrowserUse.FALLBACK if self.fallback else BrowserUse.NEVER

    def removed_for(self, host: str) -> Removed:
        """The host's own "removed" texts and selectors, then everyone's."""
        rule = self.rule_for(host)
        own = (rule.removed_texts, rule.removed_selectors) if rule else ((), ())
        return Removed(_unique((*own[0], *self.removed.texts)),
                       _unique((*own[1], *self.removed.selectors)))

    def actions_for(self, host: str) -> tuple[Action, ...]:
        """The steps before the host's pages are read: the first matching rule's, or none."""
        rule = self.rule_for(host)
        return rule.actions if rule is not None else ()


def looks_like_shell(features: BodyFeatures | None, content_type: str | None) -> bool:
    """A page that a browser would fill in: HTML with scripts and no media.

    Such a page says nothing by itself about whether the reported media is
    still shown; only running its scripts does.
    """
    if features is None or not is_textual(content_type) or features.scanned is False:
        return False
    return features.scripts > 0 and features.media_tags == 0


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _parse(path: Path) -> BrowserRules:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BrowserRulesError(f"{path}: cannot read browser rules: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BrowserRulesError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"fallback", "removed", "host"})
    if unknown:
        raise BrowserRulesError(f"{path}: unknown section {unknown[0]!r} "
                                "(known: fallback, removed, host)")
    fallback = _table(path, data, "fallback", {"enabled"})
    enabled = fallback.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BrowserRulesError(f"{path}: [fallback] enabled must be true or false")
    removed = _table(path, data, "removed", {"texts", "selectors"})
    hosts = data.get("host", [])
    if not isinstance(hosts, list):
        raise BrowserRulesError(f"{path}: 'host' must be an array of tables ([[host]])")
    return BrowserRules(
        tuple(_host(path, i, entry) for i, entry in enumerate(hosts, start=1)),
        enabled,
        Removed(_strings(path, "[removed] texts", removed.get("texts", []), lower=True),
                _strings(path, "[removed] selectors", removed.get("selectors", []))))


def _table(path: Path, data: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise BrowserRulesError(f"{path}: [{name}] must be a table")
    unknown = sorted(set(table) - keys)
    if unknown:
        raise BrowserRulesError(f"{path}: [{name}] has unknown key {unknown[0]!r} "
                                f"(known: {', '.join(sorted(keys))})")
    return table


def _host(path: Path, index: int, entry: Any) -> HostRule:
    where = f"{path}: host rule {index}"
    if not isinstance(entry, dict):
        raise BrowserRulesError(f"{where}: must be a table")
    known = {"pattern", "browser", "removed_texts", "removed_selectors", "actions"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise BrowserRulesError(f"{where}: unknown key {unknown[0]!r} "
                                f"(known: {', '.join(sorted(known))})")
    pattern = entry.get("pattern")
    if not isinstance(pattern, str) or not pattern.strip():
        raise BrowserRulesError(f"{where}: 'pattern' (a host name pattern) is missing")
    where = f"{path}: host rule {index} ({pattern!r})"
    try:
        use = BrowserUse(entry.get("browser", BrowserUse.FALLBACK.value))
    except ValueError:
        raise BrowserRulesError(f"{where}: browser must be one of "
                                f"{', '.join(u.value for u in BrowserUse)}, "
                                f"not {entry.get('browser')!r}") from None
    return HostRule(pattern.strip().lower().rstrip("."), use,
                    _strings(where, "removed_texts", entry.get("removed_texts", []), lower=True),
                    _strings(where, "removed_selectors", entry.get("removed_selectors", [])),
                    _actions(where, entry.get("actions", [])))


def _actions(where: str, value: Any) -> tuple[Action, ...]:
    if not isinstance(value, list):
        raise BrowserRulesError(f"{where}: actions must be a list of tables such as "
                                '{ click = "button#accept" }')
    return tuple(_action(f"{where}: action {number}", entry)
                 for number, entry in enumerate(value, start=1))


def _action(where: str, entry: Any) -> Action:
    kinds = [kind.value for kind in ActionKind]
    if not isinstance(entry, dict):
        raise BrowserRulesError(f"{where}: must be a table such as {{ click = \"button#accept\" }}")
    known = {*kinds, "timeout"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise BrowserRulesError(f"{where}: unknown key {unknown[0]!r} "
                                f"(known: {', '.join(sorted(known))})")
    given = [kind for kind in kinds if kind in entry]
    if len(given) != 1:
        raise BrowserRulesError(f"{where}: needs exactly one of {' or '.join(kinds)}")
    selector = entry[given[0]]
    if not isinstance(selector, str) or not selector.strip():
        raise BrowserRulesError(f"{where}: {given[0]} must be a non-empty selector")
    timeout = entry.get("timeout", ACTION_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not 0 < timeout < float("inf"):
        raise BrowserRulesError(f"{where}: timeout must be a positive number of seconds")
    return Action(ActionKind(given[0]), selector.strip(), float(timeout))


def _strings(where: object, name: str, value: Any, *, lower: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BrowserRulesError(f"{where}: {name} must be a list of non-empty strings")
    items: Sequence[str] = [v.strip().lower() if lower else v.strip() for v in value]
    return tuple(items)
