"""Perspective API compatibility: the ``v1alpha1`` request and response shapes, Google's error
shape and the discovery document, so Perspective clients work by changing their base URL."""
