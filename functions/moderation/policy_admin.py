"""Managing community policies: create, replace, read, delete, bind to keys, forecast.

Writes need an admin caller. Reads follow ``PolicyCatalog``: admins read every policy, other
callers only those bound to their key (anything else is not found).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from moderation.buckets import ALL_VERSIONS
from moderation.errors import Forbidden, ModerationError, NotFound
from moderation.forecast import forecast
from moderation.model_holder import ModelHolder
from moderation.policies import PolicyRules, StoredPolicy
from moderation.policy_catalog import Caller, PolicyCatalog
from moderation.settings import Settings
from moderation.stores.aggregates import AggregateStore
from moderation.stores.policies import KeyBinding, PolicyStore
from moderation.stores.prediction_log import PredictionLog


def _require_admin(caller: Caller) -> None:
    if not caller.admin:
        raise Forbidden("changing policies and key bindings needs an admin key")


class PolicyAdmin:
    def __init__(
        self,
        store: PolicyStore,
        catalog: PolicyCatalog,
        model: ModelHolder,
        log: PredictionLog,
        aggregates: AggregateStore | None,
        settings: Settings,
    ) -> None:
        self.store, self.catalog, self.model = store, catalog, model
        self.log, self.aggregates, self.settings = log, aggregates, settings

    def put(
        self, caller: Caller, policy_id: str, rules: PolicyRules, if_match: str | None
    ) -> tuple[StoredPolicy, bool]:
        _require_admin(caller)
        stored, created = self.store.put(policy_id, rules, caller.id, if_match)
        self.catalog.forget(policy_id)
        return stored, created

    def delete(self, caller: Caller, policy_id: str, if_match: str | None) -> StoredPolicy:
        _require_admin(caller)
        tombstone = self.store.delete(policy_id, caller.id, if_match)
        self.catalog.forget(policy_id)
        return tombstone

    def get(self, caller: Caller, policy_id: str) -> StoredPolicy:
        if not self.catalog.may_read(caller, policy_id):
            raise NotFound(f"policy {policy_id!r} not found")
        return self.store.get(policy_id)

    def readable(self, caller: Caller) -> list[StoredPolicy]:
        return [p for p in self.store.live() if self.catalog.may_read(caller, p.policy_id)]

    def history(self, caller: Caller, policy_id: str) -> list[StoredPolicy]:
        _require_admin(caller)
        return self.store.history(policy_id)

    def bind(self, caller: Caller, binding: KeyBinding) -> KeyBinding:
        _require_admin(caller)
        for policy_id in {*binding.policies, binding.default_policy} - {None}:
            self.store.get(policy_id)  # NotFound names the missing one
        self.store.bind(binding)
        self.catalog.forget_binding(binding.key_id)
        return binding

    def binding(self, caller: Caller, key_id: str) -> KeyBinding:
        if not caller.admin and caller.key_id != key_id:
            raise NotFound(f"key {key_id!r} not found")
        return self.store.binding(key_id) or KeyBinding(key_id=key_id)

    def _requests(self, start: datetime, end: datetime) -> int | None:
        """Predictions logged in [start, end] by the aggregates (None if unreadable)."""
        if self.aggregates is None:
            return None
        try:
            buckets, _ = self.aggregates.read("hour", ALL_VERSIONS, start, end, ["requests"])
        except ModerationError:
            return None
        return sum(int(bucket.get("requests", 0)) for bucket in buckets)

    def preview(
        self, caller: Caller, policy_id: str, candidate: PolicyRules, days: int
    ) -> dict[str, Any]:
        """The forecast of ``candidate`` against the policy's current version (or the
        model's defaults for a policy that does not exist yet)."""
        _require_admin(caller)
        try:
            current: StoredPolicy | None = self.store.get(policy_id)
        except NotFound:
            current = None
        scorer = self.model.get()
        now = datetime.now(UTC)
        items = self.log.traffic_sample(days, self.settings.forecast_max_items, now)
        start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0)
        result = forecast(
            items,
            self.catalog.applied(current, scorer),
            self.catalog.applied_rules(candidate, scorer),
            scorer,
            days,
            self.settings.traffic_sample_rate,
            self._requests(start, now),
        )
        return {
            "policy_id": policy_id,
            "current_version": current.version if current else None,
            "model_version": scorer.version or "unregistered",
            **result,
        }
