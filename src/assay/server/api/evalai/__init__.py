"""The EvalAI-compatible API: the paths, request fields and response keys evalai CLI 1.3.18, EvalAI's
remote workers and EvalAI-Starters' GitHub Action use — an adapter over Assay's services."""
