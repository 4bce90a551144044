-- wrk script: RFC 7662 introspection of one real access token with HTTP Basic client auth.
-- env BASIC: base64 of "client_id:client_secret"; env TOKEN: the access token to introspect.
wrk.method = "POST"
wrk.body   = "token=" .. (os.getenv("TOKEN") or "") .. "&token_type_hint=access_token"
wrk.headers["Content-Type"]  = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. (os.getenv("BASIC") or "")
