"""The pure core: values in, values out.

Owns config, rules, schemas, codecs, crypto, policy, the plan and the pipeline.
Does not own: Kafka (corridor.kafka), key providers (corridor.keys), local clusters
(corridor.zones), logging or the environment; nothing here imports them.
"""
