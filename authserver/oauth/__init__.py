"""The only package that subclasses Authlib: grants, client authentication, token generation.

Framework-free: the HTTP layer hands in a parsed :class:`FormRequest` and gets back
``(status, body, headers)``.
"""
