"""The role walk (#16): a user with no role, a tester and a device walk every API operation (from
drf-spectacular's schema of the running code), every page (get_resolver(), walked recursively)
and every socket (openspc/routing.py), and each gets only what docs/roles.md and docs/dashboards.md
give them:

* no role: 403 on every API operation, no SPC data on any page (the overview and wall screen say
  the role reads no charts; every other page is 403), every socket subscription `not_readable`;
* tester: their own items, the tests of their plans, their own observations, the worklist, and
  data entry for their items; nothing else;
* device: ingestion and the status of what it posted itself; nothing else.

Every operation, page and socket must be in the tables below: a new one fails the
`..._is_classified` tests until someone says who gets what.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.config.models import Characteristic
from apps.observations import services
from apps.observations.models import Invalidation, Observation, ScheduledSample
from openspc.routing import websocket_urlpatterns
from tests.config.helpers import error_of
from tests.factories import (
    ItemFactory,
    LotFactory,
    ProductFactory,
    TestFactory,
    UserFactory,
    characteristic_for,
    released_plan,
)
from tests.support.daphne import access_token, close_code, communicator
from tests.support.plant import Plant

ROLES = ("roleless", "tester", "device")

# --- What each role gets from each API operation ----------------------------------------------

DENIED = "denied"  # 403 in the error format: no data
OWN = "own"  # 200 with the caller's own rows only (checked per operation below)
ENTRY = "entry"  # data entry accepted for what the caller may enter (checked below)
SELF = "self"  # 200, about the caller only (who they are)
NO_DATA = "no-data"  # 200 {"ok": true} to anyone authenticated: no data at all
SIGN_IN = "sign-in"  # open to anyone, answers no data without a username and password
NOT_DEVICE_CREDENTIALS = "401"  # a device-token endpoint: a person's credentials are no credentials here

NOBODY = dict.fromkeys(ROLES, DENIED)

# Operations nobody of the three may use: configuration, lots, statistics, violations, samples
# read, subscriptions, notifications, audit, MQTT bridge, QA runs, the tester list.
NOBODY_OPERATIONS = [
    "GET /api/v1/acknowledgement-reasons/",
    "GET /api/v1/audit/",
    "GET /api/v1/audit/{id}/",
    "GET /api/v1/audit/entries.csv",
    "GET /api/v1/characteristics/",
    "GET /api/v1/characteristics/{id}/",
    "PATCH /api/v1/characteristics/{id}/",
    "GET /api/v1/characteristics/{id}/chart-data/",
    "POST /api/v1/characteristics/{id}/freeze-limits/",
    "GET /api/v1/characteristics/{id}/limits/",
    "POST /api/v1/characteristics/{id}/recalculate-limits/",
    "POST /api/v1/characteristics/{id}/set-limits/",
    "GET /api/v1/devices/",
    "POST /api/v1/devices/",
    "GET /api/v1/devices/{id}/",
    "PATCH /api/v1/devices/{id}/",
    "POST /api/v1/items/assign/",
    "POST /api/v1/items/select-plans/",
    "GET /api/v1/lot-statistics/",
    "GET /api/v1/lot-statistics/{id}/",
    "GET /api/v1/lots/",
    "POST /api/v1/lots/",
    "GET /api/v1/lots/{id}/",
    "POST /api/v1/lots/{id}/items/",
    "GET /api/v1/lots/{id}/progress/",
    "POST /api/v1/lots/{id}/status/",
    "GET /api/v1/lots/{id}/review/",
    "POST /api/v1/lots/{id}/disposition/",
    "POST /api/v1/lots/{id}/request-release/",
    "GET /api/v1/mqtt/data-health-alarms/",
    "GET /api/v1/mqtt/data-health-alarms/{id}/",
    "GET /api/v1/mqtt/dead-letters/",
    "GET /api/v1/mqtt/dead-letters/{id}/",
    "GET /api/v1/mqtt/edge-nodes/",
    "GET /api/v1/mqtt/edge-nodes/{id}/",
    "GET /api/v1/notifications/",
    "GET /api/v1/oos-investigations/",
    "GET /api/v1/oos-investigations/{id}/",
    "POST /api/v1/oos-investigations/{id}/close/",
    "POST /api/v1/oos-investigations/{id}/notes/",
    "POST /api/v1/oos-investigations/{id}/start/",
    "GET /api/v1/notifications/{id}/",
    "POST /api/v1/notifications/{id}/read/",
    "POST /api/v1/notifications/read-all/",
    "GET /api/v1/notifications/unread-count/",
    "GET /api/v1/plan-assignments/",
    "POST /api/v1/plan-assignments/",
    "GET /api/v1/plan-assignments/{id}/",
    "PATCH /api/v1/plan-assignments/{id}/",
    "GET /api/v1/product-statistics/",
    "GET /api/v1/product-statistics/{characteristic}/",
    "GET /api/v1/products/",
    "POST /api/v1/products/",
    "GET /api/v1/products/{id}/",
    "PUT /api/v1/products/{id}/",
    "PATCH /api/v1/products/{id}/",
    "DELETE /api/v1/products/{id}/",
    "GET /api/v1/products/{id}/config/",
    "GET /api/v1/qa/packages/",
    "POST /api/v1/qa/packages/",
    "GET /api/v1/qa/packages/{id}/",
    "PUT /api/v1/qa/packages/{id}/",
    "PATCH /api/v1/qa/packages/{id}/",
    "DELETE /api/v1/qa/packages/{id}/",
    "POST /api/v1/qa/packages/{id}/run/",
    "GET /api/v1/qa/runs/",
    "GET /api/v1/qa/runs/{plan_id}/",
    "POST /api/v1/qa/runs/{plan_id}/cancel/",
    "GET /api/v1/qa/runs/{plan_id}/events/",
    "GET /api/v1/qa/runs/{plan_id}/operations/",
    "GET /api/v1/qa/runs/{plan_id}/report/html/",
    "GET /api/v1/qa/runs/{plan_id}/report/junit/",
    "GET /api/v1/qa/runs/{plan_id}/scenarios/",
    "GET /api/v1/samples/",
    "GET /api/v1/samples/{id}/",
    "POST /api/v1/samples/{id}/exclude/",
    "POST /api/v1/samples/{id}/include/",
    "GET /api/v1/subscriptions/",
    "POST /api/v1/subscriptions/",
    "GET /api/v1/subscriptions/{id}/",
    "PUT /api/v1/subscriptions/{id}/",
    "PATCH /api/v1/subscriptions/{id}/",
    "DELETE /api/v1/subscriptions/{id}/",
    "GET /api/v1/test-plans/",
    "POST /api/v1/test-plans/",
    "GET /api/v1/test-plans/{id}/",
    "PUT /api/v1/test-plans/{id}/",
    "PATCH /api/v1/test-plans/{id}/",
    "DELETE /api/v1/test-plans/{id}/",
    "POST /api/v1/test-plans/{id}/new-version/",
    "POST /api/v1/test-plans/{id}/reinstate/",
    "POST /api/v1/test-plans/{id}/release/",
    "POST /api/v1/test-plans/{id}/retire/",
    "POST /api/v1/test-plans/{id}/tests/",
    "GET /api/v1/testers/",
    "GET /api/v1/testers/{id}/",
    "POST /api/v1/tests/",
    "PUT /api/v1/tests/{id}/",
    "PATCH /api/v1/tests/{id}/",
    "DELETE /api/v1/tests/{id}/",
    "GET /api/v1/violations/",
    "GET /api/v1/violations/{id}/",
    "POST /api/v1/violations/{id}/acknowledge/",
    "POST /api/v1/violations/acknowledge/",
    "GET /api/v1/violations/stats/",
    "GET /api/v1/violation-events/",
    "GET /api/v1/violation-events/{id}/",
    "POST /api/v1/violation-events/{id}/acknowledge/",
    "POST /api/v1/violation-events/acknowledge/",
    "POST /api/v1/violation-events/acknowledge-matching/",
    "GET /api/v1/alarm-shelves/",
    "POST /api/v1/alarm-shelves/",
    "GET /api/v1/alarm-shelves/{id}/",
    "POST /api/v1/alarm-shelves/{id}/end/",
]

API: dict[str, dict[str, str]] = {
    **dict.fromkeys(NOBODY_OPERATIONS, NOBODY),
    "POST /api/v1/auth/token/": dict.fromkeys(ROLES, SIGN_IN),
    "POST /api/v1/auth/token/refresh/": dict.fromkeys(ROLES, SIGN_IN),
    # Who the caller is: how a device checks its token, and a person learns they have no role.
    "GET /api/v1/me/": dict.fromkeys(ROLES, SELF),
    # The no-op a load test measures the stack's ceiling with.
    "GET /api/v1/ping/": dict.fromkeys(ROLES, NO_DATA),
    "GET /api/v1/me/items/": {**NOBODY, "tester": OWN},
    "GET /api/v1/items/": {**NOBODY, "tester": OWN},
    "GET /api/v1/items/{id}/": {**NOBODY, "tester": OWN},
    "GET /api/v1/tests/": {**NOBODY, "tester": OWN},
    "GET /api/v1/tests/{id}/": {**NOBODY, "tester": OWN},
    "GET /api/v1/observations/": {**NOBODY, "tester": OWN, "device": OWN},
    "GET /api/v1/observations/{id}/": {**NOBODY, "tester": OWN, "device": OWN},
    "POST /api/v1/observations/": {**NOBODY, "tester": ENTRY},
    "POST /api/v1/samples/": {**NOBODY, "tester": ENTRY},
    # Corrections and verification (#18): a tester asks to invalidate or amend their own results,
    # retests their invalidated ones, verifies others' (never their own), reads the invalidations of
    # their own results; approving is a quality specialist's.
    "POST /api/v1/observations/{id}/invalidate/": {**NOBODY, "tester": ENTRY},
    "POST /api/v1/observations/{id}/amend/": {**NOBODY, "tester": ENTRY},
    "POST /api/v1/observations/{id}/retest/": {**NOBODY, "tester": ENTRY},
    "POST /api/v1/observations/verify/": {**NOBODY, "tester": ENTRY},
    "GET /api/v1/invalidations/": {**NOBODY, "tester": OWN},
    "GET /api/v1/invalidations/{id}/": {**NOBODY, "tester": OWN},
    "POST /api/v1/invalidations/{id}/approve/": NOBODY,
    "POST /api/v1/invalidations/{id}/refuse/": NOBODY,
    # Sampling schedules (#21): a tester reads the samples due for the products they have items of,
    # and closes a missed one with a reason; the schedules themselves are configuration.
    "GET /api/v1/scheduled-samples/": {**NOBODY, "tester": OWN},
    "GET /api/v1/scheduled-samples/{id}/": {**NOBODY, "tester": OWN},
    "POST /api/v1/scheduled-samples/{id}/close/": {**NOBODY, "tester": ENTRY},
    "GET /api/v1/sampling-schedules/": NOBODY,
    "POST /api/v1/sampling-schedules/": NOBODY,
    "GET /api/v1/sampling-schedules/{id}/": NOBODY,
    "PUT /api/v1/sampling-schedules/{id}/": NOBODY,
    "PATCH /api/v1/sampling-schedules/{id}/": NOBODY,
    "DELETE /api/v1/sampling-schedules/{id}/": NOBODY,
    "POST /api/v1/device/observations/": {
        "roleless": NOT_DEVICE_CREDENTIALS,
        "tester": NOT_DEVICE_CREDENTIALS,
        "device": ENTRY,
    },
}

# URL-conf routes under api/v1/ that the schema leaves out, and what they give.
API_OUTSIDE_SCHEMA = {
    # The browsable API's index: links to the lists, no rows (DefaultRouter's APIRootView).
    "api-root": "links",
}

# --- Pages ----------------------------------------------------------------------------------------

FORBIDDEN = "403"
NO_ACCESS = "no-access"  # 200, no SPC data, and says the role reads no charts
NOTHING_TO_DO = "nothing-to-do"  # the worklist with nothing assigned
WORKLIST = "worklist"  # the worklist with work waiting
TO_ADMIN_SIGN_IN = "to-admin-sign-in"  # the admin: staff only, others are sent to its sign-in
SIGN_IN_FORM = "sign-in-form"  # 200, a form, no data
ALREADY_SIGNED_IN = "already-signed-in"  # 302 away from the sign-in page
POST_ONLY = "405"  # signing out is a POST
DOCS = "docs"  # the API schema and its viewers: documentation, no data
API_NOT_FOUND = "404"  # the API's catch-all

PAGES: dict[str, dict[str, str]] = {
    "web-overview": {"roleless": NO_ACCESS, "tester": NO_ACCESS, "device": FORBIDDEN},
    "web-kiosk": {"roleless": NO_ACCESS, "tester": NO_ACCESS, "device": FORBIDDEN},
    "web-chart": dict.fromkeys(ROLES, FORBIDDEN),
    "web-worklist": {"roleless": NOTHING_TO_DO, "tester": WORKLIST, "device": FORBIDDEN},
    "web-sample-close": {"roleless": FORBIDDEN, "tester": POST_ONLY, "device": FORBIDDEN},
    **{
        name: dict.fromkeys(ROLES, FORBIDDEN)
        for name in (
            "web-lots",
            "web-lot-create",
            "web-lot",
            "web-violations",
            "web-audit",
            "web-notifications",
            "web-subscriptions",
            "web-qa-runs",
            "web-qa-run",
        )
    },
    "web-login": dict.fromkeys(ROLES, ALREADY_SIGNED_IN),
    "web-logout": dict.fromkeys(ROLES, POST_ONLY),
    "rest_framework:login": dict.fromkeys(ROLES, SIGN_IN_FORM),
    "rest_framework:logout": dict.fromkeys(ROLES, POST_ONLY),
    "api-schema": dict.fromkeys(ROLES, DOCS),
    "api-docs": dict.fromkeys(ROLES, DOCS),
    "api-redoc": dict.fromkeys(ROLES, DOCS),
    "^api/.*/$": dict.fromkeys(ROLES, API_NOT_FOUND),
    "admin:login": dict.fromkeys(ROLES, SIGN_IN_FORM),
    "admin:logout": dict.fromkeys(ROLES, ALREADY_SIGNED_IN),  # GET: back to the admin index (302)
}
ADMIN_PAGES = dict.fromkeys(ROLES, TO_ADMIN_SIGN_IN)  # every other admin:* route

# --- Sockets --------------------------------------------------------------------------------------

NOT_READABLE = "not_readable"  # connected; a subscription is answered `not_readable`, nothing joined
CLOSED_4403 = "4403"  # refused at once: an error message, then close code 4403

QA_RUN_SOCKET = r"^ws/qa-runs/(?P<plan_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/?$"
SOCKETS: dict[str, dict[str, str]] = {
    r"^ws/samples/?$": {"roleless": NOT_READABLE, "tester": NOT_READABLE, "device": CLOSED_4403},
    r"^ws/notifications/?$": dict.fromkeys(ROLES, CLOSED_4403),
    QA_RUN_SOCKET: dict.fromkeys(ROLES, CLOSED_4403),
}

# --- Enumeration ----------------------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def schema_operations() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    ]


def url_routes(
    patterns: list[Any] | None = None, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(route, name) of every URL pattern, resolvers walked recursively; `name` is namespaced, or
    the route itself for an unnamed pattern."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace) if part)
            yield from url_routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            name = pattern.name or route
            yield route, f"{namespace}:{name}" if namespace else name


def concrete(route: str, values: dict[str, str]) -> str:
    """A path for a route (path() converters or regex groups) with sample values for its parameters."""

    def converter(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        return values.get(name) or {"int": "1", "uuid": str(uuid.uuid4()), "drf_format_suffix": ".json"}.get(
            kind, "1"
        )

    def group(match: re.Match[str]) -> str:
        name, body = match.group(1), match.group(2)
        if name == "format":
            return "json"
        if "|" in body:  # an alternation such as the admin's app labels: the first one
            return body.split("|")[0]
        return values.get(name) or (str(uuid.uuid4()) if "36" in body or "[0-9a-f]{8}" in body else "1")

    path = re.sub(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", group, route)
    path = re.sub(r"<(?:(\w+):)?(\w+)>", converter, path)
    path = path.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".").replace(".*", "x")
    return "/" + path


def api_path(operation: str, world: "World") -> str:
    path = operation.split(" ", 1)[1]
    return (
        path.replace("{plan_id}", str(uuid.uuid4()))
        .replace("{characteristic}", str(world.dia.pk))
        .replace("{id}", str(world.ids_by_collection.get(path.split("/")[3], 1)))
    )


# --- The world the three walk through -------------------------------------------------------------


class World:
    """The observation tests' plant (RING-74: lot L-1, items 0001–0003 assigned to the tester),
    plus what the walkers must not see: an item handed to another tester with that tester's
    observation, a test of another product's plan, and a user with no role."""

    def __init__(self, plant: Plant, device: tuple[Any, str]) -> None:
        self.plant = plant
        self.tester = plant.tester
        self.device, self.device_token = device
        self.roleless = UserFactory(username="nobody", roles=[])
        self.dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        self.other_tester = UserFactory(username="someone-else", roles=["Tester"])
        self.their_item = ItemFactory(
            lot=plant.lot, serial="0009", plans=[plant.ring], tester=self.other_tester
        )
        self.foreign_test = TestFactory(code="ELSEWHERE")
        elsewhere = ProductFactory(code="ELSEWHERE-1")
        ItemFactory(lot=LotFactory(product=elsewhere), plans=[released_plan(self.foreign_test)])
        self.own_observation = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.01]})[0]
        self.their_observation = plant.record(
            {"item": self.their_item, "test": plant.dia, "values": [74.02]}, user=self.other_tester
        )[0]
        self.results = 0
        self.asked: tuple[int, int] | None = None
        due = timezone.now()
        self.scheduled, self.scheduled_elsewhere = (
            ScheduledSample.objects.create(characteristic=c, slot="shift:1", due_at=due, overdue_at=due)
            for c in (self.dia, characteristic_for(elsewhere, self.foreign_test))
        )
        self.ids_by_collection = {
            "characteristics": self.dia.pk, "products": plant.product.pk, "tests": plant.dia.pk,
            "test-plans": plant.ring.pk, "lots": plant.lot.pk, "items": plant.items[0].pk,
            "observations": self.own_observation, "devices": self.device.pk, "testers": self.tester.pk,
            "scheduled-samples": self.scheduled.pk,
        }  # fmt: skip

    def confirmed(self) -> int:
        """A new confirmed result of the tester's."""
        self.results += 1  # another value: the same body without a key is a retry of the first
        value = 74.0 + self.results / 1000
        (pk,) = self.plant.record({"item": self.plant.items[1], "test": self.plant.dia, "values": [value]})
        services.observations_process(ids=[pk])
        return pk

    def invalidations(self) -> tuple[int, int]:
        """An invalidation the tester asked for, and one another tester asked for (ids)."""
        if self.asked is None:
            services.observations_process(ids=[self.their_observation])
            mine = services.invalidation_request(
                observation=Observation.objects.get(pk=self.confirmed()), user=self.tester, reason="mine"
            )
            theirs = services.invalidation_request(
                observation=Observation.objects.get(pk=self.their_observation), user=self.other_tester,
                reason="theirs",
            )  # fmt: skip
            self.asked = (mine.pk, theirs.pk)
        return self.asked

    def user(self, role: str) -> AbstractBaseUser:
        return {"roleless": self.roleless, "tester": self.tester, "device": self.device.user}[role]

    def api(self, role: str) -> APIClient:
        """The role's API credentials: a JWT for people, the device's token for the device."""
        client = APIClient()
        if role == "device":
            client.credentials(HTTP_AUTHORIZATION=f"Device {self.device_token}")
        else:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(self.user(role))}")
        return client

    def browser(self, role: str) -> Client:
        """Signed in with a session (a device's service user too: the strongest case for a device)."""
        client = Client()
        client.force_login(self.user(role))
        return client

    def secrets(self) -> list[str]:
        """Text that only SPC data or others' rows put in a page."""
        return [self.plant.product.code, "ELSEWHERE", f'data-characteristic-id="{self.dia.pk}"']


@pytest.fixture
def world(plant: Plant, device: tuple[Any, str]) -> World:
    return World(plant, device)


# --- Classified: nothing escapes the tables ---------------------------------------------------------


@pytest.mark.django_db
def test_every_api_operation_is_classified() -> None:
    operations = schema_operations()
    assert sorted(set(operations) - set(API)) == [], "new API operations: say who gets what in API"
    assert sorted(set(API) - set(operations)) == [], "operations in API that the schema no longer has"


@pytest.mark.django_db
def test_every_route_is_classified(world: World) -> None:
    """Every URL-conf route: an API route the schema covers, one listed outside it, or a page."""
    covered = {resolve(api_path(operation, world)).url_name for operation in API}
    unclassified = []
    for route, name in url_routes():
        if route.startswith("api/v1/"):
            known = name in covered or name in API_OUTSIDE_SCHEMA
        else:
            known = name in PAGES or name.startswith("admin:")
        if not known:
            unclassified.append((route, name))
    assert unclassified == [], "new routes: classify them in API, API_OUTSIDE_SCHEMA or PAGES"
    stale = set(PAGES) - {name for _, name in url_routes()}
    assert stale == set(), "pages in PAGES that the URL conf no longer has"


def test_every_socket_is_classified() -> None:
    assert sorted(str(p.pattern) for p in websocket_urlpatterns) == sorted(SOCKETS)


# --- The API walk ----------------------------------------------------------------------------------


def _request(client: APIClient, operation: str, world: World) -> Any:
    method, _ = operation.split(" ", 1)
    return getattr(client, method.lower())(api_path(operation, world), {}, format="json")


def _ids(response: Any) -> set[int]:
    body = response.json()
    return {row["id"] for row in body["results"]}


def _own_checks(world: World) -> dict[tuple[str, str], Callable[[APIClient], None]]:
    """What `own` means, per operation and role: the caller's rows present, others' absent."""
    plant = world.plant
    mine = {item.pk for item in plant.items}

    def me_items(client: APIClient) -> None:
        response = client.get("/api/v1/me/items/")
        assert response.status_code == 200, response.content
        assert _ids(response) == mine  # nothing confirmed yet: each still has tests due

    def items(client: APIClient) -> None:
        assert _ids(client.get("/api/v1/items/")) == mine
        assert client.get(f"/api/v1/items/{plant.items[1].pk}/").json()["serial"] == "0002"
        assert client.get(f"/api/v1/items/{world.their_item.pk}/").status_code == 404

    def tests(client: APIClient) -> None:
        assert _ids(client.get("/api/v1/tests/")) == {plant.dia.pk, plant.wall.pk}  # plan RING's
        assert client.get(f"/api/v1/tests/{plant.wall.pk}/").json()["code"] == "WALL"
        assert client.get(f"/api/v1/tests/{world.foreign_test.pk}/").status_code == 404

    def tester_observations(client: APIClient) -> None:
        assert _ids(client.get("/api/v1/observations/")) == {world.own_observation}
        assert client.get(f"/api/v1/observations/{world.own_observation}/").json()["values"] == [74.01]
        assert client.get(f"/api/v1/observations/{world.their_observation}/").status_code == 404

    def tester_invalidations(client: APIClient) -> None:
        mine, theirs = world.invalidations()
        own = set(Invalidation.objects.filter(observation__user=world.tester).values_list("pk", flat=True))
        assert mine in own
        assert _ids(client.get("/api/v1/invalidations/")) == own
        assert client.get(f"/api/v1/invalidations/{mine}/").json()["reason"] == "mine"
        assert client.get(f"/api/v1/invalidations/{theirs}/").status_code == 404

    def device_observations(client: APIClient) -> None:
        posted = client.post(
            "/api/v1/device/observations/",
            [{"characteristic": world.dia.pk, "lot": "L-1", "values": [74.03]}],
            format="json",
        )
        assert posted.status_code == 202, posted.content
        ids = set(posted.json()["ids"])
        listed = _ids(client.get("/api/v1/observations/"))
        assert ids <= listed
        assert listed == set(Observation.objects.filter(user=world.device.user).values_list("pk", flat=True))
        for other in (world.own_observation, world.their_observation):
            assert client.get(f"/api/v1/observations/{other}/").status_code == 404

    def scheduled_samples(client: APIClient) -> None:
        assert _ids(client.get("/api/v1/scheduled-samples/")) == {world.scheduled.pk}
        assert client.get(f"/api/v1/scheduled-samples/{world.scheduled.pk}/").json()["state"] == "due"
        assert client.get(f"/api/v1/scheduled-samples/{world.scheduled_elsewhere.pk}/").status_code == 404

    return {
        ("GET /api/v1/scheduled-samples/", "tester"): scheduled_samples,
        ("GET /api/v1/scheduled-samples/{id}/", "tester"): scheduled_samples,
        ("GET /api/v1/me/items/", "tester"): me_items,
        ("GET /api/v1/items/", "tester"): items,
        ("GET /api/v1/items/{id}/", "tester"): items,
        ("GET /api/v1/tests/", "tester"): tests,
        ("GET /api/v1/tests/{id}/", "tester"): tests,
        ("GET /api/v1/invalidations/", "tester"): tester_invalidations,
        ("GET /api/v1/invalidations/{id}/", "tester"): tester_invalidations,
        ("GET /api/v1/observations/", "tester"): tester_observations,
        ("GET /api/v1/observations/{id}/", "tester"): tester_observations,
        ("GET /api/v1/observations/", "device"): device_observations,
        ("GET /api/v1/observations/{id}/", "device"): device_observations,
    }


def _entry_checks(world: World) -> dict[tuple[str, str], Callable[[APIClient], None]]:
    """Data entry: accepted for what the caller may enter, and its status readable by the caller."""
    plant = world.plant

    def tester_observation(client: APIClient) -> None:
        response = client.post(
            "/api/v1/observations/", {"item": plant.items[2].pk, "test": plant.dia.pk, "values": [74.0]}
        )
        assert response.status_code == 202, response.content
        status = client.get(response.json()["status_url"])
        assert [row["item"] for row in [status.json()]] == [plant.items[2].pk]
        theirs = {"item": world.their_item.pk, "test": plant.dia.pk, "values": [74.0]}
        error_of(client.post("/api/v1/observations/", theirs), 403)

    def tester_sample(client: APIClient) -> None:
        body = {"characteristic_id": world.dia.pk, "measurements": [74.0], "context": {"lot": plant.lot.pk}}
        error_of(client.post("/api/v1/samples/", body, format="json"), 403)  # lot level: devices only
        body["context"]["item"] = plant.items[1].pk
        response = client.post("/api/v1/samples/", body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["sample"]["values"] == [74.0]

    def device_batch(client: APIClient) -> None:
        response = client.post(
            "/api/v1/device/observations/",
            [
                {"characteristic": world.dia.pk, "lot": "L-1", "values": [74.04]},
                {"product": "RING-74", "test": "DIA", "lot": "L-1", "values": [74.05]},
            ],
            format="json",
        )
        assert response.status_code == 202, response.content
        ids = response.json()["ids"]
        status = client.get(response.json()["status_url"])  # the status URL it is given, readable
        assert status.status_code == 200, status.content
        assert sorted(row["id"] for row in status.json()["results"]) == sorted(ids)
        assert {row["status"] for row in status.json()["results"]} == {"received"}

    def tester_invalidate(client: APIClient) -> None:
        own = world.confirmed()
        error_of(client.post(f"/api/v1/observations/{own}/invalidate/", {}, format="json"), 400, "reason")
        theirs = f"/api/v1/observations/{world.their_observation}/invalidate/"
        error_of(client.post(theirs, {"reason": "x"}, format="json"), 404)
        response = client.post(f"/api/v1/observations/{own}/invalidate/", {"reason": "x"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["invalidation"]["status"] == "requested"

    def tester_amend(client: APIClient) -> None:
        own = world.confirmed()
        body = {"values": [74.0], "reason": "typo"}
        error_of(
            client.post(f"/api/v1/observations/{world.their_observation}/amend/", body, format="json"), 404
        )
        response = client.post(f"/api/v1/observations/{own}/amend/", body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["invalidation"]["amended_values"] == [74.0]

    def tester_retest(client: APIClient) -> None:
        own = world.confirmed()
        body = {"values": [74.0]}
        error_of(
            client.post(f"/api/v1/observations/{world.their_observation}/retest/", body, format="json"), 404
        )
        error_of(
            client.post(f"/api/v1/observations/{own}/retest/", body, format="json"), 409
        )  # not invalidated

    def tester_verify(client: APIClient) -> None:
        own = world.confirmed()
        response = client.post("/api/v1/observations/verify/", {"observations": [own]}, format="json")
        assert "yourself" in error_of(response, 403)["message"]
        services.observations_process(ids=[world.their_observation])
        response = client.post(
            "/api/v1/observations/verify/", {"observations": [world.their_observation]}, format="json"
        )
        assert "needs no verification" in error_of(response, 409)["message"]

    def tester_close(client: APIClient) -> None:
        theirs = f"/api/v1/scheduled-samples/{world.scheduled_elsewhere.pk}/close/"
        error_of(client.post(theirs, {"reason_code": "line_stopped"}, format="json"), 404)
        mine = f"/api/v1/scheduled-samples/{world.scheduled.pk}/close/"
        error_of(client.post(mine, {}, format="json"), 400, "reason_code")
        response = client.post(mine, {"reason_code": "line_stopped"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["state"] == "missed"

    return {
        ("POST /api/v1/scheduled-samples/{id}/close/", "tester"): tester_close,
        ("POST /api/v1/observations/{id}/invalidate/", "tester"): tester_invalidate,
        ("POST /api/v1/observations/{id}/amend/", "tester"): tester_amend,
        ("POST /api/v1/observations/{id}/retest/", "tester"): tester_retest,
        ("POST /api/v1/observations/verify/", "tester"): tester_verify,
        ("POST /api/v1/observations/", "tester"): tester_observation,
        ("POST /api/v1/samples/", "tester"): tester_sample,
        ("POST /api/v1/device/observations/", "device"): device_batch,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_api_walk(world: World, role: str) -> None:
    own, entry = _own_checks(world), _entry_checks(world)
    wrong: list[str] = []
    for operation, expected in API.items():
        outcome = expected[role]
        client = world.api(role)
        if outcome in (OWN, ENTRY):
            (own if outcome == OWN else entry)[(operation, role)](client)
            continue
        response = _request(client, operation, world)
        status = response.status_code
        if outcome == DENIED and status != 403:
            wrong.append(f"{operation}: {status}, expected 403")
        elif outcome == DENIED:
            error_of(response, 403)
        elif outcome == NOT_DEVICE_CREDENTIALS and status != 401:
            wrong.append(f"{operation}: {status}, expected 401")
        elif outcome == SIGN_IN and (status == 200 or "access" in response.content.decode()):
            wrong.append(f"{operation}: {status} with a token for an empty body")
        elif outcome == SELF:
            body = response.json()
            assert (status, body["username"]) == (200, world.user(role).get_username()), body
        elif outcome == NO_DATA and (status, response.content) != (200, b'{"ok":true}'):
            wrong.append(f"{operation}: {status} {response.content[:200]!r}, expected 200 {{ok: true}}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_api_index_has_links_only(world: World, role: str) -> None:
    response = world.api(role).get("/api/v1/")
    assert response.status_code == 200
    assert all(isinstance(url, str) and url.startswith("http") for url in response.json().values())


# --- The page walk ---------------------------------------------------------------------------------


def _check_page(world: World, role: str, name: str, outcome: str, response: Any) -> str | None:
    status = response.status_code
    body = response.content.decode(errors="replace")
    secrets = world.secrets()
    if outcome == WORKLIST:  # the tester's own product: the samples due of it name it
        secrets = [secret for secret in secrets if secret != world.plant.product.code]
    leaked = [secret for secret in secrets if secret in body]
    if leaked:
        return f"{name}: shows {leaked}"
    expected_status = {
        FORBIDDEN: 403, NO_ACCESS: 200, NOTHING_TO_DO: 200, WORKLIST: 200, SIGN_IN_FORM: 200,
        ALREADY_SIGNED_IN: 302, POST_ONLY: 405, DOCS: 200, API_NOT_FOUND: 404, TO_ADMIN_SIGN_IN: 302,
    }[outcome]  # fmt: skip
    if status != expected_status:
        return f"{name}: {status}, expected {expected_status} ({outcome})"
    if outcome == NO_ACCESS and ("data-no-access" not in body or "data-characteristic-id" in body):
        return f"{name}: no 'no access' notice, or a characteristic on the page"
    worklist_loads = re.search(r'<p class="loading" data-worklist-loading role="status">', body)
    if outcome == NOTHING_TO_DO and worklist_loads:
        return f"{name}: the worklist has work for a user with no items"
    if outcome == WORKLIST and not worklist_loads:
        return f"{name}: the worklist has no work for the tester"
    if outcome == WORKLIST and f'data-scheduled-sample="{world.scheduled.pk}"' not in body:
        return f"{name}: the worklist does not show the sample due of the tester's product"
    if outcome == TO_ADMIN_SIGN_IN and not response["Location"].startswith("/admin/login/"):
        return f"{name}: sent to {response['Location']}"
    return None


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_page_walk(world: World, role: str) -> None:
    values = {"pk": str(world.dia.pk)}
    wrong = []
    browser = world.browser(role)
    for route, name in url_routes():
        if route.startswith("api/v1/"):
            continue  # walked as API operations
        outcome = ADMIN_PAGES[role] if name.startswith("admin:") and name not in PAGES else PAGES[name][role]
        path = concrete(route, {**values, "pk": str(world.plant.lot.pk)} if name == "web-lot" else values)
        problem = _check_page(world, role, name, outcome, browser.get(path))
        if problem:
            wrong.append(f"{path} {problem}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.django_db
def test_the_secrets_are_there_for_a_role_that_reads_them(world: World, manager: AbstractBaseUser) -> None:
    """So the walks above cannot pass by finding nothing anywhere: a manager's overview and
    chart show what the three must not see."""
    browser = Client()
    browser.force_login(manager)
    for path in ("/", f"/charts/{world.dia.pk}/", "/kiosk/?site=&area=&line="):
        body = browser.get(path).content.decode()
        assert world.plant.product.code in body, path
        assert f'data-characteristic-id="{world.dia.pk}"' in body, path


# --- The socket walk -------------------------------------------------------------------------------


async def _socket_outcome(path: str, token: str, characteristic: int) -> tuple[str, Any]:
    comm = communicator(path, token=token)
    connected, _ = await comm.connect()
    assert connected
    try:
        if await comm.receive_nothing(timeout=0.3):
            await comm.send_json_to({"type": "subscribe", "characteristic_ids": [characteristic]})
            answer = await comm.receive_json_from(timeout=2)
            quiet = await comm.receive_nothing(timeout=0.3)
            return NOT_READABLE, (answer, quiet)
        first = await comm.receive_json_from(timeout=2)
        return CLOSED_4403, (first, await close_code(comm))
    finally:
        await comm.disconnect()


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("role", ROLES)
def test_the_socket_walk(plant: Plant, device: tuple[Any, str], role: str) -> None:
    world = World(plant, device)
    token = access_token(world.user(role))
    wrong = []
    for pattern, expected in SOCKETS.items():
        path = concrete(pattern, {})
        outcome, detail = async_to_sync(_socket_outcome)(path, token, world.dia.pk)
        want = expected[role]
        if outcome != want:
            wrong.append(f"{path}: {outcome} {detail}, expected {want}")
        elif outcome == NOT_READABLE:
            answer, quiet = detail
            if answer != {
                **answer,
                "type": "error",
                "code": "not_readable",
                "characteristic_ids": [world.dia.pk],
            }:
                wrong.append(f"{path}: {answer}")
            elif not quiet:
                wrong.append(f"{path}: more after the refusal")
        else:
            first, code = detail
            if (first["type"], code) != ("error", 4403):
                wrong.append(f"{path}: {first} then close {code}")
    assert wrong == [], "\n".join(wrong)
