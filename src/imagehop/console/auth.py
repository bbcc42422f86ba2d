"""Log in (password or API key), log out, the start page and the region selector."""

from __future__ import annotations

import time

from starlette.responses import Response

from imagehop.console.api import ApiError
from imagehop.console.session import Session
from imagehop.console.web import SECTIONS, Ctx, page, public, safe_next

METHODS = {"password": "Password", "api_key": "API key"}
# Identity sees every log-in through the console as coming from the console's own address, so the
# console limits attempts per browser address itself: a burst of 10, then one every 2 seconds.
BURST, EVERY = 10, 2.0


class LoginLimiter:
    """A token bucket of log-in attempts per client address."""

    def __init__(self, burst: int = BURST, every: float = EVERY) -> None:
        self.burst, self.every = burst, every
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        tokens, last = self._buckets.get(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) / self.every)
        if len(self._buckets) > 10000:
            self._buckets.clear()
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return False
        self._buckets[address] = (tokens - 1, now)
        return True


LIMITER = LoginLimiter()


@public
async def login(ctx: Ctx) -> Response:
    if ctx.session.logged_in and ctx.request.method == "GET":
        return ctx.redirect(ctx.url())
    next_path = ctx.field("next") or ctx.query("next")
    next_path = next_path if safe_next(ctx.base, next_path) else ""
    values = {"username": "", "method": "password", "next": next_path, "methods": METHODS, "error": ""}
    if ctx.request.method == "GET":
        return ctx.render("login.html", **values)

    username, method, secret = ctx.field("username"), ctx.field("method", "password"), ctx.field("secret")
    values.update(username=username, method=method if method in METHODS else "password")
    if not username or not secret:
        values["error"] = "Give your user name, and your password or API key."
        return ctx.render("login.html", status=400, **values)
    if method not in METHODS:
        values["error"] = "Choose how to log in: with a password or with an API key."
        return ctx.render("login.html", status=400, **values)
    if not LIMITER.allow(ctx.request.client.host if ctx.request.client else "unknown"):
        values["error"] = "Too many log-in attempts from your address: wait a few seconds and try again."
        response = ctx.render("login.html", status=429, **values)
        response.headers["Retry-After"] = str(int(EVERY))
        return response
    try:
        result = await ctx.console.identity.login(username, secret, method)
        catalog = await ctx.console.identity.catalog(result.token)
    except ApiError as exc:
        values["error"] = exc.message
        return ctx.render("login.html", status=exc.status if exc.status in (401, 429) else 502, **values)
    # A new session id at log-in: a session id (and CSRF token) seen before it is worth nothing after.
    if not catalog.regions:
        values["error"] = f"Tenant {result.tenant} has no region in its catalog: there is nothing to show."
        await ctx.console.identity.logout(result.token)
        return ctx.render("login.html", status=403, **values)
    region = result.default_region if result.default_region in catalog.regions else catalog.regions[0]
    ctx.session = Session(
        token=result.token, expires_at=result.expires_at, user=result.user, tenant=result.tenant, region=region
    )
    return ctx.redirect(next_path or ctx.url(region, "servers"))


@page
async def logout(ctx: Ctx) -> Response:
    await ctx.console.identity.logout(ctx.session.token)
    ctx.session = Session()
    ctx.session.say("info", "You are logged out.")
    return ctx.redirect(ctx.url("login"))


@page
async def home(ctx: Ctx) -> Response:
    assert ctx.catalog is not None
    region = ctx.session.region if ctx.session.region in ctx.catalog.regions else ctx.catalog.regions[0]
    return ctx.redirect(ctx.url(region, "servers"))


@page
async def switch_region(ctx: Ctx) -> Response:
    """The region selector's form: the same section in another region."""
    assert ctx.catalog is not None
    region, section = ctx.query("region"), ctx.query("section", "servers")
    if region not in ctx.catalog.regions:
        raise ApiError(404, f"There is no region {region} in your catalog.")
    return ctx.redirect(ctx.url(region, section if section in SECTIONS else "servers"))
