"""Community policies: create or replace, read, list, delete, history, key bindings and the
forecast of a change (``POST /policies/{policy_id}:preview``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor, register_url_convertor

from api.deps import CallerIdentityDep, PolicyAdminDep
from api.schemas import KeyBindingCreate, PolicyList, PolicyPublic
from moderation.policies import POLICY_ID_PATTERN, PolicyRules
from moderation.stores.policies import KeyBinding


class PolicyIdConvertor(StringConvertor):
    """A path segment without ``:`` (no policy id has one): ``/policies/x:preview`` is then
    only the forecast's path, so another method on it is a 405, not a bad id. A segment
    that is not a valid id is still routed, and refused with a 422 naming ``policy_id``."""

    regex = "[^/:]+"


register_url_convertor("policy_id", PolicyIdConvertor())
router = APIRouter()
PolicyIdPath = Annotated[str, Path(pattern=POLICY_ID_PATTERN, description="the policy's id")]
IfMatch = Annotated[
    str | None, Header(max_length=200, description="the ETag last read; * for any version")
]


def _public(policy: Any) -> PolicyPublic:
    return PolicyPublic.model_validate(policy.public())


@router.put("/policies/{policy_id:policy_id}", response_model=PolicyPublic)
async def put_policy(
    policy_id: PolicyIdPath,
    rules: PolicyRules,
    response: Response,
    caller: CallerIdentityDep,
    admin: PolicyAdminDep,
    if_match: IfMatch = None,
) -> PolicyPublic:
    """Create or replace a policy (admin key): 201 when created, 200 when replaced."""
    stored, created = await run_in_threadpool(admin.put, caller, policy_id, rules, if_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = stored.etag
    return _public(stored)


@router.get("/policies", response_model=PolicyList)
async def list_policies(caller: CallerIdentityDep, admin: PolicyAdminDep) -> PolicyList:
    """Every policy the caller may read (an admin: all; others: those bound to its key)."""
    policies = await run_in_threadpool(admin.readable, caller)
    return PolicyList(items=[_public(p) for p in policies])


@router.get("/policies/{policy_id:policy_id}", response_model=PolicyPublic)
async def get_policy(
    policy_id: PolicyIdPath, response: Response, caller: CallerIdentityDep, admin: PolicyAdminDep
) -> PolicyPublic:
    """One policy's current version, with its ETag."""
    stored = await run_in_threadpool(admin.get, caller, policy_id)
    response.headers["ETag"] = stored.etag
    return _public(stored)


@router.get("/policies/{policy_id:policy_id}/versions", response_model=PolicyList)
async def policy_history(
    policy_id: PolicyIdPath, caller: CallerIdentityDep, admin: PolicyAdminDep
) -> PolicyList:
    """Every version of a policy, newest first, deletions included (admin key)."""
    versions = await run_in_threadpool(admin.history, caller, policy_id)
    return PolicyList(items=[_public(p) for p in versions])


@router.delete("/policies/{policy_id:policy_id}", response_model=PolicyPublic)
async def delete_policy(
    policy_id: PolicyIdPath,
    caller: CallerIdentityDep,
    admin: PolicyAdminDep,
    if_match: IfMatch = None,
) -> PolicyPublic:
    """Delete a policy (admin key); its versions stay readable in its history."""
    tombstone = await run_in_threadpool(admin.delete, caller, policy_id, if_match)
    return _public(tombstone)


@router.post("/policies/{policy_id:policy_id}:preview")
async def preview_policy(
    policy_id: PolicyIdPath,
    candidate: PolicyRules,
    caller: CallerIdentityDep,
    admin: PolicyAdminDep,
    days: Annotated[int, Query(ge=1, le=30, description="days of traffic to replay")] = 7,
) -> dict[str, Any]:
    """What ``candidate`` would decide on the last ``days`` of sampled traffic, against the
    policy's current version (admin key)."""
    return await run_in_threadpool(admin.preview, caller, policy_id, candidate, days)


@router.put("/keys/{key_id}/policies", response_model=KeyBinding)
async def bind_key(
    key_id: Annotated[str, Path(max_length=128)],
    body: KeyBindingCreate,
    caller: CallerIdentityDep,
    admin: PolicyAdminDep,
) -> KeyBinding:
    """Which policies an API key may use and read, and its default (admin key)."""
    binding = KeyBinding(key_id=key_id, **body.model_dump())
    return await run_in_threadpool(admin.bind, caller, binding)


@router.get("/keys/{key_id}/policies", response_model=KeyBinding)
async def key_binding(
    key_id: Annotated[str, Path(max_length=128)], caller: CallerIdentityDep, admin: PolicyAdminDep
) -> KeyBinding:
    """A key's policies (an admin, or the key itself; ``me`` is the caller's own key)."""
    if key_id == "me" and caller.key_id:
        key_id = caller.key_id
    return await run_in_threadpool(admin.binding, caller, key_id)
