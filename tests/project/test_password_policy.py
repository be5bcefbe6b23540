"""Passwords are at least PASSWORD_MIN_LENGTH (12) characters wherever they are set."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

ELEVEN, TWELVE = "Zq7-kettle-", "Zq7-kettle-b"


def test_eleven_characters_are_refused_and_twelve_accepted():
    with pytest.raises(ValidationError) as refused:
        validate_password(ELEVEN)
    assert "at least 12 characters" in str(refused.value)
    validate_password(TWELVE)
    assert any("at least 12 characters" in text for text in password_validators_help_texts())


def test_the_minimum_is_a_setting(settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {
            "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
            "OPTIONS": {"min_length": 20},
        }
    ]
    with pytest.raises(ValidationError):
        validate_password("Zq7-kettle-b-19char")  # 19


def test_the_admin_refuses_a_short_password_for_a_new_user():
    admin = get_user_model().objects.create_superuser("root", password="a-long-admin-pass")
    client = Client()
    client.force_login(admin)
    form = {"username": "newop", "password1": ELEVEN, "password2": ELEVEN, "usable_password": "true"}
    answer = client.post("/admin/auth/user/add/", form)
    assert answer.status_code == 200
    assert "at least 12 characters" in answer.content.decode()
    assert not get_user_model().objects.filter(username="newop").exists()
    answer = client.post("/admin/auth/user/add/", {**form, "password1": TWELVE, "password2": TWELVE})
    assert answer.status_code == 302
    assert get_user_model().objects.get(username="newop").check_password(TWELVE)


def test_changepassword_and_createsuperuser_use_the_same_rules(monkeypatch):
    user = get_user_model().objects.create_user("op", password="an-old-long-password")
    answers = iter([ELEVEN, ELEVEN, TWELVE, TWELVE])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    out, err = StringIO(), StringIO()
    call_command("changepassword", "op", stdout=out, stderr=err)
    assert "at least 12 characters" in err.getvalue() + out.getvalue()
    user.refresh_from_db()
    assert user.check_password(TWELVE)


def test_demo_passwords_are_long_enough(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_MIN_LENGTH = 24
    out = StringIO()
    call_command("demo_setup", stdout=out)
    passwords = re.findall(r"password (\S+)", out.getvalue())
    assert len(passwords) == 5  # one per demo user (two testers), not the device
    assert all(len(password) >= 24 for password in passwords), passwords
