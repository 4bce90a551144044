"""Headers that make every response inert in a browser: this API serves no pages."""

from __future__ import annotations

from authserver.config import Settings

COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-site"),
)
#: Only meaningful when clients reach us over TLS, i.e. when the issuer is https.
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def security_headers(settings: Settings) -> tuple[tuple[str, str], ...]:
    if settings.issuer.startswith("https://"):
        return (*COMMON_HEADERS, HSTS)
    return COMMON_HEADERS
