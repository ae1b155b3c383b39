"""Resumable, chunked uploads of large submission files (native API and EvalAI's ``--large`` flow)."""
