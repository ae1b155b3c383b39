"""Clinical audit metrics with bootstrap confidence intervals, subgroup tables and calibration.

Django-free and free of the other assay packages, so a host's evaluation script can import it as well as
the server (docs/audit-metrics.md). Needs the ``audit`` extra (NumPy, SciPy, scikit-learn).
"""

from assay.audit.binary import BinaryTask
from assay.audit.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Task, figures
from assay.audit.calibration import CalibrationTask, ReliabilityBin
from assay.audit.cases import Cases, from_rows
from assay.audit.figures import Estimate, Figure
from assay.audit.inputs import AuditInputError
from assay.audit.multiclass import MulticlassTask
from assay.audit.ordinal import OrdinalTask
from assay.audit.regression import RegressionTask
from assay.audit.subgroups import DEFAULT_MIN_N, SubgroupReport, subgroup_report
from assay.audit.summary import interval, summarise

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_MIN_N",
    "DEFAULT_RESAMPLES",
    "AuditInputError",
    "BinaryTask",
    "CalibrationTask",
    "Cases",
    "Estimate",
    "Figure",
    "MulticlassTask",
    "OrdinalTask",
    "RegressionTask",
    "ReliabilityBin",
    "SubgroupReport",
    "Task",
    "figures",
    "from_rows",
    "interval",
    "subgroup_report",
    "summarise",
]
