"""Make the clusters' principals and ACLs match a corridor file (``corridor provision --acls``).

Every principal of the file exists as a SCRAM user on every cluster of the
file, so a client that knocks on the wrong zone is *authenticated and then
refused* (an authorization error naming the resource) rather than failing at
login; its rights exist only where ``corridor.core.acl.grants`` puts them.
Passwords come from the credentials file (``Credentials.add``: 0600).

Idempotent: a second run adds and removes nothing. Grants of principals the
file does not manage are never touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient

from corridor.core import acl
from corridor.core.config import Config
from corridor.kafka import admin as kadmin
from corridor.kafka.clients import Endpoint, admin_client
from corridor.zones.credentials import Credentials, Principal


@dataclass
class AclDiff:
    """What one run changed, per cluster (named by its zones, e.g. ``hk``)."""

    users_added: dict[str, list[str]] = field(default_factory=dict)
    added: dict[str, list[kadmin.Grant]] = field(default_factory=dict)
    removed: dict[str, list[kadmin.Grant]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.users_added.values()) and not any(self.added.values()) \
            and not any(self.removed.values())


def clusters(config: Config, endpoints: Mapping[str, Endpoint]) -> dict[str, list[str]]:
    """Zones grouped by the cluster they live on (same bootstrap), keyed ``zone[+zone...]``."""
    by_bootstrap: dict[str, list[str]] = defaultdict(list)
    for zone in sorted(config.zones):
        by_bootstrap[endpoints[zone].bootstrap].append(zone)
    return {"+".join(zones): zones for zones in by_bootstrap.values()}


def desired(config: Config, zones: list[str]) -> set[kadmin.Grant]:
    """The grants of the file that live on the cluster holding ``zones``."""
    return {kadmin.Grant(g.principal, g.operation, g.resource, g.name, g.prefixed)
            for g in acl.grants(config) if g.zone in zones}


def sync_acls(config: Config, endpoints: Mapping[str, Endpoint], creds: Credentials,
              remove: bool = True) -> AclDiff:
    """Create missing users and grants on every cluster; with ``remove``, revoke the
    grants of this file's principals that the file no longer implies."""
    names = [p.name for p in acl.principals(config)]
    principals = {n: creds.add(n) for n in names}  # fresh passwords for new ones, saved 0600
    diff = AclDiff()
    for key, zones in clusters(config, endpoints).items():
        admin = admin_client(endpoints[zones[0]], creds.admin)
        diff.users_added[key] = _ensure_users(admin, principals)
        have = {g for g in kadmin.existing_grants(admin) if g.principal in principals}
        add, drop = acl.changes(desired(config, zones), have, names)
        diff.added[key] = kadmin.apply_grants(admin, add)
        diff.removed[key] = kadmin.revoke_grants(admin, drop) if remove else []
    return diff


def _ensure_users(admin: AdminClient, principals: Mapping[str, Principal]) -> list[str]:
    known = kadmin.scram_users(admin)
    added = []
    for name, principal in sorted(principals.items()):
        if name not in known:
            kadmin.upsert_user(admin, name, principal.secret)
            added.append(name)
    return added


def drop_principals(config: Config, endpoints: Mapping[str, Endpoint], creds: Credentials,
                    delete_users: bool = False) -> None:
    """Revoke every grant of the file's principals (test cleanup); a user without grants
    can do nothing. ``delete_users`` also deletes their SCRAM users: off by default, because
    the eu zone refused its admin after a restart that followed such deletions (not
    reproduced in isolation; see the acl-tls report)."""
    names = {p.name for p in acl.principals(config)}
    for zones in clusters(config, endpoints).values():
        admin = admin_client(endpoints[zones[0]], creds.admin)
        kadmin.revoke_grants(admin, [g for g in kadmin.existing_grants(admin)
                                     if g.principal in names])
        if delete_users:
            for name in sorted(names):
                kadmin.delete_user(admin, name)
