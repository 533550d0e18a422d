"""Webhook delivery: the predictions stream -> a queue of events -> the apps' receivers."""
