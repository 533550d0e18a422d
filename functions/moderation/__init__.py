"""Shared core of the toxic-comment moderation service.

Both Lambda functions ship this package; training, the moderator UI and the dashboard import
it, so labels, normalisation, the model bundle and aggregation maths are defined once.
"""
