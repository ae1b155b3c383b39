"""The moments the challenges app announces, for the apps above it to follow.

The audits app sits above challenges in the layer contract (``pyproject.toml``), yet a bundle brings
things it keeps (the questionnaire). So challenges announces and audits listens (``audits/apps.py``
connects the receiver). :meth:`Signal.send` runs the receivers at once, inside the import's transaction,
and lets their exceptions through: a receiver's :class:`~assay.server.refusals.Refusal` undoes the whole
import, files included, so a bundle is applied completely or not at all.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: challenge (saved, with its phases), config (the bundle's ChallengeConfig), bundle (the read
# assay.bundle.Bundle: its files and bundle.questionnaire, the validated questionnaire or None), changes
# (the import report's list of sentences; a receiver appends what it changed): a bundle was imported
bundle_imported = Signal()
# kwargs: participation: a host approved a team that was not approved before (notifications e-mail its members)
participation_approved = Signal()
