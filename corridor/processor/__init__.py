"""The exactly-once loop of one corridor, and the wiring that builds it.

runner: consume -> pipeline -> one transaction per source partition (numbered steps);
keys: data-key rotation, wrapping, publishing; wiring: endpoints, principals, keys
and secrets -> runners. Does not own: the pure pipeline (corridor.core), Kafka clients
(corridor.kafka).
"""
