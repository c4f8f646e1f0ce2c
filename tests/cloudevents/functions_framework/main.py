"""A CloudEvents function for Google's Functions Framework (--signature-type cloudevent).

Appends each event it gets to $KESM_CE_OUT as one JSON line: {"attributes": {...}, "data":
...} (data as the framework decoded it; bytes as {"base64": "..."}). Ids listed in
$KESM_CE_FAIL_ONCE (comma-separated) raise the first time they arrive, which the framework
answers with 500.
"""

import base64
import json
import os
import threading

import functions_framework

_lock = threading.Lock()
_fail_once = {i for i in os.environ.get("KESM_CE_FAIL_ONCE", "").split(",") if i}
_failed = set()


def _data(data):
    if isinstance(data, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(data)).decode()}
    return data


@functions_framework.cloud_event
def receive(event):
    attributes = dict(event.get_attributes())
    with _lock:
        if attributes["id"] in _fail_once and attributes["id"] not in _failed:
            _failed.add(attributes["id"])
            raise RuntimeError("failing %s once" % attributes["id"])
        with open(os.environ["KESM_CE_OUT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"attributes": attributes, "data": _data(event.data)}) + "\n")
