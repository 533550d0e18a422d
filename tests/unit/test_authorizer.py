"""The Perspective API's authorizer hands ``?key=`` to API Gateway's usage plans."""

import pytest

from authorizer.handler import handler
from local.lambda_context import LambdaContext

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1alpha1/comments:analyze"


def test_the_query_key_becomes_the_usage_plan_key_for_every_method():
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "queryStringParameters": {"key": "k1"}}
    answer = handler(event, LambdaContext())
    assert answer["usageIdentifierKey"] == "k1"
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    # one cached answer per key covers every method of the stage
    assert statement["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*"
    # the principal names the key without carrying it
    assert answer["principalId"] and "k1" not in answer["principalId"]


@pytest.mark.parametrize("query", [None, {}, {"key": ""}])
def test_no_key_is_unauthorized(query):
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "queryStringParameters": query}
    with pytest.raises(Exception, match="^Unauthorized$"):
        handler(event, LambdaContext())
