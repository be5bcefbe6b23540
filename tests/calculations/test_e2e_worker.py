"""End to end through the HTTP API with a real Celery worker process (not eager mode).

A quality specialist configures a product (tests, a released plan, characteristics with
spec limits, subgroup sizes and historical control limits), an operations lead opens a
lot and hands its items to a tester, the tester posts observations (with a seeded shift
and two bad ones), and a worker process confirms them, forms samples, judges them and
keeps the statistics. Everything the worker produced is read back through the API and
compared with the SPC engine's batch results on the same values.

Characteristics: DIA n = 1 (I-MR; one value per item, shifted by 3.5 σ after item 20),
WALL n = 5 with five replicates per item (each observation is a sample by itself), LEN
n = 5 with one value per item (five items' values make a sample).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from apps.config.models import Characteristic
from spc import RuleSet
from tests.support.signing import QS_SIGNATURE
from tests.support.workers import (
    CeleryWorkers,
    Signal,
    disposition_expected,
    pipeline_idle,
    summary_expected,
    violations_expected,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

API = "/api/v1"
ITEMS = 30
SHIFT_FROM = 20  # DIA of items 21–30 is 3.5 σ high
# test code -> (replicates per item, subgroup size, spec (lsl, usl), historical (centre, sigma))
SETUP: dict[str, tuple[int, int, tuple[float, float], tuple[float, float]]] = {
    "DIA": (1, 1, (19.97, 20.04), (20.0, 0.01)),
    "WALL": (5, 5, (1.94, 2.06), (2.0, 0.02)),
    "LEN": (1, 5, (49.7, 50.3), (50.0, 0.1)),
}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json() if response.content else None


def every(client: APIClient, url: str) -> list[dict[str, Any]]:
    """All rows of a list endpoint, following its `next` links (page or cursor)."""
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        page = ok(client.get(next_url))
        rows += page["results"]
        next_url = page["next"]
    return rows


def configure(qs: APIClient) -> tuple[int, int, dict[str, dict[str, Any]]]:
    """The quality specialist's part: (product id, plan id, {test code: characteristic JSON})."""
    product = ok(qs.post(f"{API}/products/", {"code": "SHAFT-20", "name": "Shaft Ø20"}), 201)["id"]
    tests = {}
    for code, (_, _, _, (centre, sigma)) in SETUP.items():
        body = {
            "code": code, "name": code.title(), "unit": "mm", "kind": "variable", "decimals": 4,
            "plausible_min": centre - 100 * sigma, "plausible_max": centre + 100 * sigma,
        }  # fmt: skip
        tests[code] = ok(qs.post(f"{API}/tests/", body), 201)["id"]
    entries = [{"test": tests[code], "replicates": SETUP[code][0]} for code in SETUP]
    plan = ok(qs.post(f"{API}/test-plans/", {"code": "SHAFT", "name": "Shaft", "tests": entries}), 201)["id"]
    release = {"reason": "new product", "signature": QS_SIGNATURE}
    assert ok(qs.post(f"{API}/test-plans/{plan}/release/", release, format="json"))["status"] == "released"
    ok(qs.post(f"{API}/plan-assignments/", {"product": product, "plan": plan}), 201)
    created = every(qs, f"{API}/characteristics/?product={product}")
    assert sorted(c["test_code"] for c in created) == sorted(SETUP)  # the assignment made them
    characteristics = {}
    for row in created:
        _, size, (lsl, usl), (centre, sigma) = SETUP[row["test_code"]]
        body = {"subgroup_size": size, "lsl": lsl, "usl": usl, "target": centre, "reason": "drawing"}
        patched = ok(qs.patch(f"{API}/characteristics/{row['id']}/", body))
        assert patched["effective_chart_type"] == ("imr" if size == 1 else "xbar_r")
        change = ok(
            qs.post(
                f"{API}/characteristics/{row['id']}/set-limits/",
                {
                    "center": centre,
                    "sigma": sigma,
                    "reason": "Historical capability study",
                    "signature": QS_SIGNATURE,
                },
            )
        )
        assert (change["new"]["center"], change["new"]["sigma"]) == (centre, sigma)
        characteristics[row["test_code"]] = ok(qs.get(f"{API}/characteristics/{row['id']}/"))
    return product, plan, characteristics


def open_lot(ops: APIClient, *, product: int, plan: int, tester: AbstractBaseUser) -> tuple[int, list[dict]]:
    """The operations lead's part: a lot of ITEMS items on the plan, assigned to the tester."""
    lot = ok(ops.post(f"{API}/lots/", {"product": product, "number": "S-100"}), 201)["id"]
    items = ok(ops.post(f"{API}/lots/{lot}/items/", {"count": ITEMS}), 201)
    ids = [item["id"] for item in items]
    ok(ops.post(f"{API}/items/select-plans/", {"items": ids, "plans": [plan]}))
    assigned = ok(ops.post(f"{API}/items/assign/", {"items": ids, "tester": tester.pk}))
    assert {item["tester"] for item in assigned} == {tester.get_username()}
    return lot, sorted(items, key=lambda item: item["serial"])


def measurements() -> dict[str, list[list[float]]]:
    """The values each item gets, per test, in item order (seeded)."""
    rng = np.random.default_rng(20250101)
    values: dict[str, list[list[float]]] = {}
    for code, (replicates, _, _, (centre, sigma)) in SETUP.items():
        drawn = centre + sigma * rng.standard_normal((ITEMS, replicates))
        if code == "DIA":
            drawn[SHIFT_FROM:] += 3.5 * sigma
        values[code] = [[round(float(v), 6) for v in row] for row in drawn]
    return values


def what_the_tester_posts(
    items: list[dict[str, Any]], tests: dict[str, int]
) -> tuple[list[dict], list[list[dict]]]:
    """(the two bad observations, three batches of ten items' observations in item order)."""
    values = measurements()
    batches = [
        [
            {"item": item["id"], "test": tests[code], "values": values[code][i],
             "idempotency_key": f"{item['serial']}-{code}"}
            for i, item in enumerate(items[start : start + 10], start=start)
            for code in SETUP
        ]
        for start in range(0, ITEMS, 10)
    ]  # fmt: skip
    bad = [
        {"item": items[0]["id"], "test": tests["DIA"], "values": [25.0]},  # a typo: 25 for 20
        {"item": items[1]["id"], "test": tests["WALL"], "values": [2.0, 2.0, 2.0, 2.0]},  # 4 of 5
    ]
    return bad, batches


def check_samples(
    reader: APIClient, characteristic: dict[str, Any], expected: list[list[float]]
) -> list[dict]:
    """The samples, in sequence order, hold the expected values; n, mean, range, SD follow."""
    size = characteristic["subgroup_size"]
    samples = every(reader, f"{API}/samples/?characteristic={characteristic['id']}")
    assert [s["sequence"] for s in samples] == list(range(1, len(expected) + 1))
    assert [s["values"] for s in samples] == expected
    version = characteristic["current_limits"]["version"]
    assert {(s["n"], s["undersized"], s["limits_version"]) for s in samples} == {(size, False, version)}
    assert [s["mean"] for s in samples] == pytest.approx([np.mean(v) for v in expected], rel=1e-12)
    if size > 1:
        assert [s["range"] for s in samples] == pytest.approx([np.ptp(v) for v in expected], rel=1e-12)
        assert [s["sd"] for s in samples] == pytest.approx([np.std(v, ddof=1) for v in expected], rel=1e-9)
    return samples


def check_violations(
    reader: APIClient,
    characteristic: dict[str, Any],
    expected_samples: list[list[float]],
    samples: list[dict],
) -> set[Signal]:
    """Exactly the engine's violations (rule, chart, sequence, pattern); in_control agrees."""
    rules = RuleSet.from_dict(Characteristic.objects.get(pk=characteristic["id"]).rules)
    expected = violations_expected(
        expected_samples, size=characteristic["subgroup_size"], rules=rules,
        limits=characteristic["current_limits"],
    )  # fmt: skip
    listed = every(reader, f"{API}/violations/?characteristic={characteristic['id']}&page_size=500")
    got = {(v["rule"], v["chart"], v["sequence"], tuple(v["points"])) for v in listed}
    assert got == expected
    flagged = {sequence for _, _, sequence, _ in expected}
    assert [s["in_control"] for s in samples] == [s["sequence"] not in flagged for s in samples]
    return got


def check_statistics(
    reader: APIClient, characteristic: dict[str, Any], lot: int, values: list[float]
) -> dict:
    """Lot statistics (Cpk with the lot's SD) and product statistics (Cp / Cpk with the limits'
    sigma, Pp / Ppk with the overall SD) equal numpy's and the engine's on the same values."""
    lsl, usl, sigma = characteristic["lsl"], characteristic["usl"], characteristic["current_limits"]["sigma"]
    (stats,) = every(reader, f"{API}/lot-statistics/?lot={lot}&test={characteristic['test']}")
    lot_expected = summary_expected(values, lsl=lsl, usl=usl)
    assert (stats["n"], stats["observations"], stats["out_of_spec"]) == (
        lot_expected.n, ITEMS, lot_expected.out_of_spec
    )  # fmt: skip
    assert (stats["minimum"], stats["maximum"]) == (lot_expected.minimum, lot_expected.maximum)
    for name in ("mean", "sd", "cpk"):
        assert stats[name] == pytest.approx(getattr(lot_expected, name), rel=1e-9), name
    assert stats["disposition"] == disposition_expected(lot_expected)

    (totals,) = every(reader, f"{API}/product-statistics/?characteristic={characteristic['id']}")
    product_expected = summary_expected(values, lsl=lsl, usl=usl, sigma_within=sigma)
    assert (totals["n"], totals["out_of_spec"]) == (product_expected.n, product_expected.out_of_spec)
    assert (totals["minimum"], totals["maximum"]) == (product_expected.minimum, product_expected.maximum)
    assert (totals["sigma_within"], totals["sigma_source"]) == (sigma, "limits")
    assert totals["limits_version"] == characteristic["current_limits"]["version"]
    for name in ("mean", "sd", "cp", "cpk", "pp", "ppk"):
        assert totals[name] == pytest.approx(getattr(product_expected, name), rel=1e-9), name
    return stats


@pytest.mark.timeout(180)
def test_api_to_worker_to_statistics_equal_the_engine(
    api: Callable[[AbstractBaseUser | None], APIClient],
    quality_specialist: AbstractBaseUser,
    operations_lead: AbstractBaseUser,
    tester: AbstractBaseUser,
    manager: AbstractBaseUser,
    tmp_path: Path,
) -> None:
    qs, ops, me, reader = api(quality_specialist), api(operations_lead), api(tester), api(manager)
    product, plan, characteristics = configure(qs)
    lot, items = open_lot(ops, product=product, plan=plan, tester=tester)
    assert ok(me.get(f"{API}/me/items/"))["count"] == ITEMS
    bad, batches = what_the_tester_posts(items, {code: c["test"] for code, c in characteristics.items()})

    with CeleryWorkers(count=1, log_dir=tmp_path) as workers:
        rejected_ids = ok(me.post(f"{API}/observations/", bad), 202)["ids"]
        accepted = [ok(me.post(f"{API}/observations/", batch), 202)["ids"] for batch in batches]
        retry = ok(me.post(f"{API}/observations/", batches[0]), 202)  # the answer was lost; post again
        assert retry["ids"] == retry["duplicates"] == accepted[0]
        workers.wait_for(pipeline_idle, timeout=90, what="the worker to confirm and calculate")
        assert "observations.process" in workers.all_logs()
        assert "calculations.apply" in workers.all_logs()

        # Every observation confirmed, except the planted ones: rejected, with their reasons.
        rows = {o["id"]: o for o in every(reader, f"{API}/observations/?lot={lot}&page_size=500")}
        assert len(rows) == len(bad) + ITEMS * len(SETUP)
        assert {rows[pk]["status"] for ids in accepted for pk in ids} == {"confirmed"}
        assert [rows[pk]["status"] for pk in rejected_ids] == ["rejected", "rejected"]
        reasons = [[reason["code"] for reason in rows[pk]["reasons"]] for pk in rejected_ids]
        assert reasons == [["out_of_range"], ["replicate_count"]]

        values = measurements()
        for code, characteristic in characteristics.items():
            flat = [value for per_item in values[code] for value in per_item]
            size = characteristic["subgroup_size"]
            expected_samples = [flat[i : i + size] for i in range(0, len(flat), size)]
            samples = check_samples(reader, characteristic, expected_samples)
            assert {sample["lot"] for sample in samples} == {lot}
            got = check_violations(reader, characteristic, expected_samples, samples)
            stats = check_statistics(reader, characteristic, lot, flat)
            if code == "DIA":
                # The seeded shift: nine in a row above the centre complete at item 29 (rule 2),
                # points beyond 3 σ (rule 1) come only after it, values leave the spec.
                assert (2, "location", 29, tuple(range(21, 30))) in got
                beyond = {sequence for rule, chart, sequence, _ in got if (rule, chart) == (1, "location")}
                assert min(beyond, default=0) > SHIFT_FROM
                assert stats["out_of_spec"] > 0
                assert stats["disposition"] == "reject"
