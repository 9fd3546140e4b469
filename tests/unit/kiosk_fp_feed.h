/* kiosk_fp_feed.h - fingerprint impressions and a feeder for libfprint's virtual drivers, shared by
 * tests/unit/test_kiosk_reader.c and tests/bench/kbench_verify.c (header-only, like hf_test.h).
 *
 * The NIST prints of tests/data/fingerprints are ONE impression per finger; an enrolment needs five, so
 * fpf_variant() makes more with plain C: a rotation about the centre (bilinear), a shift and a crop, the way
 * a finger lands a little differently on each press.
 *
 * The virtual_image driver loses an image sent while it is not waiting for a finger (and the operation then
 * waits for ever), so the feeder never sends on a timer: a message is sent only when reader_finger_needed()
 * (or the baseline's equivalent) says the sensor is armed and the reader has asked for a finger more times
 * than the feeder has answered.
 * It keeps one connection to the virtual_image socket (the driver takes one client at a time; a second is
 * closed at once) and reconnects when the device was re-created after an unplug. virtual_device takes ONE
 * command per connection and closes it once acted upon: fpf_vd_cmd() waits for that close, so commands
 * never overtake each other.
 */
#ifndef KIOSK_FP_FEED_H
#define KIOSK_FP_FEED_H

#include "hf_base.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "reader.h"

#define FPF_DIM_MAX 2000
#define FPF_QUEUE 16
#define FPF_WAIT_MS 15000 /* the longest a message waits for the reader to ask for a finger */

struct fpf_img {
	int w, h;
	unsigned char *px; /* owned, w*h bytes, row-major 8-bit grey */
};

static inline void fpf_img_free(struct fpf_img *im)
{
	free(im->px);
	im->px = NULL;
	im->w = im->h = 0;
}

/* Sleeps ms milliseconds: only ever between two polls of a condition that has its own deadline. */
static inline void fpf_nap(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static inline int fpf_pgm_token(FILE *f, long *out)
{
	int c;
	for (;;) {
		c = fgetc(f);
		if (c == '#') {
			while (c != '\n' && c != EOF)
				c = fgetc(f);
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
	}
	long v = 0;
	int digits = 0;
	while (c >= '0' && c <= '9' && digits < 6) {
		v = v * 10 + (c - '0');
		digits++;
		c = fgetc(f);
	}
	if (digits == 0 || digits >= 6)
		return -1;
	*out = v; /* c, the one whitespace after the number, is consumed */
	return 0;
}

/* Reads a binary 8-bit PGM (P5). False with a line on stderr when the file is missing or not one. */
static inline bool fpf_load_pgm(const char *path, struct fpf_img *out)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fpf: cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	long w = 0, h = 0, maxv = 0;
	bool ok = fgetc(f) == 'P' && fgetc(f) == '5' && fpf_pgm_token(f, &w) == 0 && fpf_pgm_token(f, &h) == 0 &&
		  fpf_pgm_token(f, &maxv) == 0 && w > 0 && h > 0 && w <= FPF_DIM_MAX && h <= FPF_DIM_MAX &&
		  maxv == 255;
	if (ok) {
		out->w = (int)w;
		out->h = (int)h;
		out->px = hf_xmalloc((size_t)(w * h));
		ok = fread(out->px, 1, (size_t)(w * h), f) == (size_t)(w * h);
		if (!ok)
			fpf_img_free(out);
	}
	fclose(f);
	if (!ok)
		fprintf(stderr, "fpf: %s is not an 8-bit binary PGM of at most %dx%d\n", path, FPF_DIM_MAX, FPF_DIM_MAX);
	return ok;
}

/* Another impression of the same finger: src rotated by deg degrees about its centre, shifted by (dx, dy)
 * pixels, then crop pixels cut off each side. Uncovered pixels take the background (the corners' mean). */
static inline struct fpf_img fpf_variant(const struct fpf_img *src, double deg, int dx, int dy, int crop)
{
	struct fpf_img out = {src->w - 2 * crop, src->h - 2 * crop, NULL};
	HF_ASSERT(out.w > 0 && out.h > 0);
	out.px = hf_xmalloc((size_t)out.w * (size_t)out.h);
	int bg = (src->px[0] + src->px[src->w - 1] + src->px[(src->h - 1) * src->w] + src->px[src->h * src->w - 1]) / 4;
	double a = deg * M_PI / 180.0, c = cos(a), s = sin(a);
	double cx = (src->w - 1) / 2.0, cy = (src->h - 1) / 2.0;
	for (int y = 0; y < out.h; y++) {
		for (int x = 0; x < out.w; x++) {
			double X = x + crop - dx - cx, Y = y + crop - dy - cy;
			double sx = c * X + s * Y + cx, sy = -s * X + c * Y + cy;
			int x0 = (int)floor(sx), y0 = (int)floor(sy);
			double fx = sx - x0, fy = sy - y0;
			double v = 0;
			for (int k = 0; k < 4; k++) {
				int xx = x0 + (k & 1), yy = y0 + (k >> 1);
				double wgt = ((k & 1) ? fx : 1 - fx) * ((k >> 1) ? fy : 1 - fy);
				int p = xx >= 0 && yy >= 0 && xx < src->w && yy < src->h ? src->px[yy * src->w + xx] : bg;
				v += wgt * p;
			}
			out.px[y * out.w + x] = (unsigned char)(v + 0.5 > 255 ? 255 : v + 0.5);
		}
	}
	return out;
}

/* ---- sockets ---------------------------------------------------------------------------------------- */

static inline int fpf_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline bool fpf_send_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

/* One virtual_device command: connect (retrying while the device is being re-created), send, and wait until
 * the driver has read it and closed the connection (it answers LIST before closing; reply may be NULL). */
static inline bool fpf_vd_cmd(const char *path, const char *cmd, char *reply, size_t reply_cap)
{
	int64_t deadline = hf_mono_ms() + 5000;
	int fd;
	while ((fd = fpf_connect(path)) < 0) {
		if (hf_mono_ms() >= deadline) {
			fprintf(stderr, "fpf: cannot connect to %s: %s\n", path, strerror(errno));
			return false;
		}
		fpf_nap(5);
	}
	bool ok = fpf_send_all(fd, cmd, strlen(cmd));
	size_t got = 0;
	while (ok) {
		int left = (int)(deadline - hf_mono_ms());
		struct pollfd pfd = {fd, POLLIN, 0};
		if (left <= 0 || poll(&pfd, 1, left) <= 0) {
			ok = false;
			break;
		}
		char buf[256];
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k <= 0)
			break; /* closed by the driver: done */
		for (ssize_t i = 0; i < k && reply && got + 1 < reply_cap; i++)
			reply[got++] = buf[i];
	}
	if (reply && reply_cap)
		reply[got] = '\0';
	close(fd);
	if (!ok)
		fprintf(stderr, "fpf: virtual_device did not take '%s'\n", cmd);
	return ok;
}

/* ---- the feeder ------------------------------------------------------------------------------------- */

enum fpf_kind {
	FPF_IMAGE,  /* an impression, to virtual_image */
	FPF_CTL,    /* a virtual_image control header {a, b}: {-1, code} retry, {-5, 0} unplug... */
	FPF_VD_CMD, /* a virtual_device command, sent while the reader waits for a finger ("UNPLUG") */
};

struct fpf_msg {
	enum fpf_kind kind;
	int a, b;
	struct fpf_img img; /* owned */
	char cmd[64];
};

/* Whether the sensor is armed now, and how many times a finger was asked for so far (reader_finger_needed's
 * contract). A feeder of the reader uses fpf_reader_armed; the benchmark's raw-libfprint baseline its own. */
typedef bool (*fpf_armed_fn)(void *ctx, uint64_t *requests);

static inline bool fpf_reader_armed(void *ctx, uint64_t *requests)
{
	return reader_finger_needed(ctx, requests);
}

struct fpf_feeder {
	fpf_armed_fn armed_fn;
	void *armed_ctx;
	char vi_path[108];
	char vd_path[108];
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fpf_msg q[FPF_QUEUE];
	int head, count;
	bool in_flight; /* a message taken off the queue and not yet delivered */
	bool stop;
	int vi_fd;
	uint64_t served; /* the reader's finger requests answered so far */
	int sent, lost;	 /* messages delivered; dropped because the reader never asked */
};

static inline bool fpf_deliver(struct fpf_feeder *f, struct fpf_msg *m)
{
	if (m->kind == FPF_VD_CMD)
		return fpf_vd_cmd(f->vd_path, m->cmd, NULL, 0);
	int32_t hdr[2] = {m->kind == FPF_IMAGE ? m->img.w : m->a, m->kind == FPF_IMAGE ? m->img.h : m->b};
	/* Twice at most: the first try may find the connection of a device that was unplugged since. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (f->vi_fd < 0) {
			int64_t deadline = hf_mono_ms() + 5000;
			while ((f->vi_fd = fpf_connect(f->vi_path)) < 0 && hf_mono_ms() < deadline)
				fpf_nap(5);
			if (f->vi_fd < 0)
				return false;
		}
		if (fpf_send_all(f->vi_fd, hdr, sizeof(hdr)) &&
		    (m->kind != FPF_IMAGE || fpf_send_all(f->vi_fd, m->img.px, (size_t)m->img.w * (size_t)m->img.h)))
			return true;
		close(f->vi_fd);
		f->vi_fd = -1;
	}
	return false;
}

static inline void *fpf_main(void *p)
{
	struct fpf_feeder *f = p;
	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (!f->stop && f->count == 0)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stop)
			break;
		struct fpf_msg m = f->q[f->head];
		f->head = (f->head + 1) % FPF_QUEUE;
		f->count--;
		f->in_flight = true;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		/* Wait for the reader to arm the sensor for a request not yet answered. */
		int64_t deadline = hf_mono_ms() + FPF_WAIT_MS;
		uint64_t req = 0;
		bool armed = false;
		while (!armed && hf_mono_ms() < deadline) {
			armed = f->armed_fn(f->armed_ctx, &req) && req > f->served;
			pthread_mutex_lock(&f->mu);
			bool stop = f->stop;
			pthread_mutex_unlock(&f->mu);
			if (stop)
				break;
			if (!armed)
				fpf_nap(1);
		}
		bool ok = armed && fpf_deliver(f, &m);
		if (armed)
			f->served = req;
		fpf_img_free(&m.img);
		pthread_mutex_lock(&f->mu);
		f->in_flight = false;
		if (ok)
			f->sent++;
		else
			f->lost++;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static inline void fpf_start(struct fpf_feeder *f, fpf_armed_fn armed_fn, void *armed_ctx, const char *vi_path,
			     const char *vd_path)
{
	memset(f, 0, sizeof(*f));
	f->armed_fn = armed_fn;
	f->armed_ctx = armed_ctx;
	f->vi_fd = -1;
	HF_ASSERT(hf_strlcpy(f->vi_path, vi_path ? vi_path : "", sizeof(f->vi_path)));
	HF_ASSERT(hf_strlcpy(f->vd_path, vd_path ? vd_path : "", sizeof(f->vd_path)));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	/* Requests made before the feeder existed are not ours to answer. */
	(void)armed_fn(armed_ctx, &f->served);
	HF_ASSERT(pthread_create(&f->th, NULL, fpf_main, f) == 0);
}

/* Queues m (its image is handed over). Blocks while the queue is full. */
static inline void fpf_push(struct fpf_feeder *f, struct fpf_msg m)
{
	pthread_mutex_lock(&f->mu);
	while (f->count == FPF_QUEUE)
		pthread_cond_wait(&f->cv, &f->mu);
	f->q[(f->head + f->count) % FPF_QUEUE] = m;
	f->count++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static inline void fpf_push_image(struct fpf_feeder *f, struct fpf_img img)
{
	fpf_push(f, (struct fpf_msg){.kind = FPF_IMAGE, .img = img});
}

static inline void fpf_push_ctl(struct fpf_feeder *f, int a, int b)
{
	fpf_push(f, (struct fpf_msg){.kind = FPF_CTL, .a = a, .b = b});
}

static inline void fpf_push_vd(struct fpf_feeder *f, const char *cmd)
{
	struct fpf_msg m = {.kind = FPF_VD_CMD};
	HF_ASSERT(strlen(cmd) < sizeof(m.cmd));
	memcpy(m.cmd, cmd, strlen(cmd) + 1);
	fpf_push(f, m);
}

/* Waits until every queued message went out (or was dropped); true when none was dropped since start. */
static inline bool fpf_drain(struct fpf_feeder *f, int timeout_ms)
{
	int64_t deadline = hf_mono_ms() + timeout_ms;
	pthread_mutex_lock(&f->mu);
	while ((f->count > 0 || f->in_flight) && hf_mono_ms() < deadline) {
		pthread_mutex_unlock(&f->mu);
		fpf_nap(2);
		pthread_mutex_lock(&f->mu);
	}
	bool ok = f->count == 0 && !f->in_flight && f->lost == 0;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

/* Drops what is still queued (after an operation failed: its impressions must not feed the next one) and
 * forgets earlier losses. A message being delivered right now still goes out. */
static inline void fpf_flush(struct fpf_feeder *f)
{
	pthread_mutex_lock(&f->mu);
	while (f->count > 0) {
		fpf_img_free(&f->q[f->head].img);
		f->head = (f->head + 1) % FPF_QUEUE;
		f->count--;
	}
	f->lost = 0;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static inline void fpf_stop(struct fpf_feeder *f)
{
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->th, NULL);
	while (f->count > 0) {
		fpf_img_free(&f->q[f->head].img);
		f->head = (f->head + 1) % FPF_QUEUE;
		f->count--;
	}
	if (f->vi_fd >= 0)
		close(f->vi_fd);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
}

#endif
