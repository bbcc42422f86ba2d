"""Who is calling: the one dependency every region service uses to authenticate a request."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from imagehop.identity.service import IdentityService, Unauthorized


@dataclass(frozen=True)
class Caller:
    user_id: str
    user_name: str
    tenant_id: str
    roles: frozenset[str]
    token_expires_at: float
    tenant_name: str = ""  # what a keystoneauth ACL may name instead of the id (``<project name>:<user name>``)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        """A ``reader`` (with no other role) may look but not change anything."""
        return bool(self.roles - {"reader"})


async def require_caller(request: Request) -> Caller:
    """The caller behind ``X-Auth-Token``, or :class:`Unauthorized` (401) if there is none.

    The region app keeps the identity service in ``app.state.identity``.
    """
    token_id = request.headers.get("x-auth-token")
    if not token_id:
        raise Unauthorized("Authentication required: send a token in X-Auth-Token.")
    identity: IdentityService = request.app.state.identity
    token = identity.cached(token_id) or await run_in_threadpool(identity.validate_cached, token_id)
    request.state.user_name = token.user.name  # for the access log
    if token.project is None:
        raise Unauthorized("The token is not scoped to a project; request a project-scoped token.")
    return Caller(
        user_id=token.user.id,
        user_name=token.user.name,
        tenant_id=token.project.id,
        roles=frozenset(token.role_names),
        token_expires_at=token.expires_at,
        tenant_name=token.project.name,
    )
