/* ussd_load.c - load generator of `make bench` M (USSD sessions through hifadhi-gateway) and N (the plain
 * sendsms loop that is N's baseline).
 *
 *   ussd_load ussd HOST PORT PHONES [options]   "next payment" sessions by the aggregator convention
 *   ussd_load bare HOST PORT PHONES [options]   the same requests as single GETs (the bare_mhd baseline)
 *   ussd_load sendsms URL USER PASSWORD_FILE N DLR_BASE   N sendsms requests, one after the other
 *
 * ussd: C keep-alive connections, each carrying one session at a time (so C sessions are in flight at
 * once); a session is 4 hops, each a POST /ussd (sessionId, serviceCode, phoneNumber, networkCode, text),
 * sent once the previous one is answered, with a sessionId used by no other session:
 *   hop 1  text=""          the home menu          CON, holds "\n9. " (home has 9 options; guest has 4)
 *   hop 2  text="2"         "Next payment": the PIN screen          CON, holds "PIN"
 *   hop 3  text="2*PIN"     the PIN checked, then the next payment  CON, holds "KES" (and every -x 3:...)
 *   hop 4  text="2*PIN*0"   back from the result to the home menu   CON, holds "\n9. "
 * A session that finished starts the next one on the same connection. Phones and their PINs are taken
 * in turn from PHONES (lines "+254712345678 4821"). Every answer is checked: HTTP 200, "CON " and the texts
 * above; anything else (another status, a text missing, a closed connection, no answer within -T ms) is a
 * failure, and that connection starts a new session.
 * bare: the same connections send the same form fields as the query of a GET /ussd (bare_mhd answers GET
 * only: a POST body makes it drop the connection), one request after the other, hops 1-4 in turn; an
 * answer must be 200 with a body.
 *
 * Options: -c CONNS (500)  -t THREADS (2)  -d SECONDS measured (15)  -w SECONDS of warm-up first (3)
 *          -k MS mean think time before each hop (0: none): each one random, 0.5 to 1.5 times it, and the
 *             sessions start spread over four of them, so that they do not march in step
 *          -T MS answer timeout (10000)
 *          -x HOP:TEXT another text hop HOP (1-4) must hold ("\n" = new line); repeatable
 * Only hops answered inside the measured window count (latency from the first byte sent to the last byte
 * of the answer); requests in flight at its end are still waited for and checked, not counted.
 * Output (stdout), one line:
 *   BENCH mode=ussd conns=500 ... hops=N hops_per_s=R sessions=N sessions_per_s=R failures=N p50_us=..
 *         p99_us=.. max_us=.. hop1=n:N,p50:US,p99:US,max:US hop2=... hop3=... hop4=...
 * and with failures a second line "first_failure: ...". Exit 0 when the run happened (even with failures),
 * 2 on bad arguments, 1 when it could not run.
 *
 * sendsms: N GET URL?username=&password=&from=384&to=+2547NNNNNNNN&charset=UTF-8&coding=0&dlr-mask=27
 * &dlr-url=DLR_BASE/kannel/dlr?ref=I%26status=%25d&text=... over one kept-alive connection, one after the
 * other (as hifadhi-gateway's dispatcher sends), each with its own number; 202 (or 200) is success.
 * Prints "BENCH mode=sendsms sent=N failed=N seconds=S rate=R first_status=S".
 */
#include "hf_base.h"

#include "hf_buf.h"
#include "hf_httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_hist.h"

#define HOPS 4
#define MAX_EXPECT 4
#define REQ_MAX 1024
#define RESP_MAX 16384
#define FAIL_MAX 400

/* ---- the run's settings */

enum mode { MODE_USSD, MODE_BARE };

struct phone {
	char enc[40]; /* the number, form-encoded (%2B254...) */
	char pin[8];
};

static struct {
	enum mode mode;
	struct sockaddr_in addr;
	char host_hdr[64];
	struct phone *phones;
	size_t n_phones;
	int conns, threads, think_ms, timeout_ms;
	double duration_s, warmup_s;
	const char *expect[HOPS][MAX_EXPECT];
	int n_expect[HOPS];
	char run_id[24];
	int64_t t_start, t_meas, t_end, t_drain; /* monotonic microseconds */
	atomic_ullong next_phone, next_session;
} G = {.conns = 500, .threads = 2, .timeout_ms = 10000, .duration_s = 15, .warmup_s = 3};

struct stats {
	struct hist all, hop[HOPS];
	uint64_t hops, sessions, failures, reconnects;
	char first_fail[FAIL_MAX];
};

enum cstate { C_IDLE, C_THINK, C_WAIT, C_DONE };

struct conn {
	int fd;
	enum cstate st;
	int hop;
	const struct phone *ph;
	char sid[48];
	char req[REQ_MAX];
	size_t req_len, req_off;
	char resp[RESP_MAX];
	size_t resp_len;
	int64_t t_sent, t_due;
};

struct worker {
	pthread_t th;
	uint64_t rng;
	int ep;
	struct conn *c;
	int n;
	int inflight;
	struct stats s;
};

static void fail(struct worker *w, struct conn *c, const char *fmt, ...) HF_PRINTF(3, 4);

/* xorshift64*: think times and start offsets, so that sessions do not march in step */
static uint64_t rnd(struct worker *w, uint64_t below)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return below ? (w->rng * 0x2545F4914F6CDD1DULL >> 11) % below : 0;
}

/* A think time: uniform in [think/2, 3 think/2], in microseconds. */
static int64_t think_us(struct worker *w)
{
	int64_t t = (int64_t)G.think_ms * 1000;
	return t / 2 + (int64_t)rnd(w, (uint64_t)t + 1);
}

/* ---- connections */

static int conn_open(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Loopback: a blocking connect returns at once (or fails at once). */
	if (connect(fd, (const struct sockaddr *)&G.addr, sizeof(G.addr)) != 0) {
		close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool conn_attach(struct worker *w, struct conn *c)
{
	c->fd = conn_open();
	if (c->fd < 0)
		return false;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		close(c->fd);
		c->fd = -1;
		return false;
	}
	return true;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* leaves the epoll set by itself */
	c->fd = -1;
	c->resp_len = 0;
}

static bool in_window(int64_t now)
{
	return now >= G.t_meas && now <= G.t_end;
}

static void fail(struct worker *w, struct conn *c, const char *fmt, ...)
{
	w->s.failures++;
	if (!w->s.first_fail[0]) {
		char msg[FAIL_MAX - 120];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		for (char *p = msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = '|';
		snprintf(w->s.first_fail, sizeof(w->s.first_fail), "hop %d (session %s): %s", c->hop + 1, c->sid, msg);
	}
	if (c->st == C_WAIT)
		w->inflight--;
	conn_close(c);
	c->st = C_IDLE; /* a new connection and a new session on the next pass */
}

/* "2*1234*0"-style texts of hop h, form-encoded. */
static void hop_text(const struct conn *c, int h, char *out, size_t cap)
{
	switch (h) {
	case 0:
		snprintf(out, cap, "%s", "");
		break;
	case 1:
		snprintf(out, cap, "2");
		break;
	case 2:
		snprintf(out, cap, "2%%2A%s", c->ph->pin);
		break;
	default:
		snprintf(out, cap, "2%%2A%s%%2A0", c->ph->pin);
		break;
	}
}

static void new_session(struct conn *c)
{
	unsigned long long k = atomic_fetch_add(&G.next_phone, 1);
	c->ph = &G.phones[k % G.n_phones];
	unsigned long long s = atomic_fetch_add(&G.next_session, 1);
	snprintf(c->sid, sizeof(c->sid), "%s-%llu", G.run_id, s);
	c->hop = 0;
}

static void want_write(struct worker *w, struct conn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	(void)epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_req(struct worker *w, struct conn *c)
{
	while (c->req_off < c->req_len) {
		ssize_t k = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
		if (k > 0) {
			c->req_off += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			want_write(w, c, true);
			return;
		}
		fail(w, c, "write: %s", k < 0 ? strerror(errno) : "nothing written");
		return;
	}
}

static void send_hop(struct worker *w, struct conn *c, int64_t now)
{
	if (c->fd < 0) {
		if (!conn_attach(w, c)) {
			w->s.failures++;
			if (!w->s.first_fail[0])
				snprintf(w->s.first_fail, sizeof(w->s.first_fail), "connect: %s", strerror(errno));
			c->st = C_THINK;
			c->t_due = now + 100000; /* try again in 100 ms */
			return;
		}
		w->s.reconnects++;
	}
	char text[64], form[512];
	hop_text(c, c->hop, text, sizeof(text));
	int fl = snprintf(form, sizeof(form), "sessionId=%s&serviceCode=%%2A384%%23&phoneNumber=%s&networkCode=63902&text=%s",
			  c->sid, c->ph->enc, text);
	int n;
	if (G.mode == MODE_USSD)
		n = snprintf(c->req, sizeof(c->req),
			     "POST /ussd HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
			     "Content-Length: %d\r\n\r\n%s",
			     G.host_hdr, fl, form);
	else
		n = snprintf(c->req, sizeof(c->req),
			     "GET /ussd?%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n", form,
			     G.host_hdr);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(c->req));
	c->req_len = (size_t)n;
	c->req_off = 0;
	c->resp_len = 0;
	c->t_sent = now;
	c->st = C_WAIT;
	w->inflight++;
	flush_req(w, c);
}

/* After an answer (or a failure): the next hop now, after the think time, or nothing once the run ends. */
static void next_step(struct worker *w, struct conn *c, int64_t now)
{
	if (now >= G.t_end) {
		c->st = C_DONE;
		return;
	}
	if (G.think_ms > 0) {
		c->st = C_THINK;
		c->t_due = now + think_us(w);
		return;
	}
	send_hop(w, c, now);
}

static const char *find_ci(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

/* A whole answer in c->resp: checked, counted, and the session moves on. */
static void on_answer(struct worker *w, struct conn *c, int status, const char *body, size_t blen, bool closing,
		      int64_t now)
{
	int h = c->hop;
	if (status != 200) {
		fail(w, c, "HTTP %d: %.120s", status, body);
		return;
	}
	if (G.mode == MODE_USSD) {
		char text[RESP_MAX];
		memcpy(text, body, blen);
		text[blen] = '\0';
		const char *bad = NULL;
		if (blen < 4 || memcmp(text, "CON ", 4) != 0)
			bad = "CON ";
		for (int i = 0; !bad && i < G.n_expect[h]; i++)
			if (!strstr(text, G.expect[h][i]))
				bad = G.expect[h][i];
		if (bad) {
			fail(w, c, "answer lacks \"%s\": %.160s", bad, text);
			return;
		}
	} else if (blen == 0) {
		fail(w, c, "empty answer");
		return;
	}
	w->inflight--;
	c->st = C_IDLE;
	if (in_window(now)) {
		uint64_t lat = (uint64_t)(now - c->t_sent);
		hist_add(&w->s.all, lat);
		hist_add(&w->s.hop[h], lat);
		w->s.hops++;
	}
	if (closing) {
		conn_close(c);
		w->s.reconnects++;
	}
	c->hop++;
	if (c->hop == HOPS) {
		if (in_window(now))
			w->s.sessions++;
		new_session(c);
	}
	next_step(w, c, now);
}

static void on_readable(struct worker *w, struct conn *c, int64_t now)
{
	for (;;) {
		if (c->resp_len >= sizeof(c->resp) - 1) {
			fail(w, c, "answer larger than %zu bytes", sizeof(c->resp));
			return;
		}
		ssize_t k = read(c->fd, c->resp + c->resp_len, sizeof(c->resp) - 1 - c->resp_len);
		if (k > 0) {
			c->resp_len += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* end of file or an error */
		if (c->st == C_WAIT)
			fail(w, c, "connection %s before the whole answer (%zu bytes)", k == 0 ? "closed" : strerror(errno),
			     c->resp_len);
		else {
			conn_close(c);
			w->s.reconnects++;
		}
		return;
	}
	if (c->st != C_WAIT) {
		if (c->resp_len)
			fail(w, c, "%zu bytes nobody asked for", c->resp_len);
		return;
	}
	c->resp[c->resp_len] = '\0';
	const char *eoh = strstr(c->resp, "\r\n\r\n");
	if (!eoh)
		return;
	size_t hlen = (size_t)(eoh - c->resp) + 4;
	int status = 0;
	if (sscanf(c->resp, "HTTP/1.%*d %d", &status) != 1) {
		fail(w, c, "not HTTP: %.60s", c->resp);
		return;
	}
	const char *cl = find_ci(c->resp, hlen, "\r\nContent-Length:");
	if (!cl) {
		fail(w, c, "answer without Content-Length");
		return;
	}
	size_t blen = (size_t)strtoul(cl + 17, NULL, 10);
	if (c->resp_len < hlen + blen)
		return; /* more to come */
	if (c->resp_len > hlen + blen) {
		fail(w, c, "%zu bytes after the answer", c->resp_len - hlen - blen);
		return;
	}
	bool closing = find_ci(c->resp, hlen, "\r\nConnection: close") != NULL;
	on_answer(w, c, status, c->resp + hlen, blen, closing, now);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	int64_t last_scan = 0;
	for (int i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];
		c->fd = -1;
		new_session(c);
		if (!conn_attach(w, c)) {
			fprintf(stderr, "ussd_load: cannot connect: %s\n", strerror(errno));
			exit(1);
		}
	}
	for (int i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];
		if (G.think_ms > 0) {
			/* Spread over a session's length (4 hops of think time): a steady mix from the start. */
			c->st = C_THINK;
			c->t_due = G.t_start + (int64_t)rnd(w, (uint64_t)G.think_ms * 4000);
		} else {
			send_hop(w, c, hf_mono_us());
		}
	}
	for (;;) {
		int64_t now = hf_mono_us();
		if (now >= G.t_end && w->inflight == 0)
			break;
		if (now >= G.t_drain) {
			for (int i = 0; i < w->n; i++)
				if (w->c[i].st == C_WAIT)
					fail(w, &w->c[i], "no answer by the end of the run");
			break;
		}
		if (now - last_scan >= 1000) {
			last_scan = now;
			for (int i = 0; i < w->n; i++) {
				struct conn *c = &w->c[i];
				if (c->st == C_WAIT && now - c->t_sent > (int64_t)G.timeout_ms * 1000)
					fail(w, c, "no answer within %d ms (%zu of %zu bytes sent, %zu received)", G.timeout_ms,
					     c->req_off, c->req_len, c->resp_len);
				if (c->st == C_IDLE && now < G.t_end) {
					new_session(c);
					send_hop(w, c, now);
				} else if (c->st == C_THINK && now >= c->t_due) {
					if (now < G.t_end)
						send_hop(w, c, now);
					else
						c->st = C_DONE;
				}
			}
		}
		int n = epoll_wait(w->ep, evs, (int)HF_ARRAY_LEN(evs), G.think_ms > 0 || w->inflight < w->n ? 1 : 10);
		now = hf_mono_us();
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if ((evs[i].events & EPOLLOUT) && c->st == C_WAIT) {
				flush_req(w, c);
				if (c->fd >= 0 && c->req_off == c->req_len)
					want_write(w, c, false);
			}
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_readable(w, c, now);
		}
	}
	for (int i = 0; i < w->n; i++)
		conn_close(&w->c[i]);
	return NULL;
}

/* ---- arguments */

static int bad_usage(void)
{
	fprintf(stderr, "usage: ussd_load ussd|bare HOST PORT PHONES [-c CONNS] [-t THREADS] [-d SECONDS] [-w SECONDS]"
			" [-k THINK_MS] [-T TIMEOUT_MS] [-x HOP:TEXT]...\n"
			"       ussd_load sendsms URL USER PASSWORD_FILE N DLR_BASE\n");
	return 2;
}

static bool num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* "\n" in an argument is a new line. */
static char *unescape(const char *s)
{
	char *o = hf_xstrdup(s), *q = o;
	for (const char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] == 'n') {
			*q++ = '\n';
			p++;
		} else {
			*q++ = *p;
		}
	}
	*q = '\0';
	return o;
}

static bool load_phones(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t cap = 1024;
	G.phones = hf_xcalloc(cap, sizeof(*G.phones));
	char line[128], num_s[40], pin[16];
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%39s %15s", num_s, pin) != 2 || strlen(pin) != 4 || strspn(pin, "0123456789") != 4)
			continue;
		if (strspn(num_s, "+0123456789") != strlen(num_s) || strlen(num_s) < 8 || strlen(num_s) > 16)
			continue;
		if (G.n_phones == cap) {
			cap *= 2;
			G.phones = hf_xrealloc(G.phones, cap * sizeof(*G.phones));
		}
		struct phone *p = &G.phones[G.n_phones++];
		snprintf(p->enc, sizeof(p->enc), "%s%s", num_s[0] == '+' ? "%2B" : "", num_s + (num_s[0] == '+'));
		hf_strlcpy(p->pin, pin, sizeof(p->pin));
	}
	fclose(f);
	return G.n_phones > 0;
}

static int run_load(int argc, char **argv)
{
	if (argc < 5)
		return bad_usage();
	G.mode = strcmp(argv[1], "ussd") == 0 ? MODE_USSD : MODE_BARE;
	double port = 0;
	if (inet_pton(AF_INET, argv[2], &G.addr.sin_addr) != 1 || !num(argv[3], 1, 65535, &port))
		return bad_usage();
	G.addr.sin_family = AF_INET;
	G.addr.sin_port = htons((uint16_t)port);
	snprintf(G.host_hdr, sizeof(G.host_hdr), "%s:%d", argv[2], (int)port);
	if (!load_phones(argv[4])) {
		fprintf(stderr, "ussd_load: no usable \"PHONE PIN\" line in %s\n", argv[4]);
		return 1;
	}
	/* The screens of the "next payment" session (see the header). */
	G.expect[0][G.n_expect[0]++] = "\n9. ";
	G.expect[1][G.n_expect[1]++] = "PIN";
	G.expect[2][G.n_expect[2]++] = "KES";
	G.expect[3][G.n_expect[3]++] = "\n9. ";
	for (int i = 5; i < argc; i++) {
		double v = 0;
		const char *o = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;
		if (!a)
			return bad_usage();
		i++;
		if (strcmp(o, "-c") == 0 && num(a, 1, 20000, &v))
			G.conns = (int)v;
		else if (strcmp(o, "-t") == 0 && num(a, 1, 64, &v))
			G.threads = (int)v;
		else if (strcmp(o, "-d") == 0 && num(a, 0.1, 3600, &v))
			G.duration_s = v;
		else if (strcmp(o, "-w") == 0 && num(a, 0, 3600, &v))
			G.warmup_s = v;
		else if (strcmp(o, "-k") == 0 && num(a, 0, 600000, &v))
			G.think_ms = (int)v;
		else if (strcmp(o, "-T") == 0 && num(a, 10, 600000, &v))
			G.timeout_ms = (int)v;
		else if (strcmp(o, "-x") == 0 && a[0] >= '1' && a[0] <= '4' && a[1] == ':' && a[2]) {
			int h = a[0] - '1';
			if (G.n_expect[h] == MAX_EXPECT)
				return bad_usage();
			G.expect[h][G.n_expect[h]++] = unescape(a + 2);
		} else
			return bad_usage();
	}
	if (G.threads > G.conns)
		G.threads = G.conns;
	snprintf(G.run_id, sizeof(G.run_id), "L%x%llx", (unsigned)getpid(), (unsigned long long)hf_now_ms() % 1000000007ULL);
	G.t_start = hf_mono_us();
	G.t_meas = G.t_start + (int64_t)(G.warmup_s * 1e6);
	G.t_end = G.t_meas + (int64_t)(G.duration_s * 1e6);
	G.t_drain = G.t_end + (int64_t)G.timeout_ms * 1000 + 1000000;
	struct worker *w = hf_xcalloc((size_t)G.threads, sizeof(*w));
	for (int t = 0; t < G.threads; t++) {
		w[t].n = G.conns / G.threads + (t < G.conns % G.threads);
		w[t].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1) ^ (uint64_t)hf_now_ms();
		w[t].c = hf_xcalloc((size_t)w[t].n, sizeof(*w[t].c));
		w[t].ep = epoll_create1(EPOLL_CLOEXEC);
		if (w[t].ep < 0 || pthread_create(&w[t].th, NULL, worker_main, &w[t]) != 0) {
			fprintf(stderr, "ussd_load: cannot start thread %d\n", t);
			return 1;
		}
	}
	struct stats *s = hf_xcalloc(1, sizeof(*s));
	for (int t = 0; t < G.threads; t++) {
		pthread_join(w[t].th, NULL);
		hist_merge(&s->all, &w[t].s.all);
		for (int h = 0; h < HOPS; h++)
			hist_merge(&s->hop[h], &w[t].s.hop[h]);
		s->hops += w[t].s.hops;
		s->sessions += w[t].s.sessions;
		s->failures += w[t].s.failures;
		s->reconnects += w[t].s.reconnects;
		if (!s->first_fail[0] && w[t].s.first_fail[0])
			hf_strlcpy(s->first_fail, w[t].s.first_fail, sizeof(s->first_fail));
		close(w[t].ep);
		free(w[t].c);
	}
	printf("BENCH mode=%s conns=%d threads=%d think_ms=%d seconds=%.3f phones=%zu hops=%llu hops_per_s=%.1f "
	       "sessions=%llu sessions_per_s=%.1f failures=%llu reconnects=%llu p50_us=%llu p90_us=%llu p99_us=%llu "
	       "max_us=%llu",
	       G.mode == MODE_USSD ? "ussd" : "bare", G.conns, G.threads, G.think_ms, G.duration_s, G.n_phones,
	       (unsigned long long)s->hops, (double)s->hops / G.duration_s, (unsigned long long)s->sessions,
	       (double)s->sessions / G.duration_s, (unsigned long long)s->failures, (unsigned long long)s->reconnects,
	       (unsigned long long)hist_pct(&s->all, 50), (unsigned long long)hist_pct(&s->all, 90),
	       (unsigned long long)hist_pct(&s->all, 99), (unsigned long long)s->all.max);
	for (int h = 0; h < HOPS; h++)
		printf(" hop%d=n:%llu,p50:%llu,p99:%llu,max:%llu", h + 1, (unsigned long long)s->hop[h].n,
		       (unsigned long long)hist_pct(&s->hop[h], 50), (unsigned long long)hist_pct(&s->hop[h], 99),
		       (unsigned long long)s->hop[h].max);
	printf("\n");
	if (s->first_fail[0])
		printf("first_failure: %s\n", s->first_fail);
	free(s);
	free(w);
	return 0;
}

/* ---- sendsms: the baseline of N */

static int run_sendsms(int argc, char **argv)
{
	if (argc != 7)
		return bad_usage();
	const char *url = argv[2], *user = argv[3], *dlr_base = argv[6];
	double nd = 0;
	if (!num(argv[5], 1, 10000000, &nd))
		return bad_usage();
	long n = (long)nd;
	char pw[128] = "";
	FILE *f = fopen(argv[4], "re");
	if (!f || !fgets(pw, sizeof(pw), f)) {
		fprintf(stderr, "ussd_load: cannot read %s\n", argv[4]);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	pw[strcspn(pw, "\r\n")] = '\0';
	hf_httpc_global_init();
	struct hf_httpc *hc = hf_httpc_new();
	CURL *esc = curl_easy_init();
	if (!hc || !esc)
		return 1;
	/* A payment notice as long as the gateway's (GSM-7, one SMS). */
	static const char text[] = "Hifadhi: your payment of KES 3,000.00 is ready at PP-12 from 2099-01-02. "
				   "Never share your PIN with anyone.";
	char *e_user = curl_easy_escape(esc, user, 0), *e_pw = curl_easy_escape(esc, pw, 0);
	char *e_from = curl_easy_escape(esc, "384", 0), *e_text = curl_easy_escape(esc, text, 0);
	long sent = 0, failed = 0, first_status = 0;
	int64_t t0 = hf_mono_us();
	for (long i = 0; i < n; i++) {
		char phone[32], dlr[300];
		snprintf(phone, sizeof(phone), "+2547%08lu", (unsigned long)(10000000 + i % 89999999));
		snprintf(dlr, sizeof(dlr), "%s/kannel/dlr?ref=%ld&status=%%d", dlr_base, i + 1);
		char *e_to = curl_easy_escape(esc, phone, 0), *e_dlr = curl_easy_escape(esc, dlr, 0);
		struct hf_buf u;
		hf_buf_init(&u, 8192);
		hf_err err = hf_buf_appendf(&u, "%s?username=%s&password=%s&from=%s&to=%s&charset=UTF-8&coding=0&dlr-mask=27"
						"&dlr-url=%s&text=%s",
					    url, e_user, e_pw, e_from, e_to, e_dlr, e_text);
		curl_free(e_to);
		curl_free(e_dlr);
		struct hf_httpc_resp resp = {0};
		if (!err)
			err = hf_httpc_get(hc, hf_buf_cstr(&u), NULL, 10000, 4096, &resp);
		hf_buf_release(&u);
		hf_buf_release(&resp.body);
		if (!err && (resp.status == 202 || resp.status == 200)) {
			sent++;
		} else {
			failed++;
			if (!first_status)
				first_status = err ? -1 : resp.status;
		}
	}
	double secs = (double)(hf_mono_us() - t0) / 1e6;
	printf("BENCH mode=sendsms sent=%ld failed=%ld seconds=%.3f rate=%.1f first_status=%ld\n", sent, failed, secs,
	       secs > 0 ? (double)sent / secs : 0.0, first_status);
	curl_free(e_user);
	curl_free(e_pw);
	curl_free(e_from);
	curl_free(e_text);
	curl_easy_cleanup(esc);
	hf_httpc_free(hc);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return bad_usage();
	if (strcmp(argv[1], "ussd") == 0 || strcmp(argv[1], "bare") == 0)
		return run_load(argc, argv);
	if (strcmp(argv[1], "sendsms") == 0)
		return run_sendsms(argc, argv);
	return bad_usage();
}
