"""The web console: the Control Panel of the walkthrough, served at ``<identity URL>/console/``.

It is a client of the public APIs with the user's own token, as Horizon is: pages are rendered on
the server from what identity, the image, object-storage and compute endpoints answer; it never
imports a service, a store or the database, so it works the same against split roles. Pages work
without JavaScript; htmx (vendored under ``static/``) adds live updates, which otherwise fall back to
a refresh link.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from imagehop.console import auth, copies, files, images, servers, tasks
from imagehop.console.session import SessionCodec, load_secret
from imagehop.console.web import Console, make_templates

STATIC = Path(__file__).parent / "static"
GET, POST, BOTH = ["GET"], ["POST"], ["GET", "POST"]


def console_routes() -> list:
    r = "/{region}"
    return [
        Route("/", auth.home, methods=GET),
        Route("/login", auth.login, methods=BOTH),
        Route("/logout", auth.logout, methods=POST),
        Route("/region", auth.switch_region, methods=GET),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route(r + "/servers", servers.list_servers, methods=GET),
        Route(r + "/servers", servers.create_server, methods=POST),
        Route(r + "/servers/new", servers.new_server, methods=GET),
        Route(r + "/servers/{server_id}", servers.show_server, methods=GET),
        Route(r + "/servers/{server_id}/image", servers.create_image, methods=POST),
        Route(r + "/servers/{server_id}/delete", servers.delete_server, methods=BOTH),
        Route(r + "/images", images.list_images, methods=GET),
        Route(r + "/images/upload", images.upload_form, methods=GET),
        Route(r + "/images/upload", images.upload_image, methods=POST),
        Route(r + "/images/{image_id}", images.show_image, methods=GET),
        Route(r + "/images/{image_id}/properties", images.edit_properties, methods=POST),
        Route(r + "/images/{image_id}/members", images.add_member, methods=POST),
        Route(r + "/images/{image_id}/members/{member}/delete", images.remove_member, methods=POST),
        Route(r + "/images/{image_id}/membership", images.set_membership, methods=POST),
        Route(r + "/images/{image_id}/download", images.download_image, methods=GET),
        Route(r + "/images/{image_id}/delete", images.delete_image, methods=BOTH),
        Route(r + "/images/{image_id}/copy", copies.start_copy, methods=POST),
        Route(r + "/copies", copies.list_copies, methods=GET),
        Route(r + "/copies/{image_id}", copies.show_copy, methods=GET),
        Route(r + "/files", files.list_containers, methods=GET),
        Route(r + "/files", files.create_container, methods=POST),
        Route(r + "/files/{container}", files.browse, methods=GET),
        Route(r + "/files/{container}/upload", files.upload_object, methods=POST),
        Route(r + "/files/{container}/download", files.download_object, methods=GET),
        Route(r + "/files/{container}/delete-object", files.delete_object, methods=BOTH),
        Route(r + "/files/{container}/access", files.set_access, methods=POST),
        Route(r + "/files/{container}/delete", files.delete_container, methods=BOTH),
        Route(r + "/tasks", tasks.list_tasks, methods=GET),
        Route(r + "/tasks/{task_id}", tasks.show_task, methods=GET),
    ]


def build_console_app(identity_url: str, data_dir: Path, secret: str | None = None) -> Starlette:
    """The console as an ASGI app, to be mounted at ``/console`` on the identity listener.

    ``identity_url`` is where it reaches identity (the catalog it gets there says where the regions
    are); the cookie secret is ``secret`` or ``<data_dir>/console.key``.
    """
    console = Console(
        identity_url=identity_url.rstrip("/"),
        codec=SessionCodec(load_secret(data_dir, secret)),
        templates=make_templates(),
        secure_cookies=identity_url.startswith("https://"),
    )
    app = Starlette(routes=console_routes(), exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.console = console
    return app


async def _not_found(request, _exc):  # type: ignore[no-untyped-def]
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("Not found in the console.", status_code=404)


async def _not_allowed(request, _exc):  # type: ignore[no-untyped-def]
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("Method not allowed.", status_code=405)
