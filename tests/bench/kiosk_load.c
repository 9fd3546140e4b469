/* kiosk_load.c - simulated kiosk terminals for `make bench` O (collections at a busy pay point, the offline
 * queue's baseline). Every request is signed the way a terminal signs it (lib/hf_reqsign, as kiosk/kclient.c
 * does: its own nonce and the current time), over one kept-alive libcurl handle per simulated kiosk.
 *
 *   kiosk_load register URL TOKEN PAY_POINT N OUT   registers N kiosks at PAY_POINT as a staff member
 *                     (POST /api/v1/kiosks with the session TOKEN), enrols each with a fresh key
 *                     (POST /api/v1/kiosks/enrol) and writes "KIOSK_NO SEED_HEX" lines to OUT (mode 0600)
 *   kiosk_load templates URL KIOSKS BENS THREADS
 *                     the first kiosk of KIOSKS (an enrolment station) enrols one template (right thumb) for
 *                     each beneficiary number of BENS: an "FP3" blob sealed to core's seal_pk (GET kiosk/me)
 *   kiosk_load collect URL KIOSKS ITEMS [-d S] [-w S] [-k MS]
 *                     every kiosk of KIOSKS (one thread each, all at once) does collections one after the other:
 *                     POST kiosk/verifications {"result": "match"} -> 201 with a token, then POST
 *                     kiosk/collections with the token and a fresh request_id -> 201, status "collected".
 *                     ITEMS: "BEN_NO PAYMENT" lines (all at the kiosks' pay point), taken in turn by whichever
 *                     kiosk is free, as people queue at a pay point; a payment is collected once, so running
 *                     out before the end makes the run invalid (ITEMS must hold more than the run collects)
 *   kiosk_load me URL KIOSKS [-d S] [-w S]
 *                     the same kiosks, the same way, with signed GET kiosk/me (the baseline: nothing collected)
 *   kiosk_load events URL KIOSKS NCOLL NGRIEV SKIP OUT
 *                     the offline events a terminal queues (kiosk/flow.c's shapes), one JSON text per line: NCOLL
 *                     collections under the first kiosk's allowance (GET kiosk/allowance; its items sorted by
 *                     payment, from the SKIP-th on) and NGRIEV anonymous grievances spread among them
 *   kiosk_load offline URL KIOSKS EVENTS EXPECT
 *                     POSTs the events of EVENTS as the first kiosk to kiosk/offline-events, 100 per request (as
 *                     the kiosk's replay does), one request after the other; every result must be EXPECT
 *                     (applied, duplicate, ...)
 *
 * URL is core's base (http://127.0.0.1:PORT). -d: seconds measured (15); -w: seconds of warm-up first (3);
 * -k: mean think time before each collection (0: none), each one random, 0.5 to 1.5 times it, the kiosks
 * starting spread over one of them so that they do not march in step (a person walks up, reads, types).
 * Only requests answered inside the measured window count (latency from sending to the whole answer);
 * requests in flight at its end are still waited for and checked. Every answer is checked; anything else
 * (another status, a missing field, no answer within 30 s) is a failure.
 * Output (stdout): one "BENCH mode=... key=value ..." line, and "first_failure: ..." when something failed.
 * Exit 0 when the run happened (even with failures: run.sh judges), 2 on bad arguments, 1 when it could not
 * run (register, templates, events and offline exit 1 on any failure: their output is the next step's input).
 */
#include "hf_base.h"

#include "hf_buf.h"
#include "hf_crypto.h"
#include "hf_httpc.h"
#include "hf_reqsign.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"

#define TIMEOUT_MS 30000
#define RESP_MAX (8 * 1024 * 1024) /* an allowance of 2,000 payments is the largest answer */
#define FAIL_MAX 400
#define BEN_MAX 16
#define PAYMENT_MAX 24
#define BATCH 100		/* events per POST kiosk/offline-events, as kiosk/flow.c's replay sends */
#define TEMPLATE_BYTES 2048	/* a libfprint print of an image reader is a few KiB */
#define EVENT_LINE_MAX (16 * 1024)


/* ---- kiosks and their signed requests */

struct item {
	char ben[BEN_MAX];
	char payment[PAYMENT_MAX];
};

struct kiosk {
	char no[HF_REQSIGN_KIOSK_NO_MAX + 1];
	uint8_t sk[HF_REQSIGN_SK_LEN];
};

static char g_base[256];

static void uuid_new(char out[37])
{
	uint8_t b[16];
	hf_random_bytes(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* One request signed as kiosk k (path after /api/v1/, body NULL for a GET). out->body is initialised on
 * every return, as hf_httpc does; the caller releases it. */
static hf_err kiosk_call(struct hf_httpc *h, const struct kiosk *k, const char *method, const char *path,
			 const char *body, struct hf_httpc_resp *out)
{
	char full[320], url[600], ts[24], nonce[HF_REQSIGN_NONCE_LEN + 1], sig[HF_REQSIGN_SIG_B64_LEN + 1];
	char h_kiosk[80], h_ts[64], h_nonce[64], h_sig[140];
	size_t len = body ? strlen(body) : 0;
	out->status = 0;
	if ((size_t)snprintf(full, sizeof(full), "/api/v1/%s", path) >= sizeof(full) ||
	    (size_t)snprintf(url, sizeof(url), "%s%s", g_base, full) >= sizeof(url)) {
		hf_buf_init(&out->body, 1);
		return HF_EINVAL;
	}
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	hf_reqsign_nonce(nonce);
	hf_err err = hf_reqsign_sign(k->sk, method, full, ts, nonce, k->no, body, len, sig);
	if (err) {
		hf_buf_init(&out->body, 1);
		return err;
	}
	snprintf(h_kiosk, sizeof(h_kiosk), "%s: %s", HF_REQSIGN_H_KIOSK, k->no);
	snprintf(h_ts, sizeof(h_ts), "%s: %s", HF_REQSIGN_H_TIMESTAMP, ts);
	snprintf(h_nonce, sizeof(h_nonce), "%s: %s", HF_REQSIGN_H_NONCE, nonce);
	snprintf(h_sig, sizeof(h_sig), "%s: %s", HF_REQSIGN_H_SIGNATURE, sig);
	const char *hdrs[] = {"Accept: application/json", h_kiosk, h_ts, h_nonce, h_sig, NULL};
	if (strcmp(method, "GET") == 0)
		return hf_httpc_get(h, url, hdrs, TIMEOUT_MS, RESP_MAX, out);
	return hf_httpc_post(h, url, "application/json", body, len, hdrs, TIMEOUT_MS, RESP_MAX, out);
}

/* The answer's body as JSON (NULL when it is not). */
static json_t *resp_json(const struct hf_httpc_resp *r)
{
	json_error_t je;
	return r->body.len ? json_loadb(hf_buf_cstr(&r->body), r->body.len, 0, &je) : NULL;
}

/* "KIOSK_NO SEED_HEX" lines; *n_out kiosks. */
static struct kiosk *kiosks_load(const char *path, size_t *n_out)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t n = 0, cap = 64;
	struct kiosk *k = hf_xcalloc(cap, sizeof(*k));
	char line[256], no[64], hex[80];
	while (fgets(line, sizeof(line), f)) {
		uint8_t seed[HF_REQSIGN_SEED_LEN], pk[HF_REQSIGN_PK_LEN];
		if (sscanf(line, "%63s %79s", no, hex) != 2 || !hf_reqsign_kiosk_no_valid(no) ||
		    strlen(hex) != 2 * sizeof(seed) || !hf_unhex(hex, strlen(hex), seed, sizeof(seed)))
			continue;
		if (n == cap) {
			cap *= 2;
			k = hf_xrealloc(k, cap * sizeof(*k));
		}
		memset(&k[n], 0, sizeof(k[n]));
		hf_strlcpy(k[n].no, no, sizeof(k[n].no));
		if (hf_reqsign_keypair_from_seed(seed, pk, k[n].sk) == HF_OK)
			n++;
		sodium_memzero(seed, sizeof(seed));
	}
	sodium_memzero(hex, sizeof(hex));
	fclose(f);
	if (n == 0) {
		free(k);
		return NULL;
	}
	*n_out = n;
	return k;
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

static int bad_usage(void)
{
	fprintf(stderr, "usage: kiosk_load register URL TOKEN PAY_POINT N OUT\n"
			"       kiosk_load templates URL KIOSKS BENS THREADS\n"
			"       kiosk_load collect URL KIOSKS ITEMS [-d SECONDS] [-w SECONDS] [-k THINK_MS]\n"
			"       kiosk_load me URL KIOSKS [-d SECONDS] [-w SECONDS]\n"
			"       kiosk_load events URL KIOSKS NCOLL NGRIEV SKIP OUT\n"
			"       kiosk_load offline URL KIOSKS EVENTS EXPECT\n");
	return 2;
}

/* A short description of a failed answer for "first_failure" (no personal data: bodies of core's errors
 * hold reasons and messages, not records). */
static void describe(char *out, size_t cap, const char *what, hf_err err, const struct hf_httpc_resp *r)
{
	if (err)
		snprintf(out, cap, "%s: %s", what, hf_err_name(err));
	else
		snprintf(out, cap, "%s: HTTP %ld %.200s", what, r->status, hf_buf_cstr(&r->body));
}

/* ---- register */

/* A POST with the staff session TOKEN ("" for none) and, when from is not NULL, an X-Forwarded-For: core
 * trusts the bench's loopback as its proxy (auth.trusted_proxy), so each terminal enrols from an address of
 * its own, as 200 terminals in the field do (the enrolment route is throttled per address). */
static hf_err staff_post(struct hf_httpc *h, const char *token, const char *from, const char *path, const char *body,
			 struct hf_httpc_resp *out)
{
	char url[600], auth[600], xff[80];
	if ((size_t)snprintf(url, sizeof(url), "%s/api/v1/%s", g_base, path) >= sizeof(url) ||
	    (size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >= sizeof(auth)) {
		hf_buf_init(&out->body, 1);
		return HF_EINVAL;
	}
	snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", from ? from : "");
	const char *hdrs[4] = {"Accept: application/json", NULL, NULL, NULL};
	size_t nh = 1;
	if (token[0])
		hdrs[nh++] = auth;
	if (from)
		hdrs[nh++] = xff;
	return hf_httpc_post(h, url, "application/json", body, strlen(body), hdrs, TIMEOUT_MS, RESP_MAX, out);
}

static int run_register(int argc, char **argv)
{
	double nd = 0;
	if (argc != 7 || !num(argv[5], 1, 10000, &nd))
		return bad_usage();
	const char *token = argv[3], *pay_point = argv[4], *outp = argv[6];
	int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	struct hf_httpc *h = hf_httpc_new();
	int rc = 1;
	if (!out || !h) {
		fprintf(stderr, "kiosk_load: cannot write %s\n", outp);
		if (fd >= 0 && !out)
			close(fd);
		goto out_close;
	}
	for (long i = 0; i < (long)nd; i++) {
		char kno[HF_REQSIGN_KIOSK_NO_MAX + 1], fail[FAIL_MAX];
		json_t *reg_body = json_pack("{s:s}", "pay_point", pay_point);
		char *text = json_dumps(reg_body, JSON_COMPACT);
		json_decref(reg_body);
		struct hf_httpc_resp r;
		hf_err err = staff_post(h, token, NULL, "kiosks", text, &r);
		free(text);
		json_t *j = err ? NULL : resp_json(&r);
		const char *no = json_string_value(json_object_get(j, "kiosk_no"));
		const char *code = json_string_value(json_object_get(j, "enrolment_code"));
		if (err || r.status != 201 || !no || !code) {
			describe(fail, sizeof(fail), "POST /api/v1/kiosks", err, &r);
			fprintf(stderr, "kiosk_load: %s\n", fail);
			json_decref(j);
			hf_buf_release(&r.body);
			goto out_close;
		}
		hf_buf_release(&r.body);
		uint8_t seed[HF_REQSIGN_SEED_LEN], pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN];
		char pk_b64[HF_REQSIGN_PK_B64_LEN + 1], hex[2 * HF_REQSIGN_SEED_LEN + 1];
		hf_random_bytes(seed, sizeof(seed));
		err = hf_reqsign_keypair_from_seed(seed, pk, sk);
		sodium_memzero(sk, sizeof(sk));
		hf_reqsign_pubkey_encode(pk, pk_b64);
		hf_hex(seed, sizeof(seed), hex);
		sodium_memzero(seed, sizeof(seed));
		json_t *eb = json_pack("{s:s, s:s, s:s}", "kiosk_no", no, "enrolment_code", code, "public_key", pk_b64);
		text = json_dumps(eb, JSON_COMPACT);
		json_decref(eb);
		hf_strlcpy(kno, no, sizeof(kno));
		json_decref(j);
		char from[32];
		snprintf(from, sizeof(from), "10.77.%ld.%ld", i / 250, i % 250 + 1);
		if (!err)
			err = staff_post(h, "", from, "kiosks/enrol", text, &r);
		else
			hf_buf_init(&r.body, 1);
		free(text);
		if (err || r.status != 200) {
			describe(fail, sizeof(fail), "POST /api/v1/kiosks/enrol", err, &r);
			fprintf(stderr, "kiosk_load: %s\n", fail);
			hf_buf_release(&r.body);
			sodium_memzero(hex, sizeof(hex));
			goto out_close;
		}
		hf_buf_release(&r.body);
		fprintf(out, "%s %s\n", kno, hex);
		sodium_memzero(hex, sizeof(hex));
	}
	rc = 0;
out_close:
	if (out && fclose(out) != 0)
		rc = 1;
	hf_httpc_free(h);
	return rc;
}

/* ---- templates */

static struct {
	struct kiosk *station;
	char (*bens)[BEN_MAX];
	size_t n_bens;
	atomic_size_t next;
	uint8_t seal_pk[crypto_box_PUBLICKEYBYTES];
	atomic_ulong enrolled, failed;
	pthread_mutex_t mu;
	char first_fail[FAIL_MAX];
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fail_note(pthread_mutex_t *mu, char *first, size_t cap, const char *text)
{
	pthread_mutex_lock(mu);
	if (!first[0])
		hf_strlcpy(first, text, cap);
	pthread_mutex_unlock(mu);
}

static void *templates_main(void *arg)
{
	(void)arg;
	struct hf_httpc *h = hf_httpc_new();
	HF_ASSERT(h != NULL);
	uint8_t plain[TEMPLATE_BYTES], sealed[TEMPLATE_BYTES + crypto_box_SEALBYTES];
	char *b64 = hf_xmalloc(sodium_base64_ENCODED_LEN(sizeof(sealed), sodium_base64_VARIANT_ORIGINAL));
	for (;;) {
		size_t i = atomic_fetch_add(&T.next, 1);
		if (i >= T.n_bens)
			break;
		/* libfprint's serialisation starts with "FP3"; the rest is opaque to core. */
		hf_random_bytes(plain, sizeof(plain));
		memcpy(plain, "FP3", 3);
		HF_ASSERT(crypto_box_seal(sealed, plain, sizeof(plain), T.seal_pk) == 0);
		sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(sizeof(sealed), sodium_base64_VARIANT_ORIGINAL), sealed,
				  sizeof(sealed), sodium_base64_VARIANT_ORIGINAL);
		json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ben_no", T.bens[i], "finger", "right_thumb", "driver",
				      "virtual_image", "device", "bench", "format", "fprint3", "sealed", b64);
		char *text = json_dumps(b, JSON_COMPACT);
		json_decref(b);
		struct hf_httpc_resp r;
		hf_err err = kiosk_call(h, T.station, "POST", "kiosk/templates", text, &r);
		/* Setup, not a measurement: a 503 ("try again shortly": a deadlock or lock wait was rolled back)
		 * is tried again, as a station would, a few times. */
		for (int again = 0; again < 5 && !err && r.status == 503; again++) {
			hf_buf_release(&r.body);
			err = kiosk_call(h, T.station, "POST", "kiosk/templates", text, &r);
		}
		free(text);
		if (!err && r.status == 201) {
			atomic_fetch_add(&T.enrolled, 1);
		} else {
			char fail[FAIL_MAX];
			describe(fail, sizeof(fail), "POST kiosk/templates", err, &r);
			fail_note(&T.mu, T.first_fail, sizeof(T.first_fail), fail);
			atomic_fetch_add(&T.failed, 1);
		}
		hf_buf_release(&r.body);
	}
	free(b64);
	hf_httpc_free(h);
	return NULL;
}

static int run_templates(int argc, char **argv)
{
	double threads = 0;
	size_t nk = 0;
	if (argc != 6 || !num(argv[5], 1, 64, &threads))
		return bad_usage();
	T.station = kiosks_load(argv[3], &nk);
	FILE *f = fopen(argv[4], "re");
	if (!T.station || !f) {
		fprintf(stderr, "kiosk_load: cannot read %s or %s\n", argv[3], argv[4]);
		if (f)
			fclose(f);
		return 1;
	}
	size_t cap = 1024;
	T.bens = hf_xcalloc(cap, sizeof(*T.bens));
	char line[128];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n \t")] = '\0';
		if (!line[0] || strlen(line) >= BEN_MAX)
			continue;
		if (T.n_bens == cap) {
			cap *= 2;
			T.bens = hf_xrealloc(T.bens, cap * sizeof(*T.bens));
		}
		hf_strlcpy(T.bens[T.n_bens++], line, BEN_MAX);
	}
	fclose(f);
	/* Core's seal_pk, as the station gets it. */
	struct hf_httpc *h = hf_httpc_new();
	HF_ASSERT(h != NULL);
	struct hf_httpc_resp r;
	hf_err err = kiosk_call(h, T.station, "GET", "kiosk/me", NULL, &r);
	json_t *me = err ? NULL : resp_json(&r);
	const char *seal = json_string_value(json_object_get(me, "seal_pk"));
	size_t pk_len = 0;
	if (err || r.status != 200 || !seal ||
	    sodium_base642bin(T.seal_pk, sizeof(T.seal_pk), seal, strlen(seal), NULL, &pk_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    pk_len != sizeof(T.seal_pk)) {
		char fail[FAIL_MAX];
		describe(fail, sizeof(fail), "GET kiosk/me", err, &r);
		fprintf(stderr, "kiosk_load: no seal_pk: %s\n", fail);
		json_decref(me);
		hf_buf_release(&r.body);
		hf_httpc_free(h);
		return 1;
	}
	json_decref(me);
	hf_buf_release(&r.body);
	hf_httpc_free(h);
	int64_t t0 = hf_mono_us();
	pthread_t th[64];
	int started = 0;
	for (int i = 0; i < (int)threads; i++)
		if (pthread_create(&th[started], NULL, templates_main, NULL) == 0)
			started++;
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	double secs = (double)(hf_mono_us() - t0) / 1e6;
	printf("BENCH mode=templates enrolled=%lu failed=%lu seconds=%.3f rate=%.1f\n", atomic_load(&T.enrolled),
	       atomic_load(&T.failed), secs, secs > 0 ? (double)atomic_load(&T.enrolled) / secs : 0.0);
	if (T.first_fail[0])
		printf("first_failure: %s\n", T.first_fail);
	bool ok = started > 0 && atomic_load(&T.failed) == 0 && atomic_load(&T.enrolled) == T.n_bens;
	free(T.bens);
	free(T.station);
	return ok ? 0 : 1;
}

/* ---- collect and me: one thread per kiosk */

enum load_mode { LOAD_COLLECT, LOAD_ME };

static struct {
	enum load_mode mode;
	int64_t t_meas, t_end; /* monotonic us: the measured window */
	double duration_s, warmup_s, think_ms;
	struct item *items; /* collect: the payments, each taken once */
	size_t n_items;
	atomic_size_t next_item;
} L = {.duration_s = 15, .warmup_s = 3};

struct worker {
	pthread_t th;
	struct kiosk *k;
	struct hist first, second; /* collect: verification, collection; me: the GETs (first) */
	uint64_t done, ok_total, failures; /* done: inside the window; ok_total: every right answer */
	bool exhausted;
	uint64_t rng;
	char first_fail[FAIL_MAX];
};

/* Waits lo..hi times the mean think time (uniform), not past the end of the run. */
static void think(struct worker *w, double lo, double hi)
{
	if (L.think_ms <= 0)
		return;
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	double f = lo + (hi - lo) * (double)(w->rng >> 11) / (double)(1ULL << 53);
	int64_t until = hf_mono_us() + (int64_t)(L.think_ms * f * 1000.0);
	if (until > L.t_end)
		until = L.t_end;
	for (int64_t now = hf_mono_us(); now < until; now = hf_mono_us()) {
		struct timespec ts = {.tv_sec = (until - now) / 1000000, .tv_nsec = (long)((until - now) % 1000000) * 1000};
		nanosleep(&ts, NULL);
	}
}

static bool in_window(int64_t t) { return t >= L.t_meas && t < L.t_end; }

static void worker_fail(struct worker *w, const char *what, hf_err err, const struct hf_httpc_resp *r)
{
	w->failures++;
	if (!w->first_fail[0]) {
		char d[FAIL_MAX - 40];
		describe(d, sizeof(d), what, err, r);
		snprintf(w->first_fail, sizeof(w->first_fail), "kiosk %s: %s", w->k->no, d);
	}
}

/* One collection as a pay-point kiosk does it once the finger matched; true when both answers were right. */
static bool collect_one(struct worker *w, struct hf_httpc *h, const struct item *it)
{
	char body[512], rid[37];
	snprintf(body, sizeof(body), "{\"ben_no\":\"%s\",\"result\":\"match\",\"attempt\":1,\"driver\":\"virtual_image\"}",
		 it->ben);
	struct hf_httpc_resp r;
	int64_t t0 = hf_mono_us();
	hf_err err = kiosk_call(h, w->k, "POST", "kiosk/verifications", body, &r);
	int64_t t1 = hf_mono_us();
	json_t *j = err ? NULL : resp_json(&r);
	const char *tok = json_string_value(json_object_get(j, "verification"));
	if (err || r.status != 201 || !tok || strlen(tok) < 22 || strlen(tok) > 64) {
		worker_fail(w, "POST kiosk/verifications", err, &r);
		json_decref(j);
		hf_buf_release(&r.body);
		return false;
	}
	if (in_window(t1))
		hist_add(&w->first, (uint64_t)(t1 - t0));
	uuid_new(rid);
	snprintf(body, sizeof(body), "{\"payment\":\"%s\",\"ben_no\":\"%s\",\"verification\":\"%s\",\"request_id\":\"%s\"}",
		 it->payment, it->ben, tok, rid);
	json_decref(j);
	hf_buf_release(&r.body);
	t0 = hf_mono_us();
	err = kiosk_call(h, w->k, "POST", "kiosk/collections", body, &r);
	t1 = hf_mono_us();
	j = err ? NULL : resp_json(&r);
	const char *st = json_string_value(json_object_get(j, "status"));
	const char *pay = json_string_value(json_object_get(j, "payment"));
	const char *receipt = json_string_value(json_object_get(j, "receipt"));
	bool ok = !err && r.status == 201 && st && strcmp(st, "collected") == 0 && pay && strcmp(pay, it->payment) == 0 &&
		  receipt && receipt[0];
	if (!ok)
		worker_fail(w, "POST kiosk/collections", err, &r);
	else
		w->ok_total++;
	if (ok && in_window(t1)) {
		hist_add(&w->second, (uint64_t)(t1 - t0));
		w->done++;
	}
	json_decref(j);
	hf_buf_release(&r.body);
	return ok;
}

static void me_one(struct worker *w, struct hf_httpc *h)
{
	struct hf_httpc_resp r;
	int64_t t0 = hf_mono_us();
	hf_err err = kiosk_call(h, w->k, "GET", "kiosk/me", NULL, &r);
	int64_t t1 = hf_mono_us();
	json_t *j = err ? NULL : resp_json(&r);
	const char *no = json_string_value(json_object_get(j, "kiosk_no"));
	if (err || r.status != 200 || !no || strcmp(no, w->k->no) != 0) {
		worker_fail(w, "GET kiosk/me", err, &r);
	} else if (in_window(t1)) {
		hist_add(&w->first, (uint64_t)(t1 - t0));
		w->done++;
	}
	json_decref(j);
	hf_buf_release(&r.body);
}

static void *load_main(void *arg)
{
	struct worker *w = arg;
	struct hf_httpc *h = hf_httpc_new();
	HF_ASSERT(h != NULL);
	think(w, 0, 1);
	while (hf_mono_us() < L.t_end) {
		if (L.mode == LOAD_ME) {
			me_one(w, h);
			continue;
		}
		size_t i = atomic_fetch_add(&L.next_item, 1);
		if (i >= L.n_items) {
			w->exhausted = true;
			break;
		}
		(void)collect_one(w, h, &L.items[i]);
		think(w, 0.5, 1.5);
	}
	hf_httpc_free(h);
	return NULL;
}

/* ITEMS: "BEN_NO PAYMENT" lines. */
static bool items_load(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t cap = 1024;
	L.items = hf_xcalloc(cap, sizeof(*L.items));
	char line[128], ben[64], pay[64];
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %63s", ben, pay) != 2 || strlen(ben) >= BEN_MAX || strlen(pay) >= PAYMENT_MAX ||
		    strspn(ben, "0123456789") != strlen(ben) || strspn(pay, "0123456789") != strlen(pay))
			continue;
		if (L.n_items == cap) {
			cap *= 2;
			L.items = hf_xrealloc(L.items, cap * sizeof(*L.items));
		}
		hf_strlcpy(L.items[L.n_items].ben, ben, BEN_MAX);
		hf_strlcpy(L.items[L.n_items].payment, pay, PAYMENT_MAX);
		L.n_items++;
	}
	fclose(f);
	return L.n_items > 0;
}

static int run_load(int argc, char **argv)
{
	L.mode = strcmp(argv[1], "collect") == 0 ? LOAD_COLLECT : LOAD_ME;
	int first_opt = L.mode == LOAD_COLLECT ? 5 : 4;
	if (argc < first_opt)
		return bad_usage();
	for (int i = first_opt; i < argc; i += 2) {
		if (i + 1 >= argc)
			return bad_usage();
		if (strcmp(argv[i], "-d") == 0 && num(argv[i + 1], 0.1, 3600, &L.duration_s))
			continue;
		if (strcmp(argv[i], "-w") == 0 && num(argv[i + 1], 0, 3600, &L.warmup_s))
			continue;
		if (strcmp(argv[i], "-k") == 0 && num(argv[i + 1], 0, 600000, &L.think_ms))
			continue;
		return bad_usage();
	}
	size_t nk = 0;
	struct kiosk *k = kiosks_load(argv[3], &nk);
	if (!k) {
		fprintf(stderr, "kiosk_load: no usable \"KIOSK_NO SEED_HEX\" line in %s\n", argv[3]);
		return 1;
	}
	if (L.mode == LOAD_COLLECT && !items_load(argv[4])) {
		fprintf(stderr, "kiosk_load: no usable \"BEN_NO PAYMENT\" line in %s\n", argv[4]);
		return 1;
	}
	int64_t t0 = hf_mono_us();
	L.t_meas = t0 + (int64_t)(L.warmup_s * 1e6);
	L.t_end = L.t_meas + (int64_t)(L.duration_s * 1e6);
	struct worker *w = hf_xcalloc(nk, sizeof(*w));
	size_t started = 0;
	for (size_t i = 0; i < nk; i++) {
		w[i].k = &k[i];
		w[i].rng = (0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ (uint64_t)hf_now_ms()) | 1; /* xorshift: never 0 */
		if (pthread_create(&w[i].th, NULL, load_main, &w[i]) != 0) {
			fprintf(stderr, "kiosk_load: cannot start the thread of kiosk %zu\n", i);
			break;
		}
		started++;
	}
	struct hist *a = hf_xcalloc(1, sizeof(*a)), *b = hf_xcalloc(1, sizeof(*b));
	uint64_t done = 0, ok_total = 0, failures = 0, exhausted = 0;
	const char *first_fail = "";
	for (size_t i = 0; i < started; i++) {
		pthread_join(w[i].th, NULL);
		hist_merge(a, &w[i].first);
		hist_merge(b, &w[i].second);
		done += w[i].done;
		ok_total += w[i].ok_total;
		failures += w[i].failures;
		exhausted += w[i].exhausted;
		if (!first_fail[0] && w[i].first_fail[0])
			first_fail = w[i].first_fail;
	}
	if (started < nk)
		failures++;
	if (L.mode == LOAD_ME)
		printf("BENCH mode=me kiosks=%zu seconds=%.3f requests=%llu rps=%.1f failures=%llu p50_us=%llu p99_us=%llu"
		       " max_us=%llu\n",
		       nk, L.duration_s, (unsigned long long)done, (double)done / L.duration_s,
		       (unsigned long long)failures, (unsigned long long)hist_pct(a, 50),
		       (unsigned long long)hist_pct(a, 99), (unsigned long long)a->max);
	else
		printf("BENCH mode=collect kiosks=%zu think_ms=%.0f seconds=%.3f collections=%llu collections_per_s=%.1f collected_total=%llu"
		       " failures=%llu exhausted=%llu items_left=%zu verify_n=%llu verify_p50_us=%llu verify_p99_us=%llu verify_max_us=%llu"
		       " collect_p50_us=%llu collect_p99_us=%llu collect_max_us=%llu\n",
		       nk, L.think_ms, L.duration_s, (unsigned long long)done, (double)done / L.duration_s, (unsigned long long)ok_total,
		       (unsigned long long)failures, (unsigned long long)exhausted,
		       L.n_items - (atomic_load(&L.next_item) < L.n_items ? atomic_load(&L.next_item) : L.n_items),
		       (unsigned long long)a->n,
		       (unsigned long long)hist_pct(a, 50), (unsigned long long)hist_pct(a, 99),
		       (unsigned long long)a->max, (unsigned long long)hist_pct(b, 50),
		       (unsigned long long)hist_pct(b, 99), (unsigned long long)b->max);
	if (first_fail[0])
		printf("first_failure: %s\n", first_fail);
	for (size_t i = 0; i < nk; i++)
		sodium_memzero(k[i].sk, sizeof(k[i].sk));
	free(L.items);
	free(a);
	free(b);
	free(w);
	free(k);
	return 0;
}

/* ---- events: what a terminal's offline queue holds after a day without core */

static int cmp_payment(const void *x, const void *y)
{
	const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	long long pa = strtoll(json_string_value(json_object_get(a, "payment")), NULL, 10);
	long long pb = strtoll(json_string_value(json_object_get(b, "payment")), NULL, 10);
	return (pa > pb) - (pa < pb);
}

static int run_events(int argc, char **argv)
{
	double ncoll = 0, ngriev = 0, skip = 0;
	if (argc != 8 || !num(argv[4], 0, 100000, &ncoll) || !num(argv[5], 0, 100000, &ngriev) ||
	    !num(argv[6], 0, 100000, &skip))
		return bad_usage();
	size_t nk = 0;
	struct kiosk *k = kiosks_load(argv[3], &nk);
	if (!k) {
		fprintf(stderr, "kiosk_load: no usable kiosk in %s\n", argv[3]);
		return 1;
	}
	int rc = 1;
	json_t *j = NULL, *a = NULL;
	json_t **items = NULL;
	FILE *out = NULL;
	struct hf_httpc *h = hf_httpc_new();
	HF_ASSERT(h != NULL);
	struct hf_httpc_resp r;
	hf_err err = kiosk_call(h, k, "GET", "kiosk/allowance", NULL, &r);
	/* The events are made after the allowance was issued, as on a terminal: "at" no earlier than now. */
	int64_t after_ms = hf_now_ms();
	j = err ? NULL : resp_json(&r);
	const char *text = json_string_value(json_object_get(j, "allowance_text"));
	json_error_t je;
	a = text ? json_loads(text, 0, &je) : NULL;
	const char *aid = json_string_value(json_object_get(a, "id"));
	json_t *arr = json_object_get(a, "items");
	if (err || r.status != 200 || !aid || !json_is_array(arr)) {
		char fail[FAIL_MAX];
		describe(fail, sizeof(fail), "GET kiosk/allowance", err, &r);
		fprintf(stderr, "kiosk_load: no allowance: %s\n", fail);
		goto out_free;
	}
	size_t n = json_array_size(arr);
	items = hf_xcalloc(n + 1, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		items[i] = json_array_get(arr, i);
		if (!json_string_value(json_object_get(items[i], "payment")) ||
		    !json_string_value(json_object_get(items[i], "ben_no")) ||
		    !json_is_integer(json_object_get(items[i], "amount"))) {
			fprintf(stderr, "kiosk_load: allowance item %zu lacks payment, ben_no or amount\n", i);
			goto out_free;
		}
	}
	qsort(items, n, sizeof(*items), cmp_payment);
	if ((size_t)skip + (size_t)ncoll > n) {
		fprintf(stderr, "kiosk_load: the allowance holds %zu payments; %zu from the %zu-th wanted\n", n,
			(size_t)ncoll, (size_t)skip);
		goto out_free;
	}
	out = fopen(argv[7], "we");
	if (!out) {
		fprintf(stderr, "kiosk_load: cannot write %s\n", argv[7]);
		goto out_free;
	}
	/* kiosk/flow.c stamps events in whole seconds: the next second after the allowance came. */
	time_t at_s = (time_t)((after_ms + 999) / 1000);
	struct tm tm;
	char at[32];
	HF_ASSERT(gmtime_r(&at_s, &tm) != NULL);
	HF_ASSERT(strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
	size_t total = (size_t)ncoll + (size_t)ngriev, c = 0;
	for (size_t e = 0; e < total; e++) {
		char id[37];
		uuid_new(id);
		json_t *ev;
		/* Grievances spread evenly among the collections. */
		bool griev = (e + 1) * (size_t)ngriev / total > e * (size_t)ngriev / total;
		if (griev) {
			ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "category", "other", "language", "en", "id", id, "type",
				       "grievance", "at", at);
		} else {
			json_t *it = items[(size_t)skip + c++];
			char receipt[80];
			snprintf(receipt, sizeof(receipt), "K-%s-%lld", k->no, (long long)(after_ms + (int64_t)e));
			ev = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s, s:O}", "id", id, "type", "collection", "at",
				       at, "allowance", aid, "payment", json_object_get(it, "payment"), "ben_no",
				       json_object_get(it, "ben_no"), "method", "fingerprint", "receipt", receipt, "amount",
				       json_object_get(it, "amount"));
		}
		char *line = json_dumps(ev, JSON_COMPACT);
		json_decref(ev);
		HF_ASSERT(line != NULL);
		fprintf(out, "%s\n", line);
		free(line);
	}
	printf("BENCH mode=events allowance=%s items=%zu collections=%zu grievances=%zu\n", aid, n, c, total - c);
	rc = 0;
out_free:
	if (out && fclose(out) != 0)
		rc = 1;
	free(items);
	json_decref(a);
	json_decref(j);
	hf_buf_release(&r.body);
	hf_httpc_free(h);
	free(k);
	return rc;
}

/* ---- offline: the events POSTed straight to core, 100 per request */

static int run_offline(int argc, char **argv)
{
	if (argc != 6)
		return bad_usage();
	const char *expect = argv[5];
	size_t nk = 0;
	struct kiosk *k = kiosks_load(argv[3], &nk);
	FILE *f = fopen(argv[4], "re");
	if (!k || !f) {
		fprintf(stderr, "kiosk_load: cannot read %s or %s\n", argv[3], argv[4]);
		if (f)
			fclose(f);
		free(k);
		return 1;
	}
	/* Every event read first: the clock runs only over the requests. */
	size_t n = 0, cap = 1024;
	char **lines = hf_xcalloc(cap, sizeof(*lines));
	char *line = hf_xmalloc(EVENT_LINE_MAX);
	while (fgets(line, EVENT_LINE_MAX, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		if (n == cap) {
			cap *= 2;
			lines = hf_xrealloc(lines, cap * sizeof(*lines));
		}
		lines[n++] = hf_xstrdup(line);
	}
	free(line);
	fclose(f);
	struct hf_httpc *h = hf_httpc_new();
	HF_ASSERT(h != NULL);
	size_t answered = 0, unexpected = 0, requests = 0;
	char first[FAIL_MAX] = "";
	int64_t t0 = hf_mono_us();
	for (size_t i = 0; i < n; i += BATCH) {
		size_t m = n - i < BATCH ? n - i : BATCH;
		struct hf_buf body;
		hf_buf_init(&body, 2 * 1024 * 1024);
		hf_err err = hf_buf_append_str(&body, "{\"events\":[");
		for (size_t e = 0; e < m && !err; e++)
			err = hf_buf_appendf(&body, "%s%s", e ? "," : "", lines[i + e]);
		if (!err)
			err = hf_buf_append_str(&body, "]}");
		struct hf_httpc_resp r;
		if (!err)
			err = kiosk_call(h, k, "POST", "kiosk/offline-events", hf_buf_cstr(&body), &r);
		else
			hf_buf_init(&r.body, 1);
		hf_buf_release(&body);
		requests++;
		json_t *j = err ? NULL : resp_json(&r);
		json_t *res = json_object_get(j, "results");
		if (err || r.status != 200 || json_array_size(res) != m) {
			if (!first[0])
				describe(first, sizeof(first), "POST kiosk/offline-events", err, &r);
			unexpected += m;
		} else {
			for (size_t e = 0; e < m; e++) {
				json_t *o = json_array_get(res, e);
				const char *st = json_string_value(json_object_get(o, "status"));
				json_error_t je;
				json_t *ev = json_loads(lines[i + e], 0, &je);
				const char *want_id = json_string_value(json_object_get(ev, "id"));
				const char *id = json_string_value(json_object_get(o, "id"));
				answered++;
				if (!st || strcmp(st, expect) != 0 || !id || !want_id || strcmp(id, want_id) != 0) {
					unexpected++;
					if (!first[0]) {
						char *t = json_dumps(o, JSON_COMPACT);
						snprintf(first, sizeof(first), "event %zu: %.300s", i + e, t ? t : "?");
						free(t);
					}
				}
				json_decref(ev);
			}
		}
		json_decref(j);
		hf_buf_release(&r.body);
	}
	double secs = (double)(hf_mono_us() - t0) / 1e6;
	printf("BENCH mode=offline events=%zu requests=%zu answered=%zu unexpected=%zu expect=%s seconds=%.3f"
	       " events_per_s=%.1f\n",
	       n, requests, answered, unexpected, expect, secs, secs > 0 ? (double)n / secs : 0.0);
	if (first[0])
		printf("first_failure: %s\n", first);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	hf_httpc_free(h);
	free(k);
	return unexpected == 0 && answered == n && n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 4)
		return bad_usage();
	hf_httpc_global_init();
	if (hf_crypto_init() != HF_OK)
		return 1;
	if (!hf_strlcpy(g_base, argv[2], sizeof(g_base)))
		return bad_usage();
	size_t bl = strlen(g_base);
	while (bl > 0 && g_base[bl - 1] == '/')
		g_base[--bl] = '\0';
	if (strcmp(argv[1], "register") == 0)
		return run_register(argc, argv);
	if (strcmp(argv[1], "templates") == 0)
		return run_templates(argc, argv);
	if (strcmp(argv[1], "collect") == 0 || strcmp(argv[1], "me") == 0)
		return run_load(argc, argv);
	if (strcmp(argv[1], "events") == 0)
		return run_events(argc, argv);
	if (strcmp(argv[1], "offline") == 0)
		return run_offline(argc, argv);
	return bad_usage();
}
