"""Which community policy a request is decided under, and who may read or use it.

A caller may use and read the policies bound to its API key (``KeyBinding``), and its key's
default policy applies when a request names none. An admin may use and read every policy.
A policy the caller may not see is reported as not found, never as forbidden, so ids of
other communities' policies do not leak.

Policies and bindings are read at most once per ``POLICY_CACHE_SECONDS`` per warm container
(and a policy's compiled form once per version and model), so the predict path makes no
extra store call in the steady state; a change made elsewhere applies within that time.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moderation.errors import NotFound
from moderation.labels import Decision
from moderation.model.scorer import Scorer
from moderation.policies import AppliedPolicy, PolicyRules, StoredPolicy
from moderation.stores.policies import KeyBinding, PolicyStore


@dataclass(frozen=True)
class Caller:
    """Who is asking: the caller id the prediction log records, and whether it is an admin."""

    id: str
    admin: bool = False

    @property
    def key_id(self) -> str | None:
        return self.id.removeprefix("key:") if self.id.startswith("key:") else None


class _Expiring:
    """A small read-through cache whose entries live ``ttl`` seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl, self.clock = ttl, clock
        self.entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        now = self.clock()
        hit = self.entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        self.entries[key] = (now, value)
        return value

    def forget(self, key: Any) -> None:
        self.entries.pop(key, None)


class PolicyCatalog:
    def __init__(
        self,
        store: PolicyStore | None,
        cache_seconds: float,
        default_unsupported: Decision | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.default_unsupported = default_unsupported
        self._policies = _Expiring(cache_seconds, clock)
        self._bindings = _Expiring(cache_seconds, clock)
        self._compiled: dict[tuple[str | None, int | None, str | None], AppliedPolicy] = {}

    def _load(self, policy_id: str) -> StoredPolicy | None:
        if self.store is None:
            return None
        try:
            return self.store.get(policy_id)
        except NotFound:
            return None

    def binding(self, caller: Caller) -> KeyBinding | None:
        if self.store is None or caller.key_id is None:
            return None
        key_id = caller.key_id
        return self._bindings.get(key_id, lambda: self.store.binding(key_id))

    def may_read(self, caller: Caller, policy_id: str) -> bool:
        if caller.admin:
            return True
        binding = self.binding(caller)
        return binding is not None and binding.allows(policy_id)

    def get(self, caller: Caller, policy_id: str) -> StoredPolicy:
        """The policy, if it exists and the caller may use it; else ``NotFound``."""
        policy = (
            self._policies.get(policy_id, lambda: self._load(policy_id))
            if self.may_read(caller, policy_id)
            else None
        )
        if policy is None:
            raise NotFound(f"policy {policy_id!r} not found")
        return policy

    def resolve(
        self, caller: Caller, policy_id: str | None, lenient: bool = False
    ) -> StoredPolicy | None:
        """The policy a request is decided under: the one it names, else its key's default,
        else none (the model's defaults). ``lenient`` (Perspective's ``communityId``, an
        optional hint) falls back to the default instead of answering not found."""
        if policy_id is not None:
            try:
                return self.get(caller, policy_id)
            except NotFound:
                if not lenient:
                    raise
        binding = self.binding(caller)
        if binding is not None and binding.default_policy:
            try:
                return self.get(caller, binding.default_policy)
            except NotFound:
                return None
        return None

    def applied(self, policy: StoredPolicy | None, scorer: Scorer) -> AppliedPolicy:
        """``policy`` compiled for ``scorer`` (thresholds it leaves out are the model's)."""
        key = (
            policy.policy_id if policy else None,
            policy.version if policy else None,
            scorer.version,
        )
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = AppliedPolicy.compile(
                policy,
                scorer.thresholds,
                scorer.metadata.block_thresholds,
                self.default_unsupported,
                policy.policy_id if policy else None,
                policy.version if policy else None,
            )
            if len(self._compiled) > 256:
                self._compiled.clear()
            self._compiled[key] = compiled
        return compiled

    def applied_rules(self, rules: PolicyRules, scorer: Scorer) -> AppliedPolicy:
        """Unsaved rules (a forecast's candidate) compiled for ``scorer``, not cached."""
        return AppliedPolicy.compile(
            rules,
            scorer.thresholds,
            scorer.metadata.block_thresholds,
            self.default_unsupported,
        )

    def forget(self, policy_id: str) -> None:
        """Drop a policy this container just changed, so its next request reads it again."""
        self._policies.forget(policy_id)

    def forget_binding(self, key_id: str) -> None:
        self._bindings.forget(key_id)
