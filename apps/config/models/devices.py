from django.conf import settings
from django.db import models


class Device(models.Model):
    """A machine that posts observations: a gauge, a PLC gateway, a LIMS connector.

    Each device acts as its own user in the Device group, so every observation
    records who sent it. Only a SHA-256 of the token is stored; the token is
    shown once, when it is issued. A device posts only to what it is bound to: its
    characteristics, and every test of its products; a stolen gauge token cannot
    feed another line's charts.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="device")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False, help_text="To recognise a token in logs.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    characteristics = models.ManyToManyField(
        "config.Characteristic",
        blank=True,
        related_name="devices",
        help_text="What the device may post to (a gauge on one feature).",
    )
    products = models.ManyToManyField(
        "config.Product",
        blank=True,
        related_name="devices",
        help_text="Every test of these products, including ones added later (a LIMS connector).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
