"""authserver: an OAuth 2.0 authorization server for service-to-service auth.

Importing the package loads nothing else, so the client-side helpers
(``authserver.client``, ``authserver.resource``) stay free of Flask and SQLAlchemy; the
server is built by :func:`authserver.app.create_app`.
"""
