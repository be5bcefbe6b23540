"""GET /api/v1/testers/: who items can be handed to, for whoever assigns them (operations leads)."""

import pytest

from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TESTERS = "/api/v1/testers/"


@pytest.fixture
def people(tester):
    return {
        "ada": UserFactory(username="ada", first_name="Ada", last_name="Byron", roles=[Role.TESTER]),
        "tester": tester,
        "gone": UserFactory(username="gone", roles=[Role.TESTER], is_active=False),
        "lead": UserFactory(username="lead-only", roles=[Role.OPERATIONS_LEAD]),
        "nobody": UserFactory(username="nobody", roles=[]),
    }


class ListTests:
    def test_active_testers_by_name_with_id_username_and_full_name(self, api, operations_lead, people):
        response = api(operations_lead).get(TESTERS)
        assert response.status_code == 200, response.content
        assert response.json()["results"] == [
            {"id": people["tester"].pk, "username": "tester", "full_name": ""},
            {"id": people["ada"].pk, "username": "ada", "full_name": "Ada Byron"},
        ]

    def test_one_tester_and_not_someone_else(self, api, operations_lead, people):
        client = api(operations_lead)
        assert client.get(f"{TESTERS}{people['ada'].pk}/").json()["full_name"] == "Ada Byron"
        for other in ("gone", "lead", "nobody"):
            error_of(client.get(f"{TESTERS}{people[other].pk}/"), 404)

    def test_filters_search_and_ordering(self, api, operations_lead, people):
        client = api(operations_lead)
        assert [r["username"] for r in client.get(TESTERS, {"username": "ADA"}).json()["results"]] == ["ada"]
        assert [r["username"] for r in client.get(TESTERS, {"search": "byron"}).json()["results"]] == ["ada"]
        ordered = client.get(TESTERS, {"ordering": "-username"}).json()["results"]
        assert [r["username"] for r in ordered] == ["tester", "ada"]

    def test_the_list_is_what_assignment_accepts(self, api, operations_lead, people, plant):
        """Every tester listed can be handed an item; the inactive one cannot."""
        client = api(operations_lead)
        listed = [row["id"] for row in client.get(TESTERS).json()["results"]]
        item = [plant.items[0].pk]
        for pk in listed:
            assert client.post("/api/v1/items/assign/", {"items": item, "tester": pk}).status_code == 200
        response = client.post("/api/v1/items/assign/", {"items": item, "tester": people["gone"].pk})
        error_of(response, 400, "tester")

    def test_query_count_does_not_grow(self, api, operations_lead, people, django_assert_max_num_queries):
        for n in range(20):
            UserFactory(username=f"t{n}", roles=[Role.TESTER])
        # The user, their roles, their permissions (user and group), the count, the page.
        with django_assert_max_num_queries(6):
            assert api(operations_lead).get(TESTERS).json()["count"] == 22


class AccessTests:
    @pytest.mark.parametrize("role", ["tester", "manager", "quality_specialist"])
    def test_roles_that_do_not_assign_items_are_refused(self, api, request, role, people):
        error = error_of(api(request.getfixturevalue(role)).get(TESTERS), 403)
        assert error["message"] == "Your role does not assign items to testers."

    def test_no_role_devices_and_anonymous_are_refused(self, api, device_api, people):
        error_of(api(people["nobody"]).get(TESTERS), 403)
        error_of(device_api.get(TESTERS), 403)
        error_of(api(None).get(TESTERS), 401)
