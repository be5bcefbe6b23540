"""Bind each existing device to the characteristics it fed before devices had a binding.

Devices used to post anywhere. Binding them to nothing would refuse every post of a running plant
on upgrade, and a gauge that is answered 403 usually drops the reading: data lost until a
specialist binds it. So a device keeps what it has been feeding: the characteristics of its
confirmed REST posts (source "device"; the MQTT bridge's device is never checked). Everything
else is refused from now on; a device that never posted a confirmed value is bound to nothing.
"""

from django.db import migrations


def bind(apps, schema_editor):
    Device = apps.get_model("config", "Device")
    Observation = apps.get_model("observations", "Observation")
    devices = dict(Device.objects.values_list("user_id", "pk"))
    if not devices:
        return
    fed = (
        Observation.objects.filter(
            source="device", status="confirmed", characteristic__isnull=False, user_id__in=list(devices)
        )
        .values_list("user_id", "characteristic_id")
        .distinct()
    )
    through = Device.characteristics.through
    through.objects.bulk_create(
        [through(device_id=devices[user_id], characteristic_id=c_id) for user_id, c_id in fed],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("observations", "0007_observation_fk_indexes_covered"),
        ("config", "0005_device_bound_characteristics_products"),
    ]

    operations = [migrations.RunPython(bind, migrations.RunPython.noop)]
