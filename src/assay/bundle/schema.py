"""JSON Schema of ``challenge_config.yaml``, for editors and for hosts' own CI."""

from __future__ import annotations

from typing import Any

from .model import AWS_INFRA_KEYS, ChallengeConfig


def json_schema() -> dict[str, Any]:
    """The config's schema as YAML authors see it (AWS keys at the top level, extra keys allowed)."""
    schema = ChallengeConfig.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Assay / EvalAI challenge_config.yaml"
    props = schema.setdefault("properties", {})
    props.pop("infrastructure", None)
    for key in AWS_INFRA_KEYS:
        props[key] = {"description": "EvalAI AWS deployment setting; accepted, no effect on Assay."}
    return schema
