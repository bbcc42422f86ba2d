"""Identity rules: who may log in, which tenant a token is scoped to, what a token proves.

Routes for v2.0 and v3 parse their own request shapes and call these functions; regions validate
tokens through :meth:`IdentityService.validate` (see ``caller.py``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from imagehop.identity import store
from imagehop.identity.catalog import Catalog
from imagehop.identity.hashing import hash_secret, new_token, token_hash, verify_secret
from imagehop.identity.store import ROLE_NAME, Project, TokenRow, User

TOKEN_CACHE_TTL = 2.0  # seconds a process trusts a token it validated without reading it again
TOKEN_CACHE_SIZE = 10_000  # tokens remembered at most (all forgotten at once past that)


class IdentityError(Exception):
    """A refusal with the HTTP status that Keystone gives for it."""

    status = 400
    title = "Bad Request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(IdentityError):
    status, title = 400, "Bad Request"


class Unauthorized(IdentityError):
    status, title = 401, "Unauthorized"


class Forbidden(IdentityError):
    status, title = 403, "Forbidden"


class NotFound(IdentityError):
    status, title = 404, "Not Found"


class ReadOnly(IdentityError):
    """A write to a resource imagehop only lists (``Allow: GET, HEAD``); the message says what to use instead."""

    status, title = 405, "Method Not Allowed"


class Conflict(IdentityError):
    status, title = 409, "Conflict"


class TooLarge(IdentityError):
    status, title = 413, "Request Entity Too Large"


class TooManyRequests(IdentityError):
    """Too many authentication attempts; ``retry_after`` seconds until the next one may succeed."""

    status, title = 429, "Too Many Requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Token:
    """A validated (or freshly issued) token with what it proves."""

    id: str
    user: User
    project: Project | None
    roles: list[dict[str, str]]
    methods: list[str]
    audit_id: str
    issued_at: float
    expires_at: float

    @property
    def role_names(self) -> list[str]:
        return [role["name"] for role in self.roles]


@dataclass
class NewUser:
    """A user as the operator sees it, with plaintext credentials (shown once, or from the data dir)."""

    user: str
    tenant_id: str
    roles: list[str]
    password: str | None = None
    api_key: str | None = None


class IdentityService:
    def __init__(self, engine: Engine, catalog: Catalog, token_lifetime: int) -> None:
        self.engine = engine
        self.catalog = catalog
        self.token_lifetime = token_lifetime
        self._validated: dict[str, tuple[float, Token]] = {}  # token hash -> (when read, what it proved)
        self._changes = 0  # bumped by every revocation or user change made through this process

    # --- authentication --------------------------------------------------------------------

    def check_password(self, password: str, *, user_name: str | None = None, user_id: str | None = None) -> User:
        user = self._find_user(user_name=user_name, user_id=user_id)
        if not verify_secret(password, user.password_hash if user else None):
            raise Unauthorized("The request you have made requires authentication: invalid username or password.")
        assert user is not None
        return self._enabled(user)

    def check_api_key(self, api_key: str, *, user_name: str) -> User:
        user = self._find_user(user_name=user_name)
        if not verify_secret(api_key, user.api_key_hash if user else None):
            raise Unauthorized("Username or api key is invalid.")
        assert user is not None
        return self._enabled(user)

    def check_token(self, token_id: str) -> Token:
        """The token method of authentication: a valid token proves its user."""
        return self.validate(token_id)

    def _find_user(self, *, user_name: str | None = None, user_id: str | None = None) -> User | None:
        with self.engine.connect() as conn:
            if user_id is not None:
                return store.get_user(conn, id=user_id)
            return store.get_user(conn, name=user_name)

    @staticmethod
    def _enabled(user: User) -> User:
        if not user.enabled:
            raise Forbidden(f"The account of user {user.name} is disabled.")
        return user

    # --- tokens ------------------------------------------------------------------------------

    def issue_token(
        self,
        user: User,
        methods: list[str],
        *,
        project_id: str | None = None,
        project_name: str | None = None,
        expires_at: float | None = None,
    ) -> Token:
        """Issue a token for ``user``, scoped to the named project or else to its default one."""
        now = time.time()
        with self.engine.begin() as conn:
            if project_id is None and project_name is None:
                project = store.get_project(conn, id=user.default_project_id)
            else:
                project = store.get_project(conn, id=project_id, name=project_name)
            roles = store.user_roles(conn, user.id, project.id) if project else []
            if project is None or not roles:
                wanted = project_id or project_name
                raise Unauthorized(f"User {user.name} has no access to project {wanted}.")
            if not project.enabled:
                raise Forbidden(f"Project {project.name} is disabled.")
            token_id = new_token()
            lifetime_end = now + self.token_lifetime
            row = TokenRow(
                user_id=user.id,
                project_id=project.id,
                roles=roles,
                methods=methods,
                audit_id=secrets.token_urlsafe(16)[:22],
                issued_at=now,
                # A token got with another token never outlives it.
                expires_at=min(lifetime_end, expires_at) if expires_at else lifetime_end,
                revoked_at=None,
            )
            store.insert_token(conn, token_hash(token_id), row)
        return Token(token_id, user, project, roles, methods, row.audit_id, row.issued_at, row.expires_at)

    def issue_delegated_token(self, user_id: str, project_id: str, expires_at: float) -> str:
        """A token for a job run on a user's behalf (a glance-download by any worker): the user's
        current roles on the project, valid until ``expires_at``; refused when that has passed or
        the user is gone, disabled or no longer a member. The caller revokes it when done."""
        if expires_at <= time.time():
            raise Unauthorized("The token of the user who asked has expired.")
        user = self._find_user(user_id=user_id)
        if user is None:
            raise Unauthorized("The user who asked no longer exists.")
        return self.issue_token(self._enabled(user), ["delegation"], project_id=project_id, expires_at=expires_at).id

    def validate(self, token_id: str) -> Token:
        """The token's meaning, or :class:`Unauthorized` if it is unknown, expired or revoked."""
        if not token_id or len(token_id) > 256:
            raise Unauthorized("The request you have made requires authentication.")
        with self.engine.connect() as conn:
            row = store.get_token(conn, token_hash(token_id))
            if row is None:
                raise Unauthorized("The token is not valid.")
            if row.revoked_at is not None:
                raise Unauthorized("The token has been revoked.")
            if row.expires_at <= time.time():
                raise Unauthorized("The token has expired; request a new one.")
            user = store.get_user(conn, id=row.user_id)
            project = store.get_project(conn, id=row.project_id) if row.project_id else None
        if user is None:
            raise Unauthorized("The token's user no longer exists.")
        return Token(token_id, user, project, row.roles, row.methods, row.audit_id, row.issued_at, row.expires_at)

    def cached(self, token_id: str) -> Token | None:
        """The token as :meth:`validate_cached` saw it less than :data:`TOKEN_CACHE_TTL` ago, while it
        has not expired since; else None. Cheap enough for the event loop."""
        key = token_hash(token_id)
        hit = self._validated.get(key)
        if hit is None:
            return None
        read_at, token = hit
        if time.monotonic() - read_at >= TOKEN_CACHE_TTL or token.expires_at <= time.time():
            self._validated.pop(key, None)
            return None
        return token

    def validate_cached(self, token_id: str) -> Token:
        """:meth:`validate`, remembered for :data:`TOKEN_CACHE_TTL` seconds: what regions use on every
        request (three queries each otherwise).

        A revocation or user change made through this process (an embedded ``serve`` runs identity
        and the regions in one) forgets every remembered token at once, and a read that was under
        way meanwhile is not remembered. One made elsewhere (the CLI, another process of a scaled-out
        deployment) is seen within :data:`TOKEN_CACHE_TTL`. Refusals are never remembered.
        """
        token = self.cached(token_id)
        if token is not None:
            return token
        read_at, changes = time.monotonic(), self._changes
        token = self.validate(token_id)
        if changes == self._changes:
            if len(self._validated) >= TOKEN_CACHE_SIZE:
                self._validated.clear()
            self._validated[token_hash(token_id)] = (read_at, token)
        return token

    def _forget_tokens(self) -> None:
        self._changes += 1
        self._validated.clear()

    def revoke(self, token_id: str) -> None:
        try:
            with self.engine.begin() as conn:
                if not store.revoke_token(conn, token_hash(token_id), time.time()):
                    raise NotFound("Could not find token.")
        finally:
            self._forget_tokens()

    def purge_expired_tokens(self) -> int:
        with self.engine.begin() as conn:
            return store.delete_expired_tokens(conn, time.time())

    # --- users (operator side) ---------------------------------------------------------------

    def create_user(
        self, name: str, tenant_id: str, roles: list[str], *, password: str | None, api_key: str | None
    ) -> None:
        """Create a user in tenant ``tenant_id`` (created too if new) with the given roles."""
        _check_user_name(name)
        _check_tenant_id(tenant_id)
        bad = [r for r in roles if not ROLE_NAME.fullmatch(r)]
        if bad or not roles:
            raise BadRequest(f"invalid role name(s) {bad or roles}: 1-64 letters, digits or _ : . -")
        now = time.time()
        with self.engine.begin() as conn:
            if store.get_user(conn, name=name) is not None:
                raise Conflict(f"a user named {name} already exists")
            store.ensure_roles(conn)
            store.ensure_roles(conn, roles)
            project = store.ensure_project(conn, tenant_id, now)
            user_id = store.insert_user(
                conn,
                name=name,
                project_id=project.id,
                password_hash=hash_secret(password) if password else None,
                api_key_hash=hash_secret(api_key) if api_key else None,
                now=now,
            )
            store.assign_roles(conn, user_id, project.id, roles)

    def ensure_user(self, spec: NewUser) -> bool:
        """Create ``spec`` if missing (True); an existing user keeps its secrets, only its roles are added.

        Never rotating existing secrets is what lets several processes, or a second host, start
        against one identity database without changing anyone's password.
        """
        with self.engine.begin() as conn:
            existing = store.get_user(conn, name=spec.user)
            if existing is not None:
                store.assign_roles(conn, existing.id, existing.default_project_id, spec.roles)
                return False
        try:
            self.create_user(spec.user, spec.tenant_id, spec.roles, password=spec.password, api_key=spec.api_key)
        except Conflict:  # another process created it meanwhile
            return False
        return True

    def secrets_match(self, spec: NewUser) -> bool:
        """True when ``spec``'s plaintext password and API key are the stored ones."""
        user = self._find_user(user_name=spec.user)
        return (
            user is not None
            and verify_secret(spec.password or "", user.password_hash)
            and verify_secret(spec.api_key or "", user.api_key_hash)
        )

    def delete_user(self, name: str) -> None:
        try:
            with self.engine.begin() as conn:
                user = store.get_user(conn, name=name)
                if user is None:
                    raise NotFound(f"no user named {name}")
                store.delete_user(conn, user.id)
        finally:
            self._forget_tokens()

    def list_users(self) -> list[tuple[User, list[str]]]:
        with self.engine.connect() as conn:
            return store.list_users(conn)

    # --- the read-only directory (what `openstack project list`, `user list`, ... show) -------

    def list_projects(self) -> list[Project]:
        with self.engine.connect() as conn:
            return store.list_projects(conn)

    def projects_of(self, user_id: str) -> list[Project]:
        with self.engine.connect() as conn:
            return store.projects_of_user(conn, user_id)

    def get_project(self, project_id: str) -> Project | None:
        with self.engine.connect() as conn:
            return store.get_project(conn, id=project_id)

    def get_user(self, user_id: str) -> User | None:
        with self.engine.connect() as conn:
            return store.get_user(conn, id=user_id)

    def list_roles(self) -> list[dict[str, str]]:
        with self.engine.connect() as conn:
            return store.list_roles(conn)

    def ensure_roles(self) -> None:
        with self.engine.begin() as conn:
            store.ensure_roles(conn)


def _check_user_name(name: str) -> None:
    if not name or len(name) > 255 or not all(c.isalnum() or c in "-_.@" for c in name):
        raise BadRequest(f"user name {name!r} must be 1-255 letters, digits or - _ . @")


def _check_tenant_id(tenant_id: str) -> None:
    if not tenant_id or len(tenant_id) > 64 or not all(c.isalnum() or c in "-_" for c in tenant_id):
        raise BadRequest(f"tenant id {tenant_id!r} must be 1-64 letters, digits, - or _")
