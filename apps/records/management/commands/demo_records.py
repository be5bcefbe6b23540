"""Demo lot records on top of demo_setup and demo_work, for `make run`: a lab lot ready to release
(every required test entered by `tester` and verified, signed, by `lab2`) and a lab lot blocked by
an open out-of-spec investigation. Safe to run again.

The results take the paths of the requests and workers they stand for: the tester's entries, the
observations.in processing, the verification with lab2's electronic signature (re-authenticated
with the password demo_setup gave lab2), the out-of-spec investigation the pipeline's
`records.oos_open` opens, and the calculation. They run here, synchronously, because the workers
start after the seed: the lots' reviews say what they say from the web's first page. It lives here,
not in demo_work, because investigations are apps.records', above apps.calculations.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.calculations.management.commands.demo_work import LAB_PRODUCT, lab_lot_open
from apps.calculations.services import characteristics_calculate
from apps.config.management.commands.demo_setup import credentials_path, demo_password
from apps.config.models import Product, Test
from apps.observations import services as observation_services
from apps.observations.choices import LotStatus, ObservationSource
from apps.observations.models import Lot, Observation
from apps.observations.selectors import observations_with_verification
from apps.records.models import OosInvestigation
from apps.records.services import oos_investigations_open
from apps.signatures.choices import SignatureMeaning, SignedAction
from apps.signatures.services import Signer, signer_check

READY_LOT, BLOCKED_LOT = "LAB-RING-74-2", "LAB-RING-74-3"
# Each item's results on RING-FINAL, all within the specifications. Three items: the ring
# diameter's chart takes subgroups of 5 and a subgroup never mixes lots, so these lots' diameters
# wait for their lot to close and make no point among the simulator's: no pattern of its special
# causes completes on them, and no violation waits for acknowledgement on a lot to be released.
RESULTS: list[dict[str, list[float]]] = [
    {"RING-DIA": [74.004], "RING-WALL": [4.01, 3.99, 4.02], "SURF-DEF": [1]},
    {"RING-DIA": [73.996], "RING-WALL": [3.98, 4.0, 4.01], "SURF-DEF": [0]},
    {"RING-DIA": [74.009], "RING-WALL": [4.02, 4.03, 4.0], "SURF-DEF": [2]},
]
# The blocked lot's one result out of specification: the second item's diameter, above the USL 74.05.
OUT_OF_SPEC = (1, "RING-DIA", [74.068])


class Command(BaseCommand):
    help = "Lab lots for the lot review: one ready to release, one blocked by an investigation (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects.in_bulk(["operations", "tester", "lab2"], field_name="username")
        product = Product.objects.filter(code=LAB_PRODUCT).first()
        if len(users) < 3 or product is None:
            raise CommandError("Run `manage.py demo_setup` first: it creates the demo users and products.")
        missing = [
            number
            for number in (READY_LOT, BLOCKED_LOT)
            if not Lot.objects.filter(product=product, number=number).exists()
        ]
        if not missing:
            return
        signer = self._signer(users["lab2"])
        if signer is None:
            self.stdout.write(
                f"lab lots {', '.join(missing)} not seeded: lab2 verifies their results, signed, and "
                f"{credentials_path()} holds no current password of lab2."
            )
            return
        for number in missing:
            lot = self._lot(
                product=product, number=number, users=users, signer=signer,
                out_of_spec=OUT_OF_SPEC if number == BLOCKED_LOT else None,
            )  # fmt: skip
            self.stdout.write(self._summary(lot))

    def _signer(self, lab2: User) -> Signer | None:
        """lab2 re-authenticated to sign verifications, with the password demo_setup gave lab2.
        Checked first: a wrong password would go into the audit trail as a refused signature."""
        password = demo_password(lab2.get_username())
        if password is None or not lab2.check_password(password):
            return None
        return signer_check(
            user=lab2, action=SignedAction.VERIFICATION, meaning=SignatureMeaning.VERIFIED,
            password=password, source="system",
        )  # fmt: skip

    def _lot(
        self, *, product: Product, number: str, users: dict[str, User], signer: Signer,
        out_of_spec: tuple[int, str, list[float]] | None,
    ) -> Lot:  # fmt: skip
        tester = users["tester"]
        with transaction.atomic():
            lot = lab_lot_open(
                product=product, number=number, count=len(RESULTS), lead=users["operations"], tester=tester
            )
            observation_services.lot_status_set(
                lot=lot, status=LotStatus.IN_TESTING, user=users["operations"]
            )
            tests = Test.objects.in_bulk(list(RESULTS[0]), field_name="code")
            rows = []
            for index, (item, results) in enumerate(zip(lot.items.order_by("serial"), RESULTS, strict=True)):
                for code, values in results.items():
                    if out_of_spec is not None and out_of_spec[:2] == (index, code):
                        values = out_of_spec[2]
                    rows.append({"item": item.pk, "test": tests[code].pk, "values": values})
            entries = observation_services.tester_entries_resolve(rows=rows, user=tester, batch=True)
            ids = observation_services.observations_record(
                entries=entries, source=ObservationSource.MANUAL, user=tester, queue=False
            ).ids
            observation_services.observations_process(ids=ids)
            # Each result its plan entry asks a second person to verify (all of RING-FINAL's, unless
            # the plan was released before it asked): lab2's, signed.
            annotated = observations_with_verification(Observation.objects.filter(pk__in=ids))
            due = list(annotated.filter(to_be_verified=True))  # type: ignore[misc]
            if due:
                observation_services.results_verify(
                    observations=due, user=signer.user, signer=signer, source="system"
                )
            # What the pipeline's records.oos_open does for these results (it opens nothing twice).
            oos_investigations_open(observation_ids=ids)
        # What the calculation worker does once the results are committed: judge the lot's samples.
        charts = Observation.objects.filter(pk__in=ids, characteristic__isnull=False).values_list(
            "characteristic_id", flat=True
        )
        characteristics_calculate(characteristic_ids=sorted(set(charts)))
        return lot

    @staticmethod
    def _summary(lot: Lot) -> str:
        investigations = list(
            OosInvestigation.objects.filter(lot=lot).select_related("test", "observation__item")
        )
        if not investigations:
            return (
                f"lab lot {lot.number} of {lot.product.code}: every test entered by tester and verified "
                "by lab2, ready to release"
            )
        opened = ", ".join(
            f"#{i.pk} ({i.test.code} on item {i.observation.item.serial if i.observation.item else '—'})"
            for i in investigations
        )
        return (
            f"lab lot {lot.number} of {lot.product.code}: blocked by the out-of-spec investigation {opened}"
        )
