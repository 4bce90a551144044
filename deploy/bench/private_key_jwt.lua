-- wrk script: RFC 6749 client_credentials token requests authenticated with private_key_jwt
-- (RFC 7523 §2.2), the same body as common/token.lua otherwise. The server accepts each
-- assertion's jti once, so every request carries its own, pre-signed by deploy/bench.
-- env ASSERTIONS: a file of compact JWTs, one a line, each sent at most once.
-- env TALLY: done() writes "<taken> <missing>" there: the assertions taken from the file (one
-- of them by wrk's check of the script at start, never sent) and the requests that found none
-- left. Those carry no valid assertion and get 401, counted as non-2xx: the file was too short.
-- Run with -t1 (as the bench does): each thread reads the whole file, so a second would replay it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local body = "grant_type=client_credentials&scope=api"
    .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    .. "&client_assertion="

-- In the main state: the threads whose counts done() reports.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    if #threads > 1 then
        error("private_key_jwt.lua needs wrk -t1: a second thread would resend the assertions")
    end
end

-- In the thread's state; globals, so that done() can read them with thread:get().
assertions, taken, missing = {}, 0, 0

function init(args)
    local path = os.getenv("ASSERTIONS") or ""
    local file = io.open(path, "r")
    if not file then
        error("private_key_jwt.lua: cannot read ASSERTIONS file '" .. path .. "'")
    end
    for line in file:lines() do
        if line ~= "" then
            assertions[#assertions + 1] = line
        end
    end
    file:close()
end

function request()
    if taken == #assertions then
        missing = missing + 1
        return wrk.format(nil, nil, nil, body .. "none-left")
    end
    taken = taken + 1
    local assertion = assertions[taken]
    assertions[taken] = false -- taken once: nothing can hand it out again
    return wrk.format(nil, nil, nil, body .. assertion)
end

function done(summary, latency, requests)
    local file = io.open(os.getenv("TALLY") or "", "w")
    if not file then
        error("private_key_jwt.lua: cannot write TALLY file")
    end
    for _, thread in ipairs(threads) do
        file:write(string.format("%d %d\n", thread:get("taken"), thread:get("missing")))
    end
    file:close()
end
