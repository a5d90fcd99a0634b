"""``GET /v1/models`` and Azure's deployments listing, answered from the models the cassettes' requests use.

Gateways list models at start-up (to check their configuration or fill a
model catalogue); no cassette records that call, so the fake server builds the
answer from the cassettes: every ``model`` their requests name (JSON body or
multipart form field), and every Azure deployment their paths name. Fields the
cassettes cannot know (``created``, ``owned_by``) are fixed values, so the
answer is the same on every run.
"""

from __future__ import annotations

import dataclasses
import json
import re

from testopeninference.recorder.cassette import CassetteLibrary, RecordedRequest
from testopeninference.recorder.matchers import AZURE_PREFIX
from testopeninference.errors import CassetteError

CREATED = 1700000000  # a fixed time (2023-11-14) rather than "now": answers stay the same between runs
OWNED_BY = "openai"

_MODEL_PATH = re.compile(r"^/v1/models(?:/(?P<id>[^/]+))?/?$")
_DEPLOYMENTS_PATH = re.compile(r"^/openai/deployments/?$")


@dataclasses.dataclass(frozen=True)
class ListingReply:
    status: int
    body: bytes


def listing_reply(library: CassetteLibrary, method: str, path: str) -> ListingReply | None:
    """The answer to a model or deployment listing request, or None when the request is not one."""
    if method != "GET":
        return None
    if _DEPLOYMENTS_PATH.match(path):
        return ListingReply(200, _json({"object": "list", "data": [_deployment(*item) for item in deployments(library)]}))
    found = _MODEL_PATH.match(path)
    if found is None:
        return None
    models = models_used(library)
    wanted = found.group("id")
    if wanted is None:
        return ListingReply(200, _json({"object": "list", "data": [_model(name) for name in models]}))
    if wanted in models:
        return ListingReply(200, _json(_model(wanted)))
    message = f"The model '{wanted}' does not exist: no cassette's request uses it (known: {', '.join(models) or 'none'})."
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": "model_not_found"}
    return ListingReply(404, _json({"error": error}))


def models_used(library: CassetteLibrary) -> list[str]:
    """Each model named by a cassette's request, sorted; cassettes that cannot be read are left out."""
    return sorted({model for request in _requests(library) if (model := _model_of(request))})


def deployments(library: CassetteLibrary) -> list[tuple[str, str]]:
    """(deployment, model) for each Azure deployment a cassette's path names, sorted."""
    found: dict[str, str] = {}
    for request in _requests(library):
        if request.path.startswith(AZURE_PREFIX):
            deployment = request.path[len(AZURE_PREFIX) :].split("/", 1)[0]
            found.setdefault(deployment, _model_of(request) or deployment)
    return sorted(found.items())


def _requests(library: CassetteLibrary) -> list[RecordedRequest]:
    requests = []
    for name in library.names():
        try:
            requests.append(library.load(name).request)
        except (CassetteError, OSError, ValueError):  # a broken cassette spoils only requests for itself
            continue
    return requests


def _model_of(request: RecordedRequest) -> str:
    if request.is_multipart:
        return next(iter(request.form.get("model", [])), "")
    try:
        body = request.json()
    except ValueError:
        return ""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else ""


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": OWNED_BY}


def _deployment(deployment: str, model: str) -> dict[str, object]:
    """The shape of Azure OpenAI's data-plane ``Deployments_List`` entries (api-version 2022-12-01)."""
    return {
        "object": "deployment",
        "id": deployment,
        "model": model,
        "owner": "organization-owner",
        "status": "succeeded",
        "scale_settings": {"scale_type": "standard"},
        "created_at": CREATED,
        "updated_at": CREATED,
    }


def _json(value: object) -> bytes:
    return json.dumps(value).encode()
