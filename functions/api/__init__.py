"""The moderation API: FastAPI app (``api.main``) and its Lambda handler (``api.handler``)."""
