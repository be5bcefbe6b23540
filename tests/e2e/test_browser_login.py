"""The harness itself: Chromium reaches the live server, the login form works both ways."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import PASSWORD, password_usable_by_server, sign_in

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_wrong_password_is_refused_with_a_message_and_the_right_one_signs_in(
    page: Page, operations_lead, screenshot, page_errors
):
    password_usable_by_server(operations_lead)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    screenshot(page, "login")

    sign_in(page, "ops", "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    expect(page).to_have_url(re.compile(r"/login/"))
    screenshot(page, "wrong-password")

    sign_in(page, "ops", PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("navigation")).to_be_visible()
    assert page_errors == []
