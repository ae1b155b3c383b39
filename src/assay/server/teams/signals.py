"""The moments the teams app announces, so that an app above it may refuse them.

teams sits below challenges in the layer contract (``pyproject.toml``), yet whether an address may be
invited to a participant team, or a user may join one, depends on the challenges the team takes part in.
So teams announces the moment and challenges answers (``challenges/apps.py`` connects its receivers): a
receiver refuses by raising :class:`~assay.server.teams.services.TeamError`, which reaches the caller
unchanged, because :meth:`Signal.send` runs receivers in order and lets their exceptions through.
"""

from __future__ import annotations

from django.dispatch import Signal

inviting = Signal()  # kwargs: team (ParticipantTeam), email (normalised): before the invitation is made
joining = Signal()  # kwargs: team (ParticipantTeam), user: before ``user`` becomes a member
