# ruff: noqa: E501  (schema descriptions are Glance's own long strings)
"""The JSON schemas Glance v2 publishes under ``/v2/schemas``, and the limits they imply.

glanceclient builds its models from ``/v2/schemas/image``: extra properties must be allowed as
strings (``additionalProperties``) and operator-defined properties marked ``is_base: false`` so its
patch generator sends ``add`` (not ``replace``) for them.
"""

from __future__ import annotations

import copy
from typing import Any

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

STATUSES = [
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
]
VISIBILITIES = ["community", "public", "private", "shared"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
MEMBER_STATUSES = ["pending", "accepted", "rejected"]

# Attributes a client may never set, and names it may never use (Glance's exact lists).
READ_ONLY = frozenset(
    ["created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self", "file",
     "schema", "id", "os_hash_algo", "os_hash_value", "stores", "locations"]
)  # fmt: skip
RESERVED = frozenset(["location", "deleted", "deleted_at"])
RESERVED_PREFIX = "os_glance"

# Writable base attributes and what they accept.
BASE_WRITABLE = ("name", "visibility", "protected", "os_hidden", "owner", "container_format", "disk_format",
                 "min_ram", "min_disk", "tags")  # fmt: skip
BASE_KEYS = frozenset(BASE_WRITABLE) | READ_ONLY


def _nullable_enum(values: list[str]) -> dict[str, Any]:
    return {"type": ["null", "string"], "enum": [None, *values]}


IMAGE_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
    "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
    "status": {"type": "string", "readOnly": True, "description": "Status of the image", "enum": STATUSES},
    "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": VISIBILITIES},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
    "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32,
                 "description": "md5 hash of image contents."},
    "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64,
                     "description": "Algorithm to calculate the os_hash_value"},
    "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128,
                      "description": "Hexdigest of the image contents using the algorithm specified by os_hash_algo"},
    "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
    "size": {"type": ["null", "integer"], "readOnly": True, "description": "Size of image file in bytes"},
    "virtual_size": {"type": ["null", "integer"], "readOnly": True, "description": "Virtual size of image in bytes"},
    "container_format": {**_nullable_enum(CONTAINER_FORMATS), "description": "Format of the container"},
    "disk_format": {**_nullable_enum(DISK_FORMATS), "description": "Format of the disk"},
    "created_at": {"type": "string", "readOnly": True, "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "readOnly": True, "description": "Date and time of the last image modification"},
    "tags": {"type": "array", "description": "List of strings related to the image",
             "items": {"type": "string", "maxLength": 255}},
    "direct_url": {"type": "string", "readOnly": True, "description": "URL to access the image file kept in external store"},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
    "self": {"type": "string", "readOnly": True, "description": "An image self url"},
    "file": {"type": "string", "readOnly": True, "description": "An image file url"},
    "stores": {"type": "string", "readOnly": True, "description": "Store in which image data resides."},
    "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
    "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store",
                  "items": {"type": "object", "required": ["url", "metadata"],
                            "properties": {"url": {"type": "string", "maxLength": 255},
                                           "metadata": {"type": "object"},
                                           "validation_data": {"type": "object"}}}},
    # imagehop's own measure of the virtual disk (DESIGN.md, "The content digest"); listed so that a
    # client can tell from the schema that this image service computes it.
    "imagehop.content_digest": {"type": ["null", "string"], "readOnly": True, "is_base": False,
                                "description": "sha256 content digest of the virtual disk (imagehop), the same for raw, VHD and qcow2"},
    # imagehop's resumable upload: bytes kept from an interrupted PUT sent with X-Imagehop-Resumable;
    # a PUT with the same header and ``Content-Range: bytes N-*/*`` (N at most this) appends to them.
    "imagehop.upload_kept": {"type": ["null", "string"], "readOnly": True, "is_base": False,
                             "description": "bytes kept from an interrupted resumable upload (imagehop)"},
    # Operator-defined ("custom") properties, as Glance's default schema-image.json has them.
    "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                  "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."},
    "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                   "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."},
    "instance_uuid": {"type": "string", "is_base": False,
                      "description": "Metadata which can be used to record which instance this image is associated with."},
    "architecture": {"type": "string", "is_base": False,
                     "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
    "os_distro": {"type": "string", "is_base": False, "description": "Common name of operating system distribution"},
    "os_version": {"type": "string", "is_base": False, "description": "Operating system version as specified by the distributor"},
    "description": {"type": "string", "is_base": False, "description": "A human-readable string describing this image."},
    "cinder_encryption_key_id": {"type": "string", "is_base": False,
                                 "description": "Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image"},
    "cinder_encryption_key_deletion_policy": {"type": "string", "enum": ["on_image_deletion", "do_not_delete"],
                                              "is_base": False,
                                              "description": "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property."},
}  # fmt: skip

IMAGE_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": copy.deepcopy(IMAGE_PROPERTIES),
        "additionalProperties": {"type": "string"},
        "links": copy.deepcopy(IMAGE_LINKS),
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": True},
            "status": {"type": "string", "description": "The status of this image member", "enum": MEMBER_STATUSES},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()}, "schema": {"type": "string"}},
        "links": [{"rel": "schema", "href": "{schema}"}],
    }


def task_schema() -> dict[str, Any]:
    return {
        "name": "task",
        "properties": {
            "id": {"type": "string", "description": "An identifier for the task", "pattern": UUID_PATTERN},
            "type": {"type": "string", "description": "The type of task represented by this content",
                     "enum": ["import", "export", "api_image_import"]},
            "status": {"type": "string", "description": "The current status of this task",
                       "enum": ["pending", "processing", "success", "failure"]},
            "input": {"type": ["null", "object"], "description": "The parameters required by task, JSON blob"},
            "result": {"type": ["null", "object"], "description": "The result of current task, JSON blob"},
            "owner": {"type": "string", "description": "An identifier for the owner of this task"},
            "message": {"type": "string", "description": "Human-readable informative message only included when appropriate (usually on failure)"},
            "image_id": {"type": "string", "readOnly": True, "description": "Image associated with the task"},
            "request_id": {"type": "string", "readOnly": True, "description": "Human-readable informative request-id"},
            "user_id": {"type": "string", "readOnly": True, "description": "User associated with the task"},
            "expires_at": {"type": ["null", "string"], "description": "Datetime when this resource would be subject to removal"},
            "created_at": {"type": "string", "description": "Datetime when this resource was created"},
            "updated_at": {"type": "string", "description": "Datetime when this resource was updated"},
            "self": {"type": "string", "readOnly": True},
            "schema": {"type": "string", "readOnly": True},
        },
    }  # fmt: skip


def tasks_schema() -> dict[str, Any]:
    task = task_schema()
    item = {
        "name": "task",
        "properties": {k: v for k, v in task["properties"].items() if k not in ("input", "result", "message")},
    }
    # As Glance 33 publishes it: the list's own "first" and "next" are not in the schema.
    return {
        "name": "tasks",
        "properties": {"tasks": {"type": "array", "items": item}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


SCHEMAS = {
    "image": image_schema,
    "images": images_schema,
    "member": member_schema,
    "members": members_schema,
    "task": task_schema,
    "tasks": tasks_schema,
}

# glanceclient's CLI fetches these on start (and falls back to v1 if all three fail).
METADEF_SCHEMAS = ("namespace", "namespaces", "resource_type", "resource_types", "property", "properties",
                   "object", "objects", "tag", "tags")  # fmt: skip


def metadef_schema(name: str) -> dict[str, Any]:
    """A minimal but valid schema: we serve no metadefs, but clients fetch these schemas."""
    return {"name": name, "properties": {}, "additionalProperties": False}
