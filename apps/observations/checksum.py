"""The lot checksum's arithmetic (DESIGN.md "Lot checksum").

Every confirmed observation gets a 64-bit hash of (id, values); a lot's checksum is the sum mod
2^64 of its observations' hashes, so it does not depend on their order. Folding (subgroups.py)
writes it on each observation; the calculation worker compares it with the one its lot statistics
hold. Both import it from here, so neither depends on the other's code.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence

_MOD = 1 << 64
_SIGN = 1 << 63


def _signed(value: int) -> int:
    """An unsigned 64-bit number as the signed one a BIGINT column holds (same bits)."""
    value %= _MOD
    return value - _MOD if value >= _SIGN else value


def observation_hash(*, observation_id: int, values: Sequence[float]) -> int:
    """The 64-bit hash of (id, values), as a signed integer."""
    payload = json.dumps([observation_id, [float(v) for v in values]], separators=(",", ":"))
    digest = hashlib.blake2b(payload.encode(), digest_size=8).digest()
    return _signed(int.from_bytes(digest, "big"))


def checksum_add(checksum: int, *hashes: int) -> int:
    """checksum + hashes mod 2^64 (order does not matter), as a signed integer."""
    return _signed(checksum + sum(hashes))


def checksum_of(hashes: Iterable[int]) -> int:
    return checksum_add(0, *hashes)
