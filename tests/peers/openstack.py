"""A real OpenStack cloud for the tests and the bench: Keystone 30 and Glance 33 from PyPI.

Built once into its own virtualenv (``peers_dir()/openstack-k30-g33``; concurrent builders wait on
a lock file), then started per test session: one Keystone and one Glance per region (``ORD`` and
``IAD`` by default) on free loopback ports, each under uWSGI, each with its own database and ``file``
store, and stopped at the end. Glance offers every interoperable import method
(``glance-direct``, ``web-download``, ``glance-download``, ``copy-image``) and allows web-download
and glance-download from loopback; both Glances share the one Keystone, so glance-download works
between the regions, as in a real multi-region cloud.

Use it from a test through the session fixture ``real_openstack`` of ``tests/conftest.py``::

    def test_something(real_openstack: OpenStack):
        openstack = real_openstack
        user = openstack.create_user("alice")              # project + user with `member`, via the v3 API
        url = openstack.glance_url("ORD")                  # e.g. http://127.0.0.1:41234/image
        token = openstack.token(user)                      # a project-scoped v3 token
        env = openstack.env(user)                          # OS_* variables for `openstack`, glanceclient
        path = openstack.clouds_yaml(tmp_path, {"real": user})   # a clouds.yaml naming this cloud

``openstack.start_glance("SYD", {"image_format": {"disk_formats": "raw"}})`` starts one more Glance
region on the same Keystone with extra configuration (sections and options of glance-api.conf);
stop it with ``openstack.stop_glance("SYD")``. The admin credentials are ``openstack.admin``.

Keystone keeps SQLite. Each Glance has a MariaDB database of its own on the machine's server
(``$IMAGEHOP_TEST_MYSQL``, ``root@127.0.0.1:3306`` by default, with ``$IMAGEHOP_TEST_MYSQL_PASSWORD``
if it needs one; the ``mysql`` and ``mysqldump`` clients load and save it), as in real deployments:
on SQLite, Glance's task thread failed to move a task to ``processing`` now and then (``database is
locked``: oslo.db opens every transaction with a deferred ``BEGIN``, and a read transaction that then
writes beside another writer is refused at once, whatever the busy timeout), swallowed the error and
left the task ``pending`` for ever. MariaDB's strict mode also refuses what Glance's columns cannot
hold (a 300-character property name), as Glance on MySQL does. The databases are named
``ihpeer_<pid>_...`` and dropped at the end; those of dead processes are dropped at the next start.

From a script or the bench, ``with OpenStack.running(path) as cloud:`` does the same. Building takes
a few minutes the first time (uWSGI compiles); later starts take about 10 s. Set
``IMAGEHOP_PEERS_DIR`` to share one build between checkouts. Logs of each service are in its folder
under the session's directory (``keystone/keystone.log``, ``glance-ORD/glance.log``, ``*.uwsgi.log``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import yaml

from tests.peers import peers_dir
from tests.support.ports import free_port

PINS = ("keystone==30.0.0", "glance==33.0.0", "uwsgi==2.0.31", "PyMySQL==1.2.4")
VENV_NAME = "openstack-k30-g33"
ADMIN_PASSWORD = "admin-secret"
SERVICE_PASSWORD = "glance-secret"
DEFAULT_REGIONS = ("ORD", "IAD")


# ---------------------------------------------------------------------------------------------
# Build (once, shared)


def venv_dir() -> Path:
    return peers_dir() / VENV_NAME


def build() -> Path:
    """The virtualenv holding Keystone, Glance and uWSGI, built on first use; returns its path.

    A lock file serialises concurrent builders; a stamp written last marks a finished build, so a
    build killed halfway is started again from scratch. Also keeps migrated empty databases as
    templates (Keystone's SQLite file, Glance's MariaDB dump), because the migrations are the slow
    part of every start.
    """
    venv = venv_dir()
    stamp = venv / ".built"
    if stamp.exists() and stamp.read_text() == "\n".join(PINS):
        return venv
    with open(peers_dir() / f"{VENV_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == "\n".join(PINS):
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log = peers_dir() / f"{VENV_NAME}.build.log"
        with open(log, "w") as out:
            try:
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out)
                pip = [str(venv / "bin/python"), "-m", "pip", "install", "--no-input"]
                subprocess.run([*pip, "--upgrade", "pip", "setuptools", "wheel"], check=True, stdout=out, stderr=out)
                subprocess.run([*pip, *PINS], check=True, stdout=out, stderr=out)
            except subprocess.CalledProcessError as exc:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"building Keystone+Glance failed ({exc}); see {log}:\n{tail}") from exc
        _make_templates(venv)
        stamp.write_text("\n".join(PINS))
        return venv


def _make_templates(venv: Path) -> None:
    """Empty, migrated Keystone and Glance databases, copied for each start."""
    work = venv / "templates"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    ks = work / "keystone"
    ks.mkdir()
    conf = _write_keystone_conf(ks)
    _run(venv, ["keystone-manage", "--config-file", str(conf), "db_sync"], ks)
    shutil.copy(ks / "keystone.db", work / "keystone.db")
    gl = work / "glance"
    gl.mkdir()
    database = _new_database("glance-template")
    try:
        conf = _write_glance_conf(
            gl, venv, region="ORD", glance_url="http://127.0.0.1:1/image", keystone_url="x", database=database
        )
        _run(venv, ["glance-manage", "--config-file", str(conf), "db_sync"], gl)
        with open(work / "glance.sql", "wb") as dump:
            argv, env = _mysql_client("mysqldump", "--single-transaction", "--skip-comments", _name(database))
            subprocess.run(argv, env=env, stdout=dump, check=True)
    finally:
        _drop_database(database)


# ---------------------------------------------------------------------------------------------
# Glance's MariaDB databases


def _mysql_client(tool: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment for ``mysql``/``mysqldump`` against ``$IMAGEHOP_TEST_MYSQL`` (user@host:port)."""
    user, _, address = _mysql_server().rpartition("@")
    host, _, port = address.partition(":")
    argv = [tool, f"--user={user or 'root'}", f"--host={host}", f"--port={port or 3306}", "--protocol=tcp", *args]
    return argv, {**os.environ, "MYSQL_PWD": os.environ.get("IMAGEHOP_TEST_MYSQL_PASSWORD", "")}


def _mysql_server() -> str:
    return os.environ.get("IMAGEHOP_TEST_MYSQL") or "root@127.0.0.1:3306"


def _sql(statement: str, database: str | None = None, stdin: Path | None = None) -> str:
    argv, env = _mysql_client("mysql", "--batch", "--skip-column-names", *([database] if database else []))
    if stdin is None:
        argv += ["--execute", statement]
    with open(stdin or os.devnull, "rb") as source:
        done = subprocess.run(argv, env=env, stdin=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"MariaDB at {_mysql_server()} refused {statement or stdin} ({done.returncode}): {done.stderr[-2000:]}"
            " (the real Glance peer needs a MariaDB or MySQL server; set IMAGEHOP_TEST_MYSQL=user@host:port)"
        )
    return done.stdout


def _new_database(what: str, template: Path | None = None) -> str:
    """A new database (loaded from ``template``, a dump, if given); its SQLAlchemy URL."""
    _drop_orphans()
    name = f"ihpeer_{os.getpid()}_{secrets.token_hex(4)}_{what.replace('-', '_')}"
    _sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    if template is not None:
        _sql("", database=name, stdin=template)
    user, _, address = _mysql_server().rpartition("@")
    password = os.environ.get("IMAGEHOP_TEST_MYSQL_PASSWORD", "")
    login = quote(user or "root", safe="") + (":" + quote(password, safe="") if password else "")
    return f"mysql+pymysql://{login}@{address}/{name}?charset=utf8mb4"


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?")[0]


def _drop_database(url: str) -> None:
    _sql(f"DROP DATABASE IF EXISTS `{_name(url)}`")


def _drop_orphans() -> None:
    """Drop the databases of peers whose test process is gone (killed before its clean-up)."""
    for name in _sql("SHOW DATABASES LIKE 'ihpeer\\_%'").split():
        pid = name.split("_")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _sql(f"DROP DATABASE IF EXISTS `{name}`")


def _run(venv: Path, argv: list[str], cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


# ---------------------------------------------------------------------------------------------
# Configuration files


def _ini(sections: dict[str, dict[str, object]]) -> str:
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            if isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{key} = {value}")
        lines.append("")
    return "\n".join(lines)


def _write_keystone_conf(home: Path) -> Path:
    for sub in ("fernet-keys", "fernet-receipts", "credential-keys", "lock"):
        (home / sub).mkdir(exist_ok=True)
    conf = home / "keystone.conf"
    conf.write_text(
        _ini(
            {
                "DEFAULT": {"log_file": home / "keystone.log", "use_stderr": False},
                "database": {"connection": f"sqlite:///{home / 'keystone.db'}"},
                "token": {"provider": "fernet"},
                "fernet_tokens": {"key_repository": home / "fernet-keys"},
                "fernet_receipts": {"key_repository": home / "fernet-receipts"},
                "credential": {"key_repository": home / "credential-keys"},
                "oslo_concurrency": {"lock_path": home / "lock"},
            }
        )
    )
    return conf


def _write_glance_conf(
    home: Path,
    venv: Path,
    *,
    region: str,
    glance_url: str,
    keystone_url: str,
    auth_region: str = "ORD",
    database: str,
    extra: dict[str, dict[str, object]] | None = None,
) -> Path:
    for sub in ("images", "staging", "tasks", "lock"):
        (home / sub).mkdir(exist_ok=True)
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {
            "public_endpoint": glance_url,
            "enabled_import_methods": "[glance-direct,web-download,glance-download,copy-image]",
            "enabled_backends": "local:file",
            "log_file": home / "glance.log",
            "use_stderr": False,
        },
        "glance_store": {"default_backend": "local"},
        "local": {"filesystem_store_datadir": home / "images"},
        "os_glance_staging_store": {"filesystem_store_datadir": home / "staging"},
        "os_glance_tasks_store": {"filesystem_store_datadir": home / "tasks"},
        "database": {"connection": database},
        "keystone_authtoken": {
            "www_authenticate_uri": f"{keystone_url}/v3",
            "auth_url": keystone_url,
            "auth_type": "password",
            "project_domain_name": "Default",
            "user_domain_name": "Default",
            "project_name": "service",
            "username": "glance",
            "password": SERVICE_PASSWORD,
            "region_name": auth_region,
        },
        "paste_deploy": {"flavor": "keystone", "config_file": venv / "etc/glance/glance-api-paste.ini"},
        "oslo_policy": {"enforce_scope": True, "enforce_new_defaults": True},
        "oslo_concurrency": {"lock_path": home / "lock"},
        "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
    }
    for section, options in (extra or {}).items():
        sections.setdefault(section, {}).update(options)
    (home / "glance-api.conf").write_text(_ini(sections))
    return home / "glance-api.conf"


# ---------------------------------------------------------------------------------------------
# Processes


@dataclass
class Service:
    """One uWSGI master (with its workers) started by us."""

    name: str
    proc: subprocess.Popen
    url: str
    home: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # --die-on-term: the master stops its workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log(self) -> str:
        text = ""
        for path in sorted(self.home.glob("*.log")):
            text += f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}\n"
        return text


class PortTaken(RuntimeError):
    """uWSGI could not bind the port we picked (another process took it in between)."""


def _uwsgi(venv: Path, name: str, home: Path, port: int, mount: str, app: str, env: dict, extra: list) -> Service:
    """Start ``app`` under uWSGI at ``http://127.0.0.1:<port><mount>`` and wait until it answers."""
    argv = [
        str(venv / "bin/uwsgi"),
        *("--http-socket", f"127.0.0.1:{port}", "--mount", f"{mount}={app}", "--manage-script-name"),
        *("--master", "--processes", "1", "--threads", "8", "--enable-threads", "--lazy-apps"),
        *("--die-on-term", "--need-app", "--buffer-size", "65535"),
        # uWSGI's http-socket closes each connection after one answer: say so, or a client reusing the
        # connection (keystonemiddleware validating tokens) gets "connection reset" now and then.
        *("--add-header", "Connection: close"),
        *extra,
    ]
    log_path = home / f"{name}.uwsgi.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=home,
            env={**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    service = Service(name, proc, f"http://127.0.0.1:{port}{mount}", home)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if "Address already in use" in log_path.read_text(errors="replace"):
                raise PortTaken(name)
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{service.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{service.url}/", timeout=5).status_code in (200, 300):
                return service
        time.sleep(0.2)
    service.stop()
    raise RuntimeError(f"{name} did not answer in 120 s:\n{service.log()}")


def _serve(venv: Path, name: str, home: Path, mount: str, app: str, env: dict, extra: list, configure=None) -> Service:
    """``_uwsgi`` on a free port; ``configure(url)`` first writes the config that names the URL."""
    for _attempt in range(5):  # a free port can be taken between our probe and uWSGI's bind
        port = free_port()
        if configure is not None:
            configure(f"http://127.0.0.1:{port}{mount}")
        with contextlib.suppress(PortTaken):
            return _uwsgi(venv, name, home, port, mount, app, env, extra)
    raise RuntimeError(f"{name}: no free port after 5 tries")


# ---------------------------------------------------------------------------------------------
# The cloud


@dataclass
class User:
    """A Keystone user with a role on one project (what a clouds.yaml entry names)."""

    name: str
    password: str
    project: str
    project_id: str
    user_id: str
    domain: str = "Default"
    domain_id: str = "default"

    def auth(self, auth_url: str) -> dict[str, str]:
        return {
            "auth_url": auth_url,
            "username": self.name,
            "password": self.password,
            "project_name": self.project,
            "user_domain_name": self.domain,
            "project_domain_name": self.domain,
        }


@dataclass
class OpenStack:
    """A running Keystone with one Glance per region."""

    home: Path
    venv: Path
    keystone: Service | None = None
    glances: dict[str, Service] = field(default_factory=dict)
    admin: User | None = None
    identity_region: str = ""
    _databases: dict[str, str] = field(default_factory=dict)  # Glance region -> its database's URL
    _image_service: str = ""
    _admin_token: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def running(cls, home: Path, regions: tuple[str, ...] = DEFAULT_REGIONS) -> Iterator[OpenStack]:
        cloud = cls(home=home, venv=build())
        try:
            cloud.start(regions)
            yield cloud
        finally:
            cloud.stop()

    def start(self, regions: tuple[str, ...]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._start_keystone(first_region=regions[0])
        self._bootstrap_service_user()
        for region in regions:
            self.start_glance(region)

    def stop(self) -> None:
        for region in list(self.glances):
            self.stop_glance(region, deregister=False)
        if self.keystone is not None:
            self.keystone.stop()
            self.keystone = None
        for region in list(self._databases):  # of a Glance that did not start
            _drop_database(self._databases.pop(region))

    @property
    def auth_url(self) -> str:
        """Keystone's public URL (what goes into ``auth_url``); it serves v3 only."""
        assert self.keystone is not None
        return self.keystone.url

    @property
    def regions(self) -> list[str]:
        return list(self.glances)

    def glance_url(self, region: str) -> str:
        return self.glances[region].url

    def _start_keystone(self, first_region: str) -> None:
        home = self.home / "keystone"
        home.mkdir(exist_ok=True)
        conf = _write_keystone_conf(home)
        shutil.copy(self.venv / "templates/keystone.db", home / "keystone.db")
        user = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
        _run(self.venv, ["keystone-manage", "--config-file", str(conf), "fernet_setup", *user], home)
        _run(self.venv, ["keystone-manage", "--config-file", str(conf), "credential_setup", *user], home)
        # Keystone must answer on its port before bootstrap can name its URL: pick the port first.
        env = {"OS_KEYSTONE_CONFIG_FILES": str(conf)}
        self.keystone = _serve(self.venv, "keystone", home, "/identity", "keystone.wsgi.api:application", env, [])
        self.identity_region = first_region
        url = self.keystone.url
        _run(
            self.venv,
            [
                "keystone-manage",
                "--config-file",
                str(conf),
                "bootstrap",
                "--bootstrap-password",
                ADMIN_PASSWORD,
                "--bootstrap-admin-url",
                f"{url}/v3",
                "--bootstrap-internal-url",
                f"{url}/v3",
                "--bootstrap-public-url",
                f"{url}/v3",
                "--bootstrap-region-id",
                first_region,
            ],
            home,
        )
        project = self._admin_lookup_project("admin")
        self.admin = User("admin", ADMIN_PASSWORD, "admin", project, self._lookup("users", "admin"))

    # -- the admin side of the v3 API ------------------------------------------------------

    def admin_token(self) -> str:
        if self._admin_token is None:
            body = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}
                        },
                    },
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
                }
            }
            answer = httpx.post(f"{self.auth_url}/v3/auth/tokens", json=body, timeout=30)
            answer.raise_for_status()
            self._admin_token = answer.headers["X-Subject-Token"]
        return self._admin_token

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """An admin call to Keystone's v3 API (``path`` starts with ``/v3``); raises on an error status."""
        answer = httpx.request(
            method, f"{self.auth_url}{path}", headers={"X-Auth-Token": self.admin_token()}, timeout=30, **kwargs
        )
        if answer.status_code >= 400:
            raise RuntimeError(f"Keystone {method} {path}: {answer.status_code} {answer.text}")
        return answer

    def _lookup(self, kind: str, name: str, **filters: str) -> str:
        found = self.api("GET", f"/v3/{kind}", params={"name": name, **filters}).json()[kind]
        if not found:
            raise KeyError(f"no {kind} named {name}")
        return found[0]["id"]

    def _admin_lookup_project(self, name: str) -> str:
        # Before the admin user exists we cannot call the API; bootstrap made project "admin".
        return self._lookup("projects", name)

    def _role_id(self, name: str) -> str:
        try:
            return self._lookup("roles", name)
        except KeyError:
            return self.api("POST", "/v3/roles", json={"role": {"name": name}}).json()["role"]["id"]

    def _bootstrap_service_user(self) -> None:
        project = self.api("POST", "/v3/projects", json={"project": {"name": "service", "domain_id": "default"}})
        project_id = project.json()["project"]["id"]
        user = self.api(
            "POST",
            "/v3/users",
            json={"user": {"name": "glance", "password": SERVICE_PASSWORD, "domain_id": "default"}},
        ).json()["user"]["id"]
        for role in ("admin", "service"):
            self.api("PUT", f"/v3/projects/{project_id}/users/{user}/roles/{self._role_id(role)}")
        self._image_service = self.api(
            "POST", "/v3/services", json={"service": {"name": "glance", "type": "image", "enabled": True}}
        ).json()["service"]["id"]

    def create_domain(self, name: str) -> str:
        return self.api("POST", "/v3/domains", json={"domain": {"name": name, "enabled": True}}).json()["domain"]["id"]

    def create_user(
        self,
        name: str | None = None,
        project: str | None = None,
        *,
        roles: tuple[str, ...] = ("member",),
        domain_id: str = "default",
        password: str | None = None,
    ) -> User:
        """A new project (unless one of that name exists in the domain) and a user with ``roles`` on it."""
        name = name or f"user-{uuid.uuid4().hex[:8]}"
        project = project or f"{name}-project"
        password = password or f"{name}-pw-{uuid.uuid4().hex[:6]}"
        try:
            project_id = self._lookup("projects", project, domain_id=domain_id)
        except KeyError:
            project_id = self.api(
                "POST", "/v3/projects", json={"project": {"name": project, "domain_id": domain_id}}
            ).json()["project"]["id"]
        user_id = self.api(
            "POST", "/v3/users", json={"user": {"name": name, "password": password, "domain_id": domain_id}}
        ).json()["user"]["id"]
        for role in roles:
            self.api("PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/{self._role_id(role)}")
        domain = "Default"
        if domain_id != "default":
            domain = self.api("GET", f"/v3/domains/{domain_id}").json()["domain"]["name"]
        return User(name, password, project, project_id, user_id, domain, domain_id)

    def create_service_user(self, name: str) -> User:
        """A service user (``admin`` and ``service`` on the ``service`` project), as another service's
        keystonemiddleware logs in with to validate tokens (e.g. a keystoneauth Swift's)."""
        return self.create_user(name, "service", roles=("admin", "service"))

    def create_application_credential(self, user: User, name: str | None = None) -> tuple[str, str]:
        """An application credential of ``user`` (made with the user's own token, as Keystone requires)."""
        name = name or f"appcred-{uuid.uuid4().hex[:8]}"
        answer = httpx.post(
            f"{self.auth_url}/v3/users/{user.user_id}/application_credentials",
            headers={"X-Auth-Token": self.token(user)},
            json={"application_credential": {"name": name}},
            timeout=30,
        )
        answer.raise_for_status()
        cred = answer.json()["application_credential"]
        return cred["id"], cred["secret"]

    def token(self, user: User) -> str:
        """A project-scoped v3 token of ``user``."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": user.user_id, "password": user.password}},
                },
                "scope": {"project": {"id": user.project_id}},
            }
        }
        answer = httpx.post(f"{self.auth_url}/v3/auth/tokens", json=body, timeout=30)
        answer.raise_for_status()
        return answer.headers["X-Subject-Token"]

    # -- Glance regions --------------------------------------------------------------------

    def start_glance(self, region: str, extra: dict[str, dict[str, object]] | None = None) -> Service:
        """One more Glance, registered in the catalog as ``region``'s image endpoint."""
        assert self.keystone is not None
        home = self.home / f"glance-{region}"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        if region in self._databases:
            _drop_database(self._databases.pop(region))
        database = self._databases[region] = _new_database(f"glance_{region}", self.venv / "templates/glance.sql")
        # Glance reads glance-api.conf from OS_GLANCE_CONFIG_DIR; the paste file comes from the venv.
        # Its token validation runs against the identity endpoint of the region Keystone lives in.
        env = {"OS_GLANCE_CONFIG_DIR": str(home)}
        chunked = ["--http-auto-chunked", "--http-chunked-input", "--chunked-input-limit", "16777216"]
        chunked.append("--http-raw-body")

        def configure(url: str) -> None:
            _write_glance_conf(
                home,
                self.venv,
                region=region,
                glance_url=url,
                keystone_url=self.auth_url,
                auth_region=self.identity_region,
                database=database,
                extra=extra,
            )

        app = "glance.wsgi.api:application"
        service = _serve(self.venv, f"glance-{region}", home, "/image", app, env, chunked, configure)
        self._register_image_endpoints(region, service.url)
        self.glances[region] = service
        return service

    def glance_sql(self, region: str, statement: str = "", script: Path | None = None) -> str:
        """Run SQL (a statement, or a ``script`` file) in ``region``'s Glance database; its output, tab-separated."""
        return _sql(statement, database=_name(self._databases[region]), stdin=script)

    def stop_glance(self, region: str, deregister: bool = True) -> None:
        service = self.glances.pop(region)
        service.stop()
        _drop_database(self._databases.pop(region))
        if deregister:
            for endpoint in self.api("GET", "/v3/endpoints", params={"region_id": region}).json()["endpoints"]:
                self.api("DELETE", f"/v3/endpoints/{endpoint['id']}")

    def _register_image_endpoints(self, region: str, url: str) -> None:
        existing = {r["id"] for r in self.api("GET", "/v3/regions").json()["regions"]}
        if region not in existing:
            self.api("POST", "/v3/regions", json={"region": {"id": region}})
        for interface in ("public", "internal", "admin"):
            self.api(
                "POST",
                "/v3/endpoints",
                json={
                    "endpoint": {
                        "service_id": self._image_service,
                        "interface": interface,
                        "region_id": region,
                        "url": url,
                        "enabled": True,
                    }
                },
            )

    # -- what clients need -----------------------------------------------------------------

    def cloud_entry(self, user: User, region: str | None = None) -> dict:
        """A clouds.yaml entry for ``user`` (region defaults to the first Glance region)."""
        return {
            "auth_type": "password",
            "auth": user.auth(self.auth_url),
            "region_name": region or self.regions[0],
            "identity_api_version": 3,
            "interface": "public",
        }

    def clouds_yaml(self, folder: Path, clouds: dict[str, User | dict], merge: Path | None = None) -> Path:
        """Write ``folder/clouds.yaml`` naming each user's cloud (a User, or a ready entry); ``merge``
        adds the clouds of another clouds.yaml (e.g. an imagehop data dir's)."""
        entries: dict[str, dict] = {}
        if merge is not None:
            entries.update(yaml.safe_load(merge.read_text())["clouds"])
        for name, entry in clouds.items():
            entries[name] = self.cloud_entry(entry) if isinstance(entry, User) else entry
        path = folder / "clouds.yaml"
        path.write_text(yaml.safe_dump({"clouds": entries}, sort_keys=False))
        return path

    def env(self, user: User, region: str | None = None) -> dict[str, str]:
        """Environment for `openstack` / glanceclient / openstacksdk acting as ``user``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(
            OS_AUTH_URL=self.auth_url,
            OS_IDENTITY_API_VERSION="3",
            OS_USERNAME=user.name,
            OS_PASSWORD=user.password,
            OS_PROJECT_NAME=user.project,
            OS_USER_DOMAIN_NAME=user.domain,
            OS_PROJECT_DOMAIN_NAME=user.domain,
            OS_REGION_NAME=region or self.regions[0],
            OS_INTERFACE="public",
        )
        return env
