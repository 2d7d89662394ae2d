"""`tenantauth resource-server …` (embedded mode: SQLite): secrets shown once, audited."""

from __future__ import annotations

import json

import pytest

from tenantauth.cli.common import services
from tenantauth.domain.oauth.introspection import authenticate_resource_server
from tenantauth.domain.oauth.oauth import ClientCredentials
from tenantauth.errors import InvalidClientError
from tests.integration.test_cli import (  # noqa: F401 - embedded is a fixture
    assert_clean_error,
    embedded,
    ok,
    ok_json,
    run,
)


def authenticates(server_id: str, secret: str) -> bool:
    """Whether the credentials authenticate a resource server, against the CLI's own stores."""
    with services() as svc:
        try:
            authenticate_resource_server(
                svc, ClientCredentials(server_id, secret, "client_secret_basic"), None, "acme"
            )
        except InvalidClientError:
            return False
    return True


@pytest.mark.usefixtures("embedded")
def test_lifecycle_prints_secrets_once_and_is_audited() -> None:
    """add prints the id and secret once; list and show never the secret; rotate replaces
    it; delete removes the server; each change is an audit entry of the CLI actor."""
    ok("tenant", "create", "acme", "--name", "Acme")
    ok("tenant", "create", "globex", "--name", "Globex")
    made = ok_json(
        "resource-server", "add", "--name", "Orders", "--tenant", "globex", "--tenant", "acme"
    )
    assert made["id"].startswith("tar_") and made["secret"].startswith("tars_")
    assert (made["tenants"], made["audience"]) == (["acme", "globex"], None)
    assert authenticates(made["id"], made["secret"])
    table = ok("resource-server", "list")
    assert made["id"] in table.stdout and "acme globex" in table.stdout
    assert made["secret"] not in table.output
    listed = ok_json("resource-server", "list")
    shown = ok_json("resource-server", "show", made["id"])
    assert listed["items"] == [shown] and "secret" not in shown
    rotated = run("resource-server", "rotate", made["id"], "--json")
    assert "store the secret now" in rotated.stderr
    new_secret = json.loads(rotated.stdout)["secret"]
    assert not authenticates(made["id"], made["secret"])
    assert authenticates(made["id"], new_secret)
    ok("resource-server", "delete", made["id"], "--yes")
    assert not authenticates(made["id"], new_secret)
    entries = [
        (e["action"], e["target"], e["outcome"], e["actor"].startswith("cli"))
        for e in reversed(ok_json("audit", "list")["items"])
        if e["action"].startswith("resource_server.")
    ]
    assert entries == [
        ("resource_server.create", made["id"], "success", True),
        ("resource_server.rotate_secret", made["id"], "success", True),
        ("resource_server.delete", made["id"], "success", True),
    ]


@pytest.mark.usefixtures("embedded")
def test_errors_are_clean_and_audited() -> None:
    """An unknown tenant or server id is a one-line error, exit 1, and refusals of changes
    are audited with the status the API would answer."""
    assert_clean_error(run("resource-server", "add", "--name", "x", "--tenant", "ghost"), "ghost")
    assert_clean_error(run("resource-server", "show", "tar_" + "A" * 22), "does not exist")
    assert_clean_error(run("resource-server", "rotate", "nope"), "no resource server")
    outcomes = [
        (e["action"], e["outcome"])
        for e in reversed(ok_json("audit", "list")["items"])
        if e["action"].startswith("resource_server.")
    ]
    assert outcomes == [("resource_server.create", "404"), ("resource_server.rotate_secret", "404")]
