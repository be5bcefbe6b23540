from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "apps.records"
    label = "records"
    verbose_name = "Lot records: review, disposition, out-of-spec investigations"

    def ready(self) -> None:
        from apps.records.models import LotDisposition
        from apps.records.selectors import disposition_content
        from apps.signatures.services import signed_content_register

        # What a lot disposition's signature binds: the lot, the decision and every result as signed.
        signed_content_register(LotDisposition, disposition_content)
