"""The product's settings with the bench's URLConf (bench/yardstick_urls.py): only the benchmark
serves the yardstick viewset; gunicorn gets DJANGO_SETTINGS_MODULE=bench.yardstick_settings."""

from config.settings import *  # noqa: F403 - every product setting, unchanged

ROOT_URLCONF = "bench.yardstick_urls"
