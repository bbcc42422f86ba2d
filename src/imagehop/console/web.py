"""The plumbing every console page shares: session, CSRF, the user's API client, rendering, headers.

A handler is ``async def handler(ctx: Ctx) -> Response``, wrapped by :func:`page` (logged-in pages)
or :func:`public` (the log-in form, static files). The wrapper loads the session from its cookie,
refuses an unsafe method without the session's CSRF token or from another origin, resolves the
region of the URL against the user's catalog, turns an API refusal into a readable page, and sets
the cookie and the security headers on the way out.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from imagehop.console.api import Api, ApiError, Catalog, Identity, SessionEnded
from imagehop.console.session import COOKIE, Session, SessionCodec

MAX_FORM_UPLOAD = 1 << 30  # the largest file the browser may upload through the console
SECTIONS = ("servers", "images", "files", "copies", "tasks")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

# No inline script or style, no framing, forms only to ourselves, nothing from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """What the console app keeps: the way to identity, the cookie codec and the templates."""

    identity_url: str
    codec: SessionCodec
    templates: jinja2.Environment
    secure_cookies: bool = False
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _identity: Identity | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.AsyncClient:
        # Made on first use, inside the event loop that serves the console.
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False)
            self._identity = Identity(self._http, self.identity_url)
        return self._http

    @property
    def identity(self) -> Identity:
        self.http  # noqa: B018 (makes both)
        assert self._identity is not None
        return self._identity

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = self._identity = None


class Ctx:
    """One request to a console page."""

    def __init__(self, request: Request, console: Console, session: Session) -> None:
        self.request = request
        self.console = console
        self.session = session
        self.base = request.scope.get("root_path", "").rstrip("/")
        self.form: FormData | None = None
        self.catalog: Catalog | None = None
        self.region = ""
        self._api: Api | None = None
        self._cookie = console.codec.dump(session)

    # --- the user's API client --------------------------------------------------------------------

    @property
    def api(self) -> Api:
        assert self._api is not None, "a page without a region has no API client"
        return self._api

    def api_for(self, region: str) -> Api:
        assert self.catalog is not None
        if region not in self.catalog.regions:
            raise ApiError(404, f"There is no region {region} in your catalog.")
        return Api(self.console.http, self.session.token, self.catalog, region)

    # --- request helpers --------------------------------------------------------------------------

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    # --- responses --------------------------------------------------------------------------------

    def url(self, *parts: str, **params: str) -> str:
        """A console path: ``ctx.url(region, "images", id)``; each part is quoted as one segment."""
        path = self.base + "/" + "/".join(quote(p, safe="") for p in parts if p)
        query = {k: v for k, v in params.items() if v not in (None, "")}
        return path + ("?" + urlencode(query) if query else "")

    def redirect(self, path: str, kind: str = "", message: str = "") -> Response:
        """303 to a console path built by :meth:`url` (never to anything a request named)."""
        if message:
            self.session.say(kind or "info", message)
        return RedirectResponse(path, status_code=303)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        html = self.console.templates.get_template(template).render(self.context(**values))
        return HTMLResponse(html, status_code=status)

    def context(self, **values: Any) -> dict[str, Any]:
        return {
            "base": self.base,
            "region": self.region,
            "regions": self.catalog.regions if self.catalog else [],
            "session": self.session,
            "csrf": self.console.codec.csrf_token(self.session),
            "flash": self.session.take_flash(),
            "section": values.pop("section", ""),
            "url": self.url,
            **values,
        }

    def finish(self, response: Response) -> Response:
        """The cookie (when the session changed) and the security headers."""
        value = self.console.codec.dump(self.session) if self.session.flash or self._changed() else None
        if value is not None:
            # A browser-session cookie: the server ends the session when the token expires (the
            # expiry is inside the encrypted value), and can then say so on the log-in form.
            secure = self.console.secure_cookies or self.request.url.scheme == "https"
            response.set_cookie(COOKIE, value, path=self.base or "/", httponly=True, samesite="lax", secure=secure)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def forget(self, response: Response) -> Response:
        response.delete_cookie(COOKIE, path=self.base or "/", httponly=True, samesite="lax")
        return response

    def _changed(self) -> bool:
        return self.console.codec.load(self._cookie) != self.session


Handler = Callable[[Ctx], Awaitable[Response]]


def _load(request: Request, console: Console) -> Session | None:
    return console.codec.load(request.cookies.get(COOKIE))


def same_origin(request: Request) -> bool:
    """A browser names the page a form came from; it must be this host (a proxy may change the scheme)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def read_form(request: Request) -> FormData:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_UPLOAD + (1 << 20):
        raise ApiError(413, f"That is too large to upload through the console (at most {MAX_FORM_UPLOAD >> 20} MiB).")
    return await request.form(max_files=1, max_fields=200, max_part_size=1 << 20)


async def check_unsafe(ctx: Ctx) -> Response | None:
    """Refuse a state-changing request without the session's CSRF token, or from another origin."""
    if ctx.request.method not in UNSAFE:
        return None
    if not same_origin(ctx.request):
        return ctx.render("error.html", status=403, title="Refused", message="This form came from another site.")
    try:
        ctx.form = await read_form(ctx.request)
    except ApiError as exc:
        return ctx.render("error.html", status=exc.status, title="Refused", message=exc.message)
    token = ctx.form.get("csrf_token")
    if not ctx.console.codec.check_csrf(ctx.session, token if isinstance(token, str) else None):
        message = "This form is out of date or did not come from the console (no valid CSRF token). Try again."
        return ctx.render("error.html", status=403, title="Refused", message=message)
    return None


def to_login(ctx: Ctx, message: str = "") -> Response:
    """Back to the log-in form; it remembers the page asked for when that was a plain GET."""
    safe_method = ctx.request.method == "GET"
    next_path = ctx.request.url.path if safe_method and not ctx.is_htmx else ""
    if next_path.rstrip("/") == ctx.base:
        next_path = ""
    target = ctx.url("login", next=next_path if safe_next(ctx.base, next_path) else "")
    if ctx.is_htmx:  # a live update found the session over: the whole page goes to the log-in form
        response: Response = Response(status_code=200, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if not (safe_method and message):
        # No cookie is written: a request that came without one (a form posted from another site)
        # must not replace the browser's session, and one that ended needs no new cookie yet.
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response
    ctx.session = Session()
    ctx.session.say("info", message)
    return ctx.finish(response)


NEXT_RE = re.compile(r"^/[A-Za-z0-9._~%/-]*$")


def safe_next(base: str, path: str | None) -> bool:
    """Only a path inside the console (no scheme, no host, no ``//``, no ``..``) may follow a log-in."""
    if not path or not NEXT_RE.match(path) or "//" in path or ".." in path:
        return False
    return path.startswith(base + "/") and not path.startswith(base + "/login")


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for a logged-in user; ``{region}`` in its path must be one of the catalog's."""

    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        session = _load(request, console)
        ctx = Ctx(request, console, session or Session())
        if session is None or not session.logged_in:
            expired = session is not None and session.expired
            return to_login(ctx, "Your session expired: log in again." if expired else "")
        refused = await check_unsafe(ctx)
        if refused is not None:
            return ctx.finish(refused)
        try:
            ctx.catalog = await console.identity.catalog(session.token)
            region = request.path_params.get("region")
            if region is not None:
                if region not in ctx.catalog.regions:
                    raise ApiError(404, f"There is no region {region} in your catalog.")
                ctx.region = session.region = region
                ctx._api = ctx.api_for(region)
            response = await handler(ctx)
        except SessionEnded:
            await console.identity.logout(session.token)
            # a token whose time ran out while this page was being made: say so, as a page after it would
            ended = "expired" if session.expired else "has ended"
            return to_login(ctx, f"Your session {ended}: log in again.")
        except ApiError as exc:
            status = exc.status if 400 <= exc.status < 600 else 502
            response = ctx.render("error.html", status=status, title=f"Error {status}", message=exc.message)
        return ctx.finish(response)

    endpoint.__name__ = handler.__name__
    return endpoint


def public(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page anyone may open (the log-in form): it still has a session, for its CSRF token."""

    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        session = _load(request, console)
        ctx = Ctx(request, console, session or Session())
        if session is None:
            ctx._cookie = ""  # a new session: always set its cookie
        refused = await check_unsafe(ctx)
        if refused is not None:
            return ctx.finish(refused)
        try:
            response = await handler(ctx)
        except ApiError as exc:
            response = ctx.render("error.html", status=exc.status, title="Error", message=exc.message)
        return ctx.finish(response)

    endpoint.__name__ = handler.__name__
    return endpoint


# --- template filters --------------------------------------------------------------------------------


def human_size(value: Any) -> str:
    if value is None or value == "":
        return "—"
    number = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if number < 1024 or unit == "TiB":
            return f"{int(number)} bytes" if unit == "bytes" else f"{number:.1f} {unit}"
        number /= 1024
    return str(value)


def when(value: Any) -> str:
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("imagehop.console", "templates"),
        autoescape=True,  # every value is escaped, whatever the template's name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=human_size,
        when=when,
        q=lambda value: quote(str(value), safe=""),
        qp=lambda value: quote(str(value), safe="/"),
    )
    return env
