"""A real Swift 2.38.3 all-in-one beside imagehop: proxy, account, container and object servers.

Built once into ``peers_dir()/swift-2.38.3`` (a virtualenv from PyPI, under a lock file so two test
processes may ask at once), started on free loopback ports with one-replica rings, tempauth users in
two accounts and Debian's memcached on a free port (never 11211), ready when ``/healthcheck``
answers. Used by the differential tests (``tests/objects/differential``), by the ``swift`` blob-store
backend's tests and by the bench, through :func:`running_swift` or the session fixture ``real_swift``
in ``tests/conftest.py``.

With ``keystone=`` (a :class:`KeystoneAuth`), the proxy authenticates with keystonemiddleware's
``authtoken`` against a real Keystone (``tests/peers/openstack.py``) and authorises with Swift's
``keystoneauth`` instead of tempauth: ``operator_roles = admin, member``, ``project_reader_roles =
reader``, ``reseller_admin_role = ResellerAdmin``; accounts are ``AUTH_<project id>``. The session
fixture ``real_swift_keystone`` starts one.

Tempauth accounts (``AUTH_<tenant>`` as imagehop names them, so the same request path works on both):

- ``test:tester`` (``.admin`` of ``AUTH_test``), ``test2:tester2`` (``.admin`` of ``AUTH_test2``),
- ``test:reader`` and ``test:norole``, plain users of ``AUTH_test``: no ``.admin``, so only ACLs let them in
  (the differential tests give ``test:reader`` the account's read-only grant, as Keystone's reader role),
- ``.reseller_admin`` user ``admin:admin``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers import peers_dir
from tests.support.ports import free_port

VERSION = "2.38.3"
# Swift and the authtoken middleware its keystoneauth needs (the version Glance 33's peer runs); clients
# (the swift CLI, openstacksdk) come from the project's own venv.
PACKAGES = [f"swift=={VERSION}", "keystonemiddleware==13.0.1"]
MEMCACHED = "/usr/bin/memcached"

USERS = {
    # account: {user: (key, groups)}
    "test": {"tester": ("testing", ".admin"), "reader": ("reading", ""), "norole": ("norole", "")},
    "test2": {"tester2": ("testing2", ".admin")},
    "admin": {"admin": ("admin", ".admin .reseller_admin")},
}


def home() -> Path:
    return peers_dir() / f"swift-{VERSION}"


def venv_bin() -> Path:
    return home() / "venv" / "bin"


def ensure_built() -> Path:
    """Build the venv once (idempotent; a second process waits on the lock). Returns its bin/ folder.

    The stamp names the packages installed; a finished build of fewer packages (an older checkout's) gets
    the missing ones added in place, so Swifts running from it are left alone.
    """
    root = home()
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / ".built"
    wanted = "\n".join(PACKAGES) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return venv_bin()
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text() == wanted):
            venv = root / "venv"
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            if not stamp.exists():
                shutil.rmtree(venv, ignore_errors=True)
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                subprocess.run([*pip, "--upgrade", "pip"], check=True)
            subprocess.run([*pip, *PACKAGES], check=True)
            stamp.write_text(wanted)
    return venv_bin()


def ensure_memcached() -> str:
    """Debian's memcached (``make system-deps`` installs it when root); installed here too when root."""
    if os.path.exists(MEMCACHED):
        return MEMCACHED
    if os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "memcached"],
            check=True,
            env=env,
            capture_output=True,
        )
        if os.path.exists(MEMCACHED):
            return MEMCACHED
    raise RuntimeError("memcached is missing: run `make system-deps` as root (apt-get install memcached)")


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started the peer dies (a killed test run leaves no peer)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class KeystoneAuth:
    """The Keystone a keystoneauth Swift trusts: its URL, and the service user authtoken validates tokens as
    (a user with ``admin`` and ``service`` on its project, e.g. ``OpenStack.create_service_user``)."""

    auth_url: str  # Keystone's public URL (it serves /v3)
    username: str
    password: str
    project_id: str  # the service user's project
    region: str  # the region of Keystone's identity endpoint in the catalog

    def token(self) -> tuple[str, str]:
        """A v3 token of the service user on its project, and that project's id."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": self.username, "domain": {"id": "default"}, "password": self.password}
                    },
                },
                "scope": {"project": {"id": self.project_id}},
            }
        }
        response = httpx.post(f"{self.auth_url}/v3/auth/tokens", json=body, timeout=30)
        response.raise_for_status()
        return response.headers["X-Subject-Token"], self.project_id


@dataclass
class Swift:
    """A running real Swift: its URL, its tempauth users (or the Keystone it trusts), and how to stop it."""

    root: Path
    proxy_port: int = 0
    procs: list[subprocess.Popen] = field(default_factory=list)
    keystone: KeystoneAuth | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/auth/v1.0"

    def storage_url(self, account: str = "test") -> str:
        """``.../v1/AUTH_<account>`` (with Keystone, ``account`` is a project id)."""
        return f"{self.url}/v1/AUTH_{account}"

    def token(self, account: str = "test", user: str | None = None) -> tuple[str, str]:
        """Tempauth v1.0: (storage URL, token) for ``account:user``; with Keystone, the service user's."""
        if self.keystone is not None:
            token, project = self.keystone.token()
            return self.storage_url(project), token
        user = user or next(iter(USERS[account]))
        key = USERS[account][user][0]
        response = httpx.get(self.auth_url, headers={"X-Auth-User": f"{account}:{user}", "X-Auth-Key": key})
        response.raise_for_status()
        return response.headers["X-Storage-Url"], response.headers["X-Auth-Token"]

    def cli_env(self, account: str = "test", user: str | None = None) -> dict[str, str]:
        """Environment for the ``swift`` CLI against this peer (v1.0 auth)."""
        user = user or next(iter(USERS[account]))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
        env.update(ST_AUTH=self.auth_url, ST_USER=f"{account}:{user}", ST_KEY=USERS[account][user][0])
        return env

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def log(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*.log")):
            parts.append(f"== {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)


SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = imagehop-tests
swift_hash_path_prefix = imagehop-tests

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
"""

SERVER_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
devices = {devices}
mount_check = false
disable_fallocate = true
user = {user}
swift_dir = {swift_dir}
workers = 1
log_name = {kind}-server
log_facility = LOG_LOCAL0
log_address = /nonexistent
eventlet_debug = false

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
recon_cache_path = {recon}
{extra}
[{kind}-replicator]
[{kind}-auditor]
{more}
"""

PROXY_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
user = {user}
swift_dir = {swift_dir}
workers = 1
log_name = proxy-server
log_address = /nonexistent
eventlet_debug = false

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats container_sync bulk tempurl \
ratelimit {auth} copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

{auth_filters}
[filter:healthcheck]
use = egg:swift#healthcheck

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached_port}

[filter:ratelimit]
use = egg:swift#ratelimit

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:container_sync]
use = egg:swift#container_sync

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:copy]
use = egg:swift#copy

[filter:container-quotas]
use = egg:swift#container_quotas

[filter:account-quotas]
use = egg:swift#account_quotas

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true

[filter:symlink]
use = egg:swift#symlink
"""


TEMPAUTH_FILTER = """\
[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH
{users}
"""

# As Swift's proxy-server.conf-sample: authtoken lets anonymous requests through (delay_auth_decision) for
# keystoneauth to decide (public containers, TempURL), and caches tokens in Swift's memcached.
KEYSTONE_FILTERS = """\
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = {auth_url}/v3
auth_url = {auth_url}
auth_type = password
project_domain_id = default
user_domain_id = default
project_id = {project_id}
username = {username}
password = {password}
region_name = {region}
delay_auth_decision = True
cache = swift.cache
include_service_catalog = False
service_token_roles_required = True

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = AUTH
operator_roles = admin, member
project_reader_roles = reader
reseller_admin_role = ResellerAdmin
"""


# Swift reads /etc/swift/swift.conf when its modules are imported; point it at ours first, so the peer
# needs nothing outside its own folder.
LAUNCH = """\
import sys
import swift.common.utils as utils
utils.SWIFT_CONF_FILE = {conf!r}
import swift.common.constraints as constraints
import swift.common.storage_policy as storage_policy
storage_policy.reload_storage_policies()
constraints.reload_constraints()
from swift.{module}.server import main
sys.argv[0] = "swift-{kind}-server"
main()
"""


MODULES = {"account": "account", "container": "container", "object": "obj", "proxy": "proxy"}


def launcher(kind: str, root: Path) -> str:
    return LAUNCH.format(kind=kind, module=MODULES[kind], conf=str(root / "etc" / "swift.conf"))


def _write_configs(swift: Swift, bin_dir: Path, memcached_port: int) -> dict[str, Path]:
    root = swift.root
    swift_dir = root / "etc"
    devices = root / "srv"
    for path in (swift_dir, devices / "d1", root / "log", root / "cache"):
        path.mkdir(parents=True, exist_ok=True)
    (swift_dir / "swift.conf").write_text(SWIFT_CONF)
    user = _current_user()
    ports = {kind: free_port() for kind in ("account", "container", "object")}
    swift.proxy_port = free_port()
    confs: dict[str, Path] = {}
    for kind, port in ports.items():
        builder = swift_dir / f"{kind}.builder"
        ring_builder = str(bin_dir / "swift-ring-builder")
        subprocess.run([ring_builder, str(builder), "create", "10", "1", "1"], check=True, capture_output=True)
        subprocess.run(
            [ring_builder, str(builder), "add", f"r1z1-127.0.0.1:{port}/d1", "1"], check=True, capture_output=True
        )
        subprocess.run([ring_builder, str(builder), "rebalance"], check=True, capture_output=True)
        extra = "allow_versions = true\n" if kind == "container" else ""
        more = "[object-updater]\n[object-expirer]\n" if kind == "object" else ""
        more += "[container-updater]\n[container-sync]\n" if kind == "container" else ""
        conf = swift_dir / f"{kind}-server.conf"
        conf.write_text(
            SERVER_CONF.format(
                port=port,
                devices=devices,
                user=user,
                swift_dir=swift_dir,
                kind=kind,
                recon=root / "cache",
                extra=extra,
                more=more,
            )
        )
        confs[kind] = conf
    users = "\n".join(
        f"user_{account}_{name} = {key} {groups}".rstrip()
        for account, names in USERS.items()
        for name, (key, groups) in names.items()
    )
    if swift.keystone is None:
        auth, auth_filters = "tempauth", TEMPAUTH_FILTER.format(users=users)
    else:
        ks = swift.keystone
        auth = "authtoken keystoneauth"
        auth_filters = KEYSTONE_FILTERS.format(
            auth_url=ks.auth_url, project_id=ks.project_id, username=ks.username, password=ks.password, region=ks.region
        )
    proxy = swift_dir / "proxy-server.conf"
    proxy.write_text(
        PROXY_CONF.format(
            port=swift.proxy_port,
            user=user,
            swift_dir=swift_dir,
            auth=auth,
            auth_filters=auth_filters,
            memcached_port=memcached_port,
        )
    )
    confs["proxy"] = proxy
    return confs


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def start(root: Path, timeout: float = 60, keystone: KeystoneAuth | None = None) -> Swift:
    """Start memcached and the four servers under ``root``; return when ``/healthcheck`` answers 200 and an
    authenticated HEAD of an account succeeds. ``keystone``: authtoken + keystoneauth instead of tempauth."""
    bin_dir = ensure_built()
    memcached = ensure_memcached()
    swift = Swift(root, keystone=keystone)
    memcached_port = free_port()
    log_dir = root / "log"
    confs = _write_configs(swift, bin_dir, memcached_port)
    user = ["-u", "root"] if os.geteuid() == 0 else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        with open(log_dir / "memcached.log", "ab") as log:
            swift.procs.append(
                subprocess.Popen(
                    [memcached, "-l", "127.0.0.1", "-p", str(memcached_port), "-U", "0", "-m", "64", *user],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            )
        for kind in ("account", "container", "object", "proxy"):
            with open(log_dir / f"{kind}.log", "ab") as log:
                swift.procs.append(
                    subprocess.Popen(
                        [str(bin_dir / "python"), "-c", launcher(kind, root), str(confs[kind]), "--verbose"],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        preexec_fn=_die_with_parent,
                    )
                )
        _wait_ready(swift, timeout)
    except BaseException:
        swift.stop()
        raise
    return swift


def _wait_ready(swift: Swift, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for proc in swift.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a Swift process exited with {proc.returncode}: {proc.args}\n{swift.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{swift.url}/healthcheck", timeout=2).status_code == 200:
                # The proxy answers before the back ends listen; an authenticated round trip proves them all.
                with contextlib.suppress(httpx.HTTPError):
                    url, token = swift.token()
                    if httpx.head(url, headers={"X-Auth-Token": token}, timeout=5).is_success:
                        return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Swift did not become ready in {timeout} s\n{swift.log()}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_swift(root: Path | None = None, keystone: KeystoneAuth | None = None) -> Iterator[Swift]:
    """A real Swift for the length of the ``with`` block (in a temporary folder unless ``root`` is given)."""
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swift-peer-")))
        swift = start(root, keystone=keystone)
        stack.callback(swift.stop)
        yield swift


if __name__ == "__main__":  # `python -m tests.peers.swift`: build, start, print, wait for Ctrl-C.
    with running_swift() as peer:
        print(f"Swift {VERSION} at {peer.url} (auth {peer.auth_url}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
