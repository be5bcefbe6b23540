"""Loading the settings in a fresh interpreter with a given environment, as a process starts up."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
CONFIG_VARS = (
    "DATABASE_URL", "REDIS_URL", "MQTT_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "LOG_LEVEL",
    "DATABASE_POOL_SIZE",
)  # fmt: skip
SHOW = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.DEBUG)"


def load_settings(tmp_path: Path, code: str = SHOW, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    clean.update(env, OPENSPC_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="openspc.settings")
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )


GOOD_KEY = "k" * 40
