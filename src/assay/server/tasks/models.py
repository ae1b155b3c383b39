"""The durable task row: what to run, with what, when next, and what went wrong last."""

from __future__ import annotations

from django.db import models


class Task(models.Model):
    """One call of a registered handler. The runner claims a due row (``queued`` and ``run_after`` passed, or
    ``running`` with its lease run out: its runner died), runs it, and marks it ``done``, ``queued`` again
    for a retry with backoff, or ``failed`` after ``max_attempts``."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    name = models.CharField(max_length=100)
    key = models.CharField(
        max_length=200, blank=True, default="", help_text="At most one task per key waits for its first run."
    )
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    run_after = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # the due-task query: queued rows whose time has come, oldest first
            models.Index(fields=["state", "run_after"], name="task_due"),
            # running rows whose lease ran out (their runner died)
            models.Index(fields=["state", "lease_expires_at"], name="task_lease"),
            # pruning finished rows
            models.Index(fields=["state", "updated_at"], name="task_finished"),
        ]
        constraints = [
            # a keyed task not yet run absorbs the same key's later enqueues (tasks.enqueue(key=…))
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(state="queued", attempts=0) & ~models.Q(key=""),
                name="task_one_waiting_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk} ({self.state}, attempt {self.attempts}/{self.max_attempts})"
