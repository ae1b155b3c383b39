"""``make screenshots``: full-page PNGs of the main pages (tests/browser/main_pages.py) at desktop (1366×900)
and phone (390×844) width, each as the role that uses it, into ``var/screenshots/`` (git-ignored) for a
reviewer to look at. Run through pytest (``pytest tests/browser/screenshots.py``) for its live server on a
fresh SQLite test database and the browser tests' users; not named test_*, so ``make test`` does not run it.
"""

from __future__ import annotations

import pytest

from tests.factories import REPO

from .main_pages import PAGES, VIEWPORTS, MainPage, main_site, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["main_site"]  # the fixture, imported for the run below
FOLDER = REPO / "var" / "screenshots"
#: Django's admin, which the accessibility check does not cover (it is Django's), seen by the admin.
SHOWN = [*PAGES, MainPage("admin-challenges", "admin", "/admin/challenges/challenge/")]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=VIEWPORTS)
def test_screenshots_of_the_main_pages(new_page, main_site, viewport):
    FOLDER.mkdir(parents=True, exist_ok=True)
    saved = []
    for page in SHOWN:
        browser_page = open_page(new_page, main_site, page, VIEWPORTS[viewport])
        saved.append(FOLDER / f"{page.name}-{viewport}.png")
        browser_page.screenshot(path=str(saved[-1]), full_page=True)
    assert all(p.stat().st_size > 0 for p in saved)
    print(f"{len(saved)} screenshots at {viewport} width in {FOLDER}")
