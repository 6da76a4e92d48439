"""Local zones (Kafka clusters) for development, tests and the demo."""
