"""The ``imagehop`` command: serve, demo, credentials, user ..."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from imagehop import __version__
from imagehop.explain import explain
from imagehop.logs import LEVELS

if TYPE_CHECKING:
    from rich.console import Console

    from imagehop.config import Settings


@functools.cache
def _console() -> Console:
    """The terminal's rich console, made on first use (`imagehop copy --json` makes none)."""
    from rich.console import Console

    # Off a terminal (CI logs, `make demo | tee`), keep URLs whole instead of wrapping at 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _settings(**overrides: object) -> Settings:
    from imagehop.config import ConfigError, load_settings  # not at import: `imagehop copy` needs no settings

    config_file = overrides.pop("config", None)
    try:
        return load_settings(config_file, **overrides)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}. (Every setting: docs/configuration.md.)") from None


class _Commands(click.Group):
    """The command tree: an error a user can cause ends in one line that says what to do next.

    ``imagehop --debug COMMAND`` shows the full traceback instead (and logs every HTTP call).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(explain(exc)) from None


def debug_enabled() -> bool:
    """Whether ``imagehop --debug`` was given (commands use it to show more, e.g. tracebacks)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imagehop")
@click.option(
    "--debug",
    is_flag=True,
    envvar="IMAGEHOP_DEBUG",
    help="Log every HTTP call and show the full traceback of an error (also IMAGEHOP_DEBUG=1).",
)
def main(debug: bool) -> None:
    """imagehop: a multi-region image cloud, and the tool that moves images between clouds."""
    if debug:
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


# --- serve ---------------------------------------------------------------------------------------

config_option = click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file.")
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Where data lives [default: ./imagehop-data]."
)


@main.command()
@config_option
@data_dir_option
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option(
    "--port", type=int, help="Identity port; region i listens on port+1+i. 0 picks free ports [default: 5000]."
)
@click.option("--regions", help="Comma-separated region names [default: ORD,IAD]; with --role region: the ones served.")
@click.option(
    "--role",
    type=click.Choice(["identity", "region"]),
    help="Run one part only: identity (bootstraps users), or the APIs of --regions (tasks run in `imagehop worker`)."
    " Without it: everything in one process.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="With --role region: processes accepting on the same port.")  # fmt: skip
@click.option("--database-url", envvar="IMAGEHOP_DATABASE_URL",
              help="One PostgreSQL database for identity and every region (a schema each).")  # fmt: skip
@click.option(
    "--log-level",
    type=click.Choice(LEVELS),
    envvar="IMAGEHOP_LOG_LEVEL",
    help="Messages to DATA_DIR/imagehop.log, and to standard error when given [default: info to the file, "
    "warnings to standard error; debug with --debug].",
)
@click.option(
    "--access-log",
    metavar="FILE|-|off",
    envvar="IMAGEHOP_ACCESS_LOG",
    help="One line per request, combined format + request id [default: DATA_DIR/access.log; -: standard output].",
)
def serve(
    config: str | None, data_dir: str | None, host: str | None, port: int | None, regions: str | None,
    role: str | None, workers: int, database_url: str | None, log_level: str | None, access_log: str | None,
) -> None:  # fmt: skip
    """Run identity and every region in one process until Ctrl-C (or one role of a scaled-out deployment)."""
    from imagehop import logs, memory, roles, server

    memory.limit_malloc_arenas()
    if role is not None:
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        level = log_level or ("debug" if debug_enabled() else "info")
        if role == "identity":
            settings = _settings(config=config, data_dir=data_dir, host=host, port=port, database_url=database_url)
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            logs.configure(settings.data_dir, level, access_log, terminal=log_level or "warning")
            roles.run_identity(settings, on_ready=lambda d: _console().print(f"identity serving at {d.identity_url}"))
        else:
            settings = _settings(config=config, data_dir=data_dir, host=host, database_url=database_url)
            names = _served_regions(settings, regions)
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            logs.configure(settings.data_dir, level, access_log, terminal=log_level or "warning")
            roles.run_region(settings, names, port, workers)
        return
    if workers != 1:
        raise click.UsageError("--workers applies to --role region")
    settings = _settings(
        config=config, data_dir=data_dir, host=host, port=port, regions=regions, database_url=database_url
    )
    with server.data_dir_lock(settings.data_dir):
        level = log_level or ("debug" if debug_enabled() else "info")
        logs.configure(
            settings.data_dir, level, access_log, terminal=log_level or ("debug" if debug_enabled() else "warning")
        )
        (settings.data_dir / "endpoints.json").unlink(missing_ok=True)
        deployment = server.prepare(settings)
        import asyncio

        asyncio.run(server.serve(deployment, on_ready=_print_endpoints))
    logging.getLogger("imagehop").info("stopped")
    _console().print("imagehop stopped.")


def _served_regions(settings: Settings, regions: str | None) -> list[str]:
    """The regions a role process serves: ``--regions`` (each must be in the configuration)."""
    if not regions:
        raise click.UsageError("give the regions this process serves: --regions ORD[,IAD]")
    names = [n.strip() for n in regions.split(",") if n.strip()]
    known = [r.name for r in settings.regions]
    for name in names:
        if name not in known:
            raise click.ClickException(
                f"configuration: region {name} is not in the configuration (regions: {', '.join(known)});"
                " every process reads the same [[regions]] list"
            )
    return names


@main.command()
@config_option
@data_dir_option
@click.option("--regions", required=True, help="Comma-separated regions whose tasks this worker runs.")
@click.option("--host", help="Address of the health listener [default: 127.0.0.1].")
@click.option("--port", type=int, help="Port of the health listener (/healthz, /readyz) [default: none].")
@click.option("--database-url", envvar="IMAGEHOP_DATABASE_URL",
              help="One PostgreSQL database for identity and every region (a schema each).")  # fmt: skip
@click.option("--log-level", type=click.Choice(LEVELS), envvar="IMAGEHOP_LOG_LEVEL", help="Messages to standard error.")
def worker(
    config: str | None, data_dir: str | None, regions: str, host: str | None, port: int | None,
    database_url: str | None, log_level: str | None,
) -> None:  # fmt: skip
    """Run the regions' tasks (export, import, image imports, compute jobs) and housekeeping; run any number."""
    from imagehop import logs, memory, roles

    memory.limit_malloc_arenas()
    settings = _settings(config=config, data_dir=data_dir, host=host, database_url=database_url)
    names = _served_regions(settings, regions)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs.configure(settings.data_dir, log_level or "info", "off", terminal=log_level or "info")
    roles.run_worker(settings, names, port)


def _print_endpoints(deployment) -> None:  # type: ignore[no-untyped-def]
    data_dir = deployment.settings.data_dir.resolve()
    logging.getLogger("imagehop").info(
        "imagehop %s serving: identity %s, %s; data in %s", __version__, deployment.identity_url,
        ", ".join(f"{region.name} {region.public_url}" for region, _, _ in deployment.regions), data_dir,
    )  # fmt: skip
    _console().print(f"[bold]imagehop {__version__}[/] serving, data in {_shown(data_dir)}")
    _console().print(f"  identity  {deployment.identity_url}  (v3 and v2.0)")
    _console().print(
        f"  console   {deployment.endpoints()['console']}  (web console: log in with `imagehop credentials`)"
    )
    for region, _, _ in deployment.regions:
        _console().print(f"  {region.name:<9} {region.public_url}  (image: {region.public_url}/image)")
    _console().print(
        f"\nexport OS_CLIENT_CONFIG_FILE={_shown_env(data_dir)}/clouds.yaml OS_CLOUD=imagehop", soft_wrap=True
    )
    _console().print(
        "Credentials: imagehop credentials" + _data_dir_flag(data_dir) + "    Stop: Ctrl-C", soft_wrap=True
    )


def _data_dir_flag(data_dir: Path) -> str:
    return "" if data_dir == Path("imagehop-data").resolve() else f" --data-dir {_shown(data_dir)}"


# --- credentials and users -----------------------------------------------------------------------


@main.command()
@data_dir_option
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--openrc",
    is_flag=True,
    help='Print an openrc (OS_* variables) for swift, rclone, Terraform and other tools: eval "$(imagehop '
    'credentials --openrc)".',
)
@click.option("--user", "user_name", default="demo", show_default=True, help="The user of --openrc.")
@click.option("--region", help="The region of --openrc [default: the first region].")
def credentials(
    data_dir: str | None, config: str | None, as_json: bool, openrc: bool, user_name: str, region: str | None
) -> None:
    """Show the users' credentials (generated on first start), or one user's as an openrc."""
    from imagehop.identity.bootstrap import read_credentials

    settings = _settings(config=config, data_dir=data_dir)
    entries = read_credentials(settings.data_dir)
    if not entries:
        raise click.ClickException(
            f"no credentials in {settings.data_dir}: run `imagehop serve --data-dir {settings.data_dir}` once first"
        )
    if openrc:
        click.echo(_openrc(settings, entries, user_name, region), nl=False)
        return
    if as_json:
        rows = [
            {"user": e.user, "tenant_id": e.tenant_id, "password": e.password, "api_key": e.api_key, "roles": e.roles}
            for e in entries
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("user", "tenant_id", "password", "api_key", "roles")
    for e in entries:
        table.add_row(e.user, e.tenant_id, e.password or "", e.api_key or "", ",".join(e.roles))
    _console().print(table)


def _openrc(settings: Settings, entries: list, user_name: str, region: str | None) -> str:  # type: ignore[type-arg]
    """The ``OS_*`` variables of one user and region, as a shell script to source."""
    import shlex

    by_name = {e.user: e for e in entries}
    if user_name not in by_name:
        raise click.ClickException(f"no user named {user_name}; the users are: {', '.join(sorted(by_name))}")
    entry = by_name[user_name]
    if entry.password is None:
        raise click.ClickException(
            f"imagehop does not know {user_name}'s password (it was given by hash only); "
            f"set one with `imagehop user delete {user_name}` and `imagehop user create ... --password P`"
        )
    endpoints_file = settings.data_dir / "endpoints.json"
    if not endpoints_file.exists():
        raise click.ClickException(
            f"no endpoints in {_shown(settings.data_dir)}: start the cloud first "
            f"(`imagehop serve --data-dir {_shown(settings.data_dir)}`), then run this again"
        )
    endpoints = json.loads(endpoints_file.read_text())
    regions = list(endpoints["regions"])
    region = region or regions[0]
    if region not in regions:
        raise click.ClickException(f"no region {region} in this cloud; its regions are: {', '.join(regions)}")
    variables = {
        "OS_AUTH_URL": f"{endpoints['identity']}/v3",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_AUTH_TYPE": "password",
        "OS_USERNAME": entry.user,
        "OS_PASSWORD": entry.password,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_ID": entry.tenant_id,
        "OS_PROJECT_DOMAIN_ID": "default",
        "OS_REGION_NAME": region,
        "OS_INTERFACE": "public",
    }
    lines = [
        f"# imagehop: user {entry.user}, tenant {entry.tenant_id}, region {region} "
        f"(endpoints from {_shown(endpoints_file)})",
        "# Variables of other clouds would mix with these:",
        "unset OS_CLOUD OS_CLIENT_CONFIG_FILE OS_TOKEN OS_PROJECT_NAME OS_TENANT_ID OS_TENANT_NAME OS_USER_ID",
        *(f"export {name}={shlex.quote(value)}" for name, value in variables.items()),
    ]
    return "\n".join(lines) + "\n"


@main.group()
def user() -> None:
    """Manage users (works whether or not the server is running)."""


def _identity(settings: Settings, *, existing: bool = True):  # type: ignore[no-untyped-def]
    """The identity service on the data dir's database, for operator commands.

    ``existing``: the command reads users, so a data dir that was never served is a mistake (a
    mistyped --data-dir) rather than an empty cloud.
    """
    from imagehop import db
    from imagehop.identity.catalog import Catalog
    from imagehop.identity.service import IdentityService
    from imagehop.server import IDENTITY_DB_SETTING

    if existing and settings.identity_database_url is None and not (settings.data_dir / "identity.db").exists():
        raise click.ClickException(
            f"no imagehop data in {settings.data_dir}: pass the --data-dir your cloud uses, or start one there "
            f"with `imagehop serve --data-dir {settings.data_dir}`."
        )
    engine = db.open_database(settings.identity_db_url(), "identity", IDENTITY_DB_SETTING)
    return IdentityService(engine, Catalog("", ()), settings.token_lifetime)


@user.command("create")
@click.option("--user", "name", required=True, help="User name.")
@click.option("--tenant-id", required=True, help="Tenant (project) id; created if new.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=["member"],
    show_default=True,
    help="Role (admin, member, reader, or any other name, e.g. object-store:observer); repeat for several.",
)
@click.option("--password", help="Password [default: generated].")
@click.option("--api-key", help="API key [default: generated].")
@data_dir_option
@config_option
def user_create(
    name: str,
    tenant_id: str,
    roles: tuple[str, ...],
    password: str | None,
    api_key: str | None,
    data_dir: str | None,
    config: str | None,
) -> None:
    """Create a user, e.g. a reader beside demo: --user viewer --tenant-id 10000001 --role reader."""
    from imagehop.identity.bootstrap import add_user
    from imagehop.identity.service import IdentityError, NewUser

    settings = _settings(config=config, data_dir=data_dir)
    try:
        spec = add_user(
            _identity(settings, existing=False),
            settings.data_dir,
            NewUser(name, tenant_id, list(roles), password, api_key),
        )
    except IdentityError as exc:
        raise click.ClickException(exc.message) from None
    _console().print(f"created user {spec.user} in tenant {spec.tenant_id} with role(s) {', '.join(spec.roles)}")
    _console().print(f"  password {spec.password}\n  api key  {spec.api_key}")


@user.command("list")
@data_dir_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(data_dir: str | None, config: str | None, as_json: bool) -> None:
    """List users with their tenant and roles."""
    settings = _settings(config=config, data_dir=data_dir)
    rows = [
        {"user": u.name, "id": u.id, "tenant_id": u.default_project_id, "roles": roles, "enabled": u.enabled}
        for u, roles in _identity(settings).list_users()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("user", "id", "tenant_id", "roles")
    for row in rows:
        table.add_row(row["user"], row["id"], row["tenant_id"], ",".join(row["roles"]))
    _console().print(table)


@user.command("delete")
@click.argument("name")
@data_dir_option
@config_option
def user_delete(name: str, data_dir: str | None, config: str | None) -> None:
    """Delete a user and revoke its tokens."""
    from imagehop.identity.bootstrap import remove_user
    from imagehop.identity.service import IdentityError

    settings = _settings(config=config, data_dir=data_dir)
    try:
        remove_user(_identity(settings), settings.data_dir, name)
    except IdentityError as exc:
        raise click.ClickException(exc.message) from None
    _console().print(f"deleted user {name}")


# --- demo ----------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default="imagehop-demo",
    show_default=True,
    help="Data dir of the demo cloud.",
)
@click.option("--port", type=int, default=0, show_default=True, help="Identity port (0: free ports).")
@click.option("--keep-serving", is_flag=True, help="Leave the cloud running after the demo (Ctrl-C stops it).")
@click.option(
    "--story/--no-story",
    default=True,
    show_default=True,
    help="Run the walkthrough: boot, image, copy ORD -> IAD, find, boot again, compare.",
)
def demo(data_dir: str, port: int, keep_serving: bool, story: bool) -> None:
    """Start a two-region cloud, log in as demo, and run the transfer-between-regions story.

    It runs any number of times on the same data dir: each run first deletes the servers and images
    the previous run made (their ids are in DATA_DIR/demo.json) and leaves everything else alone.
    """
    import tempfile

    from imagehop.transfer.clouds import connect

    data = Path(data_dir).resolve()
    shown = _shown(data)
    endpoints_file = data / "endpoints.json"
    data.mkdir(parents=True, exist_ok=True)
    me = _me()
    _console().print(f"[bold]1.[/] Starting a two-region cloud: {me} serve --data-dir {shown} --port {port}")
    started = time.monotonic()
    stale = _stamp(endpoints_file)  # the last run's file: wait for the new server's own
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - held for the server's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagehop", "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    try:
        endpoints = _wait_for_endpoints(endpoints_file, stale, proc, errors)
        _console().print(
            f"   up in {time.monotonic() - started:.1f} s: identity {endpoints['identity']}, "
            + ", ".join(f"{name} {url}" for name, url in endpoints["regions"].items())
        )
        _console().print(f"   web console {endpoints['console']} (log in as demo; passwords: imagehop credentials)")
        clouds_yaml = str(data / "clouds.yaml")
        _console().print(
            f"\n[bold]2.[/] Logging in as demo (OS_CLIENT_CONFIG_FILE={_shown(data / 'clouds.yaml')} OS_CLOUD=imagehop)"
        )
        cloud = connect("imagehop", clouds_yaml)
        access = cloud.session.auth.get_access(cloud.session)
        _console().print(
            f"   token for user {access.username} in tenant {access.project_id}, "
            f"roles {', '.join(access.role_names)}, expires {access.expires.isoformat()}"
        )
        _console().print("\n[bold]3.[/] The service catalog")
        from rich.table import Table

        table = Table("service", "type", "region", "URL")
        for entry in cloud.catalog():
            for endpoint in entry["endpoints"]:
                if endpoint.get("interface", "public") == "public":
                    table.add_row(entry["name"], entry["type"], endpoint["region"], endpoint["url"])
        _console().print(table)
        _console().print("\n[bold]4.[/] Each region answers its image endpoint")
        for name in endpoints["regions"]:
            url = cloud.endpoint("image", region=name)
            response = cloud.session.get(url + "/", raise_exc=False)
            current = [v["id"] for v in response.json()["versions"] if v["status"] == "CURRENT"]
            _console().print(f"   {name}: GET {url}/ -> {response.status_code}, current API {current[0]}")
        if story:
            from imagehop.demo import run_story

            _console().print()
            run_story(cloud, clouds_yaml, _console().print, data)
        if keep_serving:
            _console().print(
                f"\nServing until Ctrl-C. In another terminal: export OS_CLIENT_CONFIG_FILE={_shown_env(data)}"
                "/clouds.yaml OS_CLOUD=imagehop; openstack image list",
                soft_wrap=True,
            )
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        errors.close()
    flag = "" if data_dir == "imagehop-demo" else f" --data-dir {shown}"
    again, keep = f"{me} demo{flag}", f"{me} demo{flag} --keep-serving"
    if "MAKELEVEL" in os.environ:  # run by `make demo`: say it the same way
        again, keep = "make demo", "make demo DEMO_ARGS=--keep-serving"
    _console().print(
        f"\nDemo finished; the cloud is stopped. Its data stays in {shown} "
        f"(logs: {_shown(data / 'imagehop.log')}, {_shown(data / 'access.log')}).\n"
        f"  Keep the cloud running: {keep}   (or: {me} serve --data-dir {shown})\n"
        f"  Run the demo again:     {again}   (it first removes what its last run made; nothing else)\n"
        f"  Start over:             rm -rf {shown}",
        soft_wrap=True,
    )


def _shown(path: Path) -> str:
    """``path`` as a user would type it here: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _shown_env(path: Path) -> str:
    """``path`` for an ``export`` line, which must hold wherever the user pastes it: ``$PWD/...`` or absolute."""
    relative = _shown(path)
    return relative if Path(relative).is_absolute() else f"$PWD/{relative}"


def _me() -> str:
    """How the user can run this command again: ``imagehop`` when on PATH, else the script's path."""
    import shutil

    script = Path(sys.argv[0])
    on_path = shutil.which("imagehop")
    if script.name != "imagehop" or (on_path and Path(on_path).resolve() == script.resolve()):
        return "imagehop"
    return _shown(script) if "/" in _shown(script) else f"./{_shown(script)}"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _wait_for_endpoints(
    path: Path, stale: tuple[int, int] | None, proc: subprocess.Popen, errors: Any, timeout: float = 30
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stamp(path) not in (None, stale) and proc.poll() is None:
            return json.loads(path.read_text())
        if proc.poll() is not None:
            errors.seek(0)
            lines = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
            said = lines[-1].removeprefix("Error: ") if lines else f"exit status {proc.returncode}"
            raise click.ClickException(f"the demo cloud did not start: {said}")
        time.sleep(0.05)
    raise click.ClickException(f"imagehop serve did not come up in {timeout:.0f} s; see its log in {path.parent}")


# --- copy ----------------------------------------------------------------------------------------


def _key_value(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    key, sep, val = value.partition("=")
    if not sep or not key or not val:
        raise click.BadParameter("expected KEY=VALUE, e.g. com.mycompany.image-of=db-slave-3")
    return key, val


COPY_METHODS = ["auto", "glance-download", "web-download", "stream", "tasks", "pull"]
FORMATS = ["table", "json", "yaml", "value"]


@main.command()
@click.argument("image", required=False)
@click.option(
    "--from", "from_region", help="Source region, e.g. ORD [default: $OS_REGION_NAME, else the cloud's region_name]."
)
@click.option("--to", "to_region", help="Target region, e.g. IAD [default: the target cloud's region].")
@click.option("--from-cloud", "--os-cloud", "from_cloud", help="Source cloud in clouds.yaml [default: $OS_CLOUD].")
@click.option("--to-cloud", help="Target cloud in clouds.yaml [default: the source cloud].")
@click.option(
    "--tag", callback=_key_value, help="Coordinating property KEY=VALUE [default: imagehop.source=REGION/ID]."
)
@click.option(
    "--method",
    type=click.Choice(COPY_METHODS),
    default="auto",
    show_default=True,
    help="glance-download: the target region pulls from the source (one cloud); web-download: the target fetches "
    "an exported VHD from a TempURL; stream: the bytes flow through this client from one image data API to the "
    "other (any Glance v2); tasks: Rackspace's export, move and import; pull: whichever pull the pair supports; "
    "auto: the first of these both sides support (see --dry-run).",
)
@click.option(
    "--convert",
    type=click.Choice(["raw", "qcow2", "vhd"]),
    help="Convert the disk format while streaming (qcow2/VHD to raw, raw/qcow2 to a dynamic VHD).",
)
@click.option(
    "--base",
    "base_image",
    help="Build on this target image (id or name): only the blocks it lacks move [default: the target image with "
    "the coordinating property that has the most blocks in common, when the target is imagehop].",
)
@click.option("--no-base", is_flag=True, help="Always copy the whole image (no incremental copy).")
@click.option("--all-with", callback=_key_value, help="Copy every source image with this property KEY=VALUE.")
@click.option(
    "--from-file", type=click.Path(exists=True, dir_okay=False), help="Copy the images named in FILE, one a line."
)
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 32), help="Copies at once (batch).")
@click.option("--boot", "boot_name", help="After the copy, boot a server of this name from it in the target region.")
@click.option("--flavor", help="Flavor (id or name) for --boot.")
@click.option("--container", default="imagehop-exports", show_default=True, help="Container for exports and segments.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 64), help="Segments moved at once.")
@click.option("--segment-size", default=256, show_default=True, type=click.IntRange(1, 5120), help="MiB per segment.")
@click.option(
    "--poll-interval",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds between task polls when the cloud sends no Retry-After.",
)
@click.option("--keep-exported", is_flag=True, help="Leave the exported VHD (or the streamed segments) in place.")
@click.option("--state", type=click.Path(dir_okay=False), help="Journal file [default: ~/.local/state/imagehop].")
@click.option("--dry-run", is_flag=True, help="Say which way would be used, and why, then stop.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format of the report.")  # fmt: skip
@click.option(
    "-c", "--column", "columns", multiple=True, help="Show only this field (repeatable), e.g. -c target_image."
)
@click.option("--json", "as_json", is_flag=True, help="Same as -f json (no progress; one JSON document).")
@click.option("--debug", is_flag=True, help="Log every HTTP call and show the full traceback of an error.")
def copy(
    image: str | None, from_region: str | None, to_region: str | None, from_cloud: str | None, to_cloud: str | None,
    tag: tuple[str, str] | None, method: str, convert: str | None, base_image: str | None, no_base: bool,
    all_with: tuple[str, str] | None,
    from_file: str | None, concurrency: int, boot_name: str | None, flavor: str | None, container: str, parallel: int,
    segment_size: int, poll_interval: float, keep_exported: bool, state: str | None, dry_run: bool, fmt: str,
    columns: tuple[str, ...], as_json: bool, debug: bool,
) -> None:  # fmt: skip
    """Copy IMAGE (an id, a name, or KEY=VALUE) from one region or cloud to another.

    Works between any two OpenStack clouds with Glance v2 (imagehop or not). Several images:
    --all-with KEY=VALUE or --from-file FILE (instead of IMAGE), --concurrency N at once.
    """
    from imagehop.transfer.copy import CopyError, CopyOptions, copy_image
    from imagehop.transfer.journal import Journal
    from imagehop.transfer.progress import CopyProgress

    # `imagehop copy ... --debug` is the same as `imagehop --debug copy ...` (the group's option).
    if debug and not debug_enabled():
        click.get_current_context().find_root().params["debug"] = True
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    debug = debug_enabled()
    fmt = "json" if as_json else fmt
    machine = fmt != "table"
    if sum(x is not None for x in (image, all_with, from_file)) != 1:
        raise click.UsageError("give exactly one of IMAGE, --all-with KEY=VALUE or --from-file FILE")
    if bool(boot_name) != bool(flavor):
        raise click.UsageError("--boot NAME and --flavor F go together")
    batch = image is None
    if batch and tag is not None:
        raise click.UsageError("--tag names one image; a batch tags each copy imagehop.source=REGION/ID")
    if base_image and (no_base or batch):
        raise click.UsageError("--base names the base of one copy; it goes with neither --no-base nor a batch")

    def fail(message: str, resumable: bool) -> NoReturn:
        advice = "\nRun the same command again to continue where it stopped." if resumable else ""
        if machine:
            click.echo(json.dumps({"error": message, "resumable": resumable}))
        raise click.ClickException(message + advice)

    try:
        source, target = _copy_endpoints(from_cloud, to_cloud, from_region, to_region)
    except click.ClickException as exc:
        if debug:
            raise
        fail(exc.message, False)
    options = CopyOptions(
        tag, container, parallel, segment_size << 20, keep_exported, dry_run, poll_interval,
        method=method, boot=boot_name, flavor=flavor, convert=convert, base=base_image, no_base=no_base,
    )  # fmt: skip
    journal = Journal(state)
    if batch:
        refs = _batch_refs(source, all_with, from_file)
        _copy_batch(refs, source, target, options, journal, concurrency, fmt, dry_run)
        return
    assert image is not None
    with CopyProgress(enabled=not machine, console=None if machine else _console()) as progress:
        try:
            report = copy_image(image, source, target, options, journal, progress.update)
        except CopyError as exc:
            progress.stop()
            if debug:
                raise
            fail(str(exc), exc.resumable)
        except Exception as exc:  # an HTTP client's or the cloud's error we did not name: one line, unless --debug
            progress.stop()
            if debug:
                raise
            fail(f"{exc.__class__.__name__}: {exc} (imagehop copy --debug shows every HTTP call and the traceback)",
                 True)  # fmt: skip
    _print_copy_report(report, fmt, columns)


def _copy_endpoints(from_cloud: str | None, to_cloud: str | None, from_region: str | None, to_region: str | None):  # type: ignore[no-untyped-def]
    """Log in to both clouds and check the regions, each error saying what to do next."""
    from imagehop.transfer.clouds import CloudConfigError, connect
    from imagehop.transfer.copy import Endpoint

    try:
        source_cloud = connect(from_cloud)
        target_cloud = source_cloud if to_cloud in (None, from_cloud) else connect(to_cloud)
    except CloudConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # As `openstack` does: --os-region-name's default is $OS_REGION_NAME, then the cloud's region_name.
    from_region = from_region or os.environ.get("OS_REGION_NAME") or source_cloud.region_name
    if not from_region:
        regions = ", ".join(source_cloud.regions("image"))
        raise click.ClickException(f"which region? pass --from REGION (regions of {source_cloud.name}: {regions})")
    if to_region is None:
        if target_cloud is source_cloud:
            others = [r for r in source_cloud.regions("image") if r != from_region]
            raise click.ClickException(
                f"pass --to REGION (the other regions of {source_cloud.name}: {', '.join(others) or 'none'}), "
                "or --to-cloud CLOUD"
            )
        to_region = target_cloud.region_name or ""
    _check_region(source_cloud, from_region, "--from")
    _check_region(target_cloud, to_region, "--to")
    if target_cloud is source_cloud and from_region == to_region:
        others = [r for r in source_cloud.regions("image") if r != from_region]
        raise click.ClickException(
            f"--from and --to are both {from_region} of {source_cloud.name}: a copy onto itself does nothing. "
            f"Pick another --to ({', '.join(others) or 'this cloud has no other region'}) or --to-cloud CLOUD."
        )
    try:
        return Endpoint(source_cloud, from_region), Endpoint(target_cloud, to_region)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


def _check_region(cloud, region: str, option: str) -> None:  # type: ignore[no-untyped-def]
    regions = cloud.regions("image")
    if region in regions:
        return
    close = [r for r in regions if r.lower() == region.lower()]
    hint = f" (did you mean {close[0]}? region names are case-sensitive)" if close else ""
    raise click.ClickException(
        f"{option} {region}: cloud {cloud.name} has no image service in region {region}{hint}; "
        f"its regions: {', '.join(regions) or 'none'}"
    )


def _batch_refs(source, all_with: tuple[str, str] | None, from_file: str | None) -> list[str]:  # type: ignore[no-untyped-def]
    """The images of a batch: ids of every source image with a property, or the lines of a file."""
    from imagehop.transfer.glance import GlanceError

    if all_with is not None:
        try:
            found = source.glance.find_images(**{all_with[0]: all_with[1]})
        except GlanceError as exc:
            raise click.ClickException(str(exc)) from None
        if not found:
            raise click.ClickException(f"no image with {all_with[0]}={all_with[1]} in {source.label}")
        return [i["id"] for i in found]
    lines = Path(str(from_file)).read_text().splitlines()
    refs = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not refs:
        raise click.ClickException(f"{from_file} names no image")
    return list(dict.fromkeys(refs))


def _copy_batch(  # type: ignore[no-untyped-def]
    refs: list[str], source, target, options, journal, concurrency: int, fmt: str, dry_run: bool
) -> None:
    """Copy several images, ``concurrency`` at once; one report each, non-zero exit if any failed."""
    from concurrent.futures import ThreadPoolExecutor

    from imagehop.transfer.copy import CopyError, copy_image
    from imagehop.transfer.glance import GlanceError
    from imagehop.transfer.progress import BatchProgress
    from imagehop.transfer.swift import SwiftError

    as_json = fmt != "table"
    progress = BatchProgress(enabled=not as_json, console=None if as_json else _console())

    def one(ref: str):  # type: ignore[no-untyped-def]
        try:
            return ref, copy_image(ref, source, target, options, journal, progress.for_image(ref)), None
        except (CopyError, GlanceError, SwiftError, LookupError) as exc:
            return ref, None, str(exc)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, refs))
    failed = [(ref, error) for ref, _report, error in results if error is not None]
    if as_json:
        reports = [report.as_dict() if report else {"image": ref, "error": error} for ref, report, error in results]
        document = {"images": reports, "copied": len(results) - len(failed), "failed": [ref for ref, _ in failed]}
        import yaml

        click.echo(yaml.safe_dump(document, sort_keys=False) if fmt == "yaml" else json.dumps(document, indent=2))
    else:
        for _ref, report, _error in results:
            if report is not None:
                _print_copy_report(report, "table", ())
    if failed:
        lines = "\n".join(f"  {ref}: {error}" for ref, error in failed)
        raise click.ClickException(
            f"{len(failed)} of {len(results)} copies failed:\n{lines}\n"
            "Run the same command again: finished copies are skipped and the others resume where they stopped."
        )
    if not as_json:
        _console().print(f"{len(results)} images copied to {target.label}.")


def _report_rows(report) -> list[tuple[str, str, Any]]:  # type: ignore[no-untyped-def]
    """(column, label, value) of a copy report, as the table shows them; empty rows left out."""
    rows: list[tuple[str, str, Any]] = [
        ("source_image", "source image", f"{report.source_image} ({report.source_region})"),
        ("target_image", "target image", f"{report.target_image} ({report.target_region})" if report.target_image
         else f"- ({report.target_region})"),
        ("coordinating_property", "property", report.coordinating_property),
        ("method", "method", report.method or "-"),
        ("content_digest", "content digest", report.digest),
        ("disk_format", "disk format", report.disk_format),
        ("visibility", "visibility", report.visibility),
        ("base", "base", f"{report.base['image_id']} ({report.base['name']})" if report.base else None),
        ("bytes_moved", "bytes moved", _moved(report) if not report.dry_run else None),
        ("blocks_reused", "blocks reused", f"{report.blocks_reused:,} of {report.base['blocks_total']:,}"
         if report.base and not report.dry_run else None),
        ("verified_by", "verified by", report.verified_by),
    ]  # fmt: skip
    for kind, task in report.tasks.items():
        rows.append((f"{kind}_task", f"{kind} task", task))
    rows += [
        ("server", "server", report.server),
        ("left_out", "left out", ", ".join(f"{k} ({v})" for k, v in report.left_out.items()) or None),
        ("seconds", "time", f"{report.seconds:.1f} s"),
    ]
    return [(c, label, v) for c, label, v in rows if v not in (None, "")]


def _moved(report) -> str:  # type: ignore[no-untyped-def]
    """Bytes moved, and (incremental copies) what share of the image that is."""
    if not report.image_size or not report.base:
        return f"{report.bytes_moved:,}"
    return f"{report.bytes_moved:,} of {report.image_size:,} ({100 * report.bytes_moved / report.image_size:.1f} %)"


def _print_copy_report(report, fmt: str, columns: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    document = report.as_dict()
    if columns:
        unknown = [c for c in columns if c not in document]
        if unknown:
            raise click.UsageError(f"no column {', '.join(unknown)}; columns: {', '.join(document)}")
        document = {c: document[c] for c in columns}
    if fmt == "json":
        click.echo(json.dumps(document, indent=2))
        return
    if fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(document, sort_keys=False), nl=False)
        return
    if fmt == "value":
        for value in document.values():
            click.echo(json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else value))
        return
    if report.dry_run and not report.already_done:
        _console().print(f"Plan: copy {report.source_image} from {report.source_region} to {report.target_region} by "
                      f"{report.why}", soft_wrap=True)  # fmt: skip
        if report.incremental:
            _console().print(report.incremental[:1].upper() + report.incremental[1:] + ".", soft_wrap=True)
        _console().print(f"Then tag it {report.coordinating_property} and verify. (--dry-run: nothing was changed)")
        return
    from rich.table import Table

    table = Table("", "", show_header=False, box=None)
    for column, label, value in _report_rows(report):
        if not columns or column in columns:
            table.add_row(label, str(value))
    _console().print(table)
    if report.already_done:
        _console().print(
            f"Already copied: {report.target_image} in {report.target_region} has the same content; nothing changed."
        )
