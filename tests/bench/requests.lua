-- requests.lua - wrk script of `make bench` for requests that need headers or a body: it replays the
-- requests of a file, checks every status, and reports like paths.lua.
--
--   wrk -t2 -c64 -d15s --latency -s tests/bench/requests.lua http://127.0.0.1:PORT -- FILE EXPECT [once]
--
-- FILE: one request per line, fields separated by TAB: METHOD, PATH, HEADERS, BODY; HEADERS is a list of
-- "Name: value" joined by the byte 0x1F (unit separator), BODY may be empty. EXPECT: the statuses that count
-- as right, e.g. "200" or "201" or "401,429" (an attack that must be refused). With "once", each request is
-- sent at most once (signed kiosk requests: a second copy is a replay): each wrk thread takes its own share
-- of the lines, and a thread that runs out stops sending (the figures then cover what was sent).
-- Output for tests/bench/run.sh:
--   BENCH responses=N non200=N wrong_body=0 first_bad_status=S exhausted=N
--   BENCH rps=R p50_us=N p90_us=N p99_us=N max_us=N socket_errors=N

local threads = {}
local nthreads = 0

function setup(thread)
	table.insert(threads, thread)
	nthreads = nthreads + 1
	thread:set("tid", #threads)
	thread:set("nthreads_hint", 0)
end

local function split(s, sep)
	local out, from = {}, 1
	while true do
		local a, b = string.find(s, sep, from, true)
		if not a then
			out[#out + 1] = string.sub(s, from)
			return out
		end
		out[#out + 1] = string.sub(s, from, a - 1)
		from = b + 1
	end
end

function init(args)
	local file, expect = args[1], args[2]
	if not file or not expect then
		error("requests.lua: give FILE EXPECT [once] after --")
	end
	once = args[3] == "once"
	ok_status = {}
	for _, s in ipairs(split(expect, ",")) do
		ok_status[tonumber(s)] = true
	end
	-- wrk runs init in each thread with its own Lua state; the thread count is not passed, so "once"
	-- shares lines by tid modulo WRK_THREADS (set by run.sh, default 2).
	local n = tonumber(os.getenv("WRK_THREADS") or "2")
	reqs = {}
	local i = 0
	for line in io.lines(file) do
		if line ~= "" then
			i = i + 1
			if not once or (i % n) == (tid - 1) then
				local f = split(line, "\t")
				local headers = {}
				if f[3] and f[3] ~= "" then
					for _, h in ipairs(split(f[3], "\31")) do
						local c = string.find(h, ":", 1, true)
						headers[string.sub(h, 1, c - 1)] = string.gsub(string.sub(h, c + 1), "^ +", "")
					end
				end
				local body = f[4]
				if body == "" then
					body = nil
				end
				reqs[#reqs + 1] = wrk.format(f[1], f[2], headers, body)
			end
		end
	end
	if #reqs == 0 then
		error("requests.lua: no requests for this thread in " .. file)
	end
	idx = once and 0 or math.floor((tid - 1) * #reqs / 7) % #reqs
	responses, non200, first_bad, exhausted = 0, 0, 0, 0
end

function request()
	idx = idx + 1
	if idx > #reqs then
		if once then
			exhausted = exhausted + 1
			idx = #reqs
			-- nothing new to send: ask for something harmless that is not counted as the measured request
			return wrk.format("GET", "/healthz")
		end
		idx = 1
	end
	return reqs[idx]
end

function response(status, headers, body)
	if once and exhausted > 0 then
		return
	end
	responses = responses + 1
	if not ok_status[status] then
		non200 = non200 + 1
		if first_bad == 0 then
			first_bad = status
		end
	end
end

function done(summary, latency, requests)
	local n, bad, first, ex = 0, 0, 0, 0
	for _, t in ipairs(threads) do
		n = n + t:get("responses")
		bad = bad + t:get("non200")
		ex = ex + t:get("exhausted")
		if first == 0 then
			first = t:get("first_bad")
		end
	end
	local e = summary.errors
	io.write(string.format("BENCH responses=%d non200=%d wrong_body=0 first_bad_status=%d exhausted=%d\n", n, bad,
		first, ex))
	io.write(string.format("BENCH rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d socket_errors=%d\n",
		n / (summary.duration / 1e6), latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency.max, e.connect + e.read + e.write + e.timeout))
end
