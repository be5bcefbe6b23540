"""MQTT and Sparkplug B ingestion (`manage.py mqtt_listen`, filled by the MQTT bridge issue)."""
