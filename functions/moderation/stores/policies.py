"""Community policies and API-key bindings in DynamoDB, every change kept as a version.

Item layout (one table, ``PoliciesTable`` in template.yaml):

- ``pk=POLICY, sk=<policy id>``: the current version of each policy, so listing them is one
  query. A deleted policy stays as a tombstone (``deleted``), so version numbers never
  restart and its history stays readable;
- ``pk=POLICY#<policy id>, sk=V#<version, 6 digits>``: every version ever written, with who
  wrote it and when (a deletion is a version too);
- ``pk=KEY, sk=<key id>``: the policies an API key may use and read, and its default.

A write puts the new version and moves the current item in one transaction, conditioned on
the version it replaces, so two concurrent editors cannot both win: the loser gets
``PreconditionFailed`` (HTTP 412) whether it sent ``If-Match`` or not.
"""

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from moderation.errors import NotFound, PreconditionFailed, StoreUnavailable
from moderation.policies import PolicyRules, StoredPolicy
from moderation.stores.dynamo import TableAdapter, deserialize, serialize

CURRENT_PK = "POLICY"
KEY_PK = "KEY"


class KeyBinding(BaseModel):
    """What one API key may use: ``policies`` (readable and usable) and its default."""

    key_id: str
    default_policy: str | None = None
    policies: list[str] = Field(default_factory=list)

    def allows(self, policy_id: str) -> bool:
        return policy_id == self.default_policy or policy_id in self.policies


def _history_pk(policy_id: str) -> str:
    return f"{CURRENT_PK}#{policy_id}"


def _version_sk(version: int) -> str:
    return f"V#{version:06d}"


def _item(policy: StoredPolicy) -> dict[str, Any]:
    body = policy.model_dump(mode="json")
    if policy.webhook is not None:
        body["webhook"]["secret"] = policy.webhook.secret.get_secret_value()
    return body


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"policy store unavailable ({type(exc).__name__})")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PolicyStore(TableAdapter):
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            found = self.client.get_item(
                TableName=self.table, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        return deserialize(found["Item"]) if "Item" in found else None

    def _latest(self, policy_id: str) -> StoredPolicy | None:
        """The current item, tombstone included."""
        item = self._get(CURRENT_PK, policy_id)
        return StoredPolicy.model_validate(item) if item else None

    def get(self, policy_id: str) -> StoredPolicy:
        policy = self._latest(policy_id)
        if policy is None or policy.deleted:
            raise NotFound(f"policy {policy_id!r} not found")
        return policy

    def version(self, policy_id: str, version: int) -> StoredPolicy:
        item = self._get(_history_pk(policy_id), _version_sk(version))
        if item is None:
            raise NotFound(f"policy {policy_id!r} has no version {version}")
        return StoredPolicy.model_validate(item)

    def _query(self, pk: str, newest_first: bool = False) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": serialize({":pk": pk}),
            "ScanIndexForward": not newest_first,
        }
        try:
            while True:
                page = self.client.query(**args)
                items += [deserialize(item) for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    return items
                args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    def live(self) -> list[StoredPolicy]:
        """Every live policy, by id."""
        policies = [StoredPolicy.model_validate(item) for item in self._query(CURRENT_PK)]
        return [policy for policy in policies if not policy.deleted]

    def history(self, policy_id: str) -> list[StoredPolicy]:
        """Every version of a policy, newest first (deletions included)."""
        items = self._query(_history_pk(policy_id), newest_first=True)
        if not items:
            raise NotFound(f"policy {policy_id!r} not found")
        return [StoredPolicy.model_validate(item) for item in items]

    def _write(self, previous: StoredPolicy | None, policy: StoredPolicy) -> None:
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :seen",
                "ExpressionAttributeValues": serialize({":seen": previous.version}),
            }
        item = _item(policy)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize({**item, "pk": CURRENT_PK, "sk": policy.policy_id}),
                            **condition,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize(
                                {
                                    **item,
                                    "pk": _history_pk(policy.policy_id),
                                    "sk": _version_sk(policy.version),
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons:
                    raise PreconditionFailed(
                        f"policy {policy.policy_id!r} was changed by someone else; "
                        "read it again and retry"
                    ) from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    @staticmethod
    def _check_precondition(
        policy_id: str, latest: StoredPolicy | None, if_match: str | None
    ) -> None:
        if if_match is None:
            return
        live = latest is not None and not latest.deleted
        if if_match.strip() == "*":
            if not live:
                raise PreconditionFailed(f"policy {policy_id!r} does not exist (If-Match: *)")
            return
        wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
        if not live or latest.etag not in wanted:
            current = latest.etag if live else "none"
            raise PreconditionFailed(
                f"If-Match {if_match} does not match policy {policy_id!r} (current ETag {current})"
            )

    def put(
        self, policy_id: str, rules: PolicyRules, changed_by: str, if_match: str | None = None
    ) -> tuple[StoredPolicy, bool]:
        """Create or replace a policy; returns it and whether it was created."""
        latest = self._latest(policy_id)
        self._check_precondition(policy_id, latest, if_match)
        policy = StoredPolicy(
            **rules.model_dump(exclude={"webhook"}),
            webhook=rules.webhook,
            policy_id=policy_id,
            version=(latest.version + 1) if latest else 1,
            updated_at=_now(),
            updated_by=changed_by,
        )
        self._write(latest, policy)
        return policy, latest is None or latest.deleted

    def delete(self, policy_id: str, changed_by: str, if_match: str | None = None) -> StoredPolicy:
        """Delete a policy: a tombstone version, so its history stays."""
        latest = self._latest(policy_id)
        if latest is None or latest.deleted:
            raise NotFound(f"policy {policy_id!r} not found")
        self._check_precondition(policy_id, latest, if_match)
        tombstone = latest.model_copy(
            update={
                "version": latest.version + 1,
                "updated_at": _now(),
                "updated_by": changed_by,
                "deleted": True,
            }
        )
        self._write(latest, tombstone)
        return tombstone

    def binding(self, key_id: str) -> KeyBinding | None:
        item = self._get(KEY_PK, key_id)
        return KeyBinding.model_validate(item) if item else None

    def bind(self, binding: KeyBinding) -> None:
        item = {**binding.model_dump(), "pk": KEY_PK, "sk": binding.key_id}
        try:
            self.client.put_item(TableName=self.table, Item=serialize(item))
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
