"""The read-only part of Keystone's v3 API that ``openstack`` users try first.

Regions, services, endpoints, projects, domains, users and roles, in Keystone's shapes and under
Keystone's default policy (checked against a real Keystone 30): anyone lists the regions and sees
their own user, projects and domain; listing endpoints, services, every project, domain, user or
role needs the admin role, and anyone else gets Keystone's 403. Nothing here changes: a write
answers 405 (``Allow: GET, HEAD``) saying that imagehop manages users and tenants with ``imagehop user``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imagehop.identity.service import Forbidden, IdentityService, NotFound, ReadOnly, Token
from imagehop.identity.store import Project, User

DOMAIN = {"id": "default", "name": "Default", "description": "The default domain", "enabled": True}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
Handler = Callable[[Request], Awaitable[Response]]


def directory_routes() -> list[Route]:
    return [
        _read_only("/v3/regions", list_regions),
        _read_only("/v3/regions/{region_id}", show_region),
        _read_only("/v3/services", list_services),
        _read_only("/v3/services/{service_id}", show_service),
        _read_only("/v3/endpoints", list_endpoints),
        _read_only("/v3/endpoints/{endpoint_id}", show_endpoint),
        _read_only("/v3/projects", list_projects),
        _read_only("/v3/projects/{project_id}", show_project),
        _read_only("/v3/auth/projects", auth_projects),
        _read_only("/v3/users", list_users),
        _read_only("/v3/users/{user_id}", show_user),
        _read_only("/v3/users/{user_id}/projects", user_projects),
        _read_only("/v3/domains", list_domains),
        _read_only("/v3/domains/{domain_id}", show_domain),
        _read_only("/v3/auth/domains", auth_domains),
        _read_only("/v3/auth/system", auth_system),
        _read_only("/v3/roles", list_roles),
        _read_only("/v3/limits", list_limits),
    ]


def _read_only(path: str, handler: Handler) -> Route:
    async def endpoint(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise ReadOnly(
                f"{request.method} {request.url.path} is not implemented in imagehop: its identity API changes "
                "nothing but tokens. Manage users and tenants with `imagehop user create|list|delete`."
            )
        return await handler(request)

    return Route(path, endpoint, methods=ALL_METHODS)


# --- regions, services, endpoints ----------------------------------------------------------------


async def list_regions(request: Request) -> Response:
    await _caller(request)
    return _listing(request, "regions", [_region(request, r.name) for r in _identity(request).catalog.regions])


async def show_region(request: Request) -> Response:
    await _caller(request)
    region_id = request.path_params["region_id"]
    if region_id not in {r.name for r in _identity(request).catalog.regions}:
        raise NotFound(f"Could not find region: {region_id}.")
    return JSONResponse({"region": _region(request, region_id)})


async def list_services(request: Request) -> Response:
    await _admin(request, "list_services", "`openstack catalog list` shows the services and your endpoints")
    services = [_service(request, s) for s in _identity(request).catalog.services()]
    return _listing(request, "services", _filtered(request, services, ("type", "name")))


async def show_service(request: Request) -> Response:
    await _admin(request, "get_service", "`openstack catalog show TYPE` shows a service")
    service_id = request.path_params["service_id"]
    for service in _identity(request).catalog.services():
        if service["id"] == service_id:
            return JSONResponse({"service": _service(request, service)})
    raise NotFound(f"Could not find service: {service_id}.")


async def list_endpoints(request: Request) -> Response:
    await _admin(request, "list_endpoints", "`openstack catalog list` shows your endpoints")
    endpoints = [_endpoint(request, e) for e in _identity(request).catalog.endpoints()]
    return _listing(request, "endpoints", _filtered(request, endpoints, ("interface", "service_id", "region_id")))


async def show_endpoint(request: Request) -> Response:
    await _admin(request, "get_endpoint", "`openstack catalog list` shows your endpoints")
    endpoint_id = request.path_params["endpoint_id"]
    for endpoint in _identity(request).catalog.endpoints():
        if endpoint["id"] == endpoint_id:
            return JSONResponse({"endpoint": _endpoint(request, endpoint)})
    raise NotFound(f"Could not find endpoint: {endpoint_id}.")


# --- projects ------------------------------------------------------------------------------------


async def list_projects(request: Request) -> Response:
    # `openstack project list` falls back to /v3/users/{id}/projects on this 403, as with Keystone.
    await _admin(request, "list_projects", "`openstack project list --my-projects` shows yours")
    projects = await run_in_threadpool(_identity(request).list_projects)
    rendered = [_project(request, p) for p in projects]
    return _listing(request, "projects", _filtered(request, rendered, ("name", "domain_id")))


async def show_project(request: Request) -> Response:
    token = await _caller(request)
    project_id = request.path_params["project_id"]
    project = await run_in_threadpool(_identity(request).get_project, project_id)
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    if not _is_admin(token) and (token.project is None or token.project.id != project.id):
        raise _forbidden("get_project", "a token shows only its own project")
    return JSONResponse({"project": _project(request, project)})


async def auth_projects(request: Request) -> Response:
    token = await _caller(request)
    projects = await run_in_threadpool(_identity(request).projects_of, token.user.id)
    return _listing(request, "projects", [_project(request, p) for p in projects])


async def user_projects(request: Request) -> Response:
    token = await _caller(request)
    user_id = request.path_params["user_id"]
    if user_id != token.user.id and not _is_admin(token):
        raise _forbidden("list_user_projects", "a user lists only its own projects")
    projects = await run_in_threadpool(_identity(request).projects_of, user_id)
    rendered = [_project(request, p) for p in projects]
    return _listing(request, "projects", _filtered(request, rendered, ("name", "domain_id")))


# --- users, domains, roles, limits ---------------------------------------------------------------


async def list_users(request: Request) -> Response:
    await _admin(request, "list_users", "`imagehop user list` on the server shows them")
    users = await run_in_threadpool(_identity(request).list_users)
    rendered = [_user(request, user) for user, _roles in users]
    return _listing(request, "users", _filtered(request, rendered, ("name", "domain_id")))


async def show_user(request: Request) -> Response:
    token = await _caller(request)
    user_id = request.path_params["user_id"]
    user = await run_in_threadpool(_identity(request).get_user, user_id)
    if user is None:
        raise NotFound(f"Could not find user: {user_id}.")
    if user.id != token.user.id and not _is_admin(token):
        raise _forbidden("get_user", "a user sees only itself")
    return JSONResponse({"user": _user(request, user)})


async def list_domains(request: Request) -> Response:
    await _admin(request, "list_domains", "`openstack domain show default` shows yours")
    return _listing(request, "domains", _filtered(request, [_domain(request)], ("name",)))


async def show_domain(request: Request) -> Response:
    await _caller(request)
    domain_id = request.path_params["domain_id"]
    if domain_id != DOMAIN["id"]:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return JSONResponse({"domain": _domain(request)})


async def auth_domains(request: Request) -> Response:
    """The domains the user holds a role on: none (roles are on projects), as Keystone answers."""
    await _caller(request)
    return _listing(request, "domains", [])


async def auth_system(request: Request) -> Response:
    """System-scope roles: none, as imagehop scopes tokens to projects only."""
    await _caller(request)
    return JSONResponse({"system": [], "links": {"self": _self(request)}})


async def list_roles(request: Request) -> Response:
    await _admin(request, "list_roles", "imagehop's roles are admin, member and reader")
    roles = await run_in_threadpool(_identity(request).list_roles)
    rendered = [
        {"id": r["id"], "name": r["name"], "domain_id": None, "description": None, "options": {},
         "links": {"self": f"{_base(request)}/v3/roles/{r['id']}"}}
        for r in roles
    ]  # fmt: skip
    return _listing(request, "roles", _filtered(request, rendered, ("name",)))


async def list_limits(request: Request) -> Response:
    """Keystone's unified limits: none are registered in imagehop."""
    await _caller(request)
    return _listing(request, "limits", [])


# --- rendering -----------------------------------------------------------------------------------


def _identity(request: Request) -> IdentityService:
    return request.app.state.identity


def _base(request: Request) -> str:
    return request.app.state.public_url


def _self(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{_base(request)}{request.url.path}{query}"


def _listing(request: Request, key: str, entries: list[dict[str, Any]]) -> Response:
    return JSONResponse({key: entries, "links": {"next": None, "self": _self(request), "previous": None}})


def _filtered(request: Request, entries: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Keystone's exact-match list filters (``?name=``, ``?interface=``, ...); others are ignored."""
    for key in keys:
        if key in request.query_params:
            entries = [e for e in entries if e.get(key) == request.query_params[key]]
    return entries


def _region(request: Request, name: str) -> dict[str, Any]:
    return {"id": name, "description": "", "parent_region_id": None,
            "links": {"self": f"{_base(request)}/v3/regions/{name}"}}  # fmt: skip


def _service(request: Request, service: dict[str, Any]) -> dict[str, Any]:
    return dict(service, enabled=True, links={"self": f"{_base(request)}/v3/services/{service['id']}"})


def _endpoint(request: Request, endpoint: dict[str, Any]) -> dict[str, Any]:
    return dict(endpoint, enabled=True, links={"self": f"{_base(request)}/v3/endpoints/{endpoint['id']}"})


def _project(request: Request, project: Project) -> dict[str, Any]:
    return {
        "id": project.id, "name": project.name, "domain_id": project.domain_id, "description": "",
        "enabled": project.enabled, "parent_id": project.domain_id, "is_domain": False, "tags": [], "options": {},
        "links": {"self": f"{_base(request)}/v3/projects/{project.id}"},
    }  # fmt: skip


def _user(request: Request, user: User) -> dict[str, Any]:
    return {
        "id": user.id, "name": user.name, "domain_id": user.domain_id, "default_project_id": user.default_project_id,
        "enabled": user.enabled, "password_expires_at": None, "options": {},
        "links": {"self": f"{_base(request)}/v3/users/{user.id}"},
    }  # fmt: skip


def _domain(request: Request) -> dict[str, Any]:
    return dict(DOMAIN, tags=[], options={}, links={"self": f"{_base(request)}/v3/domains/{DOMAIN['id']}"})


# --- who may ------------------------------------------------------------------------------------


async def _caller(request: Request) -> Token:
    from imagehop.identity.routes import caller_token

    return await caller_token(request)


def _is_admin(token: Token) -> bool:
    return "admin" in token.role_names


async def _admin(request: Request, action: str, instead: str) -> Token:
    token = await _caller(request)
    if not _is_admin(token):
        raise _forbidden(action, instead)
    return token


def _forbidden(action: str, instead: str) -> Forbidden:
    """Keystone's words, then what an imagehop user can do instead."""
    return Forbidden(
        f"You are not authorized to perform the requested action: identity:{action}. "
        f"In imagehop, as in Keystone, this needs the admin role (the imagehop-admin cloud); {instead}."
    )
