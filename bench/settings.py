"""Benchmark-only settings: the product's settings with `bench.urls` (the product plus the ceiling view).

Only the benchmarks select this module (DJANGO_SETTINGS_MODULE=bench.settings); the product's
own URLconf never imports anything from bench/.
"""

from deplite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
