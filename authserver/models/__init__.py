"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from authserver.models.base import Base, UTCDateTime, utcnow
from authserver.models.client import Client, ClientSecret

__all__ = ["Base", "Client", "ClientSecret", "UTCDateTime", "utcnow"]
