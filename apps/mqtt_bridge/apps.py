from django.apps import AppConfig


class MqttBridgeConfig(AppConfig):
    name = "apps.mqtt_bridge"
    label = "mqtt_bridge"
    verbose_name = "MQTT bridge"
