"""The discovery document Google's client libraries load to build a Perspective client
(``GET /$discovery/rest?version=v1alpha1``), pointing at this deployment.

Its schemas are generated from the request and response models (``schemas.py``), so the
document and the API cannot disagree."""

from typing import Any

from pydantic import BaseModel

from api.perspective.schemas import (
    AnalyzeCommentRequest,
    AnalyzeCommentResponse,
    SuggestCommentScoreRequest,
    SuggestCommentScoreResponse,
)

VERSION = "v1alpha1"

#: The standard query parameters every Google API accepts; clients always send ``alt`` and
#: ``key`` (their developer key), the API ignores the rest.
_STANDARD_PARAMETERS: dict[str, dict[str, Any]] = {
    "key": {"type": "string", "location": "query", "description": "API key"},
    "alt": {
        "type": "string",
        "location": "query",
        "default": "json",
        "enum": ["json"],
        "description": "Data format for response.",
    },
    "fields": {"type": "string", "location": "query"},
    "prettyPrint": {"type": "boolean", "location": "query", "default": "true"},
    "quotaUser": {"type": "string", "location": "query"},
    "$.xgafv": {"type": "string", "location": "query", "enum": ["1", "2"]},
}

_METHODS = {
    "analyze": (
        "comments:analyze",
        AnalyzeCommentRequest,
        AnalyzeCommentResponse,
        "Analyzes the provided text and returns scores for requested attributes.",
    ),
    "suggestscore": (
        "comments:suggestscore",
        SuggestCommentScoreRequest,
        SuggestCommentScoreResponse,
        "Suggest comment scores as training data.",
    ),
}


def discovery_document(root_url: str) -> dict[str, Any]:
    """The ``commentanalyzer`` ``v1alpha1`` REST description, rooted at ``root_url``
    (ending in ``/``)."""
    schemas: dict[str, Any] = {}
    methods = {}
    for name, (path, request, response, description) in _METHODS.items():
        _add_schemas(request, schemas)
        _add_schemas(response, schemas)
        methods[name] = {
            "id": f"commentanalyzer.comments.{name}",
            "path": f"{VERSION}/{path}",
            "flatPath": f"{VERSION}/{path}",
            "httpMethod": "POST",
            "parameters": {},
            "parameterOrder": [],
            "request": {"$ref": request.__name__},
            "response": {"$ref": response.__name__},
            "description": description,
        }
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"commentanalyzer:{VERSION}",
        "name": "commentanalyzer",
        "version": VERSION,
        "title": "Perspective Comment Analyzer API (compatible endpoint)",
        "description": "Scores comments for toxicity attributes; Perspective API compatible.",
        "protocol": "rest",
        "rootUrl": root_url,
        "servicePath": "",
        "baseUrl": root_url,
        "batchPath": "batch",
        "parameters": _STANDARD_PARAMETERS,
        "schemas": schemas,
        "resources": {"comments": {"methods": methods}},
    }


def _add_schemas(model: type[BaseModel], schemas: dict[str, Any]) -> None:
    """``model`` and every model it refers to, in discovery's JSON-schema dialect."""
    generated = model.model_json_schema(ref_template="{model}")
    for name, definition in {model.__name__: generated, **generated.get("$defs", {})}.items():
        schemas[name] = {
            "id": name,
            "type": "object",
            "properties": {
                field: _property(spec) for field, spec in definition.get("properties", {}).items()
            },
        }


def _property(spec: dict[str, Any]) -> dict[str, Any]:
    """One JSON-schema property as discovery writes it (optionals unwrapped, refs bare)."""
    options = [s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"]
    spec = {**options[0], **{k: v for k, v in spec.items() if k == "description"}}
    if "$ref" in spec:
        return {"$ref": spec["$ref"]}
    kind = spec.get("type", "string")
    out: dict[str, Any] = {"type": kind}
    if "description" in spec:
        out["description"] = spec["description"]
    if kind == "number":
        out["format"] = "float"
    elif kind == "integer":
        out["format"] = "int32"
    elif kind == "array":
        out["items"] = _property(spec.get("items", {}))
    elif kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        out["additionalProperties"] = _property(spec["additionalProperties"])
    if "enum" in spec:
        out["enum"] = spec["enum"]
    elif "const" in spec:
        out["enum"] = [spec["const"]]
    return out
