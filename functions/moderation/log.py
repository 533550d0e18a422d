"""The one Powertools logger of every Lambda module (JSON lines, the request id on each line
once a handler's ``inject_lambda_context`` has run). Its service name is the function's
``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml)."""

import logging
import os

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "toxic-moderation"))

# The AWS SDK logs whole request bodies at DEBUG, comment text included: never let it.
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)
