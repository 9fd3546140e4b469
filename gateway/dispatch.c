/* dispatch.c - the outbound dispatcher (see dispatch.h).
 *
 * Three kinds of thread share one mutex (D.mu), each critical section a few list operations:
 *   the feeder    claims batches from core, journals them (C) and queues them, keeping at most two batches
 *                 claimed ahead of the senders, so a claim's round trip overlaps the sending;
 *   the senders   (dispatch.senders of them) each take a message, wait for its slot of the link's rate,
 *                 journal S, hand it to Kannel with its own kept-alive connection (retrying with backoff),
 *                 journal the end (D, F, U) and queue its report;
 *   the reporter  sends the queued reports to core many at a time (POST /outbox/status, one transaction for
 *                 up to 500; it lets them gather for REPORT_LINGER_MS), each until core has it.
 * Why several senders: smsbox answers a sendsms only after bearerbox has stored the message, and now and
 * then only after a stall of about 40 ms (measured: docs/benchmarks.md, N); one request at a time, with a
 * report to core after each, spent most of its time waiting. With a few in flight the waits overlap.
 *
 * Never twice, with several in flight: every message goes C, then S right before its sendsms, then an end;
 * the journal is truncated only when core has acknowledged every report of what it holds (D.open empty,
 * nothing pending), so after a crash the journal holds every message whose fate core may not know. Recovery reads
 * all of it: S without an end (at most one per sender) is reported sent and not resent; C or U released; D
 * sent; F failed; then claiming starts only once core has all of those.
 *
 * Delivery reports are journaled too (A accepted, Y delivered, N not delivered) and Kannel is answered at
 * once: the journal, not core's answer, is what makes them safe, so a callback never holds one of the HTTP
 * threads while core commits, and reports from many callbacks share one commit. (Lost, an "accepted"
 * would let core offer the message again a minute later.) */
#include "hf_base.h"
#include "dispatch.h"
#include "core_client.h"

#include "hf_buf.h"
#include "hf_gsm.h"
#include "hf_httpc.h"
#include "hf_log.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIES 5
#define ID_MAX 24                /* digits of an outbox id */
#define OUTBOX_BATCH_MAX 500     /* core's claim limit */
#define REPORT_BATCH_MAX 500     /* core's limit of POST /outbox/status */
#define SENDERS_MAX 32
#define OPEN_MAX 4000            /* unsettled messages at most: claiming waits beyond (core not taking reports) */
#define JOURNAL_MAX (4 * 1024 * 1024)
#define JOURNAL_READ_MAX (64 * 1024 * 1024) /* what recovery reads of a journal at most */
#define REPORT_BACKOFF_MAX_MS 2000
#define REPORT_LINGER_MS 50      /* reports gather this long: one commit in core for many */
#define DLR_PENDING_MAX 50000    /* delivery reports kept for core at most; beyond, Kannel is asked to retry */

struct msg {
	struct msg *next;
	char id[ID_MAX + 1];
	bool urgent;        /* a PIN reset code: goes in quiet hours too */
	char *phone, *text; /* owned; the phone is wiped when freed */
};

/* Every report is sent again until core has it; the kind says what its answer settles. */
enum rep_kind {
	REP_OWN,      /* the end of a message claimed by this run (its id is in D.open) */
	REP_DLR,      /* a delivery report of this run (counted in D.dlr_pending) */
	REP_RECOVERY, /* from the journal of the last run (counted in D.recovering) */
};

struct rep {
	struct rep *next;
	char id[ID_MAX + 1];
	const char *status, *detail; /* static strings */
	enum rep_kind kind;
	hf_err err;                  /* core's answer: HF_OK changed, HF_ECONFLICT unchanged or refused, HF_ENOTFOUND */
};

static struct {
	struct dispatch_conf c;
	char url[300], user[64], password[128], sender[24], smsc[24], dlr_base[200], journal[512];
	atomic_bool stop;
	pthread_t feeder, reporter, senders[SENDERS_MAX];
	int nsenders;
	bool running;
	int jfd;

	pthread_mutex_t mu;
	pthread_cond_t work;  /* senders: a message is queued, or stop */
	pthread_cond_t room;  /* the feeder: the queue has room, a message was settled, or stop */
	pthread_cond_t rwork; /* the reporter: a report is queued, or it is to finish */
	pthread_cond_t wake;  /* naps: stop */
	struct msg *qhead, *qtail;
	size_t queued;
	int64_t *open; /* ids claimed by this run whose end core has not acknowledged */
	size_t nopen;
	size_t recovering;  /* reports from the last run's journal that core has not acknowledged */
	size_t dlr_pending; /* delivery reports of this run that core has not acknowledged */
	int64_t next_slot_us;
	struct rep *rhead, *rtail;
	size_t rqueued;
	int64_t rfirst_us; /* when the oldest queued report was queued */
	bool reporter_running, reporter_finish;

	_Atomic unsigned long long claimed, sent, failed, retried, in_doubt, dlr_delivered, dlr_failed, dlr_dup,
		dlr_unknown;
} D = {.jfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

void dispatch_stats(struct dispatch_stats *o)
{
	o->claimed = D.claimed;
	o->sent = D.sent;
	o->failed = D.failed;
	o->retried = D.retried;
	o->in_doubt = D.in_doubt;
	o->dlr_delivered = D.dlr_delivered;
	o->dlr_failed = D.dlr_failed;
	o->dlr_duplicates = D.dlr_dup;
	o->dlr_unknown = D.dlr_unknown;
}

/* An outbox id as core writes it: digits, a positive 64-bit number. */
static bool id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	int64_t v = 0;
	return n > 0 && n <= ID_MAX && strspn(id, "0123456789") == n && hf_parse_i64(id, 1, INT64_MAX, &v) == HF_OK;
}

static struct timespec deadline_in(int64_t ms)
{
	return hf_timespec_in(CLOCK_MONOTONIC, ms);
}

/* Sleeps ms, or less when the dispatcher stops. Called without D.mu. */
static void nap_ms(int64_t ms)
{
	struct timespec until = deadline_in(ms);
	pthread_mutex_lock(&D.mu);
	while (!atomic_load(&D.stop) && pthread_cond_timedwait(&D.wake, &D.mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&D.mu);
}

/* ---- the journal */

static void journal_write(const char *buf, size_t n)
{
	if (D.jfd >= 0 && write(D.jfd, buf, n) != (ssize_t)n)
		hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"cannot write the journal\" errno=%d", errno);
}

static void journal_line(char kind, const char *id)
{
	char line[ID_MAX + 4];
	int n = snprintf(line, sizeof(line), "%c %s\n", kind, id);
	journal_write(line, (size_t)n);
}

/* ---- which messages are open (journaled, their end not yet acknowledged by core); under D.mu */

static bool open_has(int64_t id)
{
	for (size_t i = 0; i < D.nopen; i++)
		if (D.open[i] == id)
			return true;
	return false;
}

static void open_add(int64_t id)
{
	HF_ASSERT(D.nopen < OPEN_MAX + OUTBOX_BATCH_MAX);
	D.open[D.nopen++] = id;
}

static void open_remove(int64_t id)
{
	for (size_t i = 0; i < D.nopen; i++)
		if (D.open[i] == id) {
			D.open[i] = D.open[--D.nopen];
			return;
		}
}

/* ---- reports to core */

/* One report, one call (the route of one message): for DLRs while the dispatcher does not run, and for a
 * core that refuses the batch route. */
static hf_err report_one(const char *id, const char *status, const char *detail)
{
	char path[64];
	snprintf(path, sizeof(path), "outbox/%s/status", id);
	json_t *body = json_pack("{s:s, s:s?}", "status", status, "detail", detail);
	long st = 0;
	json_t *ans = NULL;
	hf_err err = core_call("POST", path, body, "outbox/{id}/status", &st, &ans);
	json_decref(body);
	bool changed = json_is_true(json_object_get(ans, "changed"));
	json_decref(ans);
	if (err)
		return err;
	if (st == 404)
		return HF_ENOTFOUND;
	if (st == 409)
		return HF_ECONFLICT;
	if (st >= 400 && st < 500 && st != 408 && st != 429)
		return HF_EINVAL; /* refused for good: sending it again would not help */
	if (st != 200)
		return HF_EUPSTREAM;
	return changed ? HF_OK : HF_ECONFLICT; /* unchanged: a repeat, harmless */
}

static bool answered(hf_err err)
{
	return err != HF_ETIMEOUT && err != HF_EUPSTREAM && err != HF_EINTERNAL;
}

/* Queues a report for the reporter. Under D.mu. */
static void report_queue_locked(const char *id, const char *status, const char *detail, enum rep_kind kind)
{
	struct rep *r = hf_xcalloc(1, sizeof(*r));
	hf_strlcpy(r->id, id, sizeof(r->id));
	r->status = status;
	r->detail = detail;
	r->kind = kind;
	if (D.rtail)
		D.rtail->next = r;
	else
		D.rhead = r;
	D.rtail = r;
	if (D.rqueued++ == 0)
		D.rfirst_us = hf_mono_us();
	if (kind == REP_DLR)
		D.dlr_pending++;
	else if (kind == REP_RECOVERY)
		D.recovering++;
	if (D.rqueued == 1 || D.rqueued >= REPORT_BATCH_MAX)
		pthread_cond_signal(&D.rwork);
}

static void report_queue(const char *id, const char *status, const char *detail, enum rep_kind kind)
{
	pthread_mutex_lock(&D.mu);
	report_queue_locked(id, status, detail, kind);
	pthread_mutex_unlock(&D.mu);
}

static void report_end(const char *id, const char *status, const char *detail)
{
	report_queue(id, status, detail, REP_OWN);
}

/* Sends n reports (a list) in one call and writes each one's err. false when core did not take them. */
static bool report_send(struct rep *list, size_t n)
{
	json_t *items = json_array();
	for (struct rep *r = list; r; r = r->next)
		json_array_append_new(items, json_pack("{s:s, s:s, s:s?}", "id", r->id, "status", r->status, "detail",
						       r->detail));
	json_t *body = json_pack("{s:o}", "items", items);
	long st = 0;
	json_t *ans = NULL;
	hf_err err = core_call("POST", "outbox/status", body, "outbox/status", &st, &ans);
	json_decref(body);
	bool ok = false;
	if (!err && st == 200) {
		json_t *res = json_object_get(ans, "items");
		ok = json_array_size(res) == n;
		size_t i = 0;
		for (struct rep *r = list; r && ok; r = r->next, i++) {
			json_t *one = json_array_get(res, i);
			const char *rid = json_string_value(json_object_get(one, "id"));
			const char *what = json_string_value(json_object_get(one, "result"));
			if (!rid || !what || strcmp(rid, r->id) != 0) {
				ok = false;
				break;
			}
			r->err = strcmp(what, "changed") == 0 ? HF_OK : strcmp(what, "not_found") == 0 ? HF_ENOTFOUND : HF_ECONFLICT;
		}
		if (!ok)
			hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"core's answer to a batch of reports does not match it\"");
	} else if (!err && st >= 400 && st < 500 && st != 408 && st != 429) {
		/* Refused as a batch (a core without the route, an id it cannot read): one by one. */
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"core refused a batch of reports; sending them one by one\""
		       " status=%ld", st);
		ok = true;
		for (struct rep *r = list; r && ok; r = r->next) {
			r->err = report_one(r->id, r->status, r->detail);
			ok = answered(r->err);
		}
	}
	json_decref(ans);
	return ok;
}

/* Core has the report: what it settles is settled, a delivery report counted. Under D.mu. */
static void report_settled(struct rep *r)
{
	if (r->kind == REP_RECOVERY) {
		D.recovering--;
		return;
	}
	if (r->kind == REP_DLR) {
		D.dlr_pending--;
		bool final = strcmp(r->status, "accepted") != 0;
		if (r->err == HF_ENOTFOUND)
			atomic_fetch_add(&D.dlr_unknown, 1);
		else if (r->err == HF_OK && final)
			atomic_fetch_add(strcmp(r->status, "delivered") == 0 ? &D.dlr_delivered : &D.dlr_failed, 1);
		else if (r->err == HF_ECONFLICT && final)
			atomic_fetch_add(&D.dlr_dup, 1);
		return;
	}
	if (r->err == HF_ENOTFOUND)
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"core does not know a message it gave us\" outbox=%s", r->id);
	int64_t id = 0;
	if (hf_parse_i64(r->id, 0, INT64_MAX, &id) == HF_OK)
		open_remove(id);
}

static void *reporter_main(void *arg)
{
	(void)arg;
	int64_t backoff_ms = 200;
	pthread_mutex_lock(&D.mu);
	for (;;) {
		while (!D.rhead && !D.reporter_finish)
			pthread_cond_wait(&D.rwork, &D.mu);
		if (!D.rhead)
			break;
		/* Let reports gather (a batch is one commit in core), unless a batch is full or it is time to finish. */
		while (D.rqueued < REPORT_BATCH_MAX && !D.reporter_finish) {
			int64_t left_us = D.rfirst_us + REPORT_LINGER_MS * 1000 - hf_mono_us();
			if (left_us <= 0)
				break;
			struct timespec until = deadline_in((left_us + 999) / 1000);
			pthread_cond_timedwait(&D.rwork, &D.mu, &until);
		}
		struct rep *list = D.rhead, *last = D.rhead;
		size_t n = 1;
		while (last->next && n < REPORT_BATCH_MAX) {
			last = last->next;
			n++;
		}
		D.rhead = last->next;
		if (!D.rhead)
			D.rtail = NULL;
		last->next = NULL;
		D.rqueued -= n;
		D.rfirst_us = hf_mono_us(); /* those left are about as old: sent in the next round, without waiting */
		pthread_mutex_unlock(&D.mu);
		bool ok = report_send(list, n);
		pthread_mutex_lock(&D.mu);
		if (ok) {
			for (struct rep *r = list, *next; r; r = next) {
				next = r->next;
				report_settled(r);
				free(r);
			}
		} else {
			/* Back to the head, in their order: sent again after a pause. */
			last->next = D.rhead;
			D.rhead = list;
			if (!D.rtail)
				D.rtail = last;
			D.rqueued += n;
		}
		pthread_cond_broadcast(&D.room);
		if (ok) {
			backoff_ms = 200;
			continue;
		}
		if (D.reporter_finish) {
			/* Stopping and core does not answer: what is left stays in the journal for the next start. */
			hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"core did not take the last reports; the journal keeps"
			       " them for the next start\" reports=%zu", D.rqueued);
			break;
		}
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"core did not take a batch of reports; trying again\""
		       " reports=%zu retry_ms=%lld", n, (long long)backoff_ms);
		pthread_mutex_unlock(&D.mu);
		nap_ms(backoff_ms);
		backoff_ms = backoff_ms * 2 > REPORT_BACKOFF_MAX_MS ? REPORT_BACKOFF_MAX_MS : backoff_ms * 2;
		pthread_mutex_lock(&D.mu);
		D.rfirst_us = hf_mono_us() - REPORT_LINGER_MS * 1000; /* no lingering on a retry */
	}
	while (D.rhead) { /* given up (only when stopping): the journal keeps them */
		struct rep *r = D.rhead;
		D.rhead = r->next;
		free(r);
	}
	D.rtail = NULL;
	D.rqueued = 0;
	D.reporter_running = false;
	pthread_mutex_unlock(&D.mu);
	return NULL;
}

/* ---- recovery after a crash */

struct jentry {
	int64_t id;
	uint32_t seq;
	char kind; /* C, S, or the end: D, F, U; or a delivery report: A, Y, N */
};

static int cmp_jentry(const void *a, const void *b)
{
	const struct jentry *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool is_dlr_kind(char k)
{
	return k == 'A' || k == 'Y' || k == 'N';
}

/* The reports settling one message of the journal (its lines e[0..n), in order): first its end by the last
 * of C S D F U, then its delivery reports in the order they came. Queued under D.mu. */
static void recover_message(const struct jentry *e, size_t n)
{
	char id[ID_MAX + 1];
	snprintf(id, sizeof(id), "%lld", (long long)e[0].id);
	char end = 0;
	bool dlr = false;
	for (size_t i = 0; i < n; i++) {
		if (is_dlr_kind(e[i].kind))
			dlr = true;
		else
			end = e[i].kind;
	}
	if (end == 'C' || end == 'U') {
		report_queue_locked(id, "released", NULL, REP_RECOVERY);
	} else if (end == 'S' && !dlr) {
		atomic_fetch_add(&D.in_doubt, 1);
		hf_log(HF_LOG_WARN, "gateway.dispatch",
		       "msg=\"a message was being handed to Kannel when the gateway stopped: reported sent, not resent\""
		       " outbox=%s",
		       id);
		report_queue_locked(id, "sent", "in doubt after a restart", REP_RECOVERY);
	} else if (end == 'S' || end == 'D') { /* S with a delivery report: Kannel did take it */
		report_queue_locked(id, "sent", NULL, REP_RECOVERY);
	} else if (end == 'F') {
		report_queue_locked(id, "failed", NULL, REP_RECOVERY);
	}
	for (size_t i = 0; i < n; i++)
		if (is_dlr_kind(e[i].kind))
			report_queue_locked(id, e[i].kind == 'A' ? "accepted" : e[i].kind == 'Y' ? "delivered" : "failed",
					    NULL, REP_RECOVERY);
}

/* Reads the journal and queues the reports that settle every message in it. The journal stays as it is
 * until core has all of them (the feeder empties it then). */
static void journal_recover(void)
{
	FILE *f = fopen(D.journal, "re");
	if (f) {
		struct jentry *e = NULL;
		size_t n = 0, cap = 0, bytes = 0;
		char line[64];
		while (bytes < JOURNAL_READ_MAX && fgets(line, sizeof(line), f)) {
			bytes += strlen(line);
			char kind = line[0];
			char *id = line + 2;
			id[strcspn(id, "\n")] = '\0';
			int64_t v = 0;
			if (kind == '\0' || !strchr("CSDFUAYN", kind) || line[1] != ' ' || !id_valid(id) ||
			    hf_parse_i64(id, 1, INT64_MAX, &v))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				e = hf_xrealloc(e, cap * sizeof(*e));
			}
			e[n] = (struct jentry){v, (uint32_t)n, kind};
			n++;
		}
		fclose(f);
		if (n)
			qsort(e, n, sizeof(*e), cmp_jentry);
		size_t messages = 0;
		pthread_mutex_lock(&D.mu);
		for (size_t i = 0, j; i < n; i = j) {
			for (j = i + 1; j < n && e[j].id == e[i].id; j++)
				;
			recover_message(e + i, j - i);
			messages++;
		}
		pthread_mutex_unlock(&D.mu);
		free(e);
		if (messages)
			hf_log(HF_LOG_INFO, "gateway.dispatch", "msg=\"settling the journal of the last run\" messages=%zu",
			       messages);
	}
	int fd = open(D.journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"cannot open the journal\" errno=%d", errno);
	pthread_mutex_lock(&D.mu);
	D.jfd = fd;
	pthread_mutex_unlock(&D.mu);
}

/* Waits until core has every report of what the journal holds, then empties it. Under D.mu, so that no
 * delivery report is journaled in between. false: stopping. */
static bool journal_settle_and_truncate(void)
{
	pthread_mutex_lock(&D.mu);
	while ((D.nopen > 0 || D.recovering > 0 || D.dlr_pending > 0) && !atomic_load(&D.stop))
		pthread_cond_wait(&D.room, &D.mu);
	bool done = D.nopen == 0 && D.recovering == 0 && D.dlr_pending == 0;
	if (done && D.jfd >= 0 && ftruncate(D.jfd, 0) != 0)
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"cannot truncate the journal\" errno=%d", errno);
	pthread_mutex_unlock(&D.mu);
	return done;
}

/* ---- sending */

static bool quiet_now(void)
{
	if (D.c.quiet_from == D.c.quiet_to)
		return false;
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	int h = tm.tm_hour;
	return D.c.quiet_from < D.c.quiet_to ? h >= D.c.quiet_from && h < D.c.quiet_to
					     : h >= D.c.quiet_from || h < D.c.quiet_to;
}

/* One sendsms. HF_OK: Kannel took it; HF_EINVAL: refused for good (4xx); HF_EUPSTREAM: not taken (no
 * connection, or Kannel answered that it could not take it): safe to send again; HF_ETIMEOUT: in doubt --
 * the request went out and no answer came back, so Kannel may have taken it. */
static hf_err sendsms(struct hf_httpc *hc, CURL *esc, const char *id, const char *phone, const char *text)
{
	struct hf_gsm_count cnt = {.gsm7 = false};
	if (hf_gsm_count(text, strlen(text), &cnt) != HF_OK)
		return HF_EINVAL; /* not UTF-8: never sendable */
	char dlr[400];
	snprintf(dlr, sizeof(dlr), "%s/kannel/dlr?ref=%s&status=%%d", D.dlr_base, id);
	char *e_user = curl_easy_escape(esc, D.user, 0), *e_pw = curl_easy_escape(esc, D.password, 0);
	char *e_from = curl_easy_escape(esc, D.sender, 0), *e_to = curl_easy_escape(esc, phone, 0);
	char *e_text = curl_easy_escape(esc, text, 0), *e_dlr = curl_easy_escape(esc, dlr, 0);
	struct hf_buf url;
	hf_buf_init(&url, 8192);
	hf_err err = hf_buf_appendf(&url, "%s?username=%s&password=%s&from=%s&to=%s&charset=UTF-8&coding=%d&dlr-mask=27"
					  "&dlr-url=%s&text=%s%s%s",
				    D.url, e_user, e_pw, e_from, e_to, cnt.gsm7 ? 0 : 2, e_dlr, e_text, D.smsc[0] ? "&smsc=" : "",
				    D.smsc);
	curl_free(e_user);
	curl_free(e_pw);
	curl_free(e_from);
	curl_free(e_to);
	curl_free(e_text);
	curl_free(e_dlr);
	struct hf_httpc_resp resp;
	if (!err)
		err = hf_httpc_get(hc, hf_buf_cstr(&url), NULL, D.c.timeout_ms > 0 ? D.c.timeout_ms : 10000, 4096, &resp);
	else
		resp.body = (struct hf_buf){0};
	sodium_memzero(url.data, url.cap); /* it holds the number and the password */
	hf_buf_release(&url);
	if (err) {
		hf_buf_release(&resp.body);
		return (err == HF_ETIMEOUT || err == HF_EUPSTREAM || err == HF_ETOOBIG) && resp.request_sent ? HF_ETIMEOUT
													   : HF_EUPSTREAM;
	}
	long st = resp.status;
	hf_buf_release(&resp.body);
	if (st == 202 || st == 200)
		return HF_OK;
	if (st >= 400 && st < 500 && st != 429)
		return HF_EINVAL;
	return HF_EUPSTREAM;
}

static void msg_free(struct msg *m)
{
	if (!m)
		return;
	if (m->phone)
		sodium_memzero(m->phone, strlen(m->phone));
	free(m->phone);
	free(m->text);
	free(m);
}

/* Not sent, nothing in doubt: given back to core (queued again at once). */
static void give_back(const struct msg *m)
{
	journal_line('U', m->id);
	report_end(m->id, "released", NULL);
}

static void send_one(struct hf_httpc *hc, CURL *esc, const struct msg *m)
{
	/* Quiet hours may have begun since the claim: only what someone is waiting for goes now. */
	if (!m->urgent && quiet_now()) {
		give_back(m);
		return;
	}
	/* Throughput of the link: one message per slot, whichever sender sends it. */
	if (D.c.rate_per_s > 0) {
		int64_t interval_us = (int64_t)(1e6 / D.c.rate_per_s);
		pthread_mutex_lock(&D.mu);
		int64_t now = hf_mono_us();
		int64_t slot = D.next_slot_us > now ? D.next_slot_us : now;
		D.next_slot_us = slot + interval_us;
		pthread_mutex_unlock(&D.mu);
		if (slot > now)
			nap_ms((slot - now + 999) / 1000);
		if (atomic_load(&D.stop)) {
			give_back(m);
			return;
		}
	}
	journal_line('S', m->id);
	hf_err err = HF_EUPSTREAM;
	for (int t = 0; t < MAX_TRIES && !atomic_load(&D.stop); t++) {
		err = sendsms(hc, esc, m->id, m->phone, m->text);
		if (err != HF_EUPSTREAM)
			break;
		atomic_fetch_add(&D.retried, 1);
		nap_ms(200 << t);
	}
	if (err == HF_OK) {
		journal_line('D', m->id);
		atomic_fetch_add(&D.sent, 1);
		report_end(m->id, "sent", NULL);
	} else if (err == HF_ETIMEOUT) {
		/* Sent, and the answer lost: Kannel may have it. Never sent again by us (as after a crash between S
		 * and its end): reported sent, so core offers it once more only if the SMSC never acknowledges it. */
		journal_line('D', m->id);
		atomic_fetch_add(&D.in_doubt, 1);
		report_end(m->id, "sent", NULL);
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"no answer from Kannel to a sendsms: in doubt, reported sent,"
		       " not resent\" outbox=%s", m->id);
	} else if (err == HF_EINVAL) {
		journal_line('F', m->id);
		atomic_fetch_add(&D.failed, 1);
		report_end(m->id, "failed", "refused by Kannel");
	} else {
		/* Kannel unreachable after retries: not sent (U: nothing in doubt), given back for later. */
		give_back(m);
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"Kannel did not take a message; given back for later\""
		       " outbox=%s", m->id);
	}
}

static void *sender_main(void *arg)
{
	(void)arg;
	struct hf_httpc *hc = hf_httpc_new();
	CURL *esc = curl_easy_init();
	HF_ASSERT(hc && esc);
	for (;;) {
		pthread_mutex_lock(&D.mu);
		while (!D.qhead && !atomic_load(&D.stop))
			pthread_cond_wait(&D.work, &D.mu);
		if (atomic_load(&D.stop)) { /* what is still queued is given back by dispatch_stop */
			pthread_mutex_unlock(&D.mu);
			break;
		}
		struct msg *m = D.qhead;
		D.qhead = m->next;
		if (!D.qhead)
			D.qtail = NULL;
		D.queued--;
		pthread_cond_signal(&D.room);
		pthread_mutex_unlock(&D.mu);
		send_one(hc, esc, m);
		msg_free(m);
	}
	curl_easy_cleanup(esc);
	hf_httpc_free(hc);
	return NULL;
}

/* ---- claiming */

/* Claims one batch and queues it. Returns how many were claimed (0: nothing due or core unreachable). */
static size_t claim_batch(void)
{
	/* In quiet hours only what someone is waiting for right now goes: PIN reset codes. */
	bool quiet = quiet_now();
	char path[64];
	snprintf(path, sizeof(path), "outbox/claim?limit=%d%s", D.c.batch, quiet ? "&urgent=1" : "");
	long st = 0;
	json_t *ans = NULL;
	if (core_call("POST", path, NULL, "outbox/claim", &st, &ans) != HF_OK || st != 200) {
		json_decref(ans);
		return 0;
	}
	json_t *items = json_object_get(ans, "items");
	size_t n = json_array_size(items);
	atomic_fetch_add(&D.claimed, n);
	struct msg *head = NULL, *tail = NULL;
	struct hf_buf jl;
	hf_buf_init(&jl, (size_t)OUTBOX_BATCH_MAX * 2 * (ID_MAX + 3) + 1);
	size_t i, nq = 0;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *id = json_string_value(json_object_get(it, "id"));
		const char *phone = json_string_value(json_object_get(it, "phone"));
		const char *text = json_string_value(json_object_get(it, "text"));
		const char *tmpl = json_string_value(json_object_get(it, "template"));
		int64_t v = 0;
		if (!id_valid(id) || hf_parse_i64(id, 1, INT64_MAX, &v)) {
			hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"core gave a message without a usable id; skipped\"");
			atomic_fetch_add(&D.failed, 1);
			continue;
		}
		pthread_mutex_lock(&D.mu);
		bool again = open_has(v);
		if (!again)
			open_add(v);
		pthread_mutex_unlock(&D.mu);
		if (again) {
			/* Core handed out again a message whose end it has not heard of yet (its report is on its way):
			 * that report settles it; sending it now could send it twice. */
			hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"core offered a message still being reported; not"
			       " sent again\" outbox=%s", id);
			continue;
		}
		/* The claim first: after a crash, what was claimed and not begun goes back to core at once. */
		if (hf_buf_appendf(&jl, "C %s\n", id) != HF_OK) /* sized for a whole batch */
			HF_ASSERT(!"journal buffer too small");
		if (!phone || !text) {
			if (hf_buf_appendf(&jl, "F %s\n", id) != HF_OK)
				HF_ASSERT(!"journal buffer too small");
			atomic_fetch_add(&D.failed, 1);
			report_end(id, "failed", "unreadable message");
			continue;
		}
		struct msg *m = hf_xcalloc(1, sizeof(*m));
		hf_strlcpy(m->id, id, sizeof(m->id));
		m->urgent = tmpl && strcmp(tmpl, "pin_reset_code") == 0;
		m->phone = hf_xstrdup(phone);
		m->text = hf_xstrdup(text);
		if (tail)
			tail->next = m;
		else
			head = m;
		tail = m;
		nq++;
	}
	json_decref(ans); /* the phones in it are jansson's: freed, not wiped, as before */
	journal_write(jl.data, jl.len);
	hf_buf_release(&jl);
	if (head) {
		pthread_mutex_lock(&D.mu);
		if (D.qtail)
			D.qtail->next = head;
		else
			D.qhead = head;
		D.qtail = tail;
		D.queued += nq;
		pthread_cond_broadcast(&D.work);
		pthread_mutex_unlock(&D.mu);
	}
	return n;
}

static void *feeder_main(void *arg)
{
	(void)arg;
	journal_recover();
	if (!journal_settle_and_truncate())
		return NULL;
	size_t batch = (size_t)D.c.batch;
	while (!atomic_load(&D.stop)) {
		/* At most two batches ahead of the senders, and not while core is not taking reports. */
		pthread_mutex_lock(&D.mu);
		while (!atomic_load(&D.stop) && (D.queued >= batch || D.nopen + batch > OPEN_MAX))
			pthread_cond_wait(&D.room, &D.mu);
		pthread_mutex_unlock(&D.mu);
		if (atomic_load(&D.stop))
			break;
		if (claim_batch() == 0) {
			nap_ms(D.c.idle_ms);
			continue;
		}
		/* A long journal is emptied once every message in it is settled in core (a short pause in claiming). */
		if (D.jfd >= 0 && lseek(D.jfd, 0, SEEK_END) > JOURNAL_MAX && !journal_settle_and_truncate())
			break;
	}
	return NULL;
}

hf_err dispatch_start(const struct dispatch_conf *c)
{
	D.c = *c;
	if (!hf_strlcpy(D.url, c->sendsms_url, sizeof(D.url)) || !hf_strlcpy(D.user, c->user, sizeof(D.user)) ||
	    !hf_strlcpy(D.password, c->password, sizeof(D.password)) ||
	    !hf_strlcpy(D.sender, c->sender, sizeof(D.sender)) || !hf_strlcpy(D.smsc, c->smsc ? c->smsc : "", sizeof(D.smsc)) ||
	    strspn(D.smsc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(D.smsc) ||
	    !hf_strlcpy(D.dlr_base, c->dlr_base, sizeof(D.dlr_base)) ||
	    !hf_strlcpy(D.journal, c->journal, sizeof(D.journal)) || c->batch < 1 || c->batch > OUTBOX_BATCH_MAX ||
	    c->senders < 1 || c->senders > SENDERS_MAX)
		return HF_EINVAL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_t *conds[] = {&D.work, &D.room, &D.rwork, &D.wake};
	for (size_t i = 0; i < HF_ARRAY_LEN(conds); i++)
		pthread_cond_init(conds[i], &ca);
	pthread_condattr_destroy(&ca);
	D.open = hf_xcalloc(OPEN_MAX + OUTBOX_BATCH_MAX, sizeof(*D.open));
	atomic_store(&D.stop, false);
	D.reporter_running = true;
	D.reporter_finish = false;
	if (pthread_create(&D.reporter, NULL, reporter_main, NULL)) {
		D.reporter_running = false;
		return HF_EINTERNAL;
	}
	D.nsenders = 0;
	for (int i = 0; i < c->senders; i++) {
		if (pthread_create(&D.senders[i], NULL, sender_main, NULL))
			break;
		D.nsenders++;
	}
	if (D.nsenders == 0 || pthread_create(&D.feeder, NULL, feeder_main, NULL)) {
		hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"cannot start the dispatcher's threads\"");
		abort(); /* threads half started: nothing sensible to undo; systemd restarts us */
	}
	D.running = true;
	return HF_OK;
}

void dispatch_stop(void)
{
	if (!D.running)
		return;
	pthread_mutex_lock(&D.mu);
	atomic_store(&D.stop, true);
	pthread_cond_broadcast(&D.work);
	pthread_cond_broadcast(&D.room);
	pthread_cond_broadcast(&D.wake);
	pthread_mutex_unlock(&D.mu);
	pthread_join(D.feeder, NULL);
	for (int i = 0; i < D.nsenders; i++)
		pthread_join(D.senders[i], NULL); /* each finishes the message it is handing to Kannel */
	/* Claimed and not begun: given back to core now rather than after the claim's lease. */
	pthread_mutex_lock(&D.mu);
	struct msg *left = D.qhead;
	D.qhead = D.qtail = NULL;
	D.queued = 0;
	pthread_mutex_unlock(&D.mu);
	while (left) {
		struct msg *next = left->next;
		give_back(left);
		msg_free(left);
		left = next;
	}
	pthread_mutex_lock(&D.mu);
	D.reporter_finish = true;
	pthread_cond_signal(&D.rwork);
	pthread_mutex_unlock(&D.mu);
	pthread_join(D.reporter, NULL);
	D.running = false;
	/* Core has every report of what the journal holds: nothing for the next start to settle. */
	if (D.nopen == 0 && D.recovering == 0 && D.dlr_pending == 0 && D.jfd >= 0 && ftruncate(D.jfd, 0) != 0)
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"cannot truncate the journal\" errno=%d", errno);
	free(D.open);
	D.open = NULL;
	D.nopen = 0;
	if (D.jfd >= 0) {
		(void)fsync(D.jfd);
		close(D.jfd);
		D.jfd = -1;
	}
	sodium_memzero(D.password, sizeof(D.password));
}

hf_err dispatch_dlr(const char *ref, int status)
{
	if (!id_valid(ref)) {
		atomic_fetch_add(&D.dlr_unknown, 1);
		return HF_ENOTFOUND;
	}
	/* 1 delivered to the phone; 2 not delivered, 16 rejected by the SMSC: failed; 4 and 8 are steps. */
	const char *to = status == 1	       ? "delivered"
			 : (status == 2 || status == 16) ? "failed"
			 : status == 8		       ? "accepted" /* the SMSC took it: not to be offered again */
							 : NULL;
	if (!to)
		return HF_OK;
	const char *detail = status == 16 ? "rejected by the SMSC" : status == 2 ? "not delivered" : NULL;
	char line[ID_MAX + 4];
	int len = snprintf(line, sizeof(line), "%c %s\n", status == 8 ? 'A' : status == 1 ? 'Y' : 'N', ref);
	/* While the dispatcher runs: journaled, then given to the reporter; Kannel's answer does not wait for
	 * core. The line is written under D.mu: the journal is never emptied between it and its report. */
	pthread_mutex_lock(&D.mu);
	bool journaled = false, full = D.dlr_pending >= DLR_PENDING_MAX, tried = false;
	if (D.reporter_running && !D.reporter_finish && D.jfd >= 0 && !full) {
		tried = true;
		journaled = write(D.jfd, line, (size_t)len) == (ssize_t)len;
		if (journaled)
			report_queue_locked(ref, to, detail, REP_DLR);
	}
	int werr = errno;
	pthread_mutex_unlock(&D.mu);
	if (journaled)
		return HF_OK;
	if (tried)
		hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"cannot write the journal\" errno=%d", werr);
	if (full)
		return HF_EDB_RETRY; /* core has not taken the last ones: Kannel keeps this one for now */
	/* No dispatcher (or no journal): straight to core, and Kannel is told to retry when core cannot take it. */
	hf_err err = report_one(ref, to, detail);
	if (!answered(err))
		return HF_EDB_RETRY;
	if (err == HF_ENOTFOUND) {
		atomic_fetch_add(&D.dlr_unknown, 1);
		return err;
	}
	if (err == HF_OK && status != 8)
		atomic_fetch_add(status == 1 ? &D.dlr_delivered : &D.dlr_failed, 1);
	else if (err == HF_ECONFLICT && status != 8)
		atomic_fetch_add(&D.dlr_dup, 1);
	return err == HF_ECONFLICT || err == HF_EINVAL ? HF_OK : err;
}
