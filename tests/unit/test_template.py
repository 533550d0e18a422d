"""template.yaml keeps its promises: the schema, the stream mapping, least privilege."""

from moderation.infra import load_template

RESOURCES = load_template()["Resources"]


def statements(function: str) -> list[dict]:
    found = []
    for policy in RESOURCES[function]["Properties"]["Policies"]:
        found += policy.get("Statement", [])
    return found


def test_prediction_log_has_stream_ttl_and_review_index():
    table = RESOURCES["PredictionsTable"]["Properties"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "review-queue"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionProtectionEnabled"] is True


def test_stream_mapping_reports_partial_failures_and_dead_letters():
    stream = RESOURCES["AggregatorFunction"]["Properties"]["Events"]["PredictionStream"]
    props = stream["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_no_function_has_wildcard_actions_or_resources():
    for function in ("ApiFunction", "AggregatorFunction"):
        for statement in statements(function):
            actions = statement["Action"]
            assert all("*" not in action for action in actions), (function, actions)
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, function


def test_api_can_neither_scan_nor_delete_and_aggregator_only_writes_aggregates():
    api_actions = {a for s in statements("ApiFunction") for a in s["Action"]}
    assert not api_actions & {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:DeleteTable"}
    for statement in statements("AggregatorFunction"):
        if "dynamodb:UpdateItem" in statement["Action"]:
            assert statement["Resource"] == {"GetAtt": "AggregatesTable.Arn"}


def test_model_bucket_is_private_encrypted_and_versioned():
    bucket = RESOURCES["ModelBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]
