"""Public SDK: parks produce into their zone; analytics consume corridor topics.

client: ParkProducer, CorridorConsumer, CorridorRecord; catalog: Catalog (a zone's egress
schemas, data keys and subject keys); decrypt: the consumer-side decryption (pure). Built
on corridor.kafka; never imports the processor or dev tooling.
"""

from corridor.sdk.client import Catalog, CorridorConsumer, CorridorRecord, ParkProducer

__all__ = [
    "Catalog",
    "CorridorConsumer",
    "CorridorRecord",
    "ParkProducer",
]
