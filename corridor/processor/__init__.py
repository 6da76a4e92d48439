"""The exactly-once loop of one corridor, and what builds and watches it.

runner: consume -> pipeline -> one transaction per source partition (numbered steps);
rebalance: assignment and revocation; retry: transient failures waited out, by Kafka
error code; keys: data-key rotation, wrapping, publishing; stats and metrics: counts,
Prometheus metrics, /healthz and /readyz; resolve: the one resolver (file + environment
-> endpoints, credentials, key providers); wiring: builds and starts runners. Does not
own: the pure pipeline (corridor.core), Kafka clients (corridor.kafka).
"""
