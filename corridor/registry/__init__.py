"""Schema registries: writer schemas by id, for records framed the Confluent way.

Owns asking a zone's registry (Confluent-compatible API) for the schemas behind the ids
of a batch, parsing them once and keeping them by id (``SchemaRegistry``), registering
a schema under a subject, listing subjects. A refusal is ``RegistryError`` (HTTP status,
registry code); a registry that does not answer is ``RegistryUnavailable``, on which a
caller waits and asks again rather than quarantining anything.

Does not own: the HTTP exchange (``corridor.kafka.registry_client``, over confluent-kafka's
client), decoding records (``corridor.core.codec.dialects``, which takes the schemas as
values), which registry a zone uses or its credentials (the corridor file names them,
``corridor.processor.resolve`` resolves them), running local registries (``corridor.zones``).
"""

from corridor.registry.client import RegistryApi, SchemaRegistry, WriterSchemas, connect

__all__ = ["RegistryApi", "SchemaRegistry", "WriterSchemas", "connect"]
