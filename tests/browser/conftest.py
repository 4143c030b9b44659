"""The real-browser suite: Debian's Chromium driven by Playwright against pytest-django's live server.

In CI (CI=true) a missing Chromium or Playwright fails the run with the reason; elsewhere the suite is
skipped, and one line at the end says why. The tests run in the first (SQLite) pass only: `make test` excludes the
`browser` marker from tests/realstack.py's pass. Every test gets a fresh browser context, and fails if
its pages log a JavaScript error or ask for anything outside the product (no CDN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings

from invoicing import services
from tests.browser.helpers import submit_sign_in
from tests.conftest import IN_CI

# The invoicing fixtures: a flat-priced provider (32.50 per kWh), a connection billable January to
# March 2024 (300 kWh a month), staff, a payment method.
from tests.invoicing.conftest import cash, connection, creator, flat_provider, super_creator  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).parent

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError as exc:
    UNAVAILABLE = f"Playwright is not importable ({exc}): pip install -r requirements-dev.txt"
    if not IN_CI:
        # The test modules import Playwright too: they are left out, and the summary says why.
        collect_ignore_glob = ["test_*.py"]
else:
    UNAVAILABLE = "" if CHROMIUM.exists() else f"{CHROMIUM} is missing: apt-get install chromium"

# Headless in a container: no sandbox (no user namespaces), no GPU, /tmp instead of a small /dev/shm,
# and no calls home (updates, safe browsing): the suite runs offline.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000
if not UNAVAILABLE:
    expect.set_options(timeout=TIMEOUT_MS)


def pytest_itemcollected(item: pytest.Item) -> None:
    """This folder's tests are `browser` tests (before `-m` selects), so new files need no marker."""
    if item.path.is_relative_to(HERE):
        item.add_marker(pytest.mark.browser)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API leaves an asyncio loop on the main thread for the
    rest of the session, and no other test should run beside it. Without a browser they fail the run
    in CI, and are skipped elsewhere."""
    browser_tests = [item for item in items if "browser" in item.keywords]
    if browser_tests and UNAVAILABLE and IN_CI:
        raise pytest.UsageError(f"The browser suite must run in CI: {UNAVAILABLE} (.ci/run installs it).")
    if UNAVAILABLE:
        for item in browser_tests:
            item.add_marker(pytest.mark.skip(reason=f"Browser tests skipped: {UNAVAILABLE}"))
    items.sort(key=lambda item: "browser" in item.keywords)


def pytest_terminal_summary(terminalreporter) -> None:
    if UNAVAILABLE:
        terminalreporter.write_line(f"Browser tests skipped: {UNAVAILABLE}", yellow=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # The loop Playwright keeps on this thread makes Django take the tests for async code and refuse
        # their ORM calls (factories, assertions). They are plain synchronous code; the live server
        # answers in threads of its own.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    """The window size; a test overrides this fixture for a phone-width screen."""
    return {"width": 1280, "height": 900}


@pytest.fixture
def page(browser: Browser, live_server, viewport: dict[str, int]) -> Iterator[Page]:
    """A fresh context (no cookies) on the live server. After the test: no JavaScript error was
    logged, every static file asked for was served, and no request left the product (no CDN)."""
    context = browser.new_context(base_url=live_server.url, viewport=viewport, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    js_errors: list[str] = []
    static_missing: list[str] = []
    outside: list[str] = []
    static_url = f"{live_server.url}{settings.STATIC_URL}"
    tab.on("pageerror", lambda error: js_errors.append(f"uncaught: {error}"))
    # Network refusals are logged as console errors too; the API's 4xx answers are expected where a
    # page reports them (an unknown bill id), so only the scripts' own errors count here.
    tab.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and js_errors.append(_describe(message))
        ),
    )
    tab.on(
        "response",
        lambda response: (
            response.url.startswith(static_url)
            and response.status >= 400
            and static_missing.append(response.url)
        ),
    )
    tab.on(
        "request",
        lambda request: (
            request.url.startswith((live_server.url, "data:", "blob:")) or outside.append(request.url)
        ),
    )
    yield tab
    context.close()
    assert not js_errors, f"The pages logged JavaScript errors: {js_errors}"
    assert not static_missing, f"Static files the pages asked for were not served: {static_missing}"
    assert not outside, f"The pages asked for assets outside the product: {outside}"


def _describe(message) -> str:
    where = message.location or {}
    return f"{message.text} ({where.get('url', '?')}:{where.get('lineNumber', '?')})"


@pytest.fixture
def sign_in(page: Page) -> Callable[..., Page]:
    """Sign in through the real form (the factories' password); with several roles, pick `role`'s card.
    Returns once a page acting in the role is shown."""

    def signed_in(user, role: str | None = None) -> Page:
        submit_sign_in(page, user)
        if role is not None and len(user.role_names) > 1:
            page.get_by_test_id(f"role-card-{role}").click()
        expect(page.get_by_test_id("acting-role")).to_be_visible()
        return page

    return signed_in


@pytest.fixture
def bills(connection, creator) -> list:  # noqa: F811 (the imported fixtures, passed by name)
    """The connection's bills for January, February and March 2024 (9,750.00 each), all unpaid."""
    return [
        services.invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)
        for month in (1, 2, 3)
    ]
