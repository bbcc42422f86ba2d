"""What each side of a copy offers, found before any slow step, and the way chosen from it.

A side is one region of one cloud. We ask its image service (the versions document,
``/v2/info/import``, ``/v2/info/stores``, the image schema's ``disk_format`` list, whether the
Tasks API answers) and its catalog (object-store in that region, which identity service issued the
token). The ways, best first, and what each needs:

1. ``glance-download``: both regions in one cloud's catalog (one Keystone), the target advertising
   the method, the image visible to the target's project. No byte passes through this client.
2. ``web-download``: the source can export the image into object storage and sign a TempURL (a
   Rackspace-style export task and a Swift with TempURL), the target advertises the method, and the
   target keeps what it is given as the source had it: it measures the content (imagehop) or the
   image is a VHD already (or ``--convert vhd`` asked for one).
3. ``stream``: any Glance v2 on both sides: ``GET /v2/images/{id}/file`` into the target by ``PUT
   /v2/images/{id}/file``: resumable where the target keeps a broken upload (imagehop's extension,
   ``imagehop.upload_kept`` in its image schema), Glance's plain PUT elsewhere (``stage`` +
   ``glance-direct`` where PUT is refused); into an older imagehop, by segments into its object
   storage and an import task.
4. ``tasks``: Rackspace's walkthrough: export task, move the VHD between object stores, import task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imagehop.transfer.glance import GlanceClient, GlanceError

WAYS = ("glance-download", "web-download", "stream", "tasks")
IMPORT_FORMATS = ("raw", "qcow2", "vhd")  # what a Rackspace-style import task reads


@dataclass
class Capabilities:
    """What one side offers; ``None`` where the cloud did not say."""

    label: str
    region: str
    image_url: str
    identity: str
    project_id: str
    versions: list[str] = field(default_factory=list)
    import_methods: list[str] | None = None
    stores: list[str] | None = None
    disk_formats: list[str] | None = None
    tasks_api: bool = False
    object_store: bool = False
    tempurl: bool = False
    content_digest: bool = False  # imagehop: measures every image's content (imagehop.content_digest)
    resumable_upload: bool = False  # imagehop: keeps a broken PUT /file to append to (imagehop.upload_kept)
    catalog_image_urls: dict[str, str] = field(default_factory=dict)  # region -> image endpoint

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def offers(self, method: str) -> bool:
        return method in (self.import_methods or [])


def discover(side: Any) -> Capabilities:
    """Ask one side (an ``Endpoint`` of copy.py) what it offers. Only reads; a few small requests."""
    glance: GlanceClient = side.glance
    cloud = side.cloud
    caps = Capabilities(
        label=side.label,
        region=side.region,
        image_url=glance.base,
        identity=cloud.auth_url,
        project_id=cloud.project_id,
    )
    caps.versions = glance.versions()
    try:
        caps.import_methods = glance.import_methods_or_none()
    except GlanceError:
        caps.import_methods = None
    try:
        caps.stores = glance.stores()
    except GlanceError:
        caps.stores = None
    try:
        schema = glance.image_schema()
        props = schema.get("properties", {})
        formats = props.get("disk_format", {}).get("enum")
        caps.disk_formats = [f for f in formats if f] if isinstance(formats, list) else None
        caps.content_digest = "imagehop.content_digest" in props
        caps.resumable_upload = "imagehop.upload_kept" in props
    except (GlanceError, ValueError, AttributeError):
        pass
    try:
        caps.tasks_api = glance.tasks_api()
    except GlanceError:
        caps.tasks_api = False
    caps.object_store = cloud.has("object-store", side.region)
    if caps.object_store and side.swift is not None:
        info = side.swift.info()
        caps.tempurl = "tempurl" in info or not info  # a cloud that publishes no /info may still have it
    for entry in cloud.catalog():
        if entry.get("type") != "image":
            continue
        for endpoint in entry.get("endpoints", []):
            region = endpoint.get("region_id") or endpoint.get("region")
            url = endpoint.get("url") or endpoint.get(f"{cloud.interface}URL")
            if region and url and endpoint.get("interface", cloud.interface) == cloud.interface:
                caps.catalog_image_urls[region] = _image_v2(url)
    return caps


def _image_v2(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v2") else url + "/v2"


@dataclass
class Choice:
    """The way chosen, why, and why the better ones could not be used."""

    method: str
    reason: str
    passed_over: list[tuple[str, str]] = field(default_factory=list)
    upload: str = ""  # for stream: "segments", "put" (or "glance-direct" when PUT is refused)

    def explain(self) -> str:
        lines = [f"{self.method}: {self.reason}"]
        lines += [f"not {m}: {why}" for m, why in self.passed_over]
        return "\n".join(lines)


def shared_identity(source: Capabilities, target: Capabilities) -> bool:
    """One Keystone: the target's catalog names the source's image endpoint in the source's region."""
    return target.catalog_image_urls.get(source.region) == source.image_url.rstrip("/")


def why_not(method: str, source: Capabilities, target: Capabilities, image: dict[str, Any], convert: str | None) -> str:
    """Why ``method`` cannot copy ``image`` from source to target; ``""`` when it can."""
    fmt = convert or image.get("disk_format")
    if method == "glance-download":
        if convert:
            return "--convert needs the bytes to pass through this client"
        if not shared_identity(source, target):
            return f"{target.label} does not share a Keystone catalog with {source.label}"
        if source.region == target.region:
            return "source and target are the same region"
        if not target.offers("glance-download"):
            return f"{target.label} does not offer the glance-download import method ({_offered(target)})"
        visible = image.get("owner") == target.project_id or image.get("visibility") in ("public", "community")
        if not visible:
            return f"the image belongs to project {image.get('owner')}, which the target's project cannot read"
        return ""
    if method == "web-download":
        if not target.offers("web-download"):
            return f"{target.label} does not offer the web-download import method ({_offered(target)})"
        if not (source.tasks_api and source.object_store):
            return f"{source.label} has no export task into object storage to give a URL without credentials"
        if not source.tempurl:
            return f"{source.label}'s object storage has no TempURL"
        if not target.content_digest and fmt != "vhd":
            return (
                f"the URL serves a VHD and {target.label} would keep it as a VHD, not {image.get('disk_format')} "
                "(--convert vhd accepts that)"
            )
        return ""
    if method == "stream":
        for side in (source, target):
            if side.versions and not any(v.startswith("v2") for v in side.versions):
                return f"{side.label} offers no Glance v2 API (its versions: {', '.join(side.versions)})"
        return ""
    if method == "tasks":
        for side, kind in ((source, "export"), (target, "import")):
            if not side.tasks_api:
                return f"{side.label} has no Tasks API for this project (Rackspace-style {kind} tasks)"
            if not side.object_store:
                return f"{side.label} has no object storage in its catalog"
        if convert and convert != "raw" and target.content_digest:
            return f"{target.label} stores imported images as raw"
        return ""
    return f"unknown method {method}"


def _offered(caps: Capabilities) -> str:
    if caps.import_methods is None:
        return "it has no interoperable image import"
    return "it offers: " + (", ".join(caps.import_methods) or "none")


def stream_upload(target: Capabilities, disk_format: str | None) -> str:
    """How the direct stream writes into the target: a resumable PUT where the target keeps a broken
    upload (imagehop), else verified segments and an import task where it has both (an imagehop
    from before resumable uploads), else Glance's PUT (a crash sends the image again)."""
    if target.resumable_upload:
        return "resumable"
    if target.tasks_api and target.object_store and disk_format in IMPORT_FORMATS and target.content_digest:
        return "segments"
    return "put"


def choose(
    source: Capabilities, target: Capabilities, image: dict[str, Any], wanted: str, convert: str | None = None
) -> Choice:
    """The first way both sides support (``auto``), or the one asked for; raises ``ValueError`` with
    the reason when the asked one is impossible."""
    fmt = convert or image.get("disk_format")
    if wanted == "pull":  # the older name: whichever pull the pair supports
        wanted = "glance-download" if shared_identity(source, target) else "web-download"
    passed: list[tuple[str, str]] = []
    for method in WAYS if wanted == "auto" else (wanted,):
        reason = why_not(method, source, target, image, convert)
        if reason:
            if wanted != "auto":
                raise ValueError(f"--method {wanted} cannot copy this image: {reason}")
            passed.append((method, reason))
            continue
        why = {
            "glance-download": f"{target.label} pulls the image from {source.label} itself (one Keystone); "
            "no bytes pass through this client",
            "web-download": f"{source.label} exports a VHD and {target.label} downloads it from a TempURL",
            "stream": f"the bytes flow from {source.label}'s image data API into {target.label}'s through this "
            "client, verified on the way",
            "tasks": "Rackspace's export and import tasks, the VHD moved between the object stores",
        }[method]
        choice = Choice(method, why if wanted == "auto" else f"asked for ({why})", passed)
        if method == "stream":
            choice.upload = stream_upload(target, fmt)
            choice.reason += {
                "resumable": "; PUT /v2/images/{id}/file, resumable (the target keeps a broken upload)",
                "segments": "; segments into its object storage, then an import task (resumable)",
            }.get(choice.upload, "; PUT /v2/images/{id}/file")
        return choice
    raise ValueError("no way to copy this image: " + "; ".join(f"{m}: {r}" for m, r in passed))
