"""The lot records tests' world (tests/records): the plant's lot L-1 under review (items
0001–0003 on plan RING: DIA ×1, WALL ×3) with DIA's specification 70–75 mm, results entered by the
tester and confirmed by the pipeline."""

from django.contrib.auth.models import AbstractBaseUser

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.observations import services as observation_services
from apps.observations.choices import LotStatus
from tests.support.plant import Plant

PASSWORD = "pw-for-tests-only"


class Review:
    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.lot = plant.lot
        self.dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        config_services.characteristic_update(
            characteristic=self.dia, data={"lsl": 70.0, "usl": 75.0}, reason="specification of the drawing"
        )
        observation_services.lot_status_set(lot=self.lot, status=LotStatus.IN_TESTING)

    def enter(self, item: int, test: str, values: list[float]) -> int:
        """A tester's result, confirmed by the pipeline; its id."""
        test_row = getattr(self.plant, test.lower())
        (pk,) = self.plant.record({"item": self.plant.items[item], "test": test_row, "values": values})
        observation_services.observations_process(ids=[pk])
        return pk

    def complete(self, *, skip: tuple[int, str] | None = None) -> dict[tuple[int, str], int]:
        """Every required test done, in spec; `skip` leaves one (item index, test code) out."""
        done = {}
        for index in range(3):
            for code, values in (("DIA", [72.0]), ("WALL", [2.0, 2.1, 2.0])):
                if (index, code) != skip:
                    done[(index, code)] = self.enter(index, code, values)
        return done


def signature(user: AbstractBaseUser, meaning: str = "released") -> dict[str, str]:
    return {"password": PASSWORD, "meaning": meaning, "username": user.get_username()}
