"""Assay's settings plus the benchmark's baseline endpoints (``bench_urls``), for bench servers only.

The product's URL conf never has these views; ``bench/platform_harness.py`` serves with this module.
"""

from assay.server.settings import *  # noqa: F403 - the product's settings, unchanged but for the URL conf

ROOT_URLCONF = "bench_urls"
