"""The Perspective-compatible API's Lambda authorizer (``authorizer.handler``)."""
