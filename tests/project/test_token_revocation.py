"""JWTs stop working when they should: a refresh token works once, and a password change or a
deactivation revokes every token issued before it (access tokens included). Device tokens of a
deactivated device, or of a deactivated device user, stay refused."""

from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from apps.config.models import Device
from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN, REFRESH, ME = "/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/me/"


@pytest.fixture(autouse=True)
def _no_rate_counts() -> None:
    cache.clear()


@pytest.fixture
def operator() -> Any:
    return UserFactory(username="operator", roles=[Role.MANAGER])


def tokens(username: str = "operator", password: str = "pw-for-tests-only") -> dict[str, str]:
    answer = APIClient().post(TOKEN, {"username": username, "password": password}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()


def me(access: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get(ME)


def refresh(token: str) -> Any:
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


def test_a_refresh_token_works_once_and_comes_back_replaced(operator):
    first = tokens()
    answer = refresh(first["refresh"])
    assert answer.status_code == 200
    second = answer.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    error = error_of(refresh(first["refresh"]), 401)
    assert error["code"] == "token_not_valid"
    assert BlacklistedToken.objects.filter(token__user=operator).count() == 1
    assert refresh(second["refresh"]).status_code == 200
    assert me(second["access"]).status_code == 200


def test_a_password_change_revokes_access_and_refresh_tokens(operator, django_capture_on_commit_callbacks):
    old = tokens()
    assert me(old["access"]).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        operator.set_password("a-new-long-password")
        operator.save()
    assert error_of(me(old["access"]), 401) == {
        "code": "password_changed",
        "message": "The user's password has been changed.",
        "fields": {},
    }
    assert error_of(refresh(old["refresh"]), 401) == {
        "code": "token_not_valid",
        "message": "Token is blacklisted",
        "fields": {},
    }
    # Recorded as revoked (so it stays revoked whatever happens to the password later).
    assert not OutstandingToken.objects.filter(user=operator, blacklistedtoken__isnull=True).exists()
    new = tokens(password="a-new-long-password")
    assert me(new["access"]).json()["username"] == "operator"
    assert refresh(new["refresh"]).status_code == 200


def test_a_password_changed_without_save_still_revokes_refresh_tokens(operator):
    """No blacklisting without the save signal (a queryset update): the password claim catches it."""
    old = tokens()
    operator.set_password("a-new-long-password")
    type(operator).objects.filter(pk=operator.pk).update(password=operator.password)
    error = error_of(refresh(old["refresh"]), 401)
    assert error["code"] == "token_revoked"
    assert error["message"].startswith("This refresh token has been revoked")
    assert error_of(me(old["access"]), 401)["code"] == "password_changed"


def test_a_deactivated_users_tokens_are_refused_and_stay_so_after_reactivation(
    operator, django_capture_on_commit_callbacks
):
    old = tokens()
    with django_capture_on_commit_callbacks(execute=True):
        operator.is_active = False
        operator.save()
    assert error_of(me(old["access"]), 401)["code"] == "user_inactive"
    assert error_of(refresh(old["refresh"]), 401)
    operator.is_active = True
    operator.save()
    assert error_of(refresh(old["refresh"]), 401)["code"] == "token_not_valid"  # blacklisted


def test_a_deleted_users_refresh_token_is_401_not_a_server_error(operator):
    old = tokens()
    operator.delete()
    assert error_of(refresh(old["refresh"]), 401)


def test_other_saves_of_the_user_revoke_nothing(operator):
    old = tokens()
    operator.first_name = "Olga"
    operator.save()
    assert me(old["access"]).status_code == 200
    assert refresh(old["refresh"]).status_code == 200


def device_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return client


def test_device_tokens_of_a_deactivated_device_user_stay_refused(device_token):
    assert device_client(device_token).get(ME).status_code == 200
    device = Device.objects.get(name="gauge-1")
    device.user.is_active = False
    device.user.save()
    assert (
        error_of(device_client(device_token).get(ME), 401)["message"]
        == "Unknown or deactivated device token."
    )
    device.user.is_active = True
    device.user.save()
    Device.objects.filter(pk=device.pk).update(active=False)
    assert error_of(device_client(device_token).get(ME), 401)


def test_token_errors_keep_their_code_and_text_in_the_error_format():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert error_of(client.get(ME), 401) == {
        "code": "token_not_valid",
        "message": "Given token not valid for any token type",
        "fields": {},
    }


def test_an_error_on_two_fields_has_a_message_not_none(api, quality_specialist):
    error = error_of(api(quality_specialist).post("/api/v1/products/", {}, format="json"), 400)
    assert set(error["fields"]) >= {"code", "name"}
    assert error["message"] != "None"
    assert "required" in error["message"]
