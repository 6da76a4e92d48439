"""Consumer groups as an operator sees them: members and what each one owns."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException

from corridor.core.errors import KafkaUnavailable
from corridor.kafka.clients import Endpoint, admin_client
from corridor.zones.credentials import Principal


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group: its client id, host and assigned partitions."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupState:
    group: str
    state: str  # Stable, Empty, PreparingRebalance, Dead, ...
    members: tuple[GroupMember, ...]


def describe_group(endpoint: Endpoint, principal: Principal, group: str,
                   timeout_s: float = 30.0) -> GroupState:
    """The group's state and members; KafkaUnavailable when the cluster does not answer."""
    admin = admin_client(endpoint, principal)
    try:
        futures = admin.describe_consumer_groups([group], request_timeout=timeout_s)
        desc = futures[group].result(timeout_s)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        raise KafkaUnavailable(f"{endpoint.zone}: describing group {group}: {err.str()}") from None
    members = tuple(
        GroupMember(m.member_id, m.client_id, m.host,
                    tuple(sorted((tp.topic, tp.partition)
                                 for tp in (m.assignment.topic_partitions if m.assignment
                                            else []))))
        for m in desc.members)
    state = getattr(desc.state, "name", str(desc.state))
    return GroupState(group, state, members)
