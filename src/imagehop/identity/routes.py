"""Keystone v2.0 (with Rackspace's API-key extension) and v3 routes, and version discovery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imagehop.bodies import MalformedJSON, read_json
from imagehop.config import AuthLimits
from imagehop.identity.directory import directory_routes
from imagehop.identity.service import (
    BadRequest,
    Forbidden,
    IdentityError,
    IdentityService,
    NotFound,
    ReadOnly,
    Token,
    TooLarge,
    TooManyRequests,
    Unauthorized,
)
from imagehop.identity.store import User
from imagehop.identity.throttle import AuthGate
from imagehop.streams import BodyTooLarge

V3_UPDATED = "2020-04-07T00:00:00Z"
V2_UPDATED = "2014-04-17T00:00:00Z"
DEFAULT_DOMAIN = {"id": "default", "name": "Default"}


def build_identity_app(identity: IdentityService, public_url: str, limits: AuthLimits | None = None) -> Starlette:
    """The identity endpoint: ``/`` (discovery), ``/v2.0/...`` and ``/v3/...``."""
    routes = [
        Route("/", versions, methods=["GET", "HEAD"]),
        Route("/v3", version_v3, methods=["GET", "HEAD"]),
        Route("/v3/", version_v3, methods=["GET", "HEAD"]),
        Route("/v2.0", version_v2, methods=["GET", "HEAD"]),
        Route("/v2.0/", version_v2, methods=["GET", "HEAD"]),
        Route("/v2.0/tokens", v2_create_token, methods=["POST"]),
        Route("/v2.0/tokens", v2_revoke_own_token, methods=["DELETE"]),
        Route("/v2.0/tokens/{token_id}", v2_token, methods=["GET", "HEAD", "DELETE"]),
        Route("/v2.0/tokens/{token_id}/endpoints", v2_token_endpoints, methods=["GET"]),
        Route("/v2.0/tenants", v2_tenants, methods=["GET"]),
        Route("/v3/auth/tokens", v3_tokens, methods=["GET", "HEAD", "POST", "DELETE"]),
        Route("/v3/auth/catalog", v3_catalog, methods=["GET"]),
        *directory_routes(),  # regions, services, endpoints, projects, domains, users, roles (read-only)
    ]
    app = Starlette(
        routes=routes, exception_handlers={IdentityError: _identity_error, 404: _not_found, 405: _not_allowed}
    )
    app.state.identity = identity
    app.state.public_url = public_url.rstrip("/")
    app.state.auth_gate = AuthGate(limits)
    return app


# --- discovery -----------------------------------------------------------------------------------


def _v3_version(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


def _v2_version(base: str) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "stable",
        "updated": V2_UPDATED,
        "links": [
            {"rel": "self", "href": f"{base}/v2.0/"},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}],
    }


async def versions(request: Request) -> Response:
    base = request.app.state.public_url
    body = {"versions": {"values": [_v3_version(base), _v2_version(base)]}}
    return JSONResponse(body, status_code=300, headers={"Location": f"{base}/v3/"})


async def version_v3(request: Request) -> Response:
    return JSONResponse({"version": _v3_version(request.app.state.public_url)})


async def version_v2(request: Request) -> Response:
    return JSONResponse({"version": _v2_version(request.app.state.public_url)})


# --- v2.0 ----------------------------------------------------------------------------------------


async def v2_create_token(request: Request) -> Response:
    identity: IdentityService = request.app.state.identity
    auth = (await _json_body(request)).get("auth")
    if not isinstance(auth, dict):
        raise BadRequest("Expecting to find auth in request body.")
    tenant_id, tenant_name = auth.get("tenantId"), auth.get("tenantName")
    if tenant_id and tenant_name:
        raise BadRequest("Give tenantId or tenantName, not both.")
    kinds = [k for k in ("passwordCredentials", "RAX-KSKEY:apiKeyCredentials", "token") if k in auth]
    if len(kinds) != 1:
        raise BadRequest("Expecting exactly one of passwordCredentials, RAX-KSKEY:apiKeyCredentials or token in auth.")
    kind = kinds[0]
    credentials = _object(auth[kind], f"auth.{kind}")
    expires_at = None
    if kind == "passwordCredentials":
        name = _string(credentials, "username", f"auth.{kind}")
        secret = _string(credentials, "password", f"auth.{kind}")
        user = await _check_secret(request, name, identity.check_password, secret, user_name=name)
        methods, authenticated_by = ["password"], "PASSWORD"
    elif kind == "RAX-KSKEY:apiKeyCredentials":
        name = _string(credentials, "username", f"auth.{kind}")
        secret = _string(credentials, "apiKey", f"auth.{kind}")
        user = await _check_secret(request, name, identity.check_api_key, secret, user_name=name)
        methods, authenticated_by = ["password"], "APIKEY"
    else:
        previous = await run_in_threadpool(identity.check_token, _string(credentials, "id", "auth.token"))
        user, methods, authenticated_by, expires_at = previous.user, previous.methods, "TOKEN", previous.expires_at
    token = await run_in_threadpool(
        identity.issue_token,
        user,
        methods,
        project_id=_optional_string(tenant_id, "auth.tenantId"),
        project_name=_optional_string(tenant_name, "auth.tenantName"),
        expires_at=expires_at,
    )
    return JSONResponse({"access": _v2_access(identity, token, authenticated_by, with_catalog=True)})


def _v2_access(identity: IdentityService, token: Token, authenticated_by: str, *, with_catalog: bool) -> dict:
    project = token.project
    token_body: dict[str, Any] = {
        "id": token.id,
        "issued_at": _iso(token.issued_at),
        "expires": _iso(token.expires_at),
        "audit_ids": [token.audit_id],
        "RAX-AUTH:authenticatedBy": [authenticated_by],
    }
    if project is not None:
        token_body["tenant"] = {"id": project.id, "name": project.name, "enabled": project.enabled, "description": None}
    access: dict[str, Any] = {
        "token": token_body,
        "user": {
            "id": token.user.id,
            "name": token.user.name,
            "username": token.user.name,
            "roles": [dict(role, tenantId=project.id) if project else role for role in token.roles],
            "roles_links": [],
            "RAX-AUTH:defaultRegion": identity.catalog.default_region,
        },
        "metadata": {"is_admin": 0, "roles": [role["id"] for role in token.roles]},
    }
    if with_catalog:
        access["serviceCatalog"] = identity.catalog.v2(project.id) if project else []
    return access


async def v2_token(request: Request) -> Response:
    identity: IdentityService = request.app.state.identity
    token_id = request.path_params["token_id"]
    if request.method == "DELETE":  # as Rackspace: an admin revokes any token, a user its own
        caller = await _caller(request)
        check_token_subject(caller, await _subject(identity, token_id))
        await run_in_threadpool(identity.revoke, token_id)
        return Response(status_code=204)
    await _require_admin(request)
    token = await _subject(identity, token_id)
    belongs_to = request.query_params.get("belongsTo")
    if belongs_to is not None and (token.project is None or token.project.id != belongs_to):
        raise NotFound("The token does not belong to that tenant.")
    if request.method == "HEAD":
        return Response(status_code=200)
    return JSONResponse({"access": _v2_access(identity, token, "TOKEN", with_catalog=False)})


async def v2_revoke_own_token(request: Request) -> Response:
    """``DELETE /v2.0/tokens``: the caller's own token (Rackspace's "revoke token")."""
    identity: IdentityService = request.app.state.identity
    await _caller(request)
    await run_in_threadpool(identity.revoke, request.headers["x-auth-token"])
    return Response(status_code=204)


async def v2_token_endpoints(request: Request) -> Response:
    identity: IdentityService = request.app.state.identity
    await _require_admin(request)
    token = await _subject(identity, request.path_params["token_id"])
    endpoints = []
    for entry in identity.catalog.v2(token.project.id) if token.project else []:
        for endpoint in entry["endpoints"]:
            endpoints.append(dict(endpoint, name=entry["name"], type=entry["type"]))
    return JSONResponse({"endpoints": endpoints, "endpoints_links": []})


async def v2_tenants(request: Request) -> Response:
    token = await _caller(request)
    tenants = (
        []
        if token.project is None
        else [
            {"id": token.project.id, "name": token.project.name, "enabled": token.project.enabled, "description": None}
        ]
    )
    return JSONResponse({"tenants": tenants, "tenants_links": []})


# --- v3 ------------------------------------------------------------------------------------------


async def v3_tokens(request: Request) -> Response:
    identity: IdentityService = request.app.state.identity
    if request.method == "POST":
        return await _v3_create_token(request, identity)
    caller = await _caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise BadRequest("X-Subject-Token header is required.")
    token = await _subject(identity, subject)
    check_token_subject(caller, token)
    if request.method == "DELETE":
        await run_in_threadpool(identity.revoke, subject)
        return Response(status_code=204)
    headers = {"X-Subject-Token": subject}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    with_catalog = "nocatalog" not in request.query_params
    return JSONResponse({"token": _v3_token(identity, token, with_catalog)}, headers=headers)


async def _v3_create_token(request: Request, identity: IdentityService) -> Response:
    auth = _object((await _json_body(request)).get("auth"), "auth")
    ident = _object(auth.get("identity"), "auth.identity")
    methods = ident.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise BadRequest("auth.identity.methods must be a non-empty list.")
    expires_at = None
    if "password" in methods:
        password = _object(ident.get("password"), "auth.identity.password")
        user_ref = _object(password.get("user"), "auth.identity.password.user")
        secret = _string(user_ref, "password", "auth.identity.password.user")
        if "id" in user_ref:
            user_id = _string(user_ref, "id", "user")
            user = await _check_secret(request, user_id, identity.check_password, secret, user_id=user_id)
        else:
            _check_domain(user_ref.get("domain"), "auth.identity.password.user.domain")
            name = _string(user_ref, "name", "auth.identity.password.user")
            user = await _check_secret(request, name, identity.check_password, secret, user_name=name)
    elif "token" in methods:
        token_ref = _object(ident.get("token"), "auth.identity.token")
        previous = await run_in_threadpool(identity.check_token, _string(token_ref, "id", "auth.identity.token"))
        user, expires_at = previous.user, previous.expires_at
    else:
        raise Unauthorized(f"Unsupported authentication method(s) {methods}; use password or token.")

    project_id = project_name = None
    scope = auth.get("scope")
    if scope is not None and scope != "unscoped":
        scope = _object(scope, "auth.scope")
        if "project" not in scope:
            raise Unauthorized("Only project scope is supported; give auth.scope.project.")
        project = _object(scope["project"], "auth.scope.project")
        if "id" in project:
            project_id = _string(project, "id", "auth.scope.project")
        else:
            _check_domain(project.get("domain"), "auth.scope.project.domain")
            project_name = _string(project, "name", "auth.scope.project")
    token = await run_in_threadpool(
        identity.issue_token, user, methods, project_id=project_id, project_name=project_name, expires_at=expires_at
    )
    with_catalog = "nocatalog" not in request.query_params
    return JSONResponse(
        {"token": _v3_token(identity, token, with_catalog)}, status_code=201, headers={"X-Subject-Token": token.id}
    )


def _v3_token(identity: IdentityService, token: Token, with_catalog: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "methods": token.methods,
        "expires_at": _iso(token.expires_at),
        "issued_at": _iso(token.issued_at),
        "audit_ids": [token.audit_id],
        "user": {
            "id": token.user.id,
            "name": token.user.name,
            "domain": DEFAULT_DOMAIN,
            "password_expires_at": None,
        },
        "is_domain": False,
        "roles": token.roles,
    }
    if token.project is not None:
        body["project"] = {"id": token.project.id, "name": token.project.name, "domain": DEFAULT_DOMAIN}
        if with_catalog:
            body["catalog"] = identity.catalog.v3(token.project.id)
    return body


async def v3_catalog(request: Request) -> Response:
    identity: IdentityService = request.app.state.identity
    token = await _caller(request)
    catalog = identity.catalog.v3(token.project.id) if token.project else []
    return JSONResponse({"catalog": catalog, "links": {"self": f"{request.app.state.public_url}/v3/auth/catalog"}})


# --- helpers -------------------------------------------------------------------------------------


async def _check_secret(request: Request, user_key: str, check: Callable[..., User], *args: Any, **kwargs: Any) -> User:
    """A password or API-key check through the bounded hashing pool and the rate limits."""
    gate: AuthGate = request.app.state.auth_gate
    address = request.client.host if request.client else "unknown"
    return await gate.check(address, user_key, check, *args, **kwargs)


async def _caller(request: Request) -> Token:
    identity: IdentityService = request.app.state.identity
    token_id = request.headers.get("x-auth-token")
    if not token_id:
        raise Unauthorized("The request you have made requires authentication: send X-Auth-Token.")
    token = await run_in_threadpool(identity.validate, token_id)
    request.state.user_name = token.user.name  # for the access log
    return token


caller_token = _caller  # for the directory routes


async def _require_admin(request: Request) -> Token:
    token = await _caller(request)
    if "admin" not in token.role_names:
        raise Forbidden("You are not authorized to perform the requested action: admin role required.")
    return token


def check_token_subject(caller: Token, subject: Token) -> None:
    """Keystone's ``token_subject or admin`` rule: a user checks and revokes only its own tokens."""
    if caller.user.id != subject.user.id and "admin" not in caller.role_names:
        raise Forbidden("You are not authorized to perform the requested action: the token is not yours.")


async def _subject(identity: IdentityService, token_id: str) -> Token:
    """The token being checked: Keystone answers 404 (not 401) when it is not valid."""
    try:
        return await run_in_threadpool(identity.validate, token_id)
    except Unauthorized as exc:
        raise NotFound(f"Could not find token: {exc.message}") from None


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await read_json(request)
    except BodyTooLarge:
        raise TooLarge("Request is too large.") from None
    except MalformedJSON as exc:
        raise BadRequest(f"Malformed request body: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("Malformed request body: expecting a JSON object.")
    return body


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"Expecting to find {where} (an object) in request body.")
    return value


def _string(container: dict[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Expecting to find {where}.{key} (a non-empty string) in request body.")
    return value


def _optional_string(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise BadRequest(f"{where} must be a string.")
    return str(value)


def _check_domain(domain: Any, where: str) -> None:
    if domain is None:
        raise BadRequest(f"Expecting to find {where} in request body (or identify the user by id).")
    domain = _object(domain, where)
    if domain.get("id", "default") != "default" or domain.get("name", "Default") != "Default":
        raise Unauthorized("Could not find domain: only the Default domain exists.")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, title: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Keystone uri="/"'} if status == 401 else None
    return JSONResponse({"error": {"code": status, "title": title, "message": message}}, status, headers=headers)


async def _identity_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdentityError)
    response = _error(exc.status, exc.title, exc.message)
    if isinstance(exc, ReadOnly):
        response.headers["Allow"] = "GET, HEAD"
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _not_found(request: Request, _exc: Exception) -> Response:
    path = request.url.path
    if path.startswith(("/v3/", "/v2.0/")):
        message = (
            f"{request.method} {path} is not implemented in imagehop. Its identity API serves tokens, the catalog, "
            "and read-only regions, services, endpoints, projects, domains, users and roles; manage users with "
            "`imagehop user` (see docs/api-coverage.md)."
        )
        return _error(404, "Not Found", message)
    return _error(404, "Not Found", f"The resource {path} could not be found.")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    response = _error(405, "Method Not Allowed", f"{request.method} is not allowed on {request.url.path}.")
    response.headers.update(getattr(exc, "headers", None) or {})
    return response
