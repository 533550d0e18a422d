"""The moderation API: FastAPI app (``api.app``) and its Lambda handler (``api.handler``)."""
