"""Training pipeline: data, model, evaluation, tracking, registry CLIs."""
