from django.apps import AppConfig


class ObservationsConfig(AppConfig):
    name = "apps.observations"
    label = "observations"
    verbose_name = "Observations"

    def ready(self) -> None:
        from apps.observations.models import Invalidation, Observation
        from apps.observations.services.corrections import invalidation_content
        from apps.observations.services.verification import observation_content
        from apps.signatures.services import signed_content_register

        # What a signature on each record binds to (signatures_of tells whether it still fits).
        signed_content_register(Invalidation, invalidation_content)
        signed_content_register(Observation, observation_content)
