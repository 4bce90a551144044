"""A tiny tasks API protected by authserver access tokens (FastAPI + authserver.resource).

Configuration (environment):
    AUTHSERVER_ISSUER  the authorization server's issuer URL, e.g. http://127.0.0.1:8080
    API_AUDIENCE       this API's identifier: the ``aud`` its tokens must carry, e.g.
                       https://tasks.example.com (register it with ``--audience`` on the client)

Run with ``uvicorn app:app`` from this folder.
"""

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from authserver.resource import JWTVerifier
from authserver.resource.fastapi import require_scope

# Nothing is fetched here: the verifier reads the issuer's metadata and keys on first use.
verifier = JWTVerifier(os.environ["AUTHSERVER_ISSUER"], os.environ["API_AUDIENCE"])

# The dependency returns the token's claims, or answers 401/403 (RFC 6750) or 503 itself.
ReadTasks = Annotated[dict[str, Any], Depends(require_scope(verifier, "tasks:read"))]
WriteTasks = Annotated[dict[str, Any], Depends(require_scope(verifier, "tasks:write"))]

app = FastAPI(title="Tasks API")
TASKS: list[dict[str, Any]] = [{"id": 1, "title": "Rotate the signing key", "done": False}]


@app.get("/tasks")
def list_tasks(claims: ReadTasks) -> dict[str, Any]:
    return {"client_id": claims["client_id"], "tasks": TASKS}


@app.post("/tasks", status_code=201)
def add_task(claims: WriteTasks, title: str) -> dict[str, Any]:
    task = {"id": len(TASKS) + 1, "title": title, "done": False, "by": claims["client_id"]}
    TASKS.append(task)
    return task


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
