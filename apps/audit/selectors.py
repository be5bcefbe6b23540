"""Reads of the audit trail."""

from dataclasses import dataclass

from django.db.models import QuerySet

from apps.audit.chain import GENESIS_HASH, entry_chained_content, entry_hash
from apps.audit.models import AuditChainHead, AuditEntry


def audit_entry_queryset() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.select_related("user", "content_type")


@dataclass(frozen=True)
class ChainCheck:
    """The result of walking the hash chain: how many entries fit, and the first that does not
    (None when the chain is intact) with why."""

    checked: int
    broken: AuditEntry | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.problem


def audit_chain_verify() -> ChainCheck:
    """Walk the chain by position: each entry must follow the one before (no position missing), name
    its hash as `prev_hash`, and have the hash of its own content. The head must be the last entry."""
    prev_seq, prev_hash, checked = 0, GENESIS_HASH, 0
    last: AuditEntry | None = None
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.seq != prev_seq + 1:
            missing = f"{prev_seq + 1}" if entry.seq == prev_seq + 2 else f"{prev_seq + 1} to {entry.seq - 1}"
            return ChainCheck(checked, entry, f"the entries before it at position {missing} are missing")
        if entry.prev_hash != prev_hash:
            return ChainCheck(
                checked, entry, f"it names {entry.prev_hash[:12]}… as the hash before it, but entry "
                f"{prev_seq} has {prev_hash[:12]}… (an entry before it was removed or replaced)",
            )  # fmt: skip
        if entry_hash(entry.prev_hash, entry_chained_content(entry)) != entry.hash:
            return ChainCheck(
                checked, entry, "its content does not match its hash (it was changed after it was written)"
            )
        prev_seq, prev_hash, last, checked = entry.seq, entry.hash, entry, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.seq, head.hash) != (prev_seq, prev_hash):
        return ChainCheck(
            checked, last, f"the chain's head is at position {head.seq}, but the last entry is at "
            f"{prev_seq} (the entries after it were removed)",
        )  # fmt: skip
    return ChainCheck(checked)
