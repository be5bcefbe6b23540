from django.conf import settings
from django.db import models


class Device(models.Model):
    """A machine that posts observations: a gauge, a PLC gateway, a LIMS connector.

    Each device acts as its own user in the Device group, so every observation
    records who sent it. Only a SHA-256 of the token is stored; the token is
    shown once, when it is issued.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="device")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False, help_text="To recognise a token in logs.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
