"""Headers that make every response inert in a browser: this API serves no pages."""

from __future__ import annotations

from flask import Flask, Response

from authserver.config import Settings

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-site",
}
#: Only meaningful when clients reach us over TLS, i.e. when the issuer is https.
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def init_app(app: Flask, settings: Settings) -> None:
    headers = dict(COMMON_HEADERS)
    if settings.issuer.startswith("https://"):
        headers[HSTS[0]] = HSTS[1]

    def add_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    app.after_request(add_headers)
