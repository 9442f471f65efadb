-- wrk script for bench/api_throughput.py: every request is a POST with a JSON body carrying a fresh
-- nonce and hash = hex(sha1(nonce .. password)), as the Acrobits app's salted-hash template sends.
-- SHA-1 comes from libcrypto through LuaJIT's FFI (wrk already links it), so the generator spends
-- about a microsecond per body. Settings come from the environment:
--   WCB_PATH (default /webcallback), WCB_USER, WCB_PASSWORD, WCB_CALLBACK, WCB_TARGET_PREFIX (the
--   destination is this prefix + WCB_TARGET_DIGITS digits that change with every request, so no
--   cache of parsed numbers flatters the result: 4 (default) or 7, where the first three are an
--   exchange 200-999 so that every number is a valid one; WCB_TARGET_OFFSET shifts the sequence,
--   so that runs do not repeat each other's numbers), WCB_RUN (a prefix unique to this run:
--   nonces never repeat), WCB_USERS (default 1: WCB_USER; N > 1: WCB_USER_PREFIX .. (request % N),
--   accounts that all have the password WCB_PASSWORD).
local ffi = require("ffi")
ffi.cdef [[
unsigned char *SHA1(const unsigned char *d, size_t n, unsigned char *md);
]]
local crypto = ffi.load("libcrypto.so.3")
local digest = ffi.new("unsigned char[20]")
local hexchars = {}
for i = 0, 255 do hexchars[i] = string.format("%02x", i) end

local path = os.getenv("WCB_PATH") or "/webcallback"
local user = os.getenv("WCB_USER") or "alice"
local password = os.getenv("WCB_PASSWORD") or "secret"
local target_prefix = os.getenv("WCB_TARGET_PREFIX") or "+1650253"
local callback = os.getenv("WCB_CALLBACK") or "+12025550143"
local run = os.getenv("WCB_RUN") or tostring(os.time())
local target_digits = tonumber(os.getenv("WCB_TARGET_DIGITS") or "4")
local target_offset = tonumber(os.getenv("WCB_TARGET_OFFSET") or "0")
local users = tonumber(os.getenv("WCB_USERS") or "1")
local user_prefix = os.getenv("WCB_USER_PREFIX") or "benchuser"
local headers = { ["Content-Type"] = "application/json" }
local counter = 0
local prefix

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = run .. "t" .. tostring(tid or 0) .. "n"
end

local function sha1hex(s)
  crypto.SHA1(s, #s, digest)
  local out = {}
  for i = 0, 19 do out[i + 1] = hexchars[digest[i]] end
  return table.concat(out)
end

local function target()
  if target_digits == 7 then
    local n = counter + target_offset
    return string.format("%s%03d%04d", target_prefix, 200 + math.floor(n / 10000) % 800, n % 10000)
  end
  return string.format("%s%04d", target_prefix, counter % 10000)
end

function request()
  counter = counter + 1
  local nonce = prefix .. counter
  local who = user
  if users > 1 then who = user_prefix .. (counter % users) end
  local body = '{"username":"' .. who .. '","nonce":"' .. nonce .. '","hash":"' .. sha1hex(nonce .. password)
    .. '","targetNumber":"' .. target() .. '","callbackNumber":"' .. callback .. '"}'
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  -- wrk prints its own figures; this adds what the harness parses.
  io.write(string.format("WCB_LAT_P50_US %d\n", latency:percentile(50)))
  io.write(string.format("WCB_LAT_P99_US %d\n", latency:percentile(99)))
  io.write(string.format("WCB_REQUESTS %d\n", summary.requests))
  io.write(string.format("WCB_NON2XX %d\n", (summary.errors.status or 0)))
end
