/* test_kiosk_reader.c - the kiosk's fingerprint reader (kiosk/reader.c) against libfprint's own virtual
 * drivers, the same library code a real reader goes through.
 *
 * virtual_image is an image sensor fed 8-bit grey images over a unix socket, with libfprint's NBIS minutiae
 * extraction and bozorth3 matching on the host: the four NIST prints of tests/data/fingerprints, each
 * enrolled from five impressions made here (rotations of -10..+10 degrees, shifts, crops) and verified with
 * an impression the enrolment never saw; every other finger must be refused. virtual_device is scripted
 * (SCAN id, RETRY n, ERROR n, UNPLUG), which makes retries, device errors and unplugs deterministic.
 *
 * The socket paths are set in FP_VIRTUAL_IMAGE / FP_VIRTUAL_DEVICE (in a private temporary folder) before a
 * reader is opened, and FP_DRIVERS_WHITELIST keeps a real reader plugged into a developer's machine out of
 * the way. A feeder thread answers the reader's requests for a finger (kiosk_fp_feed.h): nothing here waits
 * on a timer for the reader to be ready.
 */
#include "hf_test.h"

#include "kiosk_fp_feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_buf.h"
#include "hf_log.h"
#include "reader.h"

#define DATA_DIR "tests/data/fingerprints"
#define N_FINGERS 4
#define OP_MS 10000 /* deadline of an operation that is expected to complete */

static const char *const FINGERS[N_FINGERS] = {"arch", "loop-right", "tented_arch", "whorl"};

/* The five impressions of an enrolment, and the unseen one verified against it. */
static const struct variant {
	double deg;
	int dx, dy, crop;
} ENROL_V[5] = {{0, 0, 0, 4}, {-10, 4, -3, 6}, {10, -5, 4, 6}, {-5, -3, -6, 10}, {5, 6, 5, 10}},
  PROBE_V = {7, -3, 4, 8};

static struct fpf_img g_print[N_FINGERS];
static bool g_have_prints;
static char g_dir[32];
static char g_vi_path[96], g_vd_path[96];
static struct hf_buf g_vd_tpl; /* a template enrolled on virtual_device */

/* The virtual_image reader shared by the image groups, and its feeder. */
static struct reader *g_r;
static struct fpf_feeder g_feed;
static bool g_feeding;
static struct hf_buf g_tpl[N_FINGERS];
static bool g_enrolled[N_FINGERS];

/* ---- helpers ---------------------------------------------------------------------------------------- */

static void env_only(const char *image_sock, const char *device_sock)
{
	/* Changed only while no reader (no thread reading the environment) is open. */
	if (image_sock)
		setenv("FP_VIRTUAL_IMAGE", image_sock, 1);
	else
		unsetenv("FP_VIRTUAL_IMAGE");
	if (device_sock)
		setenv("FP_VIRTUAL_DEVICE", device_sock, 1);
	else
		unsetenv("FP_VIRTUAL_DEVICE");
	unsetenv("FP_VIRTUAL_DEVICE_STORAGE");
}

static struct fpf_img variant_of(int finger, struct variant v)
{
	return fpf_variant(&g_print[finger], v.deg, v.dx, v.dy, v.crop);
}

/* Polls the reader's state until it is want or the deadline passes. */
static bool wait_state(struct reader *r, enum reader_state want, int timeout_ms)
{
	int64_t deadline = hf_mono_ms() + timeout_ms;
	for (;;) {
		if (reader_state(r, NULL, 0) == want)
			return true;
		if (hf_mono_ms() >= deadline)
			return false;
		fpf_nap(5);
	}
}

struct progress {
	int calls;
	int seq[16]; /* stage_done, or -1 for a retry */
	int stages;
};

static void on_progress(void *ud, int stage_done, int stages, bool retry)
{
	struct progress *p = ud;
	if (p->calls < (int)HF_ARRAY_LEN(p->seq))
		p->seq[p->calls] = retry ? -1 : stage_done;
	p->calls++;
	p->stages = stages;
}

static bool progress_is(const struct progress *p, const int *want, int n)
{
	if (p->calls != n)
		return false;
	for (int i = 0; i < n; i++)
		if (p->seq[i] != want[i])
			return false;
	return true;
}

struct verify_call {
	struct reader *r;
	const struct hf_buf *tpl;
	int timeout_ms;
	hf_err err;
	enum reader_match res;
	int64_t elapsed_ms;
	char msg[160];
};

static void *verify_thread(void *p)
{
	struct verify_call *c = p;
	int64_t t0 = hf_mono_ms();
	c->err = reader_verify(c->r, c->tpl->data, c->tpl->len, c->timeout_ms, &c->res, c->msg, sizeof(c->msg));
	c->elapsed_ms = hf_mono_ms() - t0;
	return NULL;
}

/* virtual_image: verify tpl against one impression (handed over). */
static hf_err vi_verify(const struct hf_buf *tpl, struct fpf_img probe, enum reader_match *res, char *msg, size_t cap)
{
	fpf_push_image(&g_feed, probe);
	hf_err err = reader_verify(g_r, tpl->data, tpl->len, OP_MS, res, msg, cap);
	if (err)
		fpf_flush(&g_feed);
	return err;
}

/* ---- no reader ------------------------------------------------------------------------------------- */

static void test_absent(void)
{
	char why[128], msg[160], drv[READER_DRIVER_MAX], dev[READER_DRIVER_MAX];
	struct reader *r = NULL;
	env_only(NULL, NULL);
	int64_t t0 = hf_mono_ms();
	hf_err err = reader_open(&(struct reader_config){.driver = "", .open_timeout_ms = 5000}, &r);
	int64_t took = hf_mono_ms() - t0;
	if (!HF_CHECK_MSG(err == HF_OK && r, "err=%s", hf_err_name(err)))
		return;
	/* A kiosk without a reader starts at once (it says so on screen) rather than after the open timeout. */
	HF_CHECK_MSG(took < 2000, "open took %lld ms", (long long)took);
	HF_CHECK(reader_state(r, why, sizeof(why)) == READER_ABSENT);
	HF_CHECK_MSG(strcmp(why, "no fingerprint reader found") == 0, "why=%s", why);
	reader_identity(r, drv, dev);
	HF_CHECK(drv[0] == '\0' && dev[0] == '\0');
	enum reader_match res = READER_MATCH;
	HF_ASSERT(g_vd_tpl.len > 0); /* test_virtual_device ran first */
	err = reader_verify(r, g_vd_tpl.data, g_vd_tpl.len, 500, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EDEVICE && strstr(msg, "absent"), "err=%s msg=%s", hf_err_name(err), msg);
	struct hf_buf tpl;
	hf_buf_init(&tpl, READER_TEMPLATE_MAX);
	err = reader_enrol(r, 500, NULL, NULL, &tpl, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EDEVICE && tpl.len == 0, "err=%s", hf_err_name(err));
	hf_buf_release(&tpl);
	HF_CHECK(!reader_finger_needed(r, NULL));
	/* One reader per process (libfprint runs on GLib's default main context). */
	struct reader *r2 = NULL;
	HF_CHECK(reader_open(&(struct reader_config){.driver = "", .open_timeout_ms = 100}, &r2) == HF_ECONFLICT);
	reader_close(r);

	/* A driver the config names but the machine does not have: absent, with its own reason. */
	env_only(g_vi_path, NULL);
	err = reader_open(&(struct reader_config){.driver = "elan", .open_timeout_ms = 2000}, &r);
	if (!HF_CHECK(err == HF_OK))
		return;
	HF_CHECK(reader_state(r, why, sizeof(why)) == READER_ABSENT);
	HF_CHECK_MSG(strstr(why, "configured driver"), "why=%s", why);
	reader_close(r);
	reader_close(NULL);
}

/* ---- virtual_device: scripted -------------------------------------------------------------------- */

static hf_err vd_verify(struct reader *r, const struct hf_buf *tpl, const char *cmd, int timeout_ms,
			enum reader_match *res, char *msg, size_t cap)
{
	if (cmd && !fpf_vd_cmd(g_vd_path, cmd, NULL, 0))
		return HF_EIO;
	return reader_verify(r, tpl->data, tpl->len, timeout_ms, res, msg, cap);
}

static void test_virtual_device(void)
{
	char why[128], msg[160], drv[READER_DRIVER_MAX], dev[READER_DRIVER_MAX];
	struct reader *r = NULL;
	env_only(NULL, g_vd_path);
	hf_err err = reader_open(&(struct reader_config){.driver = "virtual_device", .open_timeout_ms = 5000}, &r);
	if (!HF_CHECK(err == HF_OK))
		return;
	if (!HF_CHECK_MSG(reader_state(r, why, sizeof(why)) == READER_READY, "why=%s", why))
		goto out;
	reader_identity(r, drv, dev);
	HF_CHECK_MSG(strcmp(drv, "virtual_device") == 0, "driver=%s", drv);

	/* Enrolment: five scans of one finger with a retry (too short) after the first. */
	static const char *const script[] = {"SCAN alpha", "RETRY 1", "SCAN alpha", "SCAN alpha", "SCAN alpha",
					     "SCAN alpha"};
	for (size_t i = 0; i < HF_ARRAY_LEN(script); i++)
		HF_ASSERT(fpf_vd_cmd(g_vd_path, script[i], NULL, 0));
	struct progress pg = {0};
	struct hf_buf tpl;
	hf_buf_init(&tpl, READER_TEMPLATE_MAX);
	err = reader_enrol(r, OP_MS, on_progress, &pg, &tpl, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK, "err=%s msg=%s", hf_err_name(err), msg);
	static const int want_pg[] = {1, -1, 2, 3, 4, 5};
	HF_CHECK_MSG(progress_is(&pg, want_pg, 6) && pg.stages == 5, "calls=%d", pg.calls);
	HF_CHECK(tpl.len > 3 && memcmp(tpl.data, "FP3", 3) == 0);
	HF_CHECK(reader_state(r, NULL, 0) == READER_READY);

	enum reader_match res = READER_NO_MATCH;
	err = vd_verify(r, &tpl, "SCAN alpha", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "err=%s res=%d msg=%s", hf_err_name(err), res, msg);
	err = vd_verify(r, &tpl, "SCAN beta", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_NO_MATCH, "err=%s res=%d", hf_err_name(err), res);
	err = vd_verify(r, &tpl, "RETRY 1", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_RETRY && strstr(msg, "too short"), "err=%s res=%d msg=%s",
		     hf_err_name(err), res, msg);
	err = vd_verify(r, &tpl, "SCAN alpha", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after a retry: err=%s res=%d", hf_err_name(err), res);

	/* A device error: HF_EDEVICE, the reader FAILED with the reason, reopened within seconds, working. */
	err = vd_verify(r, &tpl, "ERROR 0", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EDEVICE && strstr(msg, "device error"), "err=%s msg=%s", hf_err_name(err), msg);
	enum reader_state st = reader_state(r, why, sizeof(why));
	HF_CHECK_MSG(st == READER_FAILED && strstr(why, "device error"), "state=%d why=%s", st, why);
	HF_CHECK(wait_state(r, READER_READY, 5000));
	err = vd_verify(r, &tpl, "SCAN alpha", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after the error: err=%s res=%d msg=%s", hf_err_name(err),
		     res, msg);

	/* Unplugged while it waits for a finger: HF_EDEVICE at once (not at the deadline), ABSENT, and back
	 * (the next scan finds the virtual device again), with the same templates still good. */
	struct fpf_feeder feed;
	fpf_start(&feed, fpf_reader_armed, r, NULL, g_vd_path);
	fpf_push_vd(&feed, "UNPLUG");
	int64_t t0 = hf_mono_ms();
	err = reader_verify(r, tpl.data, tpl.len, 8000, &res, msg, sizeof(msg));
	int64_t took = hf_mono_ms() - t0;
	st = reader_state(r, why, sizeof(why));
	HF_CHECK_MSG(err == HF_EDEVICE && strstr(msg, "unplugged"), "err=%s msg=%s", hf_err_name(err), msg);
	HF_CHECK_MSG(took < 3000, "unplug reported after %lld ms", (long long)took);
	HF_CHECK_MSG(st == READER_ABSENT && strcmp(why, "reader unplugged") == 0, "state=%d why=%s", st, why);
	HF_CHECK(fpf_drain(&feed, 1000));
	fpf_stop(&feed);
	HF_CHECK(wait_state(r, READER_READY, 5000));
	err = vd_verify(r, &tpl, "SCAN alpha", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after re-plug: err=%s res=%d msg=%s", hf_err_name(err),
		     res, msg);

	/* Nobody presses: HF_ETIMEOUT within the deadline, and the reader is fine afterwards. */
	t0 = hf_mono_ms();
	err = reader_verify(r, tpl.data, tpl.len, 400, &res, msg, sizeof(msg));
	took = hf_mono_ms() - t0;
	HF_CHECK_MSG(err == HF_ETIMEOUT, "err=%s", hf_err_name(err));
	HF_CHECK_MSG(took >= 400 && took < 1400, "timed out after %lld ms", (long long)took);
	printf("# virtual_device: 400 ms deadline, HF_ETIMEOUT after %lld ms\n", (long long)took);
	HF_CHECK(reader_state(r, NULL, 0) == READER_READY);
	err = vd_verify(r, &tpl, "SCAN alpha", OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after a timeout: err=%s res=%d", hf_err_name(err), res);

	hf_buf_reset(&g_vd_tpl);
	HF_ASSERT(hf_buf_append(&g_vd_tpl, tpl.data, tpl.len) == HF_OK);
	hf_buf_release(&tpl);
out:
	reader_close(r);
}

/* ---- virtual_image: real minutiae matching -------------------------------------------------------- */

static void test_image_open(void)
{
	char why[128], drv[READER_DRIVER_MAX], dev[READER_DRIVER_MAX];
	env_only(g_vi_path, NULL);
	int64_t t0 = hf_mono_ms();
	hf_err err = reader_open(&(struct reader_config){.driver = "virtual_image", .open_timeout_ms = 5000}, &g_r);
	int64_t took = hf_mono_ms() - t0;
	if (!HF_CHECK(err == HF_OK && g_r))
		return;
	HF_CHECK_MSG(reader_state(g_r, why, sizeof(why)) == READER_READY, "why=%s", why);
	reader_identity(g_r, drv, dev);
	HF_CHECK_MSG(strcmp(drv, "virtual_image") == 0, "driver=%s", drv);
	printf("# reader_open (virtual_image) took %lld ms\n", (long long)took);
	fpf_start(&g_feed, fpf_reader_armed, g_r, g_vi_path, NULL);
	g_feeding = true;
}

static void test_image_enrol_and_verify(void)
{
	char msg[160];
	if (!g_feeding || !g_have_prints) {
		HF_CHECK_MSG(false, "no virtual_image reader or no prints");
		return;
	}
	for (int f = 0; f < N_FINGERS; f++) {
		for (int i = 0; i < 5; i++)
			fpf_push_image(&g_feed, variant_of(f, ENROL_V[i]));
		struct progress pg = {0};
		int64_t t0 = hf_mono_ms();
		hf_err err = reader_enrol(g_r, OP_MS, on_progress, &pg, &g_tpl[f], msg, sizeof(msg));
		int64_t took = hf_mono_ms() - t0;
		static const int want_pg[] = {1, 2, 3, 4, 5};
		g_enrolled[f] = HF_CHECK_MSG(err == HF_OK, "%s: err=%s msg=%s", FINGERS[f], hf_err_name(err), msg);
		if (!g_enrolled[f]) {
			fpf_flush(&g_feed);
			continue;
		}
		HF_CHECK_MSG(progress_is(&pg, want_pg, 5) && pg.stages == 5, "%s: %d progress calls", FINGERS[f], pg.calls);
		HF_CHECK(fpf_drain(&g_feed, 1000));

		enum reader_match res = READER_NO_MATCH;
		t0 = hf_mono_ms();
		err = vi_verify(&g_tpl[f], variant_of(f, PROBE_V), &res, msg, sizeof(msg));
		int64_t vtook = hf_mono_ms() - t0;
		HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "%s: unseen impression: err=%s res=%d msg=%s",
			     FINGERS[f], hf_err_name(err), res, msg);
		printf("# %s: template %zu bytes, enrol %lld ms, verify %lld ms\n", FINGERS[f], g_tpl[f].len,
		       (long long)took, (long long)vtook);
	}
	/* Every finger against every other person's template: refused. */
	int refused = 0, pairs = 0;
	for (int t = 0; t < N_FINGERS; t++) {
		for (int f = 0; f < N_FINGERS; f++) {
			if (f == t || !g_enrolled[t])
				continue;
			enum reader_match res = READER_MATCH;
			hf_err err = vi_verify(&g_tpl[t], variant_of(f, PROBE_V), &res, msg, sizeof(msg));
			pairs++;
			if (HF_CHECK_MSG(err == HF_OK && res == READER_NO_MATCH, "%s against %s: err=%s res=%d",
					 FINGERS[f], FINGERS[t], hf_err_name(err), res))
				refused++;
		}
	}
	HF_CHECK(pairs == N_FINGERS * (N_FINGERS - 1));
	printf("# cross-finger: %d of %d refused\n", refused, pairs);
}

static void test_image_retry(void)
{
	char msg[160];
	if (!g_enrolled[1])
		return (void)HF_CHECK_MSG(false, "no template to verify against");
	/* A swipe too short: the scan is not usable, the kiosk asks again, and the next press matches. */
	enum reader_match res = READER_MATCH;
	fpf_push_ctl(&g_feed, -1, 1);
	hf_err err = reader_verify(g_r, g_tpl[1].data, g_tpl[1].len, OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_RETRY && strstr(msg, "too short"), "err=%s res=%d msg=%s",
		     hf_err_name(err), res, msg);
	HF_CHECK(fpf_drain(&g_feed, 1000));
	err = vi_verify(&g_tpl[1], variant_of(1, PROBE_V), &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after the retry: err=%s res=%d", hf_err_name(err), res);
}

static void test_image_bad_templates(void)
{
	char msg[160];
	enum reader_match res = READER_MATCH;
	uint64_t req0 = 0, req1 = 0;
	(void)reader_finger_needed(g_r, &req0);

	/* Made on another kind of reader: refused before any scan. */
	HF_ASSERT(g_vd_tpl.len > 0);
	hf_err err = reader_verify(g_r, g_vd_tpl.data, g_vd_tpl.len, OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EINVAL && strstr(msg, "another kind of reader"), "err=%s msg=%s", hf_err_name(err), msg);

	/* Garbage, a damaged template, nothing, too much. */
	unsigned char junk[200];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	err = reader_verify(g_r, junk, sizeof(junk), OP_MS, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EINVAL && strstr(msg, "does not parse"), "garbage: err=%s msg=%s", hf_err_name(err), msg);
	if (g_enrolled[0]) {
		unsigned char *cut = hf_xmalloc(g_tpl[0].len);
		memcpy(cut, g_tpl[0].data, g_tpl[0].len);
		for (size_t i = 8; i < g_tpl[0].len; i += 3)
			cut[i] ^= 0x5a;
		err = reader_verify(g_r, cut, g_tpl[0].len / 2, OP_MS, &res, msg, sizeof(msg));
		HF_CHECK_MSG(err == HF_EINVAL, "damaged: err=%s msg=%s", hf_err_name(err), msg);
		free(cut);
	}
	/* Every prefix of a real template, and each byte near its ends (where the GVariant framing is) flipped in
	 * turn: refused, or, for a flip that leaves a well-formed template (the date, the finger), a scan that
	 * nobody answers - never a crash of the kiosk (libfprint's parser aborts on such input by itself). */
	if (g_enrolled[0]) {
		const struct hf_buf *t = &g_tpl[0];
		int refused = 0, tried = 0, scanned = 0;
		for (size_t n = 0; n < t->len; n += 3, tried++)
			if (reader_verify(g_r, t->data, n, OP_MS, &res, msg, sizeof(msg)) == HF_EINVAL)
				refused++;
		HF_CHECK_MSG(refused == tried, "%d of %d prefixes refused", refused, tried);
		unsigned char *m = hf_xmalloc(t->len);
		refused = tried = 0;
		for (size_t i = 0; i < t->len; i++) {
			if (i >= 48 && i + 48 < t->len)
				continue;
			memcpy(m, t->data, t->len);
			m[i] ^= 0xff;
			err = reader_verify(g_r, m, t->len, 20, &res, msg, sizeof(msg));
			tried++;
			refused += err == HF_EINVAL;
			scanned += err == HF_ETIMEOUT;
		}
		free(m);
		HF_CHECK_MSG(refused + scanned == tried && refused > tried / 2, "flips: %d refused, %d scanned of %d",
			     refused, scanned, tried);
		printf("# damaged templates: %d of %d flips refused, %d well-formed\n", refused, tried, scanned);
		HF_CHECK(wait_state(g_r, READER_READY, 2000));
	}
	(void)reader_finger_needed(g_r, &req0);
	err = reader_verify(g_r, junk, 0, OP_MS, &res, msg, sizeof(msg));
	HF_CHECK(err == HF_EINVAL);
	unsigned char *big = hf_xcalloc(1, READER_TEMPLATE_MAX + 1);
	memcpy(big, "FP3", 3);
	err = reader_verify(g_r, big, READER_TEMPLATE_MAX + 1, OP_MS, &res, msg, sizeof(msg));
	HF_CHECK(err == HF_EINVAL);
	free(big);

	(void)reader_finger_needed(g_r, &req1);
	HF_CHECK_MSG(req1 == req0, "the reader asked for a finger %llu times", (unsigned long long)(req1 - req0));
	HF_CHECK(reader_state(g_r, NULL, 0) == READER_READY);
}

static void test_image_timeout_busy_cancel(void)
{
	char msg[160];
	enum reader_match res;
	if (!g_enrolled[2])
		return (void)HF_CHECK_MSG(false, "no template to verify against");
	/* Nobody presses within 1 s; meanwhile a second caller with a short deadline gets HF_ECONFLICT at its
	 * own deadline, not after the first one's. */
	struct verify_call a = {.r = g_r, .tpl = &g_tpl[2], .timeout_ms = 1000};
	pthread_t th;
	HF_ASSERT(pthread_create(&th, NULL, verify_thread, &a) == 0);
	HF_CHECK(wait_state(g_r, READER_BUSY, 3000));
	int64_t t0 = hf_mono_ms();
	hf_err err = reader_verify(g_r, g_tpl[2].data, g_tpl[2].len, 200, &res, msg, sizeof(msg));
	int64_t took = hf_mono_ms() - t0;
	HF_CHECK_MSG(err == HF_ECONFLICT, "err=%s", hf_err_name(err));
	HF_CHECK_MSG(took >= 200 && took < 800, "second caller waited %lld ms", (long long)took);
	pthread_join(th, NULL);
	HF_CHECK_MSG(a.err == HF_ETIMEOUT, "err=%s", hf_err_name(a.err));
	HF_CHECK_MSG(a.elapsed_ms >= 1000 && a.elapsed_ms < 2000, "timed out after %lld ms", (long long)a.elapsed_ms);
	printf("# virtual_image: 1000 ms deadline, HF_ETIMEOUT after %lld ms; second caller HF_ECONFLICT after %lld ms "
	       "(its deadline 200 ms)\n", (long long)a.elapsed_ms, (long long)took);
	HF_CHECK(reader_state(g_r, NULL, 0) == READER_READY);

	/* reader_cancel from another thread while it waits for a finger. */
	struct verify_call b = {.r = g_r, .tpl = &g_tpl[2], .timeout_ms = OP_MS};
	uint64_t req0 = 0, req = 0;
	(void)reader_finger_needed(g_r, &req0);
	HF_ASSERT(pthread_create(&th, NULL, verify_thread, &b) == 0);
	int64_t deadline = hf_mono_ms() + 3000;
	while (!(reader_finger_needed(g_r, &req) && req > req0) && hf_mono_ms() < deadline)
		fpf_nap(2);
	HF_CHECK(req > req0);
	reader_cancel(g_r);
	pthread_join(th, NULL);
	HF_CHECK_MSG(b.err == HF_ETIMEOUT && b.elapsed_ms < 3000, "err=%s after %lld ms", hf_err_name(b.err),
		     (long long)b.elapsed_ms);

	/* Nothing wedged: the next press matches. */
	err = vi_verify(&g_tpl[2], variant_of(2, PROBE_V), &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after the timeouts: err=%s res=%d msg=%s", hf_err_name(err),
		     res, msg);
}

static void test_image_unplug(void)
{
	char why[128], msg[160];
	enum reader_match res;
	if (!g_enrolled[3])
		return (void)HF_CHECK_MSG(false, "no template to verify against");
	/* The sensor goes away while it waits for a finger. */
	fpf_push_ctl(&g_feed, -5, 0);
	int64_t t0 = hf_mono_ms();
	hf_err err = reader_verify(g_r, g_tpl[3].data, g_tpl[3].len, 8000, &res, msg, sizeof(msg));
	int64_t took = hf_mono_ms() - t0;
	enum reader_state st = reader_state(g_r, why, sizeof(why));
	HF_CHECK_MSG(err == HF_EDEVICE && strstr(msg, "unplugged"), "err=%s msg=%s", hf_err_name(err), msg);
	HF_CHECK_MSG(took < 3000, "unplug reported after %lld ms", (long long)took);
	HF_CHECK_MSG(st == READER_ABSENT && strcmp(why, "reader unplugged") == 0, "state=%d why=%s", st, why);
	err = reader_verify(g_r, g_tpl[3].data, g_tpl[3].len, 300, &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EDEVICE, "while absent: err=%s", hf_err_name(err));
	HF_CHECK(fpf_drain(&g_feed, 1000));
	/* Back: the next scan (a second later) finds and opens it again; templates made before still match. */
	HF_CHECK(wait_state(g_r, READER_READY, 5000));
	err = vi_verify(&g_tpl[3], variant_of(3, PROBE_V), &res, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_OK && res == READER_MATCH, "after re-plug: err=%s res=%d msg=%s", hf_err_name(err), res,
		     msg);
}

static void test_image_close(void)
{
	if (g_feeding)
		fpf_stop(&g_feed);
	g_feeding = false;
	int64_t t0 = hf_mono_ms();
	reader_close(g_r);
	g_r = NULL;
	HF_CHECK_MSG(hf_mono_ms() - t0 < 3000, "close took %lld ms", (long long)(hf_mono_ms() - t0));
}

int main(void)
{
	hf_log_set_level(HF_LOG_WARN);
	hf_test_tmpdir(g_dir, sizeof(g_dir));
	HF_ASSERT(snprintf(g_vi_path, sizeof(g_vi_path), "%s/image.sock", g_dir) < (int)sizeof(g_vi_path));
	HF_ASSERT(snprintf(g_vd_path, sizeof(g_vd_path), "%s/device.sock", g_dir) < (int)sizeof(g_vd_path));
	/* Only the virtual drivers: a real reader on a developer's machine must not answer instead. */
	setenv("FP_DRIVERS_WHITELIST", "virtual_image:virtual_device", 1);
	hf_buf_init(&g_vd_tpl, READER_TEMPLATE_MAX);
	g_have_prints = true;
	for (int f = 0; f < N_FINGERS; f++) {
		char path[128];
		snprintf(path, sizeof(path), DATA_DIR "/%s.pgm", FINGERS[f]);
		g_have_prints = fpf_load_pgm(path, &g_print[f]) && g_have_prints;
		hf_buf_init(&g_tpl[f], READER_TEMPLATE_MAX);
	}
	HF_CHECK_MSG(g_have_prints, "the NIST prints in " DATA_DIR " (run from the repository root)");

	HF_TEST(test_virtual_device);
	if (g_vd_tpl.len > 0)
		HF_TEST(test_absent);
	HF_TEST(test_image_open);
	if (g_r) {
		HF_TEST(test_image_enrol_and_verify);
		HF_TEST(test_image_retry);
		HF_TEST(test_image_bad_templates);
		HF_TEST(test_image_timeout_busy_cancel);
		HF_TEST(test_image_unplug);
		HF_TEST(test_image_close);
	}

	for (int f = 0; f < N_FINGERS; f++) {
		fpf_img_free(&g_print[f]);
		hf_buf_release(&g_tpl[f]);
	}
	hf_buf_release(&g_vd_tpl);
	hf_test_rmtree(g_dir);
	return hf_test_summary();
}
