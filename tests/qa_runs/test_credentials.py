"""Target credentials: encrypted at rest or named as an environment variable, and never shown."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from apps.qa_runs.choices import AuthKind
from apps.qa_runs.crypto import SecretUnreadable, secret_decrypt, secret_encrypt
from apps.qa_runs.generate import Expect, GeneratedScenario, Step
from apps.qa_runs.models import QaPackage
from apps.qa_runs.services import (
    MASK,
    CredentialMissing,
    qa_package_auth_headers,
    qa_package_auth_set,
    qa_package_create,
    qa_run_request,
    scenario_store,
    step_result_record,
)

TOKEN = "tok-3f9a1c77e2b54d8e"


class EncryptionTests:
    def test_round_trip_and_the_token_does_not_contain_the_value(self) -> None:
        token = secret_encrypt(TOKEN)
        assert TOKEN not in token
        assert secret_decrypt(token) == TOKEN
        assert secret_encrypt(TOKEN) != token  # random IV: equal values do not look equal

    def test_a_rotated_key_still_reads_old_tokens(self, settings: pytest.FixtureRequest) -> None:
        settings.QA_SECRET_KEYS = ["old-key"]  # type: ignore[attr-defined]
        old = secret_encrypt(TOKEN)
        settings.QA_SECRET_KEYS = ["new-key", "old-key"]  # type: ignore[attr-defined]
        assert secret_decrypt(old) == TOKEN
        settings.QA_SECRET_KEYS = ["new-key"]  # type: ignore[attr-defined]
        with pytest.raises(SecretUnreadable, match="QA_SECRET_KEY"):
            secret_decrypt(old)

    def test_the_default_key_comes_from_secret_key(self, settings: pytest.FixtureRequest) -> None:
        from django.conf import settings as live

        assert live.QA_SECRET_KEYS == [live.SECRET_KEY]


@pytest.mark.django_db
class PackageCredentialTests:
    def test_a_bearer_token_is_stored_encrypted_and_used_as_authorization(self, package: QaPackage) -> None:
        qa_package_auth_set(package=package, kind=AuthKind.BEARER, value=TOKEN)
        stored = QaPackage.objects.get(pk=package.pk)
        assert TOKEN not in stored.auth_secret_encrypted
        assert secret_decrypt(stored.auth_secret_encrypted) == TOKEN
        assert qa_package_auth_headers(package=stored) == {"Authorization": f"Bearer {TOKEN}"}
        assert stored.auth_display == "set"
        for shown in (str(stored), repr(stored)):
            assert TOKEN not in shown

    def test_a_header_may_come_from_the_environment(
        self, package: QaPackage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        qa_package_auth_set(package=package, kind=AuthKind.HEADER, header_name="X-Api-Key", env="THINGS_KEY")
        assert package.auth_display == "env: THINGS_KEY"
        assert QaPackage.objects.get(pk=package.pk).auth_secret_encrypted == ""
        monkeypatch.delenv("THINGS_KEY", raising=False)
        with pytest.raises(CredentialMissing, match="THINGS_KEY"):
            qa_package_auth_headers(package=package)
        monkeypatch.setenv("THINGS_KEY", TOKEN)
        assert qa_package_auth_headers(package=package) == {"X-Api-Key": TOKEN}

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"kind": "bearer"}, "auth_secret"),
            ({"kind": "bearer", "value": "v", "env": "E"}, "auth_secret"),
            ({"kind": "header", "value": "v"}, "auth_header_name"),
            ({"kind": "header", "header_name": "Bad Header", "value": "v"}, "auth_header_name"),
            ({"kind": "bearer", "env": "1NOT-A-NAME"}, "auth_secret_env"),
            ({"kind": "basic", "value": "v"}, "auth_kind"),
        ],
    )
    def test_incomplete_settings_are_refused(
        self, package: QaPackage, kwargs: dict[str, str], field: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            qa_package_auth_set(package=package, **kwargs)  # type: ignore[arg-type]
        assert field in caught.value.message_dict
        assert QaPackage.objects.get(pk=package.pk).auth_kind == AuthKind.NONE

    def test_none_clears_what_was_stored(self, package: QaPackage) -> None:
        qa_package_auth_set(package=package, kind=AuthKind.BEARER, value=TOKEN)
        qa_package_auth_set(package=package, kind=AuthKind.NONE)
        stored = QaPackage.objects.get(pk=package.pk)
        assert (stored.auth_secret_encrypted, stored.auth_display) == ("", "none")
        assert qa_package_auth_headers(package=stored) == {}

    def test_overrides_must_name_statuses(self) -> None:
        with pytest.raises(ValidationError) as caught:
            qa_package_create(
                name="p",
                target_base_url="https://t.example",
                spec_text="{}",
                expected_status_overrides={"op": [42]},
            )
        assert "expected_status_overrides" in caught.value.message_dict
        package = qa_package_create(
            name="p",
            target_base_url="https://t.example",
            spec_text="{}",
            expected_status_overrides={"op": [201, "2xx"]},
        )
        assert package.expected_status_overrides == {"op": [201, "2xx"]}


@pytest.mark.django_db
class AdminTests:
    @pytest.fixture
    def admin_client(self) -> Client:
        user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
        client = Client()
        client.force_login(user)
        return client

    def form(self, **changes: str) -> dict[str, str]:
        data = {
            "name": "things", "description": "", "target_base_url": "https://things.example.com/api",
            "spec_url": "https://things.example.com/openapi.json", "spec_text": "", "auth_kind": "bearer",
            "auth_header_name": "", "auth_value": TOKEN, "auth_secret_env": "", "max_scenarios": "200",
            "max_steps_per_scenario": "10", "step_timeout_seconds": "10", "run_timeout_seconds": "900",
            "concurrency": "4", "expected_status_overrides": "{}",
        }  # fmt: skip
        return data | changes

    def test_the_credential_is_written_and_never_shown(self, admin_client: Client) -> None:
        response = admin_client.post("/admin/qa_runs/qapackage/add/", self.form())
        assert response.status_code == 302, response.content.decode()[:2000]
        package = QaPackage.objects.get(name="things")
        assert qa_package_auth_headers(package=package) == {"Authorization": f"Bearer {TOKEN}"}
        for url in ("/admin/qa_runs/qapackage/", f"/admin/qa_runs/qapackage/{package.pk}/change/"):
            page = admin_client.get(url).content.decode()
            assert TOKEN not in page
            assert package.auth_secret_encrypted not in page
            assert ">set<" in page

    def test_saving_without_a_new_value_keeps_the_stored_one(self, admin_client: Client) -> None:
        admin_client.post("/admin/qa_runs/qapackage/add/", self.form())
        package = QaPackage.objects.get(name="things")
        response = admin_client.post(
            f"/admin/qa_runs/qapackage/{package.pk}/change/", self.form(auth_value="", description="changed")
        )
        assert response.status_code == 302
        package.refresh_from_db()
        assert package.description == "changed"
        assert qa_package_auth_headers(package=package) == {"Authorization": f"Bearer {TOKEN}"}

    def test_switching_to_an_environment_variable_drops_the_stored_value(self, admin_client: Client) -> None:
        admin_client.post("/admin/qa_runs/qapackage/add/", self.form())
        package = QaPackage.objects.get(name="things")
        response = admin_client.post(
            f"/admin/qa_runs/qapackage/{package.pk}/change/",
            self.form(auth_value="", auth_secret_env="THINGS_TOKEN"),
        )
        assert response.status_code == 302
        package.refresh_from_db()
        assert (package.auth_secret_encrypted, package.auth_display) == ("", "env: THINGS_TOKEN")

    def test_a_credential_kind_without_a_value_is_a_form_error(self, admin_client: Client) -> None:
        response = admin_client.post("/admin/qa_runs/qapackage/add/", self.form(auth_value=""))
        assert response.status_code == 200
        assert "Give the value or the environment variable" in response.content.decode()
        assert not QaPackage.objects.exists()


@pytest.mark.django_db
def test_step_results_mask_the_credential_and_truncate_the_body(package: QaPackage) -> None:
    run = qa_run_request(package=package, requested_by=None)
    step = Step(method="GET", path="/things", expect=Expect((200,)))
    scenario = scenario_store(
        run=run,
        scenario=GeneratedScenario(
            "t: valid request", "t", "GET", "/things", "positive", "generated", (step,)
        ),
        position=0,
    )
    result = step_result_record(
        scenario=scenario,
        index=0,
        request={
            "method": "GET",
            "url": f"https://t.example/things?key={TOKEN}",
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Custom": "plain"},
        },
        response_status=200,
        response_headers={
            "Set-Cookie": "session=abc",
            "X-Echo": f"got {TOKEN}",
            "Content-Type": "text/plain",
        },
        response_body=f"echo {TOKEN} " + "x" * 20000,
        duration_ms=12,
        checks=[{"check": "status", "ok": True}],
        passed=True,
        curl=f"curl -H 'Authorization: Bearer {TOKEN}' https://t.example/things",
        secrets=[TOKEN],
    )
    result.refresh_from_db()
    stored = " ".join(map(str, [result.request, result.response_headers, result.response_body, result.curl]))
    assert TOKEN not in stored
    assert result.request["headers"] == {"Authorization": MASK, "X-Custom": "plain"}
    assert result.response_headers == {
        "Set-Cookie": MASK,
        "X-Echo": f"got {MASK}",
        "Content-Type": "text/plain",
    }
    assert result.response_body.startswith(f"echo {MASK} ")
    assert (len(result.response_body), result.body_truncated) == (16 * 1024, True)
    assert result.curl == f"curl -H 'Authorization: Bearer {MASK}' https://t.example/things"
    assert list(scenario.run.events.values_list("type", flat=True)) == ["REQUESTED", "SCENARIO_CREATED"]
