"""One Chromium for the crawl: started on demand, bounded, restarted.

- Debian's Chromium (HOSTWATCH_CHROMIUM, default /usr/bin/chromium) with the
  flags below; a missing or broken executable is a `BrowserUnavailable` that
  says what to install.
- At most HOSTWATCH_BROWSER_PAGES pages at once (the others wait).
- The browser is restarted after HOSTWATCH_BROWSER_RESTART_PAGES pages and
  whenever it dies (crash, killed): the next page starts a new one. A page
  that hangs is bounded by the page timeout in crawler.browser.page.
- Everything Chromium and Playwright's driver write (the temporary profile,
  crash reports, a refused download's first bytes) goes under one private
  temporary directory (`root`; on /dev/shm where there is one, so it stays in
  memory), removed when the pool closes. Chromium resolves no name itself:
  host-resolver rules map every name to "not found" except the proxy address
  each page is given (crawler.browser.proxy).
- Playwright's debug switches (DEBUG=pw:protocol, DEBUG_FILE, PWDEBUG,
  DEBUGP: `DEBUG_ENV`) would make it print the protocol, page content and
  inline media bytes included: the driver starts without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.errors import CrawlError

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

    from kernel.config import Config

logger = logging.getLogger(__name__)

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # No HTTP cache on disk, whatever the context.
         "--disk-cache-size=1", "--disk-cache-dir=/dev/null",
         "--disable-breakpad", "--disable-crash-reporter",
         "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
         # navigator.webdriver false, as in a person's browser: a page that
         # tests it could show a crawler something else (cloaking).
         "--disable-blink-features=AutomationControlled")
# Playwright's own default switches, all kept but this one (it sets
# navigator.webdriver and shows the "controlled by automated software" bar).
DROPPED_DEFAULT_ARGS = ("--enable-automation",)
# Switches that make Playwright's driver (Node.js) or its Python side write
# the protocol, a page's answers and inline media bytes among them, to stderr
# or a file (DEBUG=pw:protocol, DEBUG=pw:*, DEBUG_FILE, PWDEBUG): never
# passed to the driver (`BrowserPool.start`).
DEBUG_ENV = ("DEBUG", "DEBUG_FILE", "DEBUG_COLORS", "DEBUG_DEPTH", "PWDEBUG",
             "npm_config_pwdebug", "npm_config_debug")
PROXY_ADDRESS = "127.0.0.1"
PREFIX = "hwb-"
# Chromium puts a Unix socket (at most 107 bytes of path) under its TMPDIR:
# <root>/t/org.chromium.Chromium.XXXXXX/SingletonSocket.
SOCKET_PATH_MAX = 107
SOCKET_TAIL = len("/t/org.chromium.Chromium.XXXXXX/SingletonSocket")


class BrowserError(CrawlError, RuntimeError):
    """Root of the browser check's errors."""


class BrowserUnavailable(BrowserError):
    """Chromium cannot be started here; the message says what to do."""


@dataclass(frozen=True)
class BrowserSettings:
    executable: str = "/usr/bin/chromium"
    pages: int = 2
    timeout: float = 30.0  # seconds a page may take, all in
    settle: float = 5.0  # seconds a busy page gets after "load"; a stable one is read at once
    restart_after: int = 100  # pages per browser process
    media_limit: int = 8  # media files of a page hashed at most
    temp_root: str = ""  # "" = /dev/shm when writable, else the system's temp dir
    user_agent: str = ""  # "" = Chromium's own
    quiet: float = 0.5  # seconds of nothing happening that make a page stable
    scroll_height: int = 20000  # pixels a tall page is scrolled down at most (lazy loading)
    scroll_time: float = 5.0  # seconds of scrolling at most

    @classmethod
    def from_config(cls, config: Config) -> BrowserSettings:
        return cls(config.chromium, config.browser_pages, config.browser_timeout,
                   config.browser_settle, config.browser_restart_pages,
                   config.browser_media_limit, config.browser_temp, config.browser_user_agent,
                   quiet=config.browser_quiet, scroll_height=config.browser_scroll_height,
                   scroll_time=config.browser_scroll_time)


def temp_root(setting: str = "") -> Path:
    if setting:
        return Path(setting)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def sweep_stale(root: Path) -> list[Path]:
    """Remove directories of pools whose process is gone (a crawl killed -9)."""
    removed = []
    for path in root.glob(f"{PREFIX}*"):
        pid_text = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BrowserPool:
    """See the module docstring. ``async with BrowserPool(settings) as pool``."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self.root: Path | None = None
        self.launches = 0
        self.pages_done = 0
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._pages_on_browser = 0
        self._open_pages: dict[Browser, int] = {}  # pages open per browser
        self._retired: set[Browser] = set()  # worn browsers closing when their pages end
        self._slots = asyncio.Semaphore(settings.pages)
        self._launching = asyncio.Lock()

    async def __aenter__(self) -> BrowserPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start Playwright's driver (once; pages start the browser itself)."""
        async with self._launching:
            if self._playwright is None:
                await self._start()

    async def _start(self) -> None:
        executable = Path(self.settings.executable)
        if not (executable.is_file() and os.access(executable, os.X_OK)):
            raise BrowserUnavailable(
                f"Chromium not found at {executable} (HOSTWATCH_CHROMIUM). On Debian or "
                "Ubuntu: 'sudo apt-get install chromium' (or run 'make chromium'); elsewhere "
                "set HOSTWATCH_CHROMIUM to a Chromium executable.")
        base = temp_root(self.settings.temp_root)
        base.mkdir(parents=True, exist_ok=True)
        for stale in sweep_stale(base):
            logger.info("removed the browser directory of a crawl that is gone: %s", stale)
        longest = len(str(base)) + len(f"/{PREFIX}{os.getpid()}-xxxxxxxx") + SOCKET_TAIL
        if longest > SOCKET_PATH_MAX:
            raise BrowserUnavailable(
                f"the browser's temporary directory {base} (HOSTWATCH_BROWSER_TEMP) is too "
                f"deep: Chromium's socket path under it would be {longest} bytes, over the "
                f"{SOCKET_PATH_MAX} a Unix socket allows; use a shorter path such as /tmp")
        self.root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
        # d: the driver's (the profile), t: Chromium's temp files, h: its home,
        # c and k: its config and cache (crash reports land there).
        for sub in ("d", "t", "h", "c", "k"):
            (self.root / sub).mkdir(mode=0o700)
        # Playwright's driver puts the temporary profile under its TMPDIR and
        # reads its debug switches (DEBUG_ENV), all from this process's
        # environment when the driver starts; its Python side reads them when
        # imported. Both get our TMPDIR and no debug switch; the environment
        # is put back after (DEBUGP aside: Playwright reads it at every message).
        if os.environ.pop("DEBUGP", None) is not None:
            logger.warning("DEBUGP removed from the environment: it makes Playwright print "
                           "every message, page content included")
        saved = {name: os.environ.get(name) for name in ("TMPDIR", *DEBUG_ENV)}
        os.environ["TMPDIR"] = str(self.root / "d")
        for name in DEBUG_ENV:
            os.environ.pop(name, None)
        try:
            from playwright.async_api import async_playwright

            _quiet_playwright()
            self._playwright = await async_playwright().start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @property
    def profile_dirs(self) -> list[Path]:
        """The browser's profile directories now (for the safety tests)."""
        return sorted((self.root / "d").glob("playwright_chromiumdev_profile-*")) \
            if self.root else []

    async def _launch(self) -> Browser:
        assert self._playwright is not None and self.root is not None
        env: dict[str, str | float | bool] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TMPDIR": str(self.root / "t"), "HOME": str(self.root / "h"),
            "XDG_CONFIG_HOME": str(self.root / "c"), "XDG_CACHE_HOME": str(self.root / "k")}
        args = [*FLAGS, f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {PROXY_ADDRESS}"]
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=self.settings.executable, args=args, env=env,
                ignore_default_args=list(DROPPED_DEFAULT_ARGS),
                handle_sigint=False, handle_sigterm=False, handle_sighup=False,
                timeout=60_000)
        except Exception as exc:
            lines = str(exc).splitlines()
            fatal = next((line for line in lines if "FATAL" in line), lines[0] if lines else "")
            raise BrowserUnavailable(f"Chromium at {self.settings.executable} did not start: "
                                     f"{fatal[:300]}") from exc
        self.launches += 1
        self._pages_on_browser = 0
        browser.on("disconnected", self._disconnected)
        logger.debug("browser started (%d)", self.launches)
        return browser

    def _disconnected(self, browser: Any) -> None:
        if browser is self._browser:
            logger.warning("the browser went away (crash or killed); the next page starts "
                           "a new one")
            self._browser = None

    async def _current(self) -> Browser:
        async with self._launching:
            worn = self._browser is not None and \
                self._pages_on_browser >= self.settings.restart_after
            if worn:
                # New pages go to a new browser; the worn one closes when its
                # last page is done (at once when it has none).
                old, self._browser = self._browser, None
                assert old is not None
                if self._open_pages.get(old, 0) == 0:
                    await _close_quietly(old)
                else:
                    self._retired.add(old)
            if self._browser is None or not self._browser.is_connected():
                self._browser = await self._launch()
            return self._browser

    @contextlib.asynccontextmanager
    async def browser(self) -> AsyncIterator[Browser]:
        """A slot for one page on a live browser."""
        async with self._slots:
            browser = await self._current()
            self._open_pages[browser] = self._open_pages.get(browser, 0) + 1
            self._pages_on_browser += 1
            try:
                yield browser
            finally:
                self.pages_done += 1
                left = self._open_pages[browser] = self._open_pages[browser] - 1
                if left == 0:
                    del self._open_pages[browser]
                    if browser in self._retired:
                        self._retired.discard(browser)
                        await _close_quietly(browser)

    async def kill(self) -> None:
        """Drop the current browser (a page would not close): the next page starts anew."""
        async with self._launching:
            browser, self._browser = self._browser, None
        if browser is not None:
            await _close_quietly(browser)

    async def close(self) -> None:
        await self.kill()
        for browser in list(self._retired):
            await _close_quietly(browser)
        self._retired.clear()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._playwright.stop(), 10)
            self._playwright = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def _quiet_playwright() -> None:
    """Turn off the debug switches Playwright's Python side read when it was
    imported, in case that was before `BrowserPool.start` scrubbed them (a
    private part of Playwright: skipped when it is not there)."""
    with contextlib.suppress(ImportError, AttributeError):
        from playwright._impl.utils import debug, debug_logger

        debug_logger.debug_logger._names.clear()
        debug._debug_mode = ""


async def _close_quietly(browser: Browser) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(browser.close(), 10)
