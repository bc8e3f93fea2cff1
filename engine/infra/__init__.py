"""Clients and loaders below every stage: Kafka client settings and helpers, the Redis client, the exported
model version (metadata + tokenizer). They import only ``schemas``."""
