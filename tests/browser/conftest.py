"""Browser tests: Playwright for Python driving Debian's Chromium against a live Assay server.

The server is pytest-django's ``live_server`` (a real HTTP server in a thread, on the test database);
submissions are evaluated by a real worker thread speaking the worker protocol over HTTP, as the
in-process worker of ``make demo`` does. E-mail goes to Django's test mailbox (``mailoutbox``).
Screenshots of the main pages are written to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import factories
from tests.factories import DEMO_BUNDLE, REPO, import_published

DEMO_SUBMISSIONS = DEMO_BUNDLE.parent / "demo-submissions"
SHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a-Long-Browser-Test-Passw0rd"
# Playwright's sync API keeps an event loop in the test thread; Django would take every ORM call the tests
# make there for async code. The calls are synchronous (Playwright's loop is idle meanwhile), so allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
TIMEOUT_MS = 20_000
EVALUATION_TIMEOUT_MS = 90_000

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e .[test])"
)
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    pytest.skip(
        f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def browser() -> Iterator:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def new_page(browser, live_server, request):
    """Open pages in fresh browser contexts (one per person), closed at the end of the test; a failed
    test leaves a screenshot of each of its pages in the artifacts."""
    contexts, pages = [], []

    def make(viewport: dict | None = None):
        context = browser.new_context(base_url=live_server.url, viewport=viewport or {"width": 1200, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        pages.append(context.new_page())
        return pages[-1]

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for i, page in enumerate(pages):
            shot(page, f"FAILED-{request.node.name}-{i}")
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    """Save a full-page screenshot as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(autouse=True)
def _fast_hashing_and_files(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ACCOUNT_RATE_LIMITS = False
    settings.DEBUG_PROPAGATE_EXCEPTIONS = True


#: The shared builder with the password ``sign_in`` types: a verified user who can sign in on the login page.
make_user = functools.partial(factories.make_user, password=PASSWORD)


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector(f"summary:has-text('{username}')")


@pytest.fixture
def demo(transactional_db, settings):
    """The demo challenge, imported under the host team of user ``host``, approved and published."""
    from assay.server.teams.services import create_host_team

    host = make_user("hostess", "hostess@hosts.example")
    return import_published(create_host_team("Browser hosts", host), user=host)


@pytest.fixture
def worker(live_server, tmp_path, transactional_db) -> Iterator:
    """A real worker thread evaluating the platform queue over HTTP (like ``make demo``'s)."""
    from assay.server.submissions.services.tokens import create_worker_token
    from assay.worker import Worker, WorkerClient

    _, token = create_worker_token(None, "browser-test worker")
    w = Worker(WorkerClient(live_server.url, token), tmp_path / "worker", poll_wait=1)
    thread = threading.Thread(target=w.run, name="browser-test-worker", daemon=True)
    thread.start()
    yield w
    w.stop()
    thread.join(timeout=30)
    w.client.close()  # its kept-alive connection holds a live-server thread and its database session
