"""The discovery paths under an issuer, shared by the server that serves them and the client
helpers that fetch them; imports nothing, so ``authserver.client`` stays light."""

#: RFC 8414 §3: authorization server metadata.
METADATA_PATH = "/.well-known/oauth-authorization-server"
#: The JWK Set (RFC 7517) that ``jwks_uri`` names.
JWKS_PATH = "/.well-known/jwks.json"
