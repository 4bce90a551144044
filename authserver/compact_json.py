"""The compact JSON the server writes on every request (log lines, response bodies).

``json.dumps`` with any non-default argument builds a new encoder per call; one shared encoder
does the same work without that (a few microseconds per line, several lines per token request).
The output is exactly ``json.dumps(value, separators=(",", ":"))``: ASCII, escaped.
"""

from __future__ import annotations

import json

compact_json = json.JSONEncoder(separators=(",", ":")).encode
