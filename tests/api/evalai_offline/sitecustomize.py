"""Put on PYTHONPATH of the real evalai CLI in tests: its start-up check of PyPI ("is a newer evalai
out?", which exits 1 when one is) is answered locally with its own version, so the tests run offline
and do not break the day a new evalai is released. evalai's code is not changed."""

import json

try:
    import requests
    from requests.models import Response
except ImportError:  # not the evalai environment
    requests = None

if requests is not None:
    _get = requests.get

    def _offline_get(url, *args, **kwargs):
        if str(url).startswith("https://pypi.org/pypi/evalai/json"):
            from evalai.version import __version__

            response = Response()
            response.status_code = 200
            response._content = json.dumps({"releases": {__version__: []}}).encode()
            response.url = url
            return response
        return _get(url, *args, **kwargs)

    requests.get = _offline_get
