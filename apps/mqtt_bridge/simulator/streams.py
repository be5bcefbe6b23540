"""What the plant simulator publishes: the process model of a characteristic (read from its limits
and specification) and a value stream (in-control noise with episodes of special causes, so that every
Nelson rule fires now and then). Pure and seeded, so tests run them through the SPC engine.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from dataclasses import dataclass
from enum import StrEnum

from apps.config.choices import MQTT_SOURCES, TestKind
from apps.config.models import Characteristic
from apps.config.selectors import current_limits_prefetch

# --- Process model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessModel:
    """How one characteristic's process behaves when nothing special happens."""

    characteristic_id: int
    name: str
    source: str  # DataSource.TAG or DataSource.SPARKPLUG
    tag: str
    kind: str  # TestKind
    mean: float
    sigma: float  # of individual values
    subgroup_size: int = 1
    decimals: int = 4
    low: float | None = None  # the test's plausible range: a gauge reads nothing outside it
    high: float | None = None
    line: str = ""
    cell: str = ""


def _mean(characteristic: Characteristic, center: float | None) -> float:
    test = characteristic.test
    candidates = [
        center,
        characteristic.target,
        _midpoint(characteristic.lsl, characteristic.usl),
        _midpoint(test.plausible_min, test.plausible_max),
        characteristic.usl if characteristic.lsl is None else characteristic.lsl,
    ]
    return next((value for value in candidates if value is not None), 0.0)


def _midpoint(low: float | None, high: float | None) -> float | None:
    return None if low is None or high is None else (low + high) / 2


def process_model_of(characteristic: Characteristic) -> ProcessModel:
    """Mean: the current limits' centre, else the target, else the spec midpoint. Sigma: the limits',
    else a quarter of the spec half-width (Cp 1.33), else 1 % of the mean. Needs `limit_versions`
    (current_limits_prefetch) and the test loaded."""
    versions = getattr(characteristic, "limit_versions", None)
    limits = versions[0] if versions else characteristic.limits.order_by("-version").first()
    mean = _mean(characteristic, limits.center if limits else None)
    if limits is not None:
        sigma = limits.sigma
    elif characteristic.lsl is not None and characteristic.usl is not None:
        sigma = (characteristic.usl - characteristic.lsl) / 8
    else:
        sigma = abs(mean) / 100 or 1.0
    test = characteristic.test
    return ProcessModel(
        characteristic_id=characteristic.pk,
        name=str(characteristic),
        source=characteristic.data_source,
        tag=characteristic.tag or "",
        kind=test.kind,
        mean=mean,
        sigma=sigma,
        subgroup_size=characteristic.subgroup_size,
        decimals=test.decimals + 1 if test.kind == TestKind.VARIABLE else 0,
        low=test.plausible_min,
        high=test.plausible_max,
        line=characteristic.line,
        cell=characteristic.cell,
    )


def simulated_models() -> list[ProcessModel]:
    """The active characteristics fed over MQTT (JSON topic or Sparkplug B metric), by id."""
    characteristics = (
        Characteristic.objects.filter(active=True, data_source__in=MQTT_SOURCES)
        .select_related("product", "test")
        .prefetch_related(current_limits_prefetch())
        .order_by("pk")
    )
    return [process_model_of(characteristic) for characteristic in characteristics]


# --- Special causes -----------------------------------------------------------------------------------


class Episode(StrEnum):
    SPIKE = "spike"
    SHIFT = "shift"
    TREND = "trend"
    ALTERNATION = "alternation"
    STRATIFICATION = "stratification"
    MIXTURE = "mixture"


# The Nelson rules (default parameters) each episode is built to trigger on the location chart.
EPISODE_RULES: dict[Episode, tuple[int, ...]] = {
    Episode.SPIKE: (1,),
    Episode.SHIFT: (2, 5, 6),
    Episode.TREND: (3,),
    Episode.ALTERNATION: (4,),
    Episode.STRATIFICATION: (7,),
    Episode.MIXTURE: (8,),
}

# In-control points between two episodes at least: long enough for the rule 2 window (9) to clear.
MIN_CALM_POINTS = 10


def episode_points(kind: Episode, rng: random.Random) -> list[float]:
    """Where the plotted points of one episode lie, in sigmas of the plotted statistic from the mean.

    Each pattern clears its rule's threshold with a margin, so the default Nelson rules see it every
    time: a shift of 12 points at 1.6–2.9σ (rule 2: 9 on one side; rule 5: 2 of 3 beyond 2σ; rule 6:
    4 of 5 beyond 1σ), a trend of 8 points rising by 0.55σ ± 0.2σ a step (rule 3: 6 points) without
    leaving the limits, 16 alternating points (rule 4: 14), 16 points within 0.3σ (rule 7: 15 within
    1σ) and 10 points at 1.5–2.5σ on either side (rule 8: 8 beyond 1σ)."""
    sign = rng.choice((-1.0, 1.0))
    if kind is Episode.SPIKE:
        return [sign * rng.uniform(4.0, 5.0)]
    if kind is Episode.SHIFT:
        return [sign * rng.uniform(1.6, 2.9) for _ in range(12)]
    if kind is Episode.TREND:
        return [sign * (-1.0 + 0.55 * step + rng.uniform(-0.1, 0.1)) for step in range(8)]
    if kind is Episode.ALTERNATION:
        return [sign * (-1) ** step * rng.uniform(0.4, 1.4) for step in range(16)]
    if kind is Episode.STRATIFICATION:
        return [rng.uniform(-0.3, 0.3) for _ in range(16)]
    return [rng.choice((-1.0, 1.0)) * rng.uniform(1.5, 2.5) for _ in range(10)]


@dataclass(frozen=True)
class EpisodeSpan:
    """An episode of a stream: its kind, first subgroup (0-based) and length in subgroups."""

    kind: Episode
    start: int
    length: int


class ValueStream:
    """The values of one characteristic, one at a time, as a gauge would read them.

    Values come a subgroup at a time (the pipeline groups consecutive values by `subgroup_size`).
    In control they are independent normal draws. During an episode each subgroup is placed so its
    mean lands on the episode's point: the X̄ chart (σ/√n) sees the same pattern an I chart sees
    for n = 1, and the ranges keep their usual spread. Episodes start after an exponentially
    distributed calm stretch (mean `calm_points` subgroups, at least MIN_CALM_POINTS) and run through
    the kinds in a shuffled order, so each shows up within a round of six; `calm_points` None turns
    them off. Attribute characteristics (counts, pass/fail) stay in control.
    """

    def __init__(self, model: ProcessModel, *, rng: random.Random, calm_points: float | None) -> None:
        self.model = model
        self.episodes: list[EpisodeSpan] = []
        self.subgroups = 0  # subgroups drawn so far
        self._rng = rng
        self._calm_points = calm_points if model.kind == TestKind.VARIABLE else None
        self._pending: deque[float] = deque()
        self._episode: deque[float] = deque()
        self._kinds: list[Episode] = []
        self._calm_left = self._calm_stretch()

    @property
    def injected(self) -> Counter[Episode]:
        return Counter(span.kind for span in self.episodes)

    def next_value(self) -> float:
        if not self._pending:
            self._pending.extend(self._subgroup())
        return self._pending.popleft()

    def values(self, count: int) -> list[float]:
        return [self.next_value() for _ in range(count)]

    def _calm_stretch(self) -> int:
        if self._calm_points is None:
            return -1
        return max(MIN_CALM_POINTS, round(self._rng.expovariate(1 / max(self._calm_points, 1e-9))))

    def _subgroup(self) -> list[float]:
        if not self._episode and self._calm_left == 0:
            if not self._kinds:
                self._kinds = list(Episode)
                self._rng.shuffle(self._kinds)
            kind = self._kinds.pop()
            self._episode.extend(episode_points(kind, self._rng))
            self.episodes.append(EpisodeSpan(kind, self.subgroups, len(self._episode)))
            self._calm_left = self._calm_stretch()
        self.subgroups += 1
        if self._episode:
            return self._placed(self._episode.popleft())
        if self._calm_left > 0:
            self._calm_left -= 1
        return [self._in_control() for _ in range(self.model.subgroup_size)]

    def _in_control(self) -> float:
        model = self.model
        if model.kind == TestKind.DEFECTS:
            return float(_poisson(self._rng, max(model.mean, 0.1)))
        if model.kind == TestKind.DEFECTIVES:
            rate = model.mean if 0 < model.mean < 1 else 0.05
            return 1.0 if self._rng.random() < rate else 0.0
        return self._reading(self._rng.gauss(model.mean, model.sigma))

    def _placed(self, point: float) -> list[float]:
        model = self.model
        n = model.subgroup_size
        noise = [self._rng.gauss(0.0, model.sigma) for _ in range(n)]
        centre = model.mean + point * model.sigma / math.sqrt(n) - sum(noise) / n
        return [self._reading(centre + e) for e in noise]

    def _reading(self, value: float) -> float:
        model = self.model
        if model.low is not None:
            value = max(value, model.low)
        if model.high is not None:
            value = min(value, model.high)
        return round(value, model.decimals)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of defect counts."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
