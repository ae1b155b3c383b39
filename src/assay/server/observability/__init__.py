"""What an operator watches: Prometheus metrics (``/metrics``), JSON log lines with a request id that follows
a submission from submit to leaderboard, and the readiness probe (``/readyz``; ``/healthz`` is the web app's).

It sits beside the faces (``api | web | demo``): it reads the submissions app's records and follows its
signals, and nothing below imports it. README "Monitoring" lists the metrics and the log fields.
"""
