"""Browser checks: pages that only show their media once their scripts run.

rules.py decides which cases need the browser; pool.py runs Chromium;
proxy.py is the browser's only way out (our DNS, the address guard, no
media bodies); page.py visits one page with media blocked, waits until it
has settled and scrolls it (settle.py), takes the host's consent actions
(actions.py) and reads what it shows in every frame and shadow root,
inline media hashed in the page (read.py); check.py hashes
the media the page shows over the HTTP path (and takes its PDQ when the
case's reference needs one, crawler.perceptual); decide.py turns all that
into the same verdicts as an HTTP check. The spider (crawler.spiders.recheck)
sends a case to the browser with the Request.meta keys below, and the
download handler (crawler.handler) runs it.
"""

# Request.meta: the host's "removed" texts and selectors (a rules.Removed);
# its presence makes the request a browser check.
META_BROWSER = "hostwatch_browser"
# Request.meta, set by the handler: the check.BrowserResult.
META_BROWSER_RESULT = "hostwatch_browser_result"
# Request.meta: the host's actions before its page is read (a tuple of
# rules.Action, a consent click); absent or empty = none.
META_ACTIONS = "hostwatch_browser_actions"
# Request.meta: the case's reference hashes (a crawler.perceptual.Reference, or None).
META_REFERENCE = "hostwatch_reference"
# Request.meta: the URL the browser opens, as stored (the case's normal form,
# with its route). Scrapy's Request re-encodes a fragment ("a|b" becomes
# "a%7Cb"), and an app that does not know the re-encoded route would show
# its home route: a removal that never happened.
META_PAGE_URL = "hostwatch_page_url"
