"""Lambda REQUEST authorizer for the Perspective-compatible API.

Perspective's clients send their key as ``?key=``; API Gateway's usage plans read a key from
the ``x-api-key`` header or, with ``ApiKeySourceType: AUTHORIZER``, from an authorizer's
``usageIdentifierKey``. This hands the query key over. It validates nothing itself: API
Gateway then refuses a key that is in no usage plan (403) and throttles and meters the rest
(429 past the plan's rate or quota), exactly as for header keys.
"""

import hashlib
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from moderation.log import logger


def _stage_arn(method_arn: str) -> str:
    """``arn:...:api-id/stage/*``: the answer holds for every method, so one cached answer per
    key serves them all (``arn:...:api-id/stage/VERB/path`` comes in)."""
    api, stage = method_arn.split("/")[:2]
    return f"{api}/{stage}/*"


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    key = (event.get("queryStringParameters") or {}).get("key")
    if not key:
        # API Gateway answers 401 (UNAUTHORIZED) for this exact message
        raise Exception("Unauthorized")  # noqa: TRY002 - the contract API Gateway reads
    principal = hashlib.sha256(key.encode()).hexdigest()[:16]
    logger.info("key handed to the usage plan", extra={"principal": principal})
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _stage_arn(event["methodArn"]),
                }
            ],
        },
        "usageIdentifierKey": key,
    }
