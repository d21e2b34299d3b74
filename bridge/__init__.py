"""Webhook-to-Kafka bridge: verify provider webhooks, publish them Avro-encoded, one topic per event type."""
