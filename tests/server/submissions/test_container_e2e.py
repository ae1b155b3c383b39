"""A container submission end to end over real HTTP with a real Docker engine.

The demo's container challenge: a participant uploads a ``docker save`` tarball → the server checks it
and queues it → the real worker loads the image, runs it on the test inputs without network, scores its
predictions with the host's script → the leaderboard shows the score. And a hostile image that tries to
read the labels and reach the network gets nothing.
"""

from __future__ import annotations

import hashlib

import pytest

from assay.server.challenges.models import Participation
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import REPO, import_published

from .test_worker_e2e import post_submission, run_worker_thread, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CONTAINER_BUNDLE = REPO / "examples" / "demo-container-challenge"
# Looks for the labels anywhere it can read, for a network interface besides loopback, and for secrets in
# its environment; it fails (exit 3, naming what it found) if it finds any, else predicts zeros.
SNOOP = r"""
found=""
pattern='"digit_''sums"'  # split, so this script does not match itself
for d in /*; do
  case "$d" in /proc|/sys|/dev) continue ;; esac
  grep -rqsF "$pattern" "$d" && found="$found labels:$d"
done
[ -n "$(tail -n +3 /proc/net/dev | grep -v ' lo:')" ] && found="$found network"
env | grep -qi 'token\|secret\|password' && found="$found secrets"
if [ -n "$found" ]; then echo "found:$found" >&2; exit 3; fi
n=$(grep -c . /input/numbers.txt)
zeros=$(i=0; while [ $i -lt $n ]; do [ $i -gt 0 ] && printf ','; printf '0'; i=$((i+1)); done)
printf '{"predictions": [%s]}\n' "$zeros" > "$SUBMISSION_PATH/submission.json"
"""


@pytest.fixture
def docker_client():
    from tests.containers.conftest import ensure_dockerd

    return ensure_dockerd()


@pytest.fixture
def container_challenge(media, host_team, team):
    challenge = import_published(host_team, CONTAINER_BUNDLE)
    Participation.objects.create(challenge=challenge, team=team, terms_accepted_at=challenge.created_at)
    return challenge


def test_a_demo_image_is_scored_on_the_leaderboard(
    live_server, container_challenge, participant, admin_user, docker_client, tmp_path
):
    from assay.server.demo import build_predictor_tarball

    tag, tarball = build_predictor_tarball(
        docker_client, CONTAINER_BUNDLE / "participant" / "predict.sh", tmp_path / "predictor.tar"
    )
    phase = container_challenge.phases.get(codename="container")
    sid = post_submission(participant, phase, tarball.read_bytes(), "predictor.tar")
    _, token = create_worker_token(admin_user, "docker worker")
    worker = run_worker_thread(live_server.url, token, tmp_path / "w", containers="docker")
    worker.thread.join(180)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", sub.failure_reason
    entry = LeaderboardEntry.objects.get(submission=sub)
    assert entry.result["Accuracy"] == 1.0
    assert sub.image_digest == docker_client.images.get(tag).id


def test_a_snooping_image_finds_neither_labels_nor_network(
    live_server, container_challenge, participant, admin_user, docker_client, tmp_path
):
    from assay.evaluation.containers.localimages import build_image, save_image

    tag = "assay-test/snoop:" + hashlib.sha256(SNOOP.encode()).hexdigest()[:12]  # a new script, a new image
    build_image(
        docker_client, tag, ["USER 1000", 'CMD ["/bin/sh", "/opt/snoop.sh"]'], files={"/opt/snoop.sh": SNOOP.encode()}
    )
    tarball = save_image(docker_client, tag, tmp_path / "snoop.tar")
    phase = container_challenge.phases.get(codename="container")
    sid = post_submission(participant, phase, tarball.read_bytes(), "snoop.tar")
    _, token = create_worker_token(admin_user, "docker worker")
    run_worker_thread(live_server.url, token, tmp_path / "w", containers="docker").thread.join(180)
    sub = wait_for(lambda: Submission.objects.filter(pk=sid, status__in=["finished", "failed"]).first(), 10)
    assert sub.status == "finished", sub.failure_reason  # exit 3 would name what the image found
    assert LeaderboardEntry.objects.get(submission=sub).result["Accuracy"] == 0.0
