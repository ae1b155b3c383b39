"""Submission rules: submit, lifecycle actions, the queue and results. Views and APIs call these."""
