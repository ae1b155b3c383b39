"""Placing one submission in the standings leaves exactly the rows a full rebuild computes.

``refresh_submission`` compares a changed submission with its team's current rows instead of
recomputing the team (``leaderboards.services.standings``). Hypothesis drives random sequences through
the services that write standings — submit, a worker's result (values, NaN, missing labels, ties,
error bars) on both splits of the Test phase, a failed evaluation, publish and unpublish, hide,
baseline and flag marks, re-run, cancel, and settings changed midway (best/latest, a new host) —
under random settings (directions, best or latest, one or every label sortable, partial evaluation,
select-one). After every step the standings a reader finds must equal what ``rebuild()`` makes.
On PostgreSQL, two results of one team placed at once must wait for each other (the phase lock).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.leaderboards.models import Standing
from assay.server.leaderboards.services.entries import record_entries
from assay.server.leaderboards.services.ranking import load_phase_split
from assay.server.leaderboards.services.standings import ensure_current, rebuild
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle, queue
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.results import SplitResult
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.server.teams.models import HostTeamMember
from tests.factories import register_team, upload

pytestmark = pytest.mark.django_db

VALUES = st.sampled_from([0.25, 0.5, 0.75, None, float("nan"), "missing"])  # few values: ties are common
ERRORS = st.sampled_from([None, 0.0, 0.1])
PICK = st.integers(0, 50)  # which submission, modulo how many there are
RESULT = st.tuples(VALUES, VALUES, ERRORS, VALUES, st.booleans())  # Accuracy, F1, error bar, private split
OPS = st.one_of(
    st.tuples(st.just("result"), st.integers(0, 1), st.booleans(), RESULT),
    st.tuples(st.just("result"), st.integers(0, 1), st.booleans(), RESULT),
    st.tuples(st.just("submit"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("finish"), PICK, RESULT),
    st.tuples(st.just("fail"), PICK),
    st.tuples(st.just("publish"), PICK, st.booleans()),
    st.tuples(st.just("hide"), PICK),
    st.tuples(st.just("mark"), PICK, st.sampled_from(["baseline", "flagged"]), st.booleans()),
    st.tuples(st.just("rerun"), PICK),
    st.tuples(st.just("cancel"), PICK),
    st.tuples(st.just("latest"), st.booleans()),
    st.tuples(st.just("host")),
)
SETTINGS = st.fixed_dictionaries(
    {
        "ascending": st.tuples(st.booleans(), st.booleans()),
        "latest": st.tuples(st.booleans(), st.booleans()),
        "multi": st.tuples(st.booleans(), st.booleans()),
        "partial": st.booleans(),
        "select_one": st.booleans(),
    }
)


class Run:
    """The Test phase (a public and a private split) with two teams, a worker token and the host."""

    def __init__(self, challenge, host, participant, admin) -> None:
        self.phase = challenge.phases.get(codename="test")
        self.host = host
        self.splits = list(ChallengePhaseSplit.objects.filter(phase=self.phase).order_by("pk"))
        self.token, _ = create_worker_token(admin, "property test")
        bob = get_user_model().objects.create_user("bob", "bob@uni.example", "pw")
        register_team(challenge, bob, "Team Bob")
        self.users = [participant, bob]
        self.subs: list[int] = []

    def configure(self, s: dict) -> None:
        phase = self.phase
        phase.max_submissions = phase.max_submissions_per_day = phase.max_submissions_per_month = 10**6
        phase.max_concurrent_submissions_allowed = 10**6
        phase.is_partial_submission_evaluation_enabled = s["partial"]
        phase.is_restricted_to_select_one_submission = s["select_one"]
        phase.save()
        leaderboard = self.splits[0].leaderboard
        for label, ascending in zip(("Accuracy", "F1"), s["ascending"], strict=True):
            leaderboard.schema["metadata"][label]["sort_ascending"] = ascending
        leaderboard.save()
        for ps, latest, multi in zip(self.splits, s["latest"], s["multi"], strict=True):
            ps.show_leaderboard_by_latest_submission = latest
            ps.is_multi_metric_leaderboard = multi
            ps.save()

    def sub(self, pick: int, *, waiting: bool = False) -> Submission | None:
        subs = Submission.objects.filter(pk__in=self.subs).select_related("phase").order_by("pk")
        if waiting:
            subs = subs.filter(status=Submission.Status.SUBMITTED)
        found = list(subs)
        return found[pick % len(found)] if found else None

    def step(self, op: tuple) -> None:
        kind, *args = op
        try:
            with transaction.atomic():  # a refused action leaves nothing behind, as in a request
                getattr(self, f"do_{kind}")(*args)
        except SubmissionError:
            pass

    def do_submit(self, who: int, public: bool) -> Submission:
        fields = SubmissionFields(is_public=public)
        sub = submit(self.users[who], self.phase, upload(b'{"test-a0": 1}'), "preds.json", fields)
        self.subs.append(sub.pk)
        return sub

    def _report(self, sub: Submission | None, output=None, error=None) -> None:
        """What a worker does: take the job, then report its result (or its failure)."""
        if sub is not None:
            taken = queue.take(self.token, sub.pk, worker_id="w1", lease_seconds=600)
            queue.complete(self.token, sub.pk, queue.Completion(attempt=taken.attempt, output=output, error=error))

    def do_result(self, who: int, public: bool, result: tuple) -> None:
        self.do_finish(0, result, self.do_submit(who, public))

    def do_finish(self, pick: int, result: tuple, sub: Submission | None = None) -> None:
        acc, f1, error, private_acc, with_private = result

        def metrics(*pairs):
            return {label: value for label, value in pairs if value != "missing"}

        splits = [{"public": metrics(("Accuracy", acc), ("F1", f1))}]
        if with_private:
            splits.append({"private": metrics(("Accuracy", private_acc), ("F1", acc))})
        output = {"result": splits}
        if error is not None:
            output["error"] = [{"public": {"error_Accuracy": error, "error_F1": error}}]
        self._report(sub or self.sub(pick, waiting=True), output=output)

    def do_fail(self, pick: int) -> None:
        self._report(self.sub(pick, waiting=True), error="the script crashed")

    def do_publish(self, pick: int, public: bool) -> None:
        if sub := self.sub(pick):
            lifecycle.set_public(self.host, sub, public)

    def do_hide(self, pick: int) -> None:
        if sub := self.sub(pick):
            lifecycle.hide(self.host, sub)

    def do_mark(self, pick: int, mark: str, value: bool) -> None:
        if sub := self.sub(pick):
            lifecycle.mark(self.host, sub, **{mark: value})

    def do_rerun(self, pick: int) -> None:
        if sub := self.sub(pick):
            self.subs.append(lifecycle.rerun(self.host, sub).pk)

    def do_cancel(self, pick: int) -> None:
        if sub := self.sub(pick):
            lifecycle.cancel(self.host, sub)

    def do_latest(self, latest: bool) -> None:
        ps = self.splits[0]
        ps.show_leaderboard_by_latest_submission = latest
        ps.save()

    def do_host(self) -> None:
        """Bob joins the host team: in a public phase his submissions leave the board (a new signature)."""
        HostTeamMember.objects.get_or_create(team=self.phase.challenge.host_team, user=self.users[1])

    def rows(self) -> list[tuple]:
        return sorted(
            Standing.objects.filter(phase_split__phase=self.phase).values_list(
                "phase_split_id",
                "label",
                "audience",
                "team_id",
                "entry_id",
                "submission_id",
                "is_baseline",
                "sort_key",
                "tie_key",
                "submitted_at",
            )  # fmt: skip
        )

    def check(self, after: list) -> None:
        for ps in self.splits:
            ensure_current(load_phase_split(ps))  # what every reader does first
        kept = self.rows()
        with transaction.atomic():
            for ps in self.splits:
                rebuild(ps)
            rebuilt = self.rows()
            transaction.set_rollback(True)
        assert kept == rebuilt, f"after {after}"


def _setup(latest: bool = False, partial: bool = False, select_one: bool = False, multi: bool = True) -> dict:
    return {
        "ascending": (False, True),
        "latest": (latest, latest),
        "multi": (multi, multi),
        "partial": partial,
        "select_one": select_one,
    }


def _result(acc, error=None, f1=0.5, private=True) -> tuple:
    return (acc, f1, error, acc, private)


A, B = 0, 1  # Alice's team, Bob's team
# The rules random sequences reach only now and then, checked every time (submission indexes count from 0).
EXAMPLES = [
    (_setup(latest=True), [("result", A, True, _result(0.75)), ("result", A, True, _result(0.25))]),
    (_setup(), [("result", A, True, _result(0.5, 0.1)), ("result", A, True, _result(0.5, 0.0))]),  # error bar
    (_setup(), [("result", A, True, _result(0.5)), ("result", A, True, _result(0.75)), ("hide", 1)]),
    (_setup(), [("result", A, True, _result(0.5)), ("result", A, True, _result(0.75)), ("rerun", 1)]),
    (_setup(), [("result", A, True, _result(0.5)), ("result", A, True, _result(0.75)), ("publish", 1, False)]),
    (_setup(select_one=True), [("result", A, True, _result(0.75)), ("result", A, True, _result(0.5))]),
    (
        _setup(select_one=True),
        [("result", A, True, _result(0.75)), ("result", A, False, _result(0.5)), ("publish", 1, True)],
    ),
    (
        _setup(),
        [("result", A, False, _result(0.5)), ("mark", 0, "baseline", True), ("mark", 0, "baseline", False)],
    ),
    (
        _setup(),  # a private entry that holds no row becomes a baseline: shown to everyone
        [("result", A, True, _result(0.75)), ("result", A, False, _result(0.25)), ("mark", 1, "baseline", True)],
    ),
    (
        _setup(partial=True),
        [
            ("result", A, True, _result(float("nan"))),
            ("result", A, True, _result("missing")),
            ("result", A, True, _result(None)),
        ],
    ),
    (
        _setup(),
        [
            ("result", B, True, _result(0.5)),
            ("host",),
            ("result", B, True, _result(0.75)),
            ("mark", 1, "flagged", True),
        ],
    ),
    (
        _setup(),
        [("submit", A, True), ("result", A, True, _result(0.5)), ("latest", True), ("finish", 0, _result(0.25))],
    ),
]


def with_examples(test):
    for setup, ops in reversed(EXAMPLES):
        test = example(setup=setup, ops=ops)(test)
    return test


@settings(
    max_examples=15,
    deadline=None,
    # no shrinking: at ~0.1 s a step it runs for minutes; the failure names its (at most 10) steps anyway
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(setup=SETTINGS, ops=st.lists(OPS, min_size=1, max_size=10))
@with_examples
def test_placing_results_keeps_the_standings_a_rebuild_makes(
    setup, ops, demo_challenge, host, participant, team, admin_user
):
    with transaction.atomic():  # each example starts from the same database
        run = Run(demo_challenge, host, participant, admin_user)
        run.configure(setup)
        for i, op in enumerate(ops):
            run.step(op)
            run.check(ops[: i + 1])
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_results_of_one_team_written_at_once_are_placed_in_turn(demo_challenge, host, participant, team, admin_user):
    """Two results of one team recorded at the same moment: each is placed under the phase's lock, so
    neither reads the team's rows while the other is writing them (no duplicate row, no lost update)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the lock is PostgreSQL's to prove")
    run = Run(demo_challenge, host, participant, admin_user)
    run.configure(_setup())
    run.check([])  # the standings exist (empty): every write below is a placing
    # each pair better than every earlier result: both writers want the same rows
    for values in ((0.25, 0.3), (0.5, 0.45), (0.6, 0.65), (0.8, 0.75)):
        subs = [run.do_submit(A, True) for _ in values]
        gate, failures = threading.Barrier(len(subs)), []

        def record(pk, value, gate=gate, failures=failures):
            try:
                with transaction.atomic():  # what queue.complete's transaction does, held open a moment
                    Submission.objects.filter(pk=pk).update(status=Submission.Status.FINISHED)
                    sub = Submission.objects.select_related("phase").get(pk=pk)
                    gate.wait()
                    record_entries(sub, {"public": SplitResult(metrics={"Accuracy": value, "F1": value})})
                    time.sleep(0.3)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=record, args=(s.pk, v)) for s, v in zip(subs, values, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        run.check([("at once", values)])
