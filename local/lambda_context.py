"""The Lambda context attributes Powertools reads, for invoking handlers outside Lambda
(the local stream runner, the tests and the benchmarks)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "toxic-moderation-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
