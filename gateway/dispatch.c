/* dispatch.c - the outbound dispatcher (see dispatch.h). */
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIES 5
#define OUTBOX_BATCH_MAX 500 /* core's claim limit */
#define JOURNAL_MAX (4 * 1024 * 1024)

static struct {
	struct dispatch_conf c;
	char url[300], user[64], password[128], sender[24], smsc[24], dlr_base[200], journal[512];
	atomic_bool stop;
	pthread_t thread;
	bool running;
	int jfd;
	_Atomic unsigned long long claimed, sent, failed, retried, in_doubt, dlr_delivered, dlr_failed, dlr_dup,
		dlr_unknown;
} D = {.jfd = -1};

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

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !atomic_load(&D.stop))
		;
}

/* ---- reporting to core */

static hf_err report(const char *id, const char *status, const char *detail)
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
	if (st != 200)
		return HF_EUPSTREAM;
	return changed ? HF_OK : HF_ECONFLICT; /* unchanged: a repeat, harmless */
}

/* ---- the journal */

static void journal_line(char kind, const char *id)
{
	char line[40];
	int n = snprintf(line, sizeof(line), "%c %s\n", kind, id);
	if (D.jfd >= 0 && write(D.jfd, line, (size_t)n) != n)
		hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"cannot write the journal\" errno=%d", errno);
}

/* After a crash, from the last claimed batch: a message written S without an end (D, F, U) may have reached
 * Kannel: reported sent, never resent. A message claimed (C) but not yet begun is given back to core at
 * once (released), instead of waiting for its lease to run out. Ended ones are reported again (a repeat
 * changes nothing in core). Then the journal starts empty. */
struct jentry {
	char id[25];
	char state; /* C, S, or the end: D, F, U */
};

static void journal_settle(const struct jentry *e)
{
	hf_err r = HF_OK;
	switch (e->state) {
	case 'C':
	case 'U':
		r = report(e->id, "released", NULL);
		break;
	case 'S':
		atomic_fetch_add(&D.in_doubt, 1);
		hf_log(HF_LOG_WARN, "gateway.dispatch",
		       "msg=\"a message was being handed to Kannel when the gateway stopped: reported sent, not resent\""
		       " outbox=%s",
		       e->id);
		r = report(e->id, "sent", "in doubt after a restart");
		break;
	case 'D':
		r = report(e->id, "sent", NULL);
		break;
	case 'F':
		r = report(e->id, "failed", NULL);
		break;
	}
	if (r != HF_OK && r != HF_ECONFLICT)
		hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"cannot settle a journaled message\" outbox=%s", e->id);
}

static void journal_recover(void)
{
	FILE *f = fopen(D.journal, "re");
	if (f) {
		struct jentry *batch = hf_xcalloc(OUTBOX_BATCH_MAX, sizeof(*batch));
		size_t n = 0;
		bool in_claim = false;
		char line[64];
		while (fgets(line, sizeof(line), f)) {
			char kind = line[0];
			char *id = line + 2;
			id[strcspn(id, "\n")] = '\0';
			if (strlen(id) == 0 || strlen(id) > 24 || strspn(id, "0123456789") != strlen(id))
				continue;
			if (kind == 'C') {
				if (!in_claim) { /* a new batch: the previous one was finished before it was claimed */
					n = 0;
					in_claim = true;
				}
				if (n < OUTBOX_BATCH_MAX) {
					hf_strlcpy(batch[n].id, id, sizeof(batch[n].id));
					batch[n++].state = 'C';
				}
				continue;
			}
			in_claim = false;
			for (size_t i = 0; i < n; i++)
				if (strcmp(batch[i].id, id) == 0)
					batch[i].state = kind;
		}
		fclose(f);
		for (size_t i = 0; i < n; i++)
			journal_settle(&batch[i]);
		free(batch);
	}
	D.jfd = open(D.journal, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (D.jfd < 0)
		hf_log(HF_LOG_ERROR, "gateway.dispatch", "msg=\"cannot open the journal\" errno=%d", errno);
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

/* One sendsms. HF_OK: Kannel took it; HF_EINVAL: refused for good (4xx); else transient. */
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
		err = hf_httpc_get(hc, hf_buf_cstr(&url), NULL, 10000, 4096, &resp);
	else
		resp.body = (struct hf_buf){0};
	hf_buf_release(&url);
	if (err) {
		hf_buf_release(&resp.body);
		return HF_EUPSTREAM;
	}
	long st = resp.status;
	hf_buf_release(&resp.body);
	if (st == 202 || st == 200)
		return HF_OK;
	if (st >= 400 && st < 500 && st != 429)
		return HF_EINVAL;
	return HF_EUPSTREAM;
}

static void *dispatch_main(void *arg)
{
	(void)arg;
	struct hf_httpc *hc = hf_httpc_new();
	CURL *esc = curl_easy_init();
	journal_recover();
	double interval_ms = D.c.rate_per_s > 0 ? 1000.0 / D.c.rate_per_s : 0;
	int64_t next_slot = hf_mono_us();
	while (!atomic_load(&D.stop)) {
		/* In quiet hours only what someone is waiting for right now goes: PIN reset codes. */
		bool quiet = quiet_now();
		char path[64];
		snprintf(path, sizeof(path), "outbox/claim?limit=%d%s", D.c.batch, quiet ? "&urgent=1" : "");
		long st = 0;
		json_t *ans = NULL;
		if (core_call("POST", path, NULL, "outbox/claim", &st, &ans) != HF_OK || st != 200) {
			json_decref(ans);
			nap_ms(D.c.idle_ms);
			continue;
		}
		json_t *items = json_object_get(ans, "items");
		size_t n = json_array_size(items);
		atomic_fetch_add(&D.claimed, n);
		size_t i;
		json_t *it;
		/* The claim first: after a crash, what was claimed and not begun goes back to core at once. */
		json_array_foreach(items, i, it) {
			const char *cid = json_string_value(json_object_get(it, "id"));
			if (cid && strlen(cid) <= 24 && strspn(cid, "0123456789") == strlen(cid))
				journal_line('C', cid);
		}
		json_array_foreach(items, i, it) {
			const char *id = json_string_value(json_object_get(it, "id"));
			const char *phone = json_string_value(json_object_get(it, "phone"));
			const char *text = json_string_value(json_object_get(it, "text"));
			if (!id || !phone || !text || strspn(id, "0123456789") != strlen(id) || strlen(id) > 24) {
				if (id && strlen(id) <= 24)
					(void)report(id, "failed", "unreadable message");
				atomic_fetch_add(&D.failed, 1);
				continue;
			}
			/* Throughput of the link: one message per slot. */
			if (interval_ms > 0) {
				int64_t now = hf_mono_us();
				if (next_slot > now)
					nap_ms((int)((next_slot - now) / 1000));
				next_slot = (next_slot > now ? next_slot : now) + (int64_t)(interval_ms * 1000);
			}
			journal_line('S', id);
			hf_err err = HF_EUPSTREAM;
			for (int t = 0; t < MAX_TRIES && !atomic_load(&D.stop); t++) {
				err = sendsms(hc, esc, id, phone, text);
				if (err != HF_EUPSTREAM)
					break;
				atomic_fetch_add(&D.retried, 1);
				nap_ms(200 << t);
			}
			if (err == HF_OK) {
				journal_line('D', id);
				atomic_fetch_add(&D.sent, 1);
				hf_err r = report(id, "sent", NULL);
				if (r != HF_OK && r != HF_ECONFLICT)
					hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"cannot report a sent message\" outbox=%s", id);
			} else if (err == HF_EINVAL) {
				journal_line('F', id);
				atomic_fetch_add(&D.failed, 1);
				(void)report(id, "failed", "refused by Kannel");
			} else {
				/* Kannel unreachable after retries: not sent (U: nothing in doubt); core's lease gives it
				 * back later. */
				journal_line('U', id);
				(void)report(id, "released", NULL);
				hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"Kannel did not take a message; given back for later\"");
			}
		}
		json_decref(ans);
		if (n == 0)
			nap_ms(D.c.idle_ms);
		else if (D.jfd >= 0 && lseek(D.jfd, 0, SEEK_END) > JOURNAL_MAX && ftruncate(D.jfd, 0) != 0)
			hf_log(HF_LOG_WARN, "gateway.dispatch", "msg=\"cannot truncate the journal\" errno=%d", errno);
		/* (truncated when long: everything in it is settled, a D follows every S) */
	}
	curl_easy_cleanup(esc);
	hf_httpc_free(hc);
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
	    !hf_strlcpy(D.journal, c->journal, sizeof(D.journal)))
		return HF_EINVAL;
	atomic_store(&D.stop, false);
	if (pthread_create(&D.thread, NULL, dispatch_main, NULL))
		return HF_EINTERNAL;
	D.running = true;
	return HF_OK;
}

void dispatch_stop(void)
{
	if (!D.running)
		return;
	atomic_store(&D.stop, true);
	pthread_join(D.thread, NULL);
	D.running = false;
	if (D.jfd >= 0) {
		(void)fsync(D.jfd);
		close(D.jfd);
		D.jfd = -1;
	}
}

hf_err dispatch_dlr(const char *ref, int status)
{
	if (!ref || !*ref || strlen(ref) > 24 || strspn(ref, "0123456789") != strlen(ref)) {
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
	hf_err err = report(ref, to, status == 16 ? "rejected by the SMSC" : status == 2 ? "not delivered" : NULL);
	if (err == HF_ETIMEOUT || err == HF_EUPSTREAM)
		return HF_EDB_RETRY; /* core unreachable: Kannel is told to try again */
	if (err == HF_ENOTFOUND) {
		atomic_fetch_add(&D.dlr_unknown, 1);
		return err;
	}
	if (err == HF_OK && status != 8)
		atomic_fetch_add(status == 1 ? &D.dlr_delivered : &D.dlr_failed, 1);
	else if (err == HF_ECONFLICT && status != 8)
		atomic_fetch_add(&D.dlr_dup, 1);
	return err == HF_ECONFLICT ? HF_OK : err;
}
