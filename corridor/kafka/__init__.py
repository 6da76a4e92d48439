"""Everything that talks to Kafka. Only this package imports confluent_kafka."""
