"""The refusal of a valid bundle that cannot be applied (its own module: the import and the data package
pins it resolves both raise it)."""

from __future__ import annotations

from assay.server.refusals import Refusal


class ImportRefused(Refusal):
    """The bundle is valid but cannot be applied (to this challenge, now): a conflict unless said otherwise."""

    status_default = 409
