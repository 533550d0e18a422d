"""The stream aggregator Lambda: DynamoDB Streams -> aggregate tables."""
