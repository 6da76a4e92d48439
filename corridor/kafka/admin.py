"""Cluster administration: topics, SCRAM users and ACLs, each idempotent.

Every function takes an AdminClient made for the zone's admin principal and
returns what it changed, so callers can report "created" vs "already there".

``ensure_topics`` also brings an existing topic's retention settings (``ALIGNED``:
``cleanup.policy``, ``retention.ms``) to what its spec says, when the spec names them:
an audit topic made compacted by an older provision becomes kept by time (compaction
would keep one event per key; deleting by time keeps the chain), and a corridor topic
follows its instrument's retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from corridor.kafka.clients import unavailable
from corridor.kafka.topic_config import set_topic_config

TIMEOUT_S = 30.0
ALIGNED = ("cleanup.policy", "retention.ms")
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 6
    config: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """One ALLOW ACL: ``principal`` may ``operation`` on a resource.

    ``resource`` is "topic", "group", "transactional_id" or "cluster";
    ``prefixed`` makes ``name`` a prefix pattern.
    """

    principal: str
    operation: str
    resource: str
    name: str
    prefixed: bool = False

    def binding(self) -> AclBinding:
        return AclBinding(
            ResourceType[self.resource.upper()],
            self.name,
            ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL,
            f"User:{self.principal}",
            "*",
            AclOperation[self.operation.upper()],
            AclPermissionType.ALLOW,
        )


def ensure_topics(admin: AdminClient, topics: Iterable[TopicSpec]) -> tuple[list[str], list[str]]:
    """Create the topics that do not exist, and align the ``ALIGNED`` settings of those that
    do (see the module docstring). Returns (created, already_existing)."""
    wanted = list(topics)
    if not wanted:
        return [], []
    futures = admin.create_topics(
        [NewTopic(t.name, t.partitions, 1, config=dict(t.config or {})) for t in wanted],
        operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S,
    )
    created, existing = [], []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                existing.append(name)
            else:
                raise unavailable(f"creating topic {name}", exc) from None
    align_retention(admin, [t for t in wanted if t.name in existing])
    return created, existing


def align_retention(admin: AdminClient, topics: Iterable[TopicSpec]) -> list[str]:
    """Set the ``ALIGNED`` settings each spec names where the topic's differ. Returns the
    names of the topics it changed."""
    wanted = {t.name: {k: v for k, v in (t.config or {}).items() if k in ALIGNED}
              for t in topics}
    wanted = {name: conf for name, conf in wanted.items() if conf}
    if not wanted:
        return []
    resources = [ConfigResource("topic", name) for name in sorted(wanted)]
    changed = []
    try:
        described = admin.describe_configs(resources, request_timeout=TIMEOUT_S)
        for resource, future in described.items():
            current = future.result()
            diff = {k: v for k, v in wanted[resource.name].items()
                    if current.get(k) is None or current[k].value != v}
            if diff:
                set_topic_config(admin, resource.name, diff)
                changed.append(resource.name)
    except KafkaException as exc:
        raise unavailable("describing topic configs", exc) from None
    return changed


def delete_topics(admin: AdminClient, names: Iterable[str]) -> None:
    names = list(names)
    if not names:
        return
    for name, future in admin.delete_topics(names, operation_timeout=TIMEOUT_S).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise unavailable(f"deleting topic {name}", exc) from None


def upsert_user(admin: AdminClient, username: str, password: str) -> None:
    """Create or update a SCRAM-SHA-512 user (the password is sent, never logged)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upsert = UserScramCredentialUpsertion(username, info, password.encode())
    for user, future in admin.alter_user_scram_credentials([upsert]).items():
        try:
            future.result()
        except KafkaException as exc:
            raise unavailable(f"creating user {user}", exc) from None


def existing_grants(admin: AdminClient, principal: str | None = None) -> set[Grant]:
    """ALLOW ACLs currently in the cluster, optionally for one principal."""
    flt = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY,
        f"User:{principal}" if principal else None, None,
        AclOperation.ANY, AclPermissionType.ALLOW,
    )
    try:
        bindings = admin.describe_acls(flt, request_timeout=TIMEOUT_S).result()
    except KafkaException as exc:
        raise unavailable("listing ACLs", exc) from None
    return {
        Grant(
            b.principal.removeprefix("User:"), b.operation.name.lower(),
            b.restype.name.lower(), b.name,
            b.resource_pattern_type == ResourcePatternType.PREFIXED,
        )
        for b in bindings
    }


def apply_grants(admin: AdminClient, grants: Iterable[Grant]) -> list[Grant]:
    """Create the grants that are missing. Returns those it created."""
    missing = sorted(set(grants) - existing_grants(admin), key=repr)
    if not missing:
        return []
    for binding, future in admin.create_acls([g.binding() for g in missing],
                                             request_timeout=TIMEOUT_S).items():
        try:
            future.result()
        except KafkaException as exc:
            raise unavailable(f"creating ACL {binding}", exc) from None
    return missing


def scram_users(admin: AdminClient) -> set[str]:
    """Names of the SCRAM users the cluster knows."""
    try:
        described = admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S).result()
    except KafkaException as exc:
        raise unavailable("listing SCRAM users", exc) from None
    return set(described)


def delete_user(admin: AdminClient, username: str) -> None:
    """Delete a SCRAM-SHA-512 user; a user that does not exist is not an error."""
    deletion = UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)
    for user, future in admin.alter_user_scram_credentials([deletion]).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.RESOURCE_NOT_FOUND:
                raise unavailable(f"deleting user {user}", exc) from None


def revoke_grants(admin: AdminClient, grants: Iterable[Grant]) -> list[Grant]:
    """Delete exactly these ALLOW ACLs. Returns those it was asked to delete."""
    doomed = sorted(set(grants), key=repr)
    if not doomed:
        return []
    filters = [_exact_filter(g) for g in doomed]
    for flt, future in admin.delete_acls(filters, request_timeout=TIMEOUT_S).items():
        try:
            future.result()
        except KafkaException as exc:
            raise unavailable(f"deleting ACL {flt}", exc) from None
    return doomed


def _exact_filter(grant: Grant) -> AclBindingFilter:
    b = grant.binding()
    return AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                            b.operation, b.permission_type)


def partition_counts(admin: AdminClient, names: Iterable[str],
                     timeout_s: float = 30) -> dict[str, int]:
    """Each existing topic's partition count, by name; KafkaUnavailable when the cluster
    does not answer. A topic that does not exist is left out."""
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise unavailable("listing topics", exc) from None
    return {name: len(metadata.topics[name].partitions) for name in set(names)
            if name in metadata.topics and metadata.topics[name].error is None}


def topic_ids(admin: AdminClient, names: Iterable[str], timeout_s: float = 30) -> dict[str, str]:
    """Each existing topic's id (Kafka's topic UUID, as text), by name; KafkaUnavailable
    when the cluster does not answer. A topic that does not exist is left out."""
    from confluent_kafka import TopicCollection

    wanted = sorted(set(names))
    if not wanted:
        return {}
    try:
        futures = admin.describe_topics(TopicCollection(wanted), request_timeout=timeout_s)
    except KafkaException as exc:  # refused before sending: as unavailable as a failed future
        raise unavailable("describing topics", exc) from None
    out = {}
    for name, future in futures.items():
        try:
            out[name] = str(future.result(timeout_s).topic_id)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue
            raise unavailable(f"describing topic {name}", exc) from None
    return out
