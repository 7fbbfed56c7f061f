"""What the browser tests share: Debian's chromium, headless, driven by Playwright (one Playwright per
module: the sync API allows one at a time), a fresh page per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def pw():
    """One Playwright per module (the sync API allows one at a time), shared by the browsers."""
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("chromium is not installed (scripts/test.sh installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    yield page
    context.close()
