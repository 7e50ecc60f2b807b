"""What a person does in the browser, shared by the browser tests: the screen sizes, the passwords, and a
rater's first steps (sign-up, consent, profile)."""
from __future__ import annotations

from ratings.models import Invitation

PASSWORD = "a-long-rater-pass-7"
STAFF_PASSWORD = "browser-test-password-1"
LAPTOP = {"width": 1366, "height": 768}


def wait_images(page):
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.hidden || (i.complete && i.naturalWidth > 0))")


def sign_up(page, url: str, invitation: Invitation, username: str):
    page.goto(f"{url}/rate/join/{invitation.token}/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/consent/")


def consent_and_profile(page):
    # consent with the keyboard: the box has the focus
    page.wait_for_function("() => document.activeElement && document.activeElement.name === 'agree'")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**/profile/")
    page.check("input[name=career_stage][value=postdoc]")
    page.check("input[name=experience][value=expert]")
    page.check("input[name=helped_build][value=no]")
    page.click("button[type=submit]")
    page.wait_for_url("**/guide/")
