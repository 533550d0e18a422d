"""Perspective API's ``v1alpha1`` methods on this service's model: apps built on Perspective
switch by changing the base URL. Every analyze call is scored, cached, logged and aggregated
like ``POST /predict``; a suggested score is feedback on the prediction it refers to."""

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep, blocking
from api.errors import PerspectiveError
from api.perspective.attributes import ATTRIBUTES, SUPPORTED_LANGUAGES, language_code
from api.perspective.discovery import VERSION, discovery_document
from api.perspective.schemas import (
    PROBABILITY,
    AnalyzeCommentRequest,
    AnalyzeCommentResponse,
    GoogleErrorPublic,
    SuggestCommentScoreRequest,
    SuggestCommentScoreResponse,
    TextEntry,
)
from api.perspective.spans import sentence_spans
from moderation.language import DetectedLanguage
from moderation.policies import POLICY_ID_RE
from moderation.service import PredictOptions
from moderation.settings import Settings
from moderation.text import is_blank, normalize_text, text_hash

# Every failure on these paths is Google's shape; validation failures are 400, as at Google.
router = APIRouter(
    responses={
        code: {"model": GoogleErrorPublic} for code in (400, 401, 403, 404, 409, 422, 429, 503)
    }
)


def _checked_text(comment: TextEntry, settings: Settings) -> str:
    if is_blank(comment.text):
        raise PerspectiveError("Comment must be non-empty.")
    if len(comment.text) > settings.max_comment_chars:
        raise PerspectiveError(
            f"Comment text too long: at most {settings.max_comment_chars} characters."
        )
    return comment.text


def _checked_labels(attributes: dict[str, Any], languages: list[str]) -> dict[str, str]:
    """Requested attribute -> label, after Perspective's own checks and words. ``languages``
    are those requested or, when none were, the one detected."""
    if not attributes:
        raise PerspectiveError("requestedAttributes must name at least one attribute.")
    unknown = [name for name in attributes if name not in ATTRIBUTES]
    if unknown:
        offered = ", ".join(ATTRIBUTES)
        raise PerspectiveError(
            f"Unknown attribute: {unknown[0]}. This service offers {offered}.",
            details=[{"errorType": "INVALID_ATTRIBUTE", "attribute": unknown[0]}],
        )
    unsupported = [tag for tag in languages if language_code(tag) not in SUPPORTED_LANGUAGES]
    if unsupported:
        name = next(iter(attributes))
        raise PerspectiveError(
            f"Attribute {name} does not support request languages: {', '.join(unsupported)}",
            details=[
                {
                    "errorType": "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
                    "languageNotSupportedByAttributeError": {
                        "requestedLanguages": languages,
                        "attribute": name,
                    },
                }
            ],
        )
    return {name: ATTRIBUTES[name] for name in attributes}


def _scored_as(detected: DetectedLanguage) -> list[str]:
    """Perspective's ``detectedLanguages`` for a comment that passed the language check: the
    language detected, or English for text too short or too mixed to tell."""
    return [detected.code] if detected.code in SUPPORTED_LANGUAGES else [SUPPORTED_LANGUAGES[0]]


def _analyze_key(text: str, do_not_store: bool, client_token: str) -> str:
    """The idempotency key of an analyze call carrying a client token: the same comment and
    token from the same caller is one prediction, which suggestscore can find again."""
    return f"perspective:{text_hash(normalize_text(text))}:{int(do_not_store)}:{client_token}"


@router.post(
    f"/{VERSION}/comments:analyze",
    response_model=AnalyzeCommentResponse,
    response_model_exclude_none=True,
)
async def analyze(
    request: Request,
    payload: AnalyzeCommentRequest,
    context: ContextDep,
) -> Response:
    """Perspective's AnalyzeComment: a probability per requested attribute (and per sentence
    with ``spanAnnotations``); ``scoreThreshold`` leaves out the attributes below it."""
    service, settings, caller = context.service, context.settings, context.caller
    text = _checked_text(payload.comment, settings)
    # as at Perspective: without requested languages, the detected one must be supported
    # (text too short or too mixed to tell is scored as English)
    detected = service.detect_language(text)
    if payload.languages or detected.supported:
        labels = _checked_labels(payload.requestedAttributes, payload.languages)
    else:
        labels = _checked_labels(payload.requestedAttributes, [detected.code])
    key = (
        _analyze_key(text, payload.doNotStore, payload.clientToken) if payload.clientToken else None
    )
    # communityId picks the community policy of that id when the caller may use it; any
    # other value (Perspective accepts free text there) leaves the key's default
    community = payload.communityId
    options = PredictOptions(
        store_text=not payload.doNotStore,
        policy_id=community if community and POLICY_ID_RE.match(community) else None,
        policy_lenient=True,
    )
    (prediction,) = await blocking(
        request,
        service.predict,
        [text],
        options,
        caller.id,
        key,
        admin=caller.admin,
        languages=[detected],
    )
    spans = sentence_spans(text) if payload.spanAnnotations else []
    span_scores = await blocking(request, service.score, [text[b:e] for b, e in spans])
    # plain dicts serialised once (AnalyzeCommentResponse documents the shape): a pydantic
    # object per span and attribute cost more than the rest of the route (docs/performance.md)
    scores: dict[str, dict[str, Any]] = {}
    for name, label in labels.items():
        value = prediction.scores[label]
        threshold = payload.requestedAttributes[name].scoreThreshold
        if threshold is not None and value < threshold:
            continue
        scores[name] = {"summaryScore": {"value": value, "type": PROBABILITY}}
        if spans:
            scores[name]["spanScores"] = [
                {"begin": begin, "end": end, "score": {"value": values[label], "type": PROBABILITY}}
                for (begin, end), values in zip(spans, span_scores, strict=True)
            ]
    request.state.log = {
        "request_id": prediction.request_id,
        "decision": prediction.decision,
        "cached": prediction.cached,
        "model_version": prediction.model_version,
        "attributes": len(labels),
    }
    body: dict[str, Any] = {
        "attributeScores": scores,
        "languages": payload.languages or list(SUPPORTED_LANGUAGES),
    }
    if not payload.languages:
        body["detectedLanguages"] = _scored_as(detected)
    if payload.clientToken is not None:
        body["clientToken"] = payload.clientToken
    return Response(to_json(body), media_type="application/json")


@router.post(
    f"/{VERSION}/comments:suggestscore",
    response_model=SuggestCommentScoreResponse,
    response_model_exclude_none=True,
)
async def suggest_score(
    payload: SuggestCommentScoreRequest,
    context: ContextDep,
) -> SuggestCommentScoreResponse:
    """Perspective's SuggestCommentScore: recorded as feedback on the analyzed prediction of
    the same comment and client token (or on a prediction logged now), counted in live
    accuracy."""
    service, settings, caller = context.service, context.settings, context.caller.id
    text = _checked_text(payload.comment, settings)
    labels = _checked_labels(payload.attributeScores, payload.languages)
    suggested = {}
    for name, label in labels.items():
        summary = payload.attributeScores[name].summaryScore
        if summary is not None:
            suggested[label] = summary.value
    if not suggested:
        raise PerspectiveError("attributeScores must give a summaryScore for an attribute.")
    token = payload.clientToken
    candidates = [_analyze_key(text, flag, token) for flag in (False, True)] if token else []
    new_key = _analyze_key(text, False, token or f"suggested:{caller}")
    await run_in_threadpool(service.suggest_scores, text, suggested, caller, candidates, new_key)
    return SuggestCommentScoreResponse(
        requestedLanguages=payload.languages or None,
        clientToken=payload.clientToken,
    )


@router.get("/$discovery/rest", include_in_schema=False)
async def discovery(request: Request, version: str = Query(VERSION)) -> dict[str, Any]:
    """The REST description Google's client libraries build a Perspective client from."""
    if version != VERSION:
        raise PerspectiveError(f"No discovery document for version {version}.", status=404)
    return discovery_document(_root_url(request))


def _root_url(request: Request) -> str:
    """This deployment's base URL as the caller reached it: API Gateway's stage prefix
    (``/prod``) included, which the proxied path leaves out."""
    event = request.scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    host = request.headers.get("host", request.url.netloc)
    if context:
        full, proxied = context.get("path", ""), event.get("path", "")
        prefix = full[: len(full) - len(proxied)] if full.endswith(proxied) else ""
        return f"https://{host}{prefix}/"
    return f"{request.url.scheme}://{host}/"
