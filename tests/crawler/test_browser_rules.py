"""crawler.browser.rules: which cases need the browser, read from rule files.

Real TOML files on disk (the shipped one and user files in tmp_path), and
`looks_like_shell` on the `body_features(...)` a plain GET really produces.
No browser, no network.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crawler.browser.rules import (
    ACTION_TIMEOUT,
    SHIPPED,
    Action,
    ActionKind,
    BrowserRules,
    BrowserRulesError,
    BrowserUse,
    looks_like_shell,
)
from crawler.verdict import SCAN_LIMIT, PlaceholderRules, body_features

PAGE_URL = "http://gallery.test/g/a1"
HTML = "text/html; charset=utf-8"


def write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(user: Path, shipped: Path | None = None) -> BrowserRules:
    return BrowserRules.load(str(user), shipped=shipped)


# -- loading the shipped file and the user's --------------------------------------------


def test_the_shipped_rules_load_with_fallback_on_and_its_removed_selectors():
    rules = BrowserRules.load("")
    assert rules.fallback is True
    assert ".removed-notice" in rules.removed.selectors
    assert rules.use("any.host.example") is BrowserUse.FALLBACK


def test_user_rules_come_before_the_shipped_ones_and_win_for_the_same_host(tmp_path):
    shipped = write(tmp_path, '[[host]]\npattern = "*.gallery.test"\nbrowser = "never"\n'
                              '[[host]]\npattern = "video.test"\nbrowser = "always"\n',
                    "shipped.toml")
    user = write(tmp_path, '[[host]]\npattern = "img.gallery.test"\nbrowser = "always"\n')
    rules = load(user, shipped)
    assert [rule.pattern for rule in rules.hosts] == [
        "img.gallery.test", "*.gallery.test", "video.test"]
    assert rules.use("img.gallery.test") is BrowserUse.ALWAYS  # the user's rule
    assert rules.use("other.gallery.test") is BrowserUse.NEVER  # only the shipped one matches
    assert rules.use("video.test") is BrowserUse.ALWAYS


def test_the_fallback_switch_comes_from_the_user_file(tmp_path):
    shipped = write(tmp_path, "[fallback]\nenabled = true\n", "shipped.toml")
    user = write(tmp_path, "[fallback]\nenabled = false\n")
    rules = load(user, shipped)
    assert rules.fallback is False
    assert rules.use("unlisted.test") is BrowserUse.NEVER


def test_without_a_user_file_the_shipped_fallback_switch_applies(tmp_path):
    shipped = write(tmp_path, "[fallback]\nenabled = false\n", "shipped.toml")
    assert BrowserRules.load("", shipped=shipped).fallback is False
    assert BrowserRules.load("", shipped=None).fallback is True


def test_removed_texts_are_lowercased_and_merged_user_first_without_duplicates(tmp_path):
    shipped = write(tmp_path, '[removed]\ntexts = ["Content Removed", "Gone For Good"]\n'
                              'selectors = [".removed-notice"]\n', "shipped.toml")
    user = write(tmp_path, '[removed]\ntexts = ["  THIS IMAGE HAS BEEN REMOVED ", '
                           '"content removed"]\nselectors = ["div.Taken-Down"]\n')
    rules = load(user, shipped)
    assert rules.removed.texts == ("this image has been removed", "content removed",
                                   "gone for good")
    # Selectors are CSS: their case matters, so they are kept as written.
    assert rules.removed.selectors == ("div.Taken-Down", ".removed-notice")


def test_a_hosts_own_removed_texts_and_selectors_come_before_everyones(tmp_path):
    user = write(tmp_path, '[removed]\ntexts = ["content removed"]\nselectors = [".gone"]\n'
                           '[[host]]\npattern = "gallery.test"\n'
                           'removed_texts = ["This Image Was Taken Down", "Content Removed"]\n'
                           'removed_selectors = ["div.hw-removed-notice"]\n')
    rules = load(user)
    own = rules.removed_for("gallery.test")
    assert own.texts == ("this image was taken down", "content removed")
    assert own.selectors == ("div.hw-removed-notice", ".gone")
    other = rules.removed_for("other.test")
    assert (other.texts, other.selectors) == (("content removed",), (".gone",))


@pytest.mark.parametrize("host", ["IMG.Gallery.Test", "img.gallery.test.", "a.b.GALLERY.test"])
def test_host_patterns_match_case_insensitively(tmp_path, host):
    user = write(tmp_path, '[[host]]\npattern = "*.Gallery.TEST"\nbrowser = "always"\n')
    rules = load(user)
    assert rules.use(host) is BrowserUse.ALWAYS


def test_a_pattern_matches_the_whole_name_only(tmp_path):
    user = write(tmp_path, '[[host]]\npattern = "*.gallery.test"\nbrowser = "always"\n')
    rules = load(user)
    assert rules.use("gallery.test.evil.test") is BrowserUse.FALLBACK
    assert rules.use("notgallery.test") is BrowserUse.FALLBACK


@pytest.mark.parametrize(("fallback", "host", "expected"), [
    ("true", "always.test", BrowserUse.ALWAYS),
    ("true", "fallback.test", BrowserUse.FALLBACK),
    ("true", "never.test", BrowserUse.NEVER),
    ("true", "unknown.test", BrowserUse.FALLBACK),
    ("false", "always.test", BrowserUse.ALWAYS),
    # A host's own "fallback" rule holds even with the global switch off.
    ("false", "fallback.test", BrowserUse.FALLBACK),
    ("false", "never.test", BrowserUse.NEVER),
    ("false", "unknown.test", BrowserUse.NEVER),
])
def test_use_for_each_kind_of_host(tmp_path, fallback, host, expected):
    user = write(tmp_path, f"[fallback]\nenabled = {fallback}\n"
                           '[[host]]\npattern = "always.test"\nbrowser = "always"\n'
                           '[[host]]\npattern = "fallback.test"\nbrowser = "fallback"\n'
                           '[[host]]\npattern = "never.test"\nbrowser = "never"\n')
    assert load(user).use(host) is expected


def test_a_host_rule_without_browser_means_fallback(tmp_path):
    user = write(tmp_path, '[[host]]\npattern = "quiet.test"\nremoved_texts = ["gone"]\n')
    assert load(user).use("quiet.test") is BrowserUse.FALLBACK


# -- actions before a page is read (consent walls) ----------------------------------------


def test_a_hosts_actions_are_read_in_order_with_their_timeouts(tmp_path):
    user = write(tmp_path, '[[host]]\npattern = "*.consent.test"\nbrowser = "always"\n'
                           'actions = [\n'
                           '  { click = " button#accept-all " },  # the wall\n'
                           '  { wait_for = "main img", timeout = 8 },\n'
                           '  { click = "text=Close", timeout = 0.5 },\n'
                           ']\n')
    assert load(user).actions_for("photos.consent.test") == (
        Action(ActionKind.CLICK, "button#accept-all", ACTION_TIMEOUT),
        Action(ActionKind.WAIT_FOR, "main img", 8.0),
        Action(ActionKind.CLICK, "text=Close", 0.5))
    assert ACTION_TIMEOUT == 5.0


def test_actions_can_be_written_as_an_array_of_tables_too(tmp_path):
    user = write(tmp_path, '[[host]]\npattern = "consent.test"\n'
                           '[[host.actions]]\nclick = "#agree"\n'
                           '[[host.actions]]\nwait_for = "#content"\ntimeout = 3\n')
    assert load(user).actions_for("consent.test") == (
        Action(ActionKind.CLICK, "#agree"), Action(ActionKind.WAIT_FOR, "#content", 3.0))


def test_only_the_first_matching_rules_actions_apply(tmp_path):
    """As for "removed" texts: the user's rule for the host wins whole, even
    without actions; a host no rule names gets none."""
    shipped = write(tmp_path, '[[host]]\npattern = "*.consent.test"\n'
                              'actions = [{ click = "#shipped" }]\n', "shipped.toml")
    user = write(tmp_path, '[[host]]\npattern = "mine.consent.test"\nbrowser = "always"\n')
    rules = load(user, shipped)
    assert rules.actions_for("mine.consent.test") == ()
    assert rules.actions_for("other.consent.test") == (Action(ActionKind.CLICK, "#shipped"),)
    assert rules.actions_for("elsewhere.test") == ()


def test_the_shipped_rules_have_no_actions():
    """Off unless configured: nothing is clicked on a host the user did not name."""
    rules = BrowserRules.load("")
    assert rules.actions_for("photos.consent.example") == ()
    assert all(rule.actions == () for rule in rules.hosts)


# -- errors that say which file and which entry ------------------------------------------


def error_for(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write(tmp_path, text, "my-rules.toml")
    with pytest.raises(BrowserRulesError) as caught:
        load(path)
    return path, str(caught.value)


def test_an_unreadable_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(BrowserRulesError, match=re.escape(str(missing)) + ".*cannot read"):
        load(missing)
    with pytest.raises(BrowserRulesError, match=re.escape(str(tmp_path)) + ".*cannot read"):
        load(tmp_path)  # a directory


def test_bad_toml_is_named_with_the_file(tmp_path):
    path, message = error_for(tmp_path, '[[host]\npattern = "x"\n')
    assert message.startswith(f"{path}: not valid TOML")


def test_a_file_that_is_not_utf8_is_reported_as_bad_toml(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[removed]\ntexts = ["entfernt \xe4"]\n'.encode("latin-1"))
    with pytest.raises(BrowserRulesError, match=re.escape(str(path)) + ": not valid TOML"):
        load(path)


def test_an_unknown_section_is_named(tmp_path):
    path, message = error_for(tmp_path, '[fallback]\nenabled = true\n[hosts]\npattern = "x"\n')
    assert message.startswith(f"{path}: unknown section 'hosts'")


@pytest.mark.parametrize(("text", "expected"), [
    ("[fallback]\nenable = true\n", "[fallback] has unknown key 'enable'"),
    ('[removed]\ntext = ["gone"]\n', "[removed] has unknown key 'text'"),
    ('[[host]]\npattern = "a.test"\n[[host]]\npattern = "b.test"\nbrowzer = "always"\n',
     "host rule 2: unknown key 'browzer'"),
])
def test_an_unknown_key_is_named_with_its_place(tmp_path, text, expected):
    path, message = error_for(tmp_path, text)
    assert message.startswith(f"{path}: {expected}")


@pytest.mark.parametrize("entry", ['browser = "always"', 'pattern = ""', "pattern = 7",
                                   'pattern = "   "'])
def test_a_host_rule_without_a_pattern_is_named_by_its_number(tmp_path, entry):
    path, message = error_for(tmp_path, f'[[host]]\npattern = "ok.test"\n[[host]]\n{entry}\n')
    assert message.startswith(f"{path}: host rule 2: 'pattern'")
    assert "missing" in message


@pytest.mark.parametrize("value", ['"sometimes"', '"Always"', "true", '["always"]'])
def test_a_bad_browser_value_names_the_rule_and_the_choices(tmp_path, value):
    path, message = error_for(tmp_path, f'[[host]]\npattern = "js.test"\nbrowser = {value}\n')
    assert message.startswith(f"{path}: host rule 1 ('js.test'): browser must be one of "
                              "always, fallback, never")


@pytest.mark.parametrize(("text", "where"), [
    ('[removed]\ntexts = "this image has been removed"\n', "[removed] texts"),
    ('[removed]\ntexts = ["ok", 3]\n', "[removed] texts"),
    ('[removed]\nselectors = [""]\n', "[removed] selectors"),
    ('[[host]]\npattern = "js.test"\nremoved_texts = "gone"\n',
     "host rule 1 ('js.test'): removed_texts"),
    ('[[host]]\npattern = "js.test"\nremoved_selectors = [{a = 1}]\n',
     "host rule 1 ('js.test'): removed_selectors"),
])
def test_texts_that_are_not_a_list_of_strings_are_named(tmp_path, text, where):
    path, message = error_for(tmp_path, text)
    assert message == f"{path}: {where} must be a list of non-empty strings"


@pytest.mark.parametrize(("text", "expected"), [
    ('[fallback]\nenabled = "yes"\n', "[fallback] enabled must be true or false"),
    ("fallback = true\n", "[fallback] must be a table"),
    ('[host]\npattern = "x.test"\n', "'host' must be an array of tables"),
    ("host = [1]\n", "host rule 1: must be a table"),
])
def test_misshapen_sections_are_named(tmp_path, text, expected):
    path, message = error_for(tmp_path, text)
    assert message.startswith(f"{path}: {expected}")


@pytest.mark.parametrize(("actions", "expected"), [
    ('"click #a"', "actions must be a list of tables"),
    ('{ click = "#a" }', "actions must be a list of tables"),
    ('["#a"]', "action 1: must be a table"),
    ('[{ click = "#a" }, { clicks = "#b" }]',
     "action 2: unknown key 'clicks' (known: click, timeout, wait_for)"),
    ('[{ click = "#a", wait_for = "#b" }]', "action 1: needs exactly one of click or wait_for"),
    ("[{ timeout = 3 }]", "action 1: needs exactly one of click or wait_for"),
    ('[{ click = "" }]', "action 1: click must be a non-empty selector"),
    ('[{ wait_for = "   " }]', "action 1: wait_for must be a non-empty selector"),
    ("[{ click = 3 }]", "action 1: click must be a non-empty selector"),
    ('[{ click = "#a", timeout = 0 }]', "action 1: timeout must be a positive number"),
    ('[{ click = "#a", timeout = -2.5 }]', "action 1: timeout must be a positive number"),
    ('[{ click = "#a", timeout = "5" }]', "action 1: timeout must be a positive number"),
    ('[{ click = "#a", timeout = true }]', "action 1: timeout must be a positive number"),
    ('[{ click = "#a", timeout = nan }]', "action 1: timeout must be a positive number"),
    ('[{ click = "#a", timeout = inf }]', "action 1: timeout must be a positive number"),
])
def test_a_bad_action_names_the_file_the_rule_and_the_action(tmp_path, actions, expected):
    path, message = error_for(tmp_path, '[[host]]\npattern = "ok.test"\n'
                                        '[[host]]\npattern = "consent.test"\n'
                                        f"actions = {actions}\n")
    assert message.startswith(f"{path}: host rule 2 ('consent.test'): {expected}"), message


def test_a_bad_shipped_file_is_named_too(tmp_path):
    user = write(tmp_path, "[fallback]\nenabled = true\n")
    shipped = write(tmp_path, "[nonsense]\n", "shipped.toml")
    with pytest.raises(BrowserRulesError, match=re.escape(str(shipped))):
        load(user, shipped)


def test_the_shipped_file_is_the_one_in_crawler_data():
    assert SHIPPED.name == "browser_rules.toml" and SHIPPED.is_file()


# -- looks_like_shell, on what a plain GET really yields -------------------------------


def features(body: bytes, content_type: str | None = HTML):
    return body_features(body, requested_url=PAGE_URL, content_type=content_type,
                         rules=PlaceholderRules.load())


SHELL = (b"<!doctype html><html><head><title>Gallery</title>"
         b'<script src="/static/app.js"></script></head>'
         b'<body><div id="app">Loading\xe2\x80\xa6</div>'
         b"<script>window.boot({item: 'a1'})</script></body></html>")


def test_an_html_shell_with_scripts_and_no_media_looks_like_a_shell():
    assert looks_like_shell(features(SHELL), HTML) is True


@pytest.mark.parametrize("media", [
    b'<img src="/m/a1.jpg" alt="">',
    b'<VIDEO controls><SOURCE src="/m/a1.mp4"></VIDEO>',
    b'<meta property="og:image" content="/m/a1.jpg">',
    b'<div style="background-image: url(/m/a1.jpg)"></div>',
])
def test_a_page_that_already_shows_media_is_not_a_shell(media):
    body = SHELL.replace(b"</body>", media + b"</body>")
    assert looks_like_shell(features(body), HTML) is False


def test_a_page_without_scripts_is_not_a_shell():
    body = b"<html><body><p>This image has been removed.</p></body></html>"
    assert looks_like_shell(features(body), HTML) is False


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream", None])
def test_a_body_that_is_not_html_is_not_a_shell(content_type):
    # The same bytes, served as something that is not a page.
    assert looks_like_shell(features(SHELL, content_type), content_type) is False


def test_a_body_over_the_scan_limit_is_not_a_shell():
    body = SHELL.replace(b"</body>", b"<!--" + b"x" * SCAN_LIMIT + b"--></body>")
    big = features(body)
    assert big.scanned is False
    assert looks_like_shell(big, HTML) is False


def test_no_body_is_not_a_shell():
    assert looks_like_shell(None, HTML) is False
