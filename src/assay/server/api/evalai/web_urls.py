"""EvalAI's web addresses (mounted at /web/), which its clients print: evalai CLI's ``participate`` shows
``/web/challenges/challenge-page/<c>/evaluation`` for the terms. Each tab of EvalAI's challenge page
redirects to Assay's page that holds the same thing, so a printed link never ends in a 404."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import re_path, reverse

#: EvalAI's challenge-page tab → Assay's page (anything else: the challenge's overview).
TABS = {
    "overview": "web:challenge",
    "evaluation": "web:terms",  # EvalAI's "Evaluation" tab carries the terms and conditions
    "phases": "web:phases",
    "participate": "web:participate",
    "submission": "web:submit",
    "my-submission": "web:my-submissions",
    "leaderboard": "web:leaderboard",
    "manage": "web:host-challenge",
}


def challenge_page(request: HttpRequest, challenge_id: str, tab: str = "", rest: str = "") -> HttpResponseRedirect:
    """A redirect, whoever asks: Assay's page then decides who may see the challenge."""
    url = reverse(TABS.get(tab, "web:challenge"), args=[int(challenge_id)])
    if tab == "leaderboard" and rest.isdigit():  # EvalAI's /leaderboard/<phase split>
        url += f"?split={rest}"
    return HttpResponseRedirect(url)


urlpatterns = [
    re_path(
        r"^challenges/challenge-page/(?P<challenge_id>\d+)(?:/(?P<tab>[-\w]+)(?:/(?P<rest>[-\w]+))?)?/?$",
        challenge_page,
    ),
]
