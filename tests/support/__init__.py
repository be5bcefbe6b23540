"""What the tests share: the plant world and its fixtures, the process launchers (Celery workers,
Redis and fault helpers, daphne, the MQTT listener and Mosquitto) and the page helpers. No test
module imports another test module (tests/project/test_test_imports.py): they import from here."""
