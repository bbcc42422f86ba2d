"""Settings: regions, ports, data dir, database URLs, users.

Sources, lowest precedence first: built-in defaults, a TOML file (``--config`` or
``IMAGEHOP_CONFIG``), ``IMAGEHOP_*`` environment variables, command-line flags.
Everything is resolved once, at start-up, into plain dataclasses.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_REGIONS = ("ORD", "IAD")
DEFAULT_PORT = 5000
DEFAULT_TOKEN_LIFETIME = 24 * 3600
DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


BLOB_STORES = ("file", "s3", "swift")


@dataclass
class BlobSettings:
    """Where a region keeps object bytes: ``blob_store`` and its settings in ``[[regions]]``."""

    kind: str = "file"
    delete_grace: float | None = None  # seconds a replaced blob is kept for readers; None: the store's default
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_part_size: int = 8 << 20
    swift_auth_url: str | None = None
    swift_auth_version: str = "1"
    swift_user: str | None = None
    swift_key: str | None = None
    swift_project: str | None = None
    swift_user_domain: str = "Default"
    swift_project_domain: str = "Default"
    swift_region: str | None = None
    swift_container: str | None = None
    swift_segment_size: int = 1 << 30

    def validate(self, region: str) -> None:
        if self.kind not in BLOB_STORES:
            raise ConfigError(f"region {region}: blob_store must be one of {', '.join(BLOB_STORES)}, got {self.kind!r}")
        if self.kind == "s3":
            needed = ("s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key")
            missing = [k for k in needed if not getattr(self, k)]
            if missing:
                raise ConfigError(f"region {region}: blob_store s3 needs {', '.join(missing)}")
            if not self.s3_endpoint.startswith(("http://", "https://")):  # type: ignore[union-attr]
                raise ConfigError(f"region {region}: s3_endpoint must start with http:// or https://")
            if self.s3_part_size < 5 << 20:
                raise ConfigError(f"region {region}: s3_part_size must be at least 5 MiB (S3's smallest part)")
        if self.kind == "swift":
            needed = ("swift_auth_url", "swift_user", "swift_key", "swift_container")
            missing = [k for k in needed if not getattr(self, k)]
            if missing:
                raise ConfigError(f"region {region}: blob_store swift needs {', '.join(missing)}")
            if self.swift_auth_version not in ("1", "1.0", "2", "2.0", "3"):
                raise ConfigError(f"region {region}: swift_auth_version must be 1, 2 or 3")
            if not 1 << 20 <= self.swift_segment_size <= 5 << 30:
                raise ConfigError(f"region {region}: swift_segment_size must be between 1 MiB and 5 GiB")


BLOB_KEYS = {f"blob_{k}" if k in ("delete_grace",) else k for k in BlobSettings.__dataclass_fields__} - {"kind"}
BLOB_KEYS |= {"blob_store"}


@dataclass
class RegionSettings:
    name: str
    port: int | None = None  # None: derived from the identity port (port + 1 + index)
    public_url: str | None = None
    database_url: str | None = None
    blob: BlobSettings = field(default_factory=BlobSettings)


@dataclass
class UserSpec:
    """A user the operator declares in the config file; created at start-up if missing."""

    name: str
    tenant_id: str
    roles: list[str] = field(default_factory=lambda: ["member"])
    password: str | None = None
    api_key: str | None = None


@dataclass
class TaskSettings:
    """``[tasks]``: the region task worker (export / import / interoperable import)."""

    concurrency: int = 4  # tasks one region runs at once
    max_active_per_tenant: int = 10  # pending + processing tasks of one tenant; more: 413
    retry_after: int = 1  # seconds, the Retry-After of a task GET while the task runs
    time_to_live: float = 48  # hours a finished task stays visible (expires_at); fractions allowed
    poll_interval: float = 0.5  # seconds between the worker's looks for pending tasks
    housekeeping_interval: float = 10.0  # seconds between clean-up rounds (by the holder of the region's lock)
    # bytes per segment of an exported VHD (at most 5 GiB; raised for a VHD that would need more than 1000)
    export_segment_size: int = 256 << 20
    import_max_virtual_size: int = 160 << 30  # Rackspace's limit since 2019 (code 413)
    import_max_physical_size: int = 160 << 30  # (code 609)


@dataclass
class ImageSettings:
    """``[images]``: the image service."""

    web_download_allow_private: bool = False  # web-download from loopback/private addresses
    # Per-tenant quotas, as Glance's unified limits name them (0: no limit); sizes in MiB.
    image_count_total: int = 0
    image_size_total: int = 0
    image_stage_total: int = 0
    image_count_uploading: int = 0


QUOTAS = ("image_count_total", "image_size_total", "image_stage_total", "image_count_uploading")


@dataclass
class AuthLimits:
    """``[identity]`` settings that bound the work of password and API-key checks (docs/security.md)."""

    hash_workers: int = 1  # threads that run scrypt; the rest of the machine keeps serving
    hash_queue: int = 64  # checks waiting for a worker; more answer 429 at once
    rate_per_address: float = 20.0  # password/API-key attempts per second per client address (0: no limit)
    burst_per_address: int = 60
    rate_per_user: float = 1.0  # failed attempts per second per user name (0: no limit)
    burst_per_user: int = 10


@dataclass
class ObjectSettings:
    """``[objects]``: object storage (the Swift API)."""

    operator_roles: list[str] = field(default_factory=list)  # more roles that own their project's account
    reader_roles: list[str] = field(default_factory=list)  # more roles that read their project's account only
    reap_interval: int = 60  # seconds between passes that remove expired objects' rows and bytes


MAX_SEGMENT_SIZE = 5 * 1024**3  # Swift's single-object limit


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("imagehop-data")
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    client_timeout: float = 60.0  # seconds a begun request may send nothing before 408 (Swift's client_timeout)
    identity_public_url: str | None = None
    identity_database_url: str | None = None
    database_url: str | None = None  # one PostgreSQL database for everything: a schema per service
    regions: list[RegionSettings] = field(default_factory=lambda: [RegionSettings(name) for name in DEFAULT_REGIONS])
    users: list[UserSpec] = field(default_factory=list)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    objects: ObjectSettings = field(default_factory=ObjectSettings)
    auth: AuthLimits = field(default_factory=AuthLimits)
    console_secret_key: str | None = None  # [console] secret_key; None: <data_dir>/console.key

    def region_port(self, index: int) -> int:
        """The port region number ``index`` listens on (0 means: pick a free one)."""
        region = self.regions[index]
        if region.port is not None:
            return region.port
        return 0 if self.port == 0 else self.port + 1 + index

    def identity_db_url(self) -> str:
        if self.identity_database_url:
            return self.identity_database_url
        if self.database_url:
            return schema_url(self.database_url, "identity")
        return sqlite_url(self.data_dir / "identity.db")

    def region_db_url(self, region: RegionSettings) -> str:
        if region.database_url:
            return region.database_url
        if self.database_url:
            return schema_url(self.database_url, "region_" + region.name.lower().replace("-", "_"))
        return sqlite_url(self.data_dir / "regions" / region.name / "region.db")

    def region_dir(self, region: RegionSettings) -> Path:
        return self.data_dir / "regions" / region.name

    def region_settings(self, name: str) -> RegionSettings:
        for region in self.regions:
            if region.name == name:
                return region
        raise ConfigError(
            f"region {name} is not in the configuration (regions: {', '.join(r.name for r in self.regions)})"
        )

    def region_public_url(self, index: int) -> str:
        """The URL clients are told for region ``index``: its ``public_url``, else host and region port."""
        region = self.regions[index]
        return (region.public_url or f"http://{_url_host(self.host)}:{self.region_port(index)}").rstrip("/")

    def identity_url(self) -> str:
        return (self.identity_public_url or f"http://{_url_host(self.host)}:{self.port}").rstrip("/")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def schema_url(url: str, schema: str) -> str:
    """``url`` (PostgreSQL) with the search path set to ``schema``: one database, a schema per service."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings from defaults, file, environment and explicit overrides.

    ``overrides`` are the command-line flags (``host``, ``port``, ``data_dir``, ``regions``);
    a value of ``None`` means "not given".
    """
    env = os.environ if env is None else env
    settings = Settings()
    config_file = config_file or env.get("IMAGEHOP_CONFIG")
    if config_file:
        _apply_file(settings, Path(config_file))
    _apply_env(settings, env)
    _apply_overrides(settings, overrides)
    _validate(settings)
    return settings


def _apply_file(settings: Settings, path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; pass an existing file to --config (or IMAGEHOP_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None

    known = {"host", "port", "data_dir", "token_lifetime", "client_timeout", "database_url", "identity", "regions",
             "users", "tasks", "images", "console"}  # fmt: skip
    _reject_unknown(data, known, str(path))
    if "host" in data:
        settings.host = _str(data["host"], "host")
    if "port" in data:
        settings.port = _port(data["port"], "port")
    if "data_dir" in data:
        settings.data_dir = _relative_to(path, _str(data["data_dir"], "data_dir"))
    if "token_lifetime" in data:
        settings.token_lifetime = _positive_int(data["token_lifetime"], "token_lifetime")
    if "client_timeout" in data:
        settings.client_timeout = _seconds(data["client_timeout"], "client_timeout")
    if "database_url" in data:
        settings.database_url = _str(data["database_url"], "database_url")

    identity = data.get("identity", {})
    _reject_unknown(identity, {"public_url", "database_url", *AuthLimits.__dataclass_fields__}, f"{path} [identity]")
    settings.identity_public_url = identity.get("public_url", settings.identity_public_url)
    settings.identity_database_url = identity.get("database_url", settings.identity_database_url)
    for key in AuthLimits.__dataclass_fields__:
        if key in identity:
            _set_auth_limit(settings.auth, key, identity[key], f"identity.{key}")

    if "regions" in data:
        regions = data["regions"]
        if not isinstance(regions, list) or not regions:
            raise ConfigError(f"{path}: [[regions]] must be a non-empty array of tables")
        settings.regions = []
        for entry in regions:
            _reject_unknown(entry, {"name", "port", "public_url", "database_url", *BLOB_KEYS}, f"{path} [[regions]]")
            if "name" not in entry:
                raise ConfigError(f"{path}: every [[regions]] entry needs a name")
            region = RegionSettings(
                name=_str(entry["name"], "regions.name"),
                port=_port(entry["port"], "regions.port") if "port" in entry else None,
                public_url=entry.get("public_url"),
                database_url=entry.get("database_url"),
            )
            for key in BLOB_KEYS & set(entry):
                _set_blob_setting(region.blob, key, entry[key], f"regions.{key}")
            settings.regions.append(region)

    tasks = data.get("tasks", {})
    _reject_unknown(tasks, set(TaskSettings.__dataclass_fields__), f"{path} [tasks]")
    for key, value in tasks.items():
        _set_task_setting(settings.tasks, key, value, f"tasks.{key}")
    objects = data.get("objects", {})
    _reject_unknown(objects, set(ObjectSettings.__dataclass_fields__), f"{path} [objects]")
    for key in ("operator_roles", "reader_roles"):
        if key in objects:
            value = objects[key]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{path}: objects.{key} must be a list of role names")
            setattr(settings.objects, key, list(value))
    if "reap_interval" in objects:
        settings.objects.reap_interval = _positive_int(objects["reap_interval"], "objects.reap_interval")

    images = data.get("images", {})
    _reject_unknown(images, set(ImageSettings.__dataclass_fields__), f"{path} [images]")
    for key in QUOTAS:
        if key in images:
            setattr(settings.images, key, _quota(images[key], f"images.{key}"))
    if "web_download_allow_private" in images:
        settings.images.web_download_allow_private = _bool(
            images["web_download_allow_private"], "images.web_download_allow_private"
        )

    console = data.get("console", {})
    _reject_unknown(console, {"secret_key"}, f"{path} [console]")
    if "secret_key" in console:
        settings.console_secret_key = _secret(console["secret_key"], "console.secret_key")

    for entry in data.get("users", []):
        _reject_unknown(entry, {"name", "tenant_id", "roles", "password", "api_key"}, f"{path} [[users]]")
        if "name" not in entry or "tenant_id" not in entry:
            raise ConfigError(f"{path}: every [[users]] entry needs name and tenant_id")
        settings.users.append(
            UserSpec(
                name=_str(entry["name"], "users.name"),
                tenant_id=str(entry["tenant_id"]),
                roles=list(entry.get("roles", ["member"])),
                password=entry.get("password"),
                api_key=entry.get("api_key"),
            )
        )


def _apply_env(settings: Settings, env: Mapping[str, str]) -> None:
    if "IMAGEHOP_HOST" in env:
        settings.host = env["IMAGEHOP_HOST"]
    if "IMAGEHOP_PORT" in env:
        settings.port = _port(env["IMAGEHOP_PORT"], "IMAGEHOP_PORT")
    if "IMAGEHOP_DATA_DIR" in env:
        settings.data_dir = Path(env["IMAGEHOP_DATA_DIR"])
    if "IMAGEHOP_TOKEN_LIFETIME" in env:
        settings.token_lifetime = _positive_int(env["IMAGEHOP_TOKEN_LIFETIME"], "IMAGEHOP_TOKEN_LIFETIME")
    if "IMAGEHOP_CLIENT_TIMEOUT" in env:
        settings.client_timeout = _seconds(env["IMAGEHOP_CLIENT_TIMEOUT"], "IMAGEHOP_CLIENT_TIMEOUT")
    if "IMAGEHOP_IDENTITY_PUBLIC_URL" in env:
        settings.identity_public_url = env["IMAGEHOP_IDENTITY_PUBLIC_URL"]
    if "IMAGEHOP_IDENTITY_DATABASE_URL" in env:
        settings.identity_database_url = env["IMAGEHOP_IDENTITY_DATABASE_URL"]
    if "IMAGEHOP_DATABASE_URL" in env:
        settings.database_url = env["IMAGEHOP_DATABASE_URL"]
    for key in AuthLimits.__dataclass_fields__:
        name = f"IMAGEHOP_IDENTITY_{key.upper()}"
        if name in env:
            _set_auth_limit(settings.auth, key, env[name], name)
    for key in TaskSettings.__dataclass_fields__:
        name = f"IMAGEHOP_TASKS_{key.upper()}"
        if name in env:
            _set_task_setting(settings.tasks, key, env[name], name)
    if "IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE" in env:
        value = env["IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE"]
        settings.images.web_download_allow_private = _bool(value, "IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE")
    if "IMAGEHOP_CONSOLE_SECRET_KEY" in env:
        settings.console_secret_key = _secret(env["IMAGEHOP_CONSOLE_SECRET_KEY"], "IMAGEHOP_CONSOLE_SECRET_KEY")
    for key in QUOTAS:
        name = f"IMAGEHOP_IMAGES_{key.upper()}"
        if name in env:
            setattr(settings.images, key, _quota(env[name], name))
    if "IMAGEHOP_REGIONS" in env:
        settings.regions = _select_regions(settings.regions, env["IMAGEHOP_REGIONS"])
    for region in settings.regions:
        prefix = f"IMAGEHOP_REGION_{region.name.upper().replace('-', '_')}_"
        if prefix + "PORT" in env:
            region.port = _port(env[prefix + "PORT"], prefix + "PORT")
        region.public_url = env.get(prefix + "PUBLIC_URL", region.public_url)
        region.database_url = env.get(prefix + "DATABASE_URL", region.database_url)
        for key in sorted(BLOB_KEYS):
            if prefix + key.upper() in env:
                _set_blob_setting(region.blob, key, env[prefix + key.upper()], prefix + key.upper())


def _apply_overrides(settings: Settings, overrides: Mapping[str, Any]) -> None:
    unknown = set(overrides) - {"host", "port", "data_dir", "regions", "database_url"}
    if unknown:
        raise TypeError(f"unknown overrides: {sorted(unknown)}")
    if overrides.get("host") is not None:
        settings.host = overrides["host"]
    if overrides.get("port") is not None:
        settings.port = _port(overrides["port"], "--port")
    if overrides.get("data_dir") is not None:
        settings.data_dir = Path(overrides["data_dir"])
    if overrides.get("regions") is not None:
        settings.regions = _select_regions(settings.regions, overrides["regions"])
    if overrides.get("database_url") is not None:
        settings.database_url = overrides["database_url"]


def _select_regions(current: list[RegionSettings], names: str) -> list[RegionSettings]:
    """Region list from ``ORD,IAD``, keeping what the file said about regions of the same name."""
    by_name = {r.name: r for r in current}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise ConfigError("the region list is empty: give at least one region, e.g. --regions ORD,IAD")
    return [by_name.get(n, RegionSettings(n)) for n in wanted]


def _validate(settings: Settings) -> None:
    names = [r.name for r in settings.regions]
    if len(set(names)) != len(names):
        raise ConfigError(f"region names must be unique, got {names}")
    for name in names:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"region name {name!r} may hold only letters, digits, '-' and '_'")
    if settings.port != 0:
        ports = [settings.port] + [settings.region_port(i) for i in range(len(settings.regions))]
        taken = [p for p in ports if p != 0]
        if len(set(taken)) != len(taken):
            raise ConfigError(f"identity and region ports overlap: {ports}")
    if settings.database_url is not None and not settings.database_url.startswith(DATABASE_SCHEMES[1:]):
        raise ConfigError(
            f"database_url {settings.database_url!r} must be a postgresql:// URL (it holds identity and every"
            " region, a schema each); SQLite databases are one per service, under the data dir"
        )
    databases = [("[identity] database_url", settings.identity_database_url)]
    databases += [(f"the database_url of region {r.name}", r.database_url) for r in settings.regions]
    for name, url in databases:
        if url is not None and not url.startswith(DATABASE_SCHEMES):
            raise ConfigError(f"{name} {url!r} must start with sqlite:/// or postgresql://")
    for region in settings.regions:
        region.blob.validate(region.name)
    for url in [settings.identity_public_url] + [r.public_url for r in settings.regions]:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(f"public URL {url!r} must start with http:// or https://")


def _set_task_setting(tasks: TaskSettings, key: str, value: Any, name: str) -> None:
    if key in ("poll_interval", "housekeeping_interval"):
        setattr(tasks, key, _seconds(value, name))
        return
    if key == "time_to_live":
        try:
            hours = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number of hours, got {value!r}") from None
        if not 0 < hours < float("inf"):
            raise ConfigError(f"{name} must be a positive number of hours, got {value!r}")
        tasks.time_to_live = hours
        return
    number = _positive_int(value, name)
    if key == "export_segment_size" and number > MAX_SEGMENT_SIZE:
        raise ConfigError(f"{name} must be at most {MAX_SEGMENT_SIZE} (5 GiB, the object size limit), got {number}")
    setattr(tasks, key, number)


def _set_auth_limit(limits: AuthLimits, key: str, value: Any, name: str) -> None:
    if key.startswith("rate_"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number of attempts per second, got {value!r}") from None
        if not 0 <= number <= 1e6:
            raise ConfigError(f"{name} must be between 0 (no limit) and 1000000, got {number}")
        setattr(limits, key, number)
        return
    setattr(limits, key, _positive_int(value, name))


def _set_blob_setting(blob: BlobSettings, key: str, value: Any, name: str) -> None:
    if key == "blob_store":
        blob.kind = _str(value, name).lower()
    elif key == "blob_delete_grace":
        try:
            blob.delete_grace = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
        if blob.delete_grace < 0:
            raise ConfigError(f"{name} must not be negative")
    elif key in ("s3_part_size", "swift_segment_size"):
        setattr(blob, key, _positive_int(value, name))
    else:
        setattr(blob, key, _str(str(value), name))


def _quota(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number (0: no limit), got {value!r}") from None
    if number < 0:
        raise ConfigError(f"{name} must be 0 (no limit) or more, got {number}")
    return number


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _reject_unknown(data: Any, known: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string")
    return value


def _secret(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) < 32:
        raise ConfigError(f"{name} must be a string of at least 32 characters (e.g. from `openssl rand -base64 32`)")
    return value


def _port(value: Any, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a port number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {port}")
    return port


def _seconds(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if not 0 < number <= 3600:
        raise ConfigError(f"{name} must be between 0 and 3600 seconds, got {number}")
    return number


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {number}")
    return number


def _relative_to(config_path: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else config_path.parent / path
