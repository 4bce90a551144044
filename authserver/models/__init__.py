"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from authserver.models.assertion import UsedAssertion
from authserver.models.base import Base, UTCDateTime, utcnow
from authserver.models.client import Client, ClientSecret
from authserver.models.revocation import RevokedToken
from authserver.models.signing_key import StoredSigningKey
from authserver.models.trust import Trust

__all__ = [
    "Base",
    "Client",
    "ClientSecret",
    "RevokedToken",
    "StoredSigningKey",
    "Trust",
    "UsedAssertion",
    "UTCDateTime",
    "utcnow",
]
