"""REST API: the native API under /api/v1 (and, later, the EvalAI-compatible adapter)."""
