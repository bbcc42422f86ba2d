"""The tasks API: Glance 33 keeps it for admins; imagehop offers it to every tenant (Rackspace's Cloud
Images tasks, the export and import of the article), so only its shapes and errors are compared."""

from __future__ import annotations

import uuid

from tests.images.differential.sides import Differs, Side, Sides

TASKS_WHY = (
    "imagehop offers the tasks API to every tenant, as Rackspace Cloud Images did (export/import); "
    "Glance 33's tasks_api_access policy keeps it for admins"
)


def test_tasks_api(sides: Sides) -> None:
    def case(s: Side) -> list:
        out = [s.obs(s.req("GET", "/v2/tasks"), body="status")]
        listing = s.req("GET", "/v2/tasks", who="admin", params={"limit": "1"})
        seen = s.obs(listing, "content-type", body=None)
        seen["keys"] = sorted(set(listing.json()) - {"next"})
        out.append(seen)
        out.append(s.obs(s.req("GET", f"/v2/tasks/{uuid.uuid4()}", who="admin")))
        out.append(s.obs(s.req("GET", "/v2/tasks", who="admin", params={"limit": "abc"})))
        out.append(s.obs(s.req("GET", "/v2/tasks", who="admin", params={"sort_dir": "sideways"})))
        out.append(s.obs(s.req("GET", "/v2/tasks", who="anon")))
        out.append(s.obs(s.req("POST", "/v2/tasks", who="admin", json_body={"type": "bogus", "input": {}})))
        out.append(
            s.obs(s.req("POST", "/v2/tasks", who="admin", body=b"{", headers={"Content-Type": "application/json"}))
        )
        return out

    sides.compare(case, Differs(0, "status", 200, 403, TASKS_WHY))
