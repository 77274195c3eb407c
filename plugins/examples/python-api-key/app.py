"""An API-key check in Python: requests must carry a listed key in a header (default
`x-api-key`); the key's owner goes upstream in `x-api-key-owner` and the key is removed.
Anything else is answered 401 by the gateway.

    pluginConfig: {header: x-api-key, keys: {s3cr3t: alice}}
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.filter import (
    Action,
    Action_Proceed,
    Action_Reject,
    Edits,
    Header,
    Rejection,
)
from wit_world.imports import request

settings: dict = {"header": "x-api-key", "keys": {}}


class Filter(exports.Filter):
    def configure(self, config: str) -> None:
        given = json.loads(config) or {}
        keys = given.get("keys")
        if not isinstance(keys, dict) or not keys:
            raise Err("pluginConfig.keys must map at least one key to its owner")
        settings["header"] = str(given.get("header", "x-api-key"))
        settings["keys"] = {str(key): str(owner) for key, owner in keys.items()}

    def on_request(self) -> Action:
        name = settings["header"]
        owner = settings["keys"].get(request.header(name) or "")
        if owner is None:
            return Action_Reject(
                Rejection(
                    401,
                    [Header("content-type", "text/plain")],
                    f"missing or unknown {name}\n",
                )
            )
        return Action_Proceed(
            Edits(
                set_request_headers=[Header("x-api-key-owner", owner)],
                add_request_headers=[],
                remove_request_headers=[name],
                set_response_headers=[],
                add_response_headers=[],
                remove_response_headers=[],
                destination=None,
            )
        )
