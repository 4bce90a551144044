"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from authserver.models.assertion import UsedAssertion
from authserver.models.base import Base, UTCDateTime, utcnow
from authserver.models.client import Client, ClientSecret
from authserver.models.revocation import RevokedToken
from authserver.models.signing_key import StoredSigningKey

__all__ = [
    "Base",
    "Client",
    "ClientSecret",
    "RevokedToken",
    "StoredSigningKey",
    "UsedAssertion",
    "UTCDateTime",
    "utcnow",
]
