/* kbench_verify.c - how long the kiosk's fingerprint reader (kiosk/reader.c) takes to open, enrol and
 * verify, on libfprint's virtual_image driver (host-side NBIS minutiae extraction and bozorth3 matching, as
 * for a real image sensor), against the same operations made straight with libfprint's synchronous API in
 * the same process: the baseline says what the reader's thread, job hand-over and deadlines cost.
 *
 *   kbench_verify [-n VERIFICATIONS] [-d PRINTS_DIR]        (defaults: 50, tests/data/fingerprints)
 *
 * The four NIST prints are each enrolled from five generated impressions (rotations, shifts, crops); then
 * VERIFICATIONS genuine verifications (round robin over the fingers, with impressions the enrolment never
 * saw) and every cross-finger pair once. Times are wall clock from the call to its return, including the
 * feeder's reaction to the sensor being armed (it polls every millisecond). A real sensor adds the time a
 * person takes to press, which no benchmark can say.
 *
 * Output: key=value lines (times in ms). Exit 1 when a genuine verification did not match or an impostor
 * was accepted (the figures would not be of what they claim), 2 on a usage or setup error.
 */
#include "hf_base.h"

#include "../unit/kiosk_fp_feed.h"

#include <fprint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_buf.h"
#include "hf_log.h"
#include "reader.h"

#define N_FINGERS 4
#define OP_MS 15000
#define MAX_RUNS 10000

static const char *const FINGERS[N_FINGERS] = {"arch", "loop-right", "tented_arch", "whorl"};

static const struct variant {
	double deg;
	int dx, dy, crop;
} ENROL_V[5] = {{0, 0, 0, 4}, {-10, 4, -3, 6}, {10, -5, 4, 6}, {-5, -3, -6, 10}, {5, 6, 5, 10}},
  /* Unseen impressions, cycled through by the genuine verifications. */
  PROBE_V[4] = {{7, -3, 4, 8}, {-7, 3, -2, 8}, {3, 2, 3, 6}, {-2, -4, 2, 7}};

static struct fpf_img g_prints[N_FINGERS];

static struct fpf_img variant_of(int f, struct variant v)
{
	return fpf_variant(&g_prints[f], v.deg, v.dx, v.dy, v.crop);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct stats {
	double mean, p50, p99, max;
};

/* Nearest-rank percentiles (sorts v). */
static struct stats stats_of(double *v, int n)
{
	struct stats s = {0, 0, 0, 0};
	if (n <= 0)
		return s;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	for (int i = 0; i < n; i++)
		s.mean += v[i];
	s.mean /= n;
	s.p50 = v[(n + 1) / 2 - 1];
	int k = (99 * n + 99) / 100;
	s.p99 = v[k - 1];
	s.max = v[n - 1];
	return s;
}

static double now_ms(void)
{
	return (double)hf_mono_us() / 1000.0;
}

struct result {
	double open_ms;
	double enrol[N_FINGERS];
	double *verify;
	int verify_n, matched;
	double impostor[N_FINGERS * N_FINGERS];
	int impostor_n, refused;
	bool failed; /* an operation returned an error */
};

/* ---- through the reader ------------------------------------------------------------------------------ */

static bool run_reader(const char *sock, int n, struct result *out)
{
	char msg[160];
	struct reader *r = NULL;
	struct hf_buf tpl[N_FINGERS];
	struct fpf_feeder feed;
	bool ok = false;
	for (int f = 0; f < N_FINGERS; f++)
		hf_buf_init(&tpl[f], READER_TEMPLATE_MAX);
	double t0 = now_ms();
	if (reader_open(&(struct reader_config){.driver = "virtual_image", .open_timeout_ms = 5000}, &r) != HF_OK)
		goto out;
	out->open_ms = now_ms() - t0;
	if (reader_state(r, msg, sizeof(msg)) != READER_READY) {
		fprintf(stderr, "kbench_verify: the reader is not ready: %s\n", msg);
		goto out_close;
	}
	fpf_start(&feed, fpf_reader_armed, r, sock, NULL);
	for (int f = 0; f < N_FINGERS; f++) {
		for (int i = 0; i < 5; i++)
			fpf_push_image(&feed, variant_of(f, ENROL_V[i]));
		t0 = now_ms();
		hf_err err = reader_enrol(r, OP_MS, NULL, NULL, &tpl[f], msg, sizeof(msg));
		out->enrol[f] = now_ms() - t0;
		if (err) {
			fprintf(stderr, "kbench_verify: enrol %s: %s (%s)\n", FINGERS[f], hf_err_name(err), msg);
			out->failed = true;
			goto out_feed;
		}
	}
	for (int i = 0; i < n; i++) {
		int f = i % N_FINGERS;
		enum reader_match res = READER_NO_MATCH;
		fpf_push_image(&feed, variant_of(f, PROBE_V[(i / N_FINGERS) % 4]));
		t0 = now_ms();
		hf_err err = reader_verify(r, tpl[f].data, tpl[f].len, OP_MS, &res, msg, sizeof(msg));
		out->verify[out->verify_n++] = now_ms() - t0;
		if (err) {
			fprintf(stderr, "kbench_verify: verify %s: %s (%s)\n", FINGERS[f], hf_err_name(err), msg);
			out->failed = true;
			goto out_feed;
		}
		out->matched += res == READER_MATCH;
	}
	for (int t = 0; t < N_FINGERS; t++) {
		for (int f = 0; f < N_FINGERS; f++) {
			if (f == t)
				continue;
			enum reader_match res = READER_MATCH;
			fpf_push_image(&feed, variant_of(f, PROBE_V[0]));
			t0 = now_ms();
			hf_err err = reader_verify(r, tpl[t].data, tpl[t].len, OP_MS, &res, msg, sizeof(msg));
			out->impostor[out->impostor_n++] = now_ms() - t0;
			if (err) {
				out->failed = true;
				goto out_feed;
			}
			out->refused += res == READER_NO_MATCH;
		}
	}
	ok = true;
out_feed:
	fpf_stop(&feed);
out_close:
	reader_close(r);
out:
	for (int f = 0; f < N_FINGERS; f++)
		hf_buf_release(&tpl[f]);
	return ok;
}

/* ---- straight libfprint (the baseline) ---------------------------------------------------------- */

static pthread_mutex_t g_raw_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_raw_needed;
static uint64_t g_raw_requests;

static void raw_finger_cb(GObject *obj, GParamSpec *ps, gpointer ud)
{
	(void)ps;
	(void)ud;
	bool needed = (fp_device_get_finger_status(FP_DEVICE(obj)) & FP_FINGER_STATUS_NEEDED) != 0;
	pthread_mutex_lock(&g_raw_mu);
	if (needed && !g_raw_needed)
		g_raw_requests++;
	g_raw_needed = needed;
	pthread_mutex_unlock(&g_raw_mu);
}

static bool raw_armed(void *ctx, uint64_t *requests)
{
	(void)ctx;
	pthread_mutex_lock(&g_raw_mu);
	bool needed = g_raw_needed;
	*requests = g_raw_requests;
	pthread_mutex_unlock(&g_raw_mu);
	return needed;
}

static bool run_raw(const char *sock, int n, struct result *out)
{
	GError *err = NULL;
	FpPrint *tpl[N_FINGERS] = {NULL};
	struct fpf_feeder feed;
	bool ok = false, feeding = false;
	double t0 = now_ms();
	FpContext *ctx = fp_context_new();
	GPtrArray *devs = fp_context_get_devices(ctx);
	FpDevice *dev = NULL;
	for (guint i = 0; devs && i < devs->len && !dev; i++)
		if (strcmp(fp_device_get_driver(g_ptr_array_index(devs, i)), "virtual_image") == 0)
			dev = g_ptr_array_index(devs, i);
	if (!dev || !fp_device_open_sync(dev, NULL, &err)) {
		fprintf(stderr, "kbench_verify: baseline: cannot open virtual_image: %s\n", err ? err->message : "none");
		goto out;
	}
	out->open_ms = now_ms() - t0;
	g_signal_connect(dev, "notify::finger-status", G_CALLBACK(raw_finger_cb), NULL);
	fpf_start(&feed, raw_armed, NULL, sock, NULL);
	feeding = true;
	for (int f = 0; f < N_FINGERS; f++) {
		for (int i = 0; i < 5; i++)
			fpf_push_image(&feed, variant_of(f, ENROL_V[i]));
		t0 = now_ms();
		tpl[f] = fp_device_enroll_sync(dev, fp_print_new(dev), NULL, NULL, NULL, &err);
		out->enrol[f] = now_ms() - t0;
		if (!tpl[f]) {
			fprintf(stderr, "kbench_verify: baseline enrol: %s\n", err ? err->message : "?");
			out->failed = true;
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		int f = i % N_FINGERS;
		gboolean match = FALSE;
		fpf_push_image(&feed, variant_of(f, PROBE_V[(i / N_FINGERS) % 4]));
		t0 = now_ms();
		gboolean done = fp_device_verify_sync(dev, tpl[f], NULL, NULL, NULL, &match, NULL, &err);
		out->verify[out->verify_n++] = now_ms() - t0;
		if (!done) {
			fprintf(stderr, "kbench_verify: baseline verify: %s\n", err ? err->message : "?");
			out->failed = true;
			goto out;
		}
		out->matched += match;
	}
	ok = true;
out:
	if (feeding)
		fpf_stop(&feed);
	g_clear_error(&err);
	for (int f = 0; f < N_FINGERS; f++)
		g_clear_object(&tpl[f]);
	if (dev && fp_device_is_open(dev))
		fp_device_close_sync(dev, NULL, NULL);
	g_object_unref(ctx);
	return ok;
}

static void print_stats(const char *prefix, double *v, int n)
{
	struct stats s = stats_of(v, n);
	printf("%s_n=%d\n%s_mean_ms=%.1f\n%s_p50_ms=%.1f\n%s_p99_ms=%.1f\n%s_max_ms=%.1f\n", prefix, n, prefix, s.mean,
	       prefix, s.p50, prefix, s.p99, prefix, s.max);
}

int main(int argc, char **argv)
{
	const char *dir = "tests/data/fingerprints";
	int n = 50;
	for (int i = 1; i < argc; i++) {
		int64_t v = 0;
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc && hf_parse_i64(argv[i + 1], 1, MAX_RUNS, &v) == HF_OK) {
			n = (int)v;
			i++;
		} else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [-n VERIFICATIONS (1-%d)] [-d PRINTS_DIR]\n", argv[0], MAX_RUNS);
			return 2;
		}
	}
	hf_log_set_level(HF_LOG_ERROR);
	for (int f = 0; f < N_FINGERS; f++) {
		char path[512];
		if (snprintf(path, sizeof(path), "%s/%s.pgm", dir, FINGERS[f]) >= (int)sizeof(path) ||
		    !fpf_load_pgm(path, &g_prints[f]))
			return 2;
	}
	char tmp[] = "/tmp/kbench_verify_XXXXXX", sock[64];
	if (!mkdtemp(tmp)) {
		perror("kbench_verify: mkdtemp");
		return 2;
	}
	snprintf(sock, sizeof(sock), "%s/image.sock", tmp);
	setenv("FP_VIRTUAL_IMAGE", sock, 1);
	unsetenv("FP_VIRTUAL_DEVICE");
	unsetenv("FP_VIRTUAL_DEVICE_STORAGE");
	setenv("FP_DRIVERS_WHITELIST", "virtual_image", 1);

	struct result rd = {.verify = hf_xcalloc((size_t)n, sizeof(double))};
	struct result raw = {.verify = hf_xcalloc((size_t)n, sizeof(double))};
	bool ok = run_reader(sock, n, &rd);
	ok = run_raw(sock, n, &raw) && ok;
	unlink(sock);
	rmdir(tmp);

	printf("driver=virtual_image\nfingers=%d\nenrol_impressions=5\n", N_FINGERS);
	printf("reader_open_ms=%.1f\n", rd.open_ms);
	print_stats("reader_enrol", rd.enrol, N_FINGERS);
	print_stats("reader_verify", rd.verify, rd.verify_n);
	printf("reader_verify_matched=%d\n", rd.matched);
	print_stats("reader_impostor", rd.impostor, rd.impostor_n);
	printf("reader_impostor_refused=%d\n", rd.refused);
	printf("raw_open_ms=%.1f\n", raw.open_ms);
	print_stats("raw_enrol", raw.enrol, N_FINGERS);
	double raw_mean = stats_of(raw.verify, raw.verify_n).mean, rd_mean = stats_of(rd.verify, rd.verify_n).mean;
	print_stats("raw_verify", raw.verify, raw.verify_n);
	printf("raw_verify_matched=%d\n", raw.matched);
	printf("verify_ratio_reader_raw=%.3f\n", raw_mean > 0 ? rd_mean / raw_mean : 0.0);
	bool valid = ok && !rd.failed && !raw.failed && rd.matched == n && rd.refused == rd.impostor_n &&
		     raw.matched == n;
	printf("valid=%d\n", valid);
	free(rd.verify);
	free(raw.verify);
	for (int f = 0; f < N_FINGERS; f++)
		fpf_img_free(&g_prints[f]);
	return valid ? 0 : 1;
}
