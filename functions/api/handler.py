"""Lambda entry point: API Gateway events -> Mangum -> the FastAPI app."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from api import snapstart  # noqa: F401 - registers the SnapStart hooks Lambda runs
from api.main import app
from moderation.log import logger

asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return asgi(event, context)
