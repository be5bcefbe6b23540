"""Check the audit trail's hash chain: `manage.py audit_verify`. Exits 1 naming the first entry
that does not fit."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain and name the first entry that does not fit."

    def handle(self, *args: Any, **options: Any) -> None:
        check = audit_chain_verify()
        if check.intact:
            self.stdout.write(f"{check.checked} entries checked, chain intact.")
            return
        entry = check.broken
        self.stdout.write(f"{check.checked} entries checked before the first that does not fit.")
        if entry is None:
            raise CommandError(f"The chain does not fit: {check.problem}.")
        raise CommandError(
            f"Entry {entry.seq} (id {entry.pk}, {entry.at.isoformat()}, {entry.get_action_display()} "
            f"{entry.object_repr}) does not fit: {check.problem}."
        )
