"""Steps and checks the browser tests share. Playwright is imported for type hints only: the conftest
imports this module before it knows whether Playwright is installed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page


def submit_sign_in(page: Page, user) -> None:
    """The sign-in form, filled as a person would, with the factories' password."""
    page.goto("/sign-in")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def no_horizontal_scroll(page: Page) -> bool:
    """The page fits the window's width: only a .table-wrap may scroll sideways."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def tab_to(page: Page, test_id: str, *, presses: int = 20) -> None:
    """Press Tab until the element with `test_id` has the keyboard focus; fail if it is never reached."""
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("document.activeElement.dataset.testid || document.activeElement.tagName")
        )
        if reached[-1] == test_id:
            return
    pytest.fail(f"{test_id} was not reached with Tab; the focus went through {reached}")
