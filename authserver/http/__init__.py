"""The HTTP layer. Importing the package loads nothing, so the plain-data route table
(:mod:`authserver.http.routes`) can be read without Flask; :func:`authserver.http.handlers.init_app`
builds the app's HTTP side."""
