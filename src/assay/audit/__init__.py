"""Clinical audit metrics with bootstrap confidence intervals, subgroup tables and calibration.

Django-free and free of the other assay packages, so a host's evaluation script can import it as well as
the server (docs/audit-metrics.md). Needs the ``audit`` extra (NumPy, SciPy, scikit-learn).
"""
