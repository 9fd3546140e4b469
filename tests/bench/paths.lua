-- paths.lua - wrk script of `make bench`: GET requests cycling through the paths of a file, with every
-- response checked, so a benchmark never silently measures errors.
--
--   wrk -t2 -c64 -d15s --latency -s tests/bench/paths.lua http://127.0.0.1:PORT -- PATHS_FILE [one]
--
-- PATHS_FILE: one request path per line (e.g. /api/v1/individuals/123456789). Each wrk thread starts at a
-- different place in the list. Every response that is not 200 is counted; with "one", a 200 must also
-- hold exactly one record (one "ben_no" key: a search that found exactly one person).
-- At the end it prints machine-readable lines for tests/bench/run.sh:
--   BENCH responses=N non200=N wrong_body=N first_bad_status=S
--   BENCH rps=R p50_us=N p90_us=N p99_us=N max_us=N socket_errors=N
-- (latencies in microseconds, as wrk measures them: from sending a request to its whole response.)

local threads = {}

function setup(thread)
	table.insert(threads, thread)
	thread:set("tid", #threads)
end

function init(args)
	local file = args[1]
	if not file then
		error("paths.lua: give the paths file after --")
	end
	one = args[2] == "one"
	reqs = {}
	for line in io.lines(file) do
		if line ~= "" then
			reqs[#reqs + 1] = wrk.format("GET", line)
		end
	end
	if #reqs == 0 then
		error("paths.lua: no paths in " .. file)
	end
	-- threads start spread over the list, so they do not ask for the same records at the same moment
	idx = math.floor((tid - 1) * #reqs / 7) % #reqs
	responses, non200, wrong_body, first_bad = 0, 0, 0, 0
end

function request()
	idx = idx + 1
	if idx > #reqs then
		idx = 1
	end
	return reqs[idx]
end

function response(status, headers, body)
	responses = responses + 1
	if status ~= 200 then
		non200 = non200 + 1
		if first_bad == 0 then
			first_bad = status
		end
	elseif one then
		local a = string.find(body, '"ben_no":', 1, true)
		if not a or string.find(body, '"ben_no":', a + 9, true) then
			wrong_body = wrong_body + 1
		end
	end
end

function done(summary, latency, requests)
	local n, bad, wrong, first = 0, 0, 0, 0
	for _, t in ipairs(threads) do
		n = n + t:get("responses")
		bad = bad + t:get("non200")
		wrong = wrong + t:get("wrong_body")
		if first == 0 then
			first = t:get("first_bad")
		end
	end
	local e = summary.errors
	io.write(string.format("BENCH responses=%d non200=%d wrong_body=%d first_bad_status=%d\n", n, bad, wrong, first))
	io.write(string.format("BENCH rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d socket_errors=%d\n",
		summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout))
end
