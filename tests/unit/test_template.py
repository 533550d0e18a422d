"""template.yaml keeps its promises: the schema, the stream mapping, least privilege."""

import json
from pathlib import Path

import pytest

from local.resources import load_template

RESOURCES = load_template()["Resources"]
REPO = Path(__file__).resolve().parents[2]


def statements(function: str) -> list[dict]:
    found = []
    for policy in RESOURCES[function]["Properties"]["Policies"]:
        found += policy.get("Statement", [])
    return found


def test_prediction_log_has_stream_ttl_and_review_index():
    table = RESOURCES["PredictionsTable"]["Properties"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {
        "review-queue-sharded",
        "review-priority",
        "review-by-label",
        "review-by-policy",
        "traffic-sample",
    }
    review = indexes["review-queue-sharded"]
    assert review["KeySchema"][0] == {"AttributeName": "review_queue", "KeyType": "HASH"}
    # policy forecasts read a sample: a sparse index holding what a forecast replays
    sample = indexes["traffic-sample"]
    assert sample["KeySchema"][0] == {"AttributeName": "traffic_sample", "KeyType": "HASH"}
    assert {"scores", "comment_text", "review"} <= set(sample["Projection"]["NonKeyAttributes"])
    # the priority order and its label and policy lanes share one sort key
    for name, key in (
        ("review-priority", "review_queue"),
        ("review-by-label", "review_label_queue"),
        ("review-by-policy", "review_policy_queue"),
    ):
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": key, "KeyType": "HASH"},
            {"AttributeName": "review_priority", "KeyType": "RANGE"},
        ]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionProtectionEnabled"] is True


def test_stream_mapping_batches_in_shard_order_and_never_drops_silently():
    stream = RESOURCES["AggregatorFunction"]["Properties"]["Events"]["PredictionStream"]
    props = stream["Properties"]
    # large batches, merged in memory: one write per bucket per batch
    assert props["BatchSize"] >= 1000 and props["MaximumBatchingWindowInSeconds"] <= 1
    # a shard's batches one at a time, in order (the high-water mark relies on it), and the
    # tumbling window that puts the shard id in the event
    assert props["ParallelizationFactor"] == 1 and props["TumblingWindowInSeconds"] > 0
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    # retried until well before the stream's 24 h retention, then dead-lettered: re-drivable
    assert props["MaximumRetryAttempts"] == -1
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 12 * 3600
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    # inserts are counted and TTL removals leave the review queue: both must reach the handler
    (pattern,) = props["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {"eventName": ["INSERT", "REMOVE"]}
    # the iterator-age alarm fires long before a record could be dead-lettered
    (age,) = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Properties"].get("MetricName") == "IteratorAge"
    ]
    assert age["Threshold"] < props["MaximumRecordAgeInSeconds"] * 1000 / 10
    assert age["Dimensions"][0]["Value"] == {"Ref": "AggregatorFunction"}


def test_the_redrive_function_can_only_drain_the_queue_read_the_stream_and_count():
    actions = {a for s in statements("AggregatorRedriveFunction") for a in s["Action"]}
    assert "sqs:ReceiveMessage" in actions and "dynamodb:GetRecords" in actions
    assert not actions & {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:DeleteTable"}
    for statement in statements("AggregatorRedriveFunction"):
        if "dynamodb:UpdateItem" in statement["Action"]:
            assert statement["Resource"] == {"GetAtt": "AggregatesTable.Arn"}
    variables = RESOURCES["AggregatorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": "AggregatorDeadLetterQueue"}


def test_no_function_has_wildcard_actions_or_resources():
    for function in ("ApiFunction", "AggregatorFunction", "AggregatorRedriveFunction"):
        for statement in statements(function):
            actions = statement["Action"]
            assert all("*" not in action for action in actions), (function, actions)
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, function


def test_api_can_neither_scan_nor_drop_and_aggregator_only_writes_aggregates():
    api_actions = {a for s in statements("ApiFunction") for a in s["Action"]}
    assert not api_actions & {"dynamodb:Scan", "dynamodb:DeleteTable"}
    # it deletes one kind of item: an undone decision's feedback, in the prediction log only
    deleting = [s for s in statements("ApiFunction") if "dynamodb:DeleteItem" in s["Action"]]
    assert [s["Sid"] for s in deleting] == ["WithdrawUndoneFeedback"]
    assert deleting[0]["Resource"] == {"GetAtt": "PredictionsTable.Arn"}
    for statement in statements("AggregatorFunction"):
        if "dynamodb:UpdateItem" in statement["Action"]:
            assert statement["Resource"] == {"GetAtt": "AggregatesTable.Arn"}


def test_model_bucket_is_private_encrypted_and_versioned():
    bucket = RESOURCES["ModelBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]


TEMPLATE = load_template()
API = RESOURCES["ModerationApi"]["Properties"]


def test_every_route_but_health_and_discovery_needs_an_api_key_with_a_usage_plan():
    assert API["Auth"]["ApiKeyRequired"] is True
    events = RESOURCES["ApiFunction"]["Properties"]["Events"]
    open_routes = [
        (e["Properties"]["RestApiId"]["Ref"], e["Properties"]["Path"], e["Properties"]["Method"])
        for e in events.values()
        if e["Properties"].get("Auth", {}).get("ApiKeyRequired") is False
    ]
    assert open_routes == [
        ("ModerationApi", "/health", "GET"),
        ("PerspectiveApi", "/{root}/rest", "GET"),  # the discovery document, as at Google
    ]
    plan = API["Auth"]["UsagePlan"]
    assert plan["Throttle"]["RateLimit"] > 0 and plan["Quota"]["Limit"] > 0


def test_api_has_cors_for_the_ui_origin_and_access_logs_without_bodies():
    assert API["Cors"]["AllowOrigin"] == {"Sub": "'${UiOrigin}'"}
    log_format = API["AccessLogSetting"]["Format"]
    assert "$context.requestId" in log_format and "$context.status" in log_format
    assert "requestBody" not in log_format and "responseBody" not in log_format
    assert RESOURCES["ApiAccessLogs"]["Properties"]["RetentionInDays"] > 0


def test_globals_pin_runtime_architecture_tracing_and_powertools():
    function = TEMPLATE["Globals"]["Function"]
    assert function["Runtime"] == "python3.12" and function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_LOG_LEVEL"] and variables["POWERTOOLS_LOGGER_LOG_EVENT"] == (
        "false"
    )


def test_api_deploys_as_a_canary_that_its_alarms_roll_back():
    props = RESOURCES["ApiFunction"]["Properties"]
    assert props["AutoPublishAlias"] == "live"
    alarms = {a["Ref"] for a in props["DeploymentPreference"]["Alarms"]}
    assert alarms == {"ApiErrorsAlarm", "ApiLatencyAlarm"}


def test_api_versions_start_from_a_snapstart_snapshot():
    # SnapStart applies to published versions (the alias serves them) and excludes
    # provisioned concurrency and ephemeral storage over 512 MB
    props = TEMPLATE["Globals"]["Function"] | RESOURCES["ApiFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["AutoPublishAlias"] and "ProvisionedConcurrencyConfig" not in props
    assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= 512
    assert int(props["Runtime"].removeprefix("python3.")) >= 12


def test_alarms_cover_errors_throttles_dead_letters_and_p99_latency():
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {(a["Namespace"], a["MetricName"], str(a["Dimensions"][0]["Value"])) for a in alarms}
    for function in ("ApiFunction", "AggregatorFunction"):
        assert ("AWS/Lambda", "Errors", str({"Ref": function})) in watched
        assert ("AWS/Lambda", "Throttles", str({"Ref": function})) in watched
    assert any(m == "ApproximateNumberOfMessagesVisible" for _, m, _ in watched)
    (latency,) = [a for a in alarms if a["MetricName"] == "Latency"]
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == {"Ref": "LatencyObjectiveMs"}
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


def test_functions_read_only_the_registry_and_bundles_of_the_model_bucket():
    for function in ("ApiFunction", "AggregatorFunction"):
        s3 = [s for s in statements(function) if str(s["Action"]).startswith("s3:")]
        assert s3 and {s["Action"] for s in s3} <= {"s3:GetObject", "s3:ListBucket"}, function
        for statement in s3:
            if statement["Action"] == "s3:GetObject":
                for resource in statement["Resource"]:
                    assert resource["Sub"].startswith("${ModelBucket.Arn}/"), resource
            else:  # listing only under the registry's version records
                prefix = statement["Condition"]["StringLike"]["s3:prefix"]
                assert prefix == "registry/versions/*"


def test_dashboard_role_only_reads_the_aggregates_table():
    role = RESOURCES["DashboardRole"]["Properties"]
    (policy,) = role["Policies"]
    dynamodb = [
        s for s in policy["PolicyDocument"]["Statement"]
        if any(a.startswith("dynamodb:") for a in s["Action"])
    ]  # fmt: skip
    (statement,) = dynamodb
    assert set(statement["Action"]) <= {
        "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"
    }  # fmt: skip
    assert statement["Resource"] == {"GetAtt": "AggregatesTable.Arn"}
    assert any("AmazonSSMManagedInstanceCore" in str(arn) for arn in role["ManagedPolicyArns"])


@pytest.mark.parametrize(
    "group, launch, port",
    [
        ("DashboardSecurityGroup", "DashboardLaunchTemplate", 8502),
        ("ModeratorUiSecurityGroup", "ModeratorUiLaunchTemplate", 8501),
    ],
)
def test_each_instance_has_no_ssh_and_opens_only_its_port_to_the_allowed_cidr(group, launch, port):
    ingress = RESOURCES[group]["Properties"]["SecurityGroupIngress"]
    assert {(r["FromPort"], r["ToPort"]) for r in ingress} == {(port, port)}
    assert all(r["CidrIp"] == {"Ref": "AllowedCidr"} for r in ingress)
    data = RESOURCES[launch]["Properties"]["LaunchTemplateData"]
    assert "KeyName" not in data and data["MetadataOptions"]["HttpTokens"] == "required"
    assert "22" not in str(ingress)


def test_the_dashboard_and_the_moderator_ui_run_apart_and_the_dashboard_reads_only_aggregates():
    dashboard = RESOURCES["DashboardRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    resources = [s["Resource"] for s in dashboard["Statement"] if "ecr" not in str(s["Action"])]
    assert resources == [{"GetAtt": "AggregatesTable.Arn"}]
    ui = RESOURCES["ModeratorUiRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert "dynamodb" not in str(ui)
    outputs = TEMPLATE["Outputs"]
    assert "DashboardInstance" in str(outputs["DashboardUrl"])
    assert "ModeratorUiInstance" in str(outputs["ModeratorUiUrl"])


def test_webhook_delivery_is_queued_least_privilege_and_dead_lettered():
    queue = RESOURCES["WebhookQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "WebhookDeadLetterQueue.Arn"}
    delivery = statements("WebhookDeliveryFunction")
    actions = {
        a
        for s in delivery
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions <= {
        "dynamodb:GetItem",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
    }
    dispatch = RESOURCES["WebhookDispatchFunction"]["Properties"]["Events"]["PredictionStream"]
    assert dispatch["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_no_table_or_bucket_is_publicly_writable():
    for name, resource in RESOURCES.items():
        if resource["Type"] in ("AWS::DynamoDB::ResourcePolicy", "AWS::DynamoDB::Table"):
            assert "ResourcePolicy" not in resource.get("Properties", {}), name
        if resource["Type"] == "AWS::S3::BucketPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement.get("Principal") == "*":
                    assert statement["Effect"] == "Deny", name


def test_parameters_and_outputs_a_deployment_needs():
    assert {"Stage", "ModelAlias", "TextRetentionDays", "AllowedCidr"} <= set(
        TEMPLATE["Parameters"]
    )
    assert {"ApiUrl", "DashboardUrl", "ModeratorUiUrl", "PerspectiveApiUrl"} <= set(
        TEMPLATE["Outputs"]
    )
    retention = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert retention["TEXT_RETENTION_DAYS"] == {"Ref": "TextRetentionDays"}
    assert retention["REQUIRE_API_KEY"] == "true"


PERSPECTIVE = RESOURCES["PerspectiveApi"]["Properties"]


def test_perspective_keys_in_the_query_reach_the_usage_plan_through_the_authorizer():
    # GIVEN Perspective clients, which send ?key=API_KEY
    assert PERSPECTIVE["ApiKeySourceType"] == "AUTHORIZER"
    auth = PERSPECTIVE["Auth"]
    assert auth["ApiKeyRequired"] is True and auth["DefaultAuthorizer"] == "QueryKeyAuthorizer"
    authorizer = auth["Authorizers"]["QueryKeyAuthorizer"]
    assert authorizer["FunctionPayloadType"] == "REQUEST"
    assert authorizer["Identity"]["QueryStrings"] == ["key"]
    assert authorizer["Identity"]["ReauthorizeEvery"] > 0  # one call per key, not per request
    assert authorizer["FunctionArn"] == {"GetAtt": "KeyAuthorizerFunction.Arn"}
    # THEN the usage plan's throttle and quota apply to those keys
    plan = auth["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert plan["Throttle"]["RateLimit"] > 0 and plan["Quota"]["Limit"] > 0
    # AND the authorizer can touch nothing
    assert "Policies" not in RESOURCES["KeyAuthorizerFunction"]["Properties"]


def test_perspective_routes_and_gateway_errors_in_googles_shape():
    events = RESOURCES["ApiFunction"]["Properties"]["Events"]
    routes = {
        (e["Properties"]["Path"], e["Properties"]["Method"])
        for e in events.values()
        if e["Properties"]["RestApiId"] == {"Ref": "PerspectiveApi"}
    }
    assert routes == {("/v1alpha1/{proxy+}", "POST"), ("/{root}/rest", "GET")}
    responses = PERSPECTIVE["GatewayResponses"]
    for kind in ("THROTTLED", "QUOTA_EXCEEDED"):
        assert responses[kind]["StatusCode"] == "429"
        body = responses[kind]["ResponseTemplates"]["application/json"]
        assert '"status":"RESOURCE_EXHAUSTED"' in body and '"code":429' in body
    assert '"status":"UNAUTHENTICATED"' in str(responses["UNAUTHORIZED"])
    assert '"status":"PERMISSION_DENIED"' in str(responses["INVALID_API_KEY"])


def test_policy_writes_need_the_admin_key_on_its_own_usage_plan():
    key = RESOURCES["AdminApiKey"]
    assert key["Type"] == "AWS::ApiGateway::ApiKey"
    plan = RESOURCES["AdminUsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "ModerationApi"}, "Stage": {"Ref": "Stage"}}]
    # tighter than the apps' plan: policy changes are rare
    assert plan["Throttle"]["RateLimit"] <= 10 and plan["Quota"]["Limit"] <= 10_000
    binding = RESOURCES["AdminUsagePlanKey"]["Properties"]
    assert binding["KeyId"] == {"Ref": "AdminApiKey"}
    assert binding["UsagePlanId"] == {"Ref": "AdminUsagePlan"}
    # the API knows which key id is the admin's; no other key is on the admin plan
    env = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ADMIN_API_KEY_IDS"] == {"Ref": "AdminApiKey"}
    admin_plan_keys = [
        r for r in RESOURCES.values()
        if r["Type"] == "AWS::ApiGateway::UsagePlanKey"
        and r["Properties"]["UsagePlanId"] == {"Ref": "AdminUsagePlan"}
    ]  # fmt: skip
    assert len(admin_plan_keys) == 1


def test_policies_table_keeps_history_and_the_api_can_only_add_to_it():
    table = RESOURCES["PoliciesTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    (grant,) = [s for s in statements("ApiFunction") if s["Sid"] == "PoliciesAndKeyBindings"]
    assert grant["Resource"] == {"GetAtt": "PoliciesTable.Arn"}
    # versions are put, never updated or deleted; listing is a Query, never a Scan
    assert sorted(grant["Action"]) == sorted(
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
    )


def test_every_function_is_built_by_the_makefile_that_ships_bytecode():
    # SAM's bundled Python builder ships no bytecode, and Lambda's code folder is read-only:
    # without it every cold start compiles every module (docs/deploy.md#packaging)
    functions = {
        name: resource
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) >= 7
    assert all(f.get("Metadata", {}).get("BuildMethod") == "makefile" for f in functions.values())
    makefile = (REPO / "functions" / "Makefile").read_text()
    assert "build-%:" in makefile  # one rule serves every function's build-<LogicalId>
    assert "compileall" in makefile and "--invalidation-mode unchecked-hash" in makefile
    # sam build copies functions/ alone: the pins it installs must live there
    pins = (REPO / "functions" / "requirements.txt").read_text().splitlines()
    assert not [line for line in pins if line.startswith("-r")]
