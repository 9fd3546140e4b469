/* reader.c - the fingerprint reader: libfprint (and GLib) on a thread of their own, behind reader.h.
 *
 * Why the reader thread runs GLib's GLOBAL default main context, not a private one: libfprint 1.94.5 does not
 * keep to the context it is given. fp_context_enumerate() waits for its devices by iterating the global
 * default context, and the virtual drivers schedule their next step with g_idle_add()/g_timeout_add(), which
 * attach there too. With a private GMainContext pushed as thread-default, enumeration would complete on one
 * context while waiting on the other (it blocks for ever) and a virtual_device enrolment would stop after its
 * first stage. So the thread acquires the default context for its whole life and is the only one to run it:
 * it is this file's own in practice, since no other file of the kiosk may use GLib (reader.h). It follows
 * that there is one reader per process at a time.
 *
 * Every libfprint call is made on that thread. A caller posts its job as an idle source and waits on a
 * condition variable until the job is done or its deadline passes; then it asks the reader thread to cancel
 * the job's GCancellable (cancelling runs libfprint's handlers in the cancelling thread, so it must be that
 * one) and waits a little more for libfprint to give up. A driver that ignores the cancel is abandoned: the
 * caller returns HF_ETIMEOUT and the reader stays busy until the driver finishes.
 *
 * Finding the device: each scan makes a fresh FpContext and enumerates. A full enumeration finds a USB reader
 * that was unplugged and plugged again, and it is the only way a virtual driver comes back after an unplug
 * (virtual devices exist only as the result of an enumeration). While no device is open, a scan runs every
 * READER_RESCAN_MS. A device error other than a retry closes the device (FAILED) and the next scan reopens it,
 * which is what un-wedges most USB readers; an unplug (FP_DEVICE_ERROR_REMOVED, the device's "removed"
 * signal) makes the reader ABSENT at once.
 *
 * Cleanup detail: FpContext connects to each device's "removed" and "notify::open" signals and answers them
 * with an idle source holding a bare pointer to the context. Before a context is dropped its handlers are
 * disconnected from every device, and the last unref runs at G_PRIORITY_LOW, after any such idle already
 * queued.
 */
#include "hf_base.h"

#include "reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fprint.h>

#include "hf_log.h"

#define READER_RESCAN_MS 1000	    /* a missing or failed reader is looked for again this often */
#define READER_CANCEL_GRACE_MS 3000 /* how long a caller waits for libfprint to honour a cancel */
#define READER_WHY_MAX 96
#define READER_MSG_MAX 160
#define READER_PLACE "kiosk.fp"

enum reader_job_kind { READER_JOB_ENROL, READER_JOB_VERIFY };

/* One enrolment or verification. Shared by the caller and the reader thread: refs, done and the results are
 * under reader.mu; fn is called only under cb_mu and never once the caller has abandoned the job. */
struct reader_job {
	struct reader *r;
	enum reader_job_kind kind;
	unsigned char *tpl; /* owned: the template to verify against, or the enrolled one */
	size_t tpl_len;
	reader_progress_fn fn;
	void *ud;
	pthread_mutex_t cb_mu;
	bool abandoned;
	GCancellable *cancel;
	FpPrint *print; /* reader thread: the deserialised template of a verification */
	int stages;
	bool unplugged; /* reader thread: the device went away while the job ran */
	int refs;
	bool done;
	hf_err err;
	enum reader_match match;
	char msg[READER_MSG_MAX];
};

struct reader {
	pthread_t thread;
	bool thread_started;
	char want[READER_DRIVER_MAX]; /* driver id from the config, "" for any */

	/* Shared with the callers, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* any change below; CLOCK_MONOTONIC */
	enum reader_state state;
	char why[READER_WHY_MAX];
	char driver[READER_DRIVER_MAX];
	char device[READER_DRIVER_MAX];
	bool finger_needed;
	uint64_t finger_requests;
	bool first_verdict; /* the first scan has found a device (open or failed) or found none */
	bool thread_failed;
	bool busy;		/* a job holds the device (even one its caller abandoned) */
	struct reader_job *job; /* the job in progress, while busy */
	int callers;		/* threads inside reader_enrol/reader_verify */
	bool stop;

	/* The reader thread's own. */
	GMainLoop *loop;
	FpContext *fpctx;
	FpDevice *dev;
	gulong sig_removed, sig_notify_removed, sig_finger;
	GSource *scan_src;
	struct reader_job *running;
	bool scanning, opening, closing, quitting;
};

/* libfprint's main loop is GLib's global default context; see the file comment. */
static pthread_mutex_t g_reader_once_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_reader_open; /* one reader per process */
static pthread_once_t g_reader_log_once = PTHREAD_ONCE_INIT;

static void reader_scan(struct reader *r);
static void reader_stop_step(struct reader *r);
static void reader_teardown(struct reader *r, enum reader_state st, const char *why);

/* ---- small helpers --------------------------------------------------------------------------------- */

static const char *reader_state_name(enum reader_state s)
{
	switch (s) {
	case READER_ABSENT:
		return "absent";
	case READER_READY:
		return "ready";
	case READER_BUSY:
		return "busy";
	case READER_FAILED:
		return "failed";
	}
	return "?";
}

HF_PRINTF(3, 4)
static void reader_note(char *msg, size_t cap, const char *fmt, ...)
{
	if (!msg || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
}

/* Waits on r->cv until the monotonic deadline (ms); false once it has passed. Called with r->mu held. */
static bool reader_wait_until(struct reader *r, int64_t deadline_ms)
{
	int64_t now = hf_mono_ms();
	if (now >= deadline_ms)
		return false;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (deadline_ms - now) * 1000000LL;
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	int rc = pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	HF_ASSERT(rc == 0 || rc == ETIMEDOUT);
	return true;
}

/* Runs fn(data) on the reader thread, soon. Thread-safe. */
static void reader_post(gint priority, GSourceFunc fn, void *data)
{
	GSource *src = g_idle_source_new();
	g_source_set_priority(src, priority);
	g_source_set_callback(src, fn, data, NULL);
	g_source_attach(src, g_main_context_default());
	g_source_unref(src);
}

/* Sets the state and its reason, logs a change, wakes waiters. Any thread. */
static void reader_set_state(struct reader *r, enum reader_state st, const char *why)
{
	pthread_mutex_lock(&r->mu);
	bool changed = r->state != st || strcmp(r->why, why) != 0;
	r->state = st;
	hf_strlcpy(r->why, why, sizeof(r->why));
	if (st == READER_ABSENT || st == READER_FAILED) {
		r->driver[0] = '\0';
		r->device[0] = '\0';
		r->finger_needed = false;
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	/* BUSY and back are not logged: one line per scan would drown the rest. */
	if (changed && st != READER_BUSY)
		hf_log(st == READER_READY ? HF_LOG_INFO : HF_LOG_WARN, READER_PLACE, "msg=\"reader %s\" why=\"%s\"",
		       reader_state_name(st), why);
}

static const char *reader_retry_text(int code)
{
	switch (code) {
	case FP_DEVICE_RETRY_TOO_SHORT:
		return "retry: too short";
	case FP_DEVICE_RETRY_CENTER_FINGER:
		return "retry: centre the finger";
	case FP_DEVICE_RETRY_REMOVE_FINGER:
		return "retry: remove the finger and try again";
	default:
		return "retry: scan not usable";
	}
}

/* fp_print_serialize()'s format, "FP3" then a GVariant (see fp-print.c), and its print types (FpiPrintType is
 * private to libfprint; these values are part of every template already stored). */
#define READER_TPL_TYPE "(issbymsmsia{sv}v)"
#define READER_PRINT_RAW 1  /* device-specific data, in a variant */
#define READER_PRINT_NBIS 2 /* minutiae x, y, theta per enrol stage: (a(aiaiai)) */

/* fp_print_deserialize() trusts the structure of what it parses: a damaged template aborts the whole process
 * (g_variant_get_child_value on an empty container is a g_error), and one of 3 bytes or fewer trips a
 * g_assert. Templates come from core's database, i.e. from outside, so their structure is checked here
 * first: "FP3", a GVariant in normal form (libfprint writes nothing else; a damaged one would otherwise be
 * read as default values), and a payload of the type its print type says. Pure data: any thread. */
static bool reader_template_valid(const unsigned char *p, size_t n)
{
	if (n <= 3 || n > READER_TEMPLATE_MAX || memcmp(p, "FP3", 3) != 0)
		return false;
	GBytes *bytes = g_bytes_new(p + 3, n - 3); /* a copy: aligned for GVariant */
	GVariant *v = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(READER_TPL_TYPE), bytes, FALSE));
	g_bytes_unref(bytes);
	bool ok = g_variant_is_normal_form(v);
	if (ok) {
		gint32 type = 0;
		guint8 finger = 0;
		g_variant_get_child(v, 0, "i", &type);
		g_variant_get_child(v, 4, "y", &finger);
		GVariant *slot = g_variant_get_child_value(v, 9);
		GVariant *payload = g_variant_get_variant(slot);
		if (type == READER_PRINT_NBIS)
			ok = g_variant_is_of_type(payload, G_VARIANT_TYPE("(a(aiaiai))"));
		else if (type == READER_PRINT_RAW)
			ok = g_variant_is_of_type(payload, G_VARIANT_TYPE_VARIANT);
		else
			ok = false;
		ok = ok && finger <= FP_FINGER_LAST; /* else GObject warns about the property and carries on */
		g_variant_unref(payload);
		g_variant_unref(slot);
	}
	g_variant_unref(v);
	return ok;
}

/* GLib's and libfprint's own log lines go through hf_log (one writer per process: GLib allows only one, and
 * no other file of the kiosk uses GLib). Debug chatter is dropped. */
static GLogWriterOutput reader_glib_log(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer ud)
{
	(void)ud;
	if (level & G_LOG_LEVEL_DEBUG)
		return G_LOG_WRITER_HANDLED;
	const char *domain = "-", *text = "";
	for (gsize i = 0; i < n; i++) {
		if (fields[i].length != -1)
			continue;
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0)
			text = fields[i].value;
	}
	enum hf_log_level lv = HF_LOG_INFO;
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		lv = HF_LOG_ERROR;
	else if (level & G_LOG_LEVEL_WARNING)
		lv = HF_LOG_WARN;
	hf_log(lv, READER_PLACE, "msg=\"libfprint says\" domain=%s text=\"%s\"", domain, text);
	return G_LOG_WRITER_HANDLED;
}

static void reader_log_init(void)
{
	g_log_set_writer_func(reader_glib_log, NULL, NULL);
}

/* ---- jobs --------------------------------------------------------------------------------------------- */

static struct reader_job *reader_job_new(struct reader *r, enum reader_job_kind kind)
{
	struct reader_job *job = hf_xcalloc(1, sizeof(*job));
	job->r = r;
	job->kind = kind;
	job->refs = 1;
	job->err = HF_EINTERNAL;
	pthread_mutex_init(&job->cb_mu, NULL);
	job->cancel = g_cancellable_new();
	return job;
}

static void reader_job_free(struct reader_job *job)
{
	g_clear_object(&job->print);
	g_clear_object(&job->cancel);
	pthread_mutex_destroy(&job->cb_mu);
	free(job->tpl);
	free(job);
}

/* Drops one reference; with r->mu held. True when the caller must free the job (after unlocking). */
static bool reader_job_unref_locked(struct reader_job *job)
{
	HF_ASSERT(job->refs > 0);
	return --job->refs == 0;
}

static void reader_job_unref(struct reader *r, struct reader_job *job)
{
	pthread_mutex_lock(&r->mu);
	bool last = reader_job_unref_locked(job);
	pthread_mutex_unlock(&r->mu);
	if (last)
		reader_job_free(job);
}

/* Reader thread: the job is over; its results are set. */
static void reader_job_complete(struct reader *r, struct reader_job *job)
{
	r->running = NULL;
	pthread_mutex_lock(&r->mu);
	job->done = true;
	r->busy = false;
	r->job = NULL;
	if (r->state == READER_BUSY)
		r->state = READER_READY;
	bool last = reader_job_unref_locked(job);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (last)
		reader_job_free(job);
	reader_stop_step(r);
}

static bool reader_dev_removed(FpDevice *dev)
{
	gboolean removed = FALSE;
	if (dev)
		g_object_get(dev, "removed", &removed, NULL);
	return removed;
}

/* Idle: closes the device after an unplug or a device error, once libfprint has finished the operation
 * that reported it (closing from inside its callback would find the operation still pending). */
static gboolean reader_teardown_absent_cb(gpointer p)
{
	reader_teardown(p, READER_ABSENT, "reader unplugged");
	return G_SOURCE_REMOVE;
}

struct reader_fail_msg {
	struct reader *r;
	char why[READER_WHY_MAX];
};

static gboolean reader_teardown_failed_cb(gpointer p)
{
	struct reader_fail_msg *m = p;
	reader_teardown(m->r, READER_FAILED, m->why);
	free(m);
	return G_SOURCE_REMOVE;
}

/* Reader thread: maps a failed operation's GError onto the job's result. */
static void reader_job_fail(struct reader *r, struct reader_job *job, const GError *err)
{
	if (job->unplugged || g_error_matches(err, FP_DEVICE_ERROR, FP_DEVICE_ERROR_REMOVED) ||
	    reader_dev_removed(r->dev)) {
		job->err = HF_EDEVICE;
		hf_strlcpy(job->msg, "reader unplugged", sizeof(job->msg));
		/* ABSENT before the caller wakes up: what it sees next is the truth. */
		reader_set_state(r, READER_ABSENT, "reader unplugged");
		reader_post(G_PRIORITY_DEFAULT, reader_teardown_absent_cb, r);
		return;
	}
	if (err->domain == FP_DEVICE_RETRY) {
		/* A verification ends with its retry; an enrolment's retries come through the progress callback. */
		job->err = HF_OK;
		job->match = READER_RETRY;
		hf_strlcpy(job->msg, reader_retry_text(err->code), sizeof(job->msg));
		return;
	}
	if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		job->err = HF_ETIMEOUT;
		hf_strlcpy(job->msg, "cancelled (deadline or reader_cancel)", sizeof(job->msg));
		return;
	}
	job->err = HF_EDEVICE;
	reader_note(job->msg, sizeof(job->msg), "device error: %s", err->message);
	hf_log(HF_LOG_WARN, READER_PLACE, "msg=\"reader operation failed\" op=%s domain=\"%s\" code=%d text=\"%s\"",
	       job->kind == READER_JOB_ENROL ? "enrol" : "verify", g_quark_to_string(err->domain), err->code,
	       err->message);
	/* Errors about the print itself say nothing of the device; anything else closes it and the next scan
	 * reopens it. */
	bool data_error = err->domain == FP_DEVICE_ERROR &&
			  (err->code == FP_DEVICE_ERROR_DATA_INVALID || err->code == FP_DEVICE_ERROR_DATA_NOT_FOUND ||
			   err->code == FP_DEVICE_ERROR_DATA_FULL || err->code == FP_DEVICE_ERROR_DATA_DUPLICATE);
	if (!data_error) {
		struct reader_fail_msg *m = hf_xcalloc(1, sizeof(*m));
		m->r = r;
		reader_note(m->why, sizeof(m->why), "device error: %s", err->message);
		reader_set_state(r, READER_FAILED, m->why);
		reader_post(G_PRIORITY_DEFAULT, reader_teardown_failed_cb, m);
	}
}

static void reader_verify_done(GObject *src, GAsyncResult *res, gpointer p)
{
	struct reader_job *job = p;
	struct reader *r = job->r;
	GError *err = NULL;
	gboolean match = FALSE;
	if (fp_device_verify_finish(FP_DEVICE(src), res, &match, NULL, &err)) {
		job->err = HF_OK;
		job->match = match ? READER_MATCH : READER_NO_MATCH;
	} else {
		reader_job_fail(r, job, err);
	}
	g_clear_error(&err);
	reader_job_complete(r, job);
}

static void reader_enrol_progress(FpDevice *dev, gint completed, FpPrint *print, gpointer p, GError *err)
{
	(void)dev;
	(void)print;
	struct reader_job *job = p;
	pthread_mutex_lock(&job->cb_mu);
	if (job->fn && !job->abandoned)
		job->fn(job->ud, err ? 0 : completed, job->stages, err != NULL);
	pthread_mutex_unlock(&job->cb_mu);
	if (err)
		hf_log(HF_LOG_INFO, READER_PLACE, "msg=\"enrol stage to repeat\" why=\"%s\"",
		       err->domain == FP_DEVICE_RETRY ? reader_retry_text(err->code) : "error");
}

static void reader_enrol_done(GObject *src, GAsyncResult *res, gpointer p)
{
	struct reader_job *job = p;
	struct reader *r = job->r;
	GError *err = NULL;
	guchar *data = NULL;
	gsize len = 0;
	FpPrint *print = fp_device_enroll_finish(FP_DEVICE(src), res, &err);
	if (!print) {
		reader_job_fail(r, job, err);
		if (job->err == HF_OK) { /* a retry cannot end an enrolment; be safe if a driver does it */
			job->err = HF_EDEVICE;
			hf_strlcpy(job->msg, "enrolment ended with a retry", sizeof(job->msg));
		}
	} else if (!fp_print_serialize(print, &data, &len, &err)) {
		job->err = HF_EINTERNAL;
		reader_note(job->msg, sizeof(job->msg), "cannot serialise the template: %s", err->message);
	} else if (len == 0 || len > READER_TEMPLATE_MAX) {
		job->err = HF_ETOOBIG;
		reader_note(job->msg, sizeof(job->msg), "template of %zu bytes (cap %d)", (size_t)len,
			    READER_TEMPLATE_MAX);
	} else {
		job->tpl = hf_xmalloc(len);
		memcpy(job->tpl, data, len);
		job->tpl_len = len;
		job->err = HF_OK;
	}
	g_free(data);
	g_clear_error(&err);
	g_clear_object(&print);
	reader_job_complete(r, job);
}

static gboolean reader_job_start_cb(gpointer p)
{
	struct reader_job *job = p;
	struct reader *r = job->r;
	GError *err = NULL;
	r->running = job;
	if (!r->dev || r->opening || r->closing || !fp_device_is_open(r->dev) || reader_dev_removed(r->dev)) {
		job->err = HF_EDEVICE;
		hf_strlcpy(job->msg, "reader absent", sizeof(job->msg));
		reader_job_complete(r, job);
		return G_SOURCE_REMOVE;
	}
	if (g_cancellable_is_cancelled(job->cancel)) {
		job->err = HF_ETIMEOUT;
		hf_strlcpy(job->msg, "cancelled before the scan", sizeof(job->msg));
		reader_job_complete(r, job);
		return G_SOURCE_REMOVE;
	}
	if (job->kind == READER_JOB_VERIFY) {
		job->print = fp_print_deserialize(job->tpl, job->tpl_len, &err);
		if (!job->print) {
			job->err = HF_EINVAL;
			reader_note(job->msg, sizeof(job->msg), "template does not parse: %s",
				    err ? err->message : "?");
			g_clear_error(&err);
			reader_job_complete(r, job);
			return G_SOURCE_REMOVE;
		}
		if (!fp_print_compatible(job->print, r->dev)) {
			job->err = HF_EINVAL;
			reader_note(job->msg, sizeof(job->msg), "template made on another kind of reader (%s)",
				    fp_print_get_driver(job->print) ? fp_print_get_driver(job->print) : "?");
			reader_job_complete(r, job);
			return G_SOURCE_REMOVE;
		}
		fp_device_verify(r->dev, job->print, job->cancel, NULL, NULL, NULL, reader_verify_done, job);
	} else {
		job->stages = fp_device_get_nr_enroll_stages(r->dev);
		fp_device_enroll(r->dev, fp_print_new(r->dev), job->cancel, reader_enrol_progress, job, NULL,
				 reader_enrol_done, job);
	}
	return G_SOURCE_REMOVE;
}

/* Idle holding a reference to the job: cancels it if it still runs. */
static gboolean reader_job_cancel_cb(gpointer p)
{
	struct reader_job *job = p;
	if (!job->done)
		g_cancellable_cancel(job->cancel);
	reader_job_unref(job->r, job);
	return G_SOURCE_REMOVE;
}

/* With r->mu held. */
static void reader_post_cancel_locked(struct reader_job *job)
{
	job->refs++;
	reader_post(G_PRIORITY_HIGH, reader_job_cancel_cb, job);
}

/* ---- device life ------------------------------------------------------------------------------------ */

static gboolean reader_ctx_unref_cb(gpointer p)
{
	g_object_unref(p);
	return G_SOURCE_REMOVE;
}

/* Drops the FpContext without letting its queued idles see it freed (see the file comment). */
static void reader_drop_context(struct reader *r)
{
	if (!r->fpctx)
		return;
	GPtrArray *devs = fp_context_get_devices(r->fpctx);
	for (guint i = 0; devs && i < devs->len; i++)
		g_signal_handlers_disconnect_matched(g_ptr_array_index(devs, i), G_SIGNAL_MATCH_DATA, 0, 0, NULL,
						     NULL, r->fpctx);
	GSource *src = g_idle_source_new();
	g_source_set_priority(src, G_PRIORITY_LOW);
	g_source_set_callback(src, reader_ctx_unref_cb, r->fpctx, NULL);
	g_source_attach(src, g_main_context_default());
	g_source_unref(src);
	r->fpctx = NULL;
}

static void reader_disconnect_dev(struct reader *r)
{
	if (!r->dev)
		return;
	if (r->sig_removed)
		g_signal_handler_disconnect(r->dev, r->sig_removed);
	if (r->sig_notify_removed)
		g_signal_handler_disconnect(r->dev, r->sig_notify_removed);
	if (r->sig_finger)
		g_signal_handler_disconnect(r->dev, r->sig_finger);
	r->sig_removed = r->sig_notify_removed = r->sig_finger = 0;
	/* The context's handlers too, before a close could make it queue an idle. */
	if (r->fpctx)
		g_signal_handlers_disconnect_matched(r->dev, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, r->fpctx);
}

static gboolean reader_scan_cb(gpointer p)
{
	struct reader *r = p;
	g_source_unref(r->scan_src);
	r->scan_src = NULL;
	reader_scan(r);
	return G_SOURCE_REMOVE;
}

static void reader_schedule_scan(struct reader *r)
{
	if (r->stop || r->scan_src)
		return;
	r->scan_src = g_timeout_source_new(READER_RESCAN_MS);
	g_source_set_callback(r->scan_src, reader_scan_cb, r, NULL);
	g_source_attach(r->scan_src, g_main_context_default());
}

/* The device is closed (or never opened): forget it and look again in a second. */
static void reader_release_device(struct reader *r)
{
	reader_disconnect_dev(r);
	g_clear_object(&r->dev);
	reader_drop_context(r);
	reader_schedule_scan(r);
}

static void reader_close_done(GObject *src, GAsyncResult *res, gpointer p)
{
	struct reader *r = p;
	GError *err = NULL;
	/* A removed device reports its close as an error; it is closed all the same. */
	if (!fp_device_close_finish(FP_DEVICE(src), res, &err))
		hf_log(HF_LOG_DEBUG, READER_PLACE, "msg=\"close reported an error\" text=\"%s\"", err->message);
	g_clear_error(&err);
	r->closing = false;
	reader_release_device(r);
	reader_stop_step(r);
}

/* Reader thread: sets the state and closes the device if one is open. Idempotent. */
static void reader_teardown(struct reader *r, enum reader_state st, const char *why)
{
	pthread_mutex_lock(&r->mu);
	bool keep = st == READER_FAILED && r->state == READER_ABSENT; /* unplugged explains the failure */
	pthread_mutex_unlock(&r->mu);
	if (!keep)
		reader_set_state(r, st, why);
	if (!r->dev || r->closing || r->opening)
		return; /* open_done and close_done carry on from here */
	if (r->running)
		return; /* the job's end posts its own teardown */
	reader_disconnect_dev(r);
	if (fp_device_is_open(r->dev)) {
		r->closing = true;
		fp_device_close(r->dev, NULL, reader_close_done, r);
	} else {
		reader_release_device(r);
	}
}

static void reader_removed_cb(FpDevice *dev, gpointer p)
{
	(void)dev;
	struct reader *r = p;
	hf_log(HF_LOG_INFO, READER_PLACE, "msg=\"reader removed\"");
	reader_set_state(r, READER_ABSENT, "reader unplugged");
	reader_post(G_PRIORITY_DEFAULT, reader_teardown_absent_cb, r);
}

/* "removed" itself waits for the running operation to end, and some drivers (virtual_device) would wait
 * for a finger for ever: cancel it now, and have it report the unplug. */
static void reader_notify_removed_cb(GObject *obj, GParamSpec *ps, gpointer p)
{
	(void)ps;
	struct reader *r = p;
	if (!reader_dev_removed(FP_DEVICE(obj)) || !r->running)
		return;
	r->running->unplugged = true;
	g_cancellable_cancel(r->running->cancel);
}

static void reader_finger_cb(GObject *obj, GParamSpec *ps, gpointer p)
{
	(void)ps;
	struct reader *r = p;
	bool needed = (fp_device_get_finger_status(FP_DEVICE(obj)) & FP_FINGER_STATUS_NEEDED) != 0;
	pthread_mutex_lock(&r->mu);
	if (needed && !r->finger_needed)
		r->finger_requests++;
	r->finger_needed = needed;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void reader_first_verdict(struct reader *r)
{
	pthread_mutex_lock(&r->mu);
	r->first_verdict = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void reader_open_done(GObject *src, GAsyncResult *res, gpointer p)
{
	struct reader *r = p;
	GError *err = NULL;
	bool ok = fp_device_open_finish(FP_DEVICE(src), res, &err);
	r->opening = false;
	if (!ok) {
		char why[READER_WHY_MAX];
		reader_note(why, sizeof(why), "open failed: %s", err ? err->message : "?");
		hf_log(HF_LOG_WARN, READER_PLACE, "msg=\"cannot open the reader\" driver=%s text=\"%s\"",
		       fp_device_get_driver(r->dev), err ? err->message : "?");
		g_clear_error(&err);
		reader_set_state(r, reader_dev_removed(r->dev) ? READER_ABSENT : READER_FAILED, why);
		reader_release_device(r);
		reader_first_verdict(r);
		reader_stop_step(r);
		return;
	}
	if (r->stop || reader_dev_removed(r->dev)) {
		reader_teardown(r, READER_ABSENT, r->stop ? "reader closing" : "reader unplugged");
		reader_first_verdict(r);
		reader_stop_step(r);
		return;
	}
	pthread_mutex_lock(&r->mu);
	hf_strlcpy(r->driver, fp_device_get_driver(r->dev), sizeof(r->driver));
	hf_strlcpy(r->device, fp_device_get_device_id(r->dev) ? fp_device_get_device_id(r->dev) : "",
		   sizeof(r->device));
	r->finger_needed = (fp_device_get_finger_status(r->dev) & FP_FINGER_STATUS_NEEDED) != 0;
	pthread_mutex_unlock(&r->mu);
	hf_log(HF_LOG_INFO, READER_PLACE, "msg=\"reader open\" driver=%s name=\"%s\" stages=%d",
	       fp_device_get_driver(r->dev), fp_device_get_name(r->dev), fp_device_get_nr_enroll_stages(r->dev));
	reader_set_state(r, READER_READY, "");
	reader_first_verdict(r);
}

/* Reader thread: a fresh FpContext, the first matching device, opened. Nothing found: ABSENT, and again in
 * a second. */
static void reader_scan(struct reader *r)
{
	if (r->stop || r->dev)
		return;
	HF_ASSERT(!r->fpctx);
	r->scanning = true;
	r->fpctx = fp_context_new();
	/* Enumerates, iterating the default context until every device has answered its probe. */
	GPtrArray *devs = fp_context_get_devices(r->fpctx);
	r->scanning = false;
	FpDevice *pick = NULL;
	for (guint i = 0; devs && i < devs->len && !r->stop; i++) {
		FpDevice *d = g_ptr_array_index(devs, i);
		if (!r->want[0] || strcmp(fp_device_get_driver(d), r->want) == 0) {
			pick = d;
			break;
		}
	}
	if (!pick) {
		reader_drop_context(r);
		if (!r->stop) {
			reader_set_state(r, READER_ABSENT,
					 r->want[0] ? "no reader of the configured driver found"
						    : "no fingerprint reader found");
			reader_schedule_scan(r);
		}
		reader_first_verdict(r);
		reader_stop_step(r);
		return;
	}
	r->dev = g_object_ref(pick);
	r->sig_removed = g_signal_connect(r->dev, "removed", G_CALLBACK(reader_removed_cb), r);
	r->sig_notify_removed = g_signal_connect(r->dev, "notify::removed", G_CALLBACK(reader_notify_removed_cb), r);
	r->sig_finger = g_signal_connect(r->dev, "notify::finger-status", G_CALLBACK(reader_finger_cb), r);
	r->opening = true;
	fp_device_open(r->dev, NULL, reader_open_done, r);
}

static gboolean reader_first_scan_cb(gpointer p)
{
	reader_scan(p);
	return G_SOURCE_REMOVE;
}

/* Reader thread: moves the shutdown on as far as it can; whatever is still pending calls again when done. */
static void reader_stop_step(struct reader *r)
{
	if (!r->stop || r->quitting)
		return;
	if (r->scan_src) {
		g_source_destroy(r->scan_src);
		g_source_unref(r->scan_src);
		r->scan_src = NULL;
	}
	if (r->running) {
		g_cancellable_cancel(r->running->cancel);
		return;
	}
	if (r->scanning || r->opening || r->closing)
		return;
	if (r->dev) {
		reader_teardown(r, READER_ABSENT, "reader closing");
		if (r->closing)
			return;
	}
	if (r->scan_src) { /* reader_release_device schedules a scan; not now */
		g_source_destroy(r->scan_src);
		g_source_unref(r->scan_src);
		r->scan_src = NULL;
	}
	r->quitting = true;
	g_main_loop_quit(r->loop);
}

static gboolean reader_stop_cb(gpointer p)
{
	reader_stop_step(p);
	return G_SOURCE_REMOVE;
}

static void *reader_thread_main(void *p)
{
	struct reader *r = p;
	GMainContext *ctx = g_main_context_default();
	if (!g_main_context_acquire(ctx)) {
		pthread_mutex_lock(&r->mu);
		r->thread_failed = true;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	r->loop = g_main_loop_new(ctx, FALSE);
	reader_post(G_PRIORITY_DEFAULT, reader_first_scan_cb, r);
	g_main_loop_run(r->loop);
	/* Whatever is still queued (the last context unref, cancel idles) runs before GLib is handed back. */
	for (int i = 0; i < 1000 && g_main_context_iteration(ctx, FALSE); i++)
		;
	g_main_loop_unref(r->loop);
	r->loop = NULL;
	g_main_context_release(ctx);
	return NULL;
}

/* ---- the interface -------------------------------------------------------------------------------- */

hf_err reader_open(const struct reader_config *cfg, struct reader **out)
{
	hf_err err = HF_OK;
	pthread_mutex_lock(&g_reader_once_mu);
	if (g_reader_open) {
		pthread_mutex_unlock(&g_reader_once_mu);
		hf_log(HF_LOG_ERROR, READER_PLACE, "msg=\"a reader is already open in this process\"");
		return HF_ECONFLICT;
	}
	g_reader_open = true;
	pthread_mutex_unlock(&g_reader_once_mu);
	pthread_once(&g_reader_log_once, reader_log_init);

	struct reader *r = hf_xcalloc(1, sizeof(*r));
	if (cfg && cfg->driver && !hf_strlcpy(r->want, cfg->driver, sizeof(r->want))) {
		hf_log(HF_LOG_ERROR, READER_PLACE, "msg=\"driver id too long\"");
		err = HF_EINVAL;
		goto fail;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&r->mu, NULL);
	r->state = READER_ABSENT;
	hf_strlcpy(r->why, "looking for a reader", sizeof(r->why));

	int rc = pthread_create(&r->thread, NULL, reader_thread_main, r);
	if (rc != 0) {
		hf_log(HF_LOG_ERROR, READER_PLACE, "msg=\"cannot start the reader thread\" errno=%d", rc);
		err = HF_EINTERNAL;
		goto fail_sync;
	}
	r->thread_started = true;

	int64_t deadline = hf_mono_ms() + (cfg && cfg->open_timeout_ms > 0 ? cfg->open_timeout_ms : 0);
	pthread_mutex_lock(&r->mu);
	while (!r->first_verdict && !r->thread_failed && reader_wait_until(r, deadline))
		;
	bool failed = r->thread_failed;
	pthread_mutex_unlock(&r->mu);
	if (failed) {
		pthread_join(r->thread, NULL);
		hf_log(HF_LOG_ERROR, READER_PLACE,
		       "msg=\"GLib's default main context is owned by another thread; the reader cannot run\"");
		err = HF_ECONFLICT;
		goto fail_sync;
	}
	*out = r;
	return HF_OK;

fail_sync:
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
fail:
	free(r);
	pthread_mutex_lock(&g_reader_once_mu);
	g_reader_open = false;
	pthread_mutex_unlock(&g_reader_once_mu);
	return err;
}

void reader_close(struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	if (r->job && !r->job->done)
		reader_post_cancel_locked(r->job);
	pthread_cond_broadcast(&r->cv);
	/* Callers still inside leave once their job is cancelled (or abandoned after the grace period). */
	while (r->callers > 0)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	reader_post(G_PRIORITY_DEFAULT, reader_stop_cb, r);
	pthread_join(r->thread, NULL);
	/* A job its caller abandoned has finished by now (the thread waited for it). */
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
	pthread_mutex_lock(&g_reader_once_mu);
	g_reader_open = false;
	pthread_mutex_unlock(&g_reader_once_mu);
}

enum reader_state reader_state(struct reader *r, char *why, size_t cap)
{
	pthread_mutex_lock(&r->mu);
	enum reader_state st = r->state;
	if (why && cap)
		hf_strlcpy(why, st == READER_ABSENT || st == READER_FAILED ? r->why : "", cap);
	pthread_mutex_unlock(&r->mu);
	return st;
}

void reader_identity(struct reader *r, char driver[READER_DRIVER_MAX], char device[READER_DRIVER_MAX])
{
	pthread_mutex_lock(&r->mu);
	hf_strlcpy(driver, r->driver, READER_DRIVER_MAX);
	hf_strlcpy(device, r->device, READER_DRIVER_MAX);
	pthread_mutex_unlock(&r->mu);
}

bool reader_finger_needed(struct reader *r, uint64_t *requests)
{
	pthread_mutex_lock(&r->mu);
	bool needed = r->finger_needed && r->state == READER_BUSY;
	if (requests)
		*requests = r->finger_requests;
	pthread_mutex_unlock(&r->mu);
	return needed;
}

void reader_cancel(struct reader *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->job && !r->job->done)
		reader_post_cancel_locked(r->job);
	pthread_mutex_unlock(&r->mu);
}

/* Caller side of a job: waits for the device, hands the job over, waits for its end or the deadline. On
 * return the caller still holds its reference to the job (the results are read from it). */
static hf_err reader_run_job(struct reader *r, struct reader_job *job, int timeout_ms, char *msg, size_t msg_cap)
{
	hf_err err;
	int64_t deadline = hf_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	pthread_mutex_lock(&r->mu);
	r->callers++;
	while (r->busy && !r->stop && reader_wait_until(r, deadline))
		;
	if (r->stop) {
		err = HF_EDEVICE;
		reader_note(msg, msg_cap, "reader closing");
		goto out;
	}
	if (r->busy) {
		err = HF_ECONFLICT;
		reader_note(msg, msg_cap, "another reader operation is still running");
		goto out;
	}
	if (r->state != READER_READY) {
		err = HF_EDEVICE;
		reader_note(msg, msg_cap, "reader %s: %s", reader_state_name(r->state), r->why);
		goto out;
	}
	r->busy = true;
	r->job = job;
	r->state = READER_BUSY;
	job->refs++; /* the reader thread's */
	reader_post(G_PRIORITY_DEFAULT, reader_job_start_cb, job);
	while (!job->done && reader_wait_until(r, deadline))
		;
	if (!job->done) {
		reader_post_cancel_locked(job);
		int64_t grace = hf_mono_ms() + READER_CANCEL_GRACE_MS;
		while (!job->done && reader_wait_until(r, grace))
			;
	}
	if (!job->done) {
		/* The driver ignores the cancel: give up on it, but never call the caller's fn after returning. */
		pthread_mutex_unlock(&r->mu);
		pthread_mutex_lock(&job->cb_mu);
		job->abandoned = true;
		pthread_mutex_unlock(&job->cb_mu);
		pthread_mutex_lock(&r->mu);
		hf_log(HF_LOG_ERROR, READER_PLACE, "msg=\"reader did not stop after a cancel; operation abandoned\"");
		err = HF_ETIMEOUT;
		reader_note(msg, msg_cap, "timed out; the reader did not stop");
		goto out;
	}
	err = job->err;
	reader_note(msg, msg_cap, "%s", job->msg);
out:
	r->callers--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return err;
}

hf_err reader_enrol(struct reader *r, int timeout_ms, reader_progress_fn fn, void *ud, struct hf_buf *tpl_out,
		    char *msg, size_t msg_cap)
{
	struct reader_job *job = reader_job_new(r, READER_JOB_ENROL);
	job->fn = fn;
	job->ud = ud;
	hf_err err = reader_run_job(r, job, timeout_ms, msg, msg_cap);
	if (err == HF_OK) {
		/* done under mu before we looked: the template is ours to read */
		err = hf_buf_append(tpl_out, job->tpl, job->tpl_len);
		if (err)
			reader_note(msg, msg_cap, "template of %zu bytes does not fit", job->tpl_len);
	}
	reader_job_unref(r, job);
	return err;
}

hf_err reader_verify(struct reader *r, const void *tpl, size_t tpl_len, int timeout_ms, enum reader_match *res,
		     char *msg, size_t msg_cap)
{
	if (!tpl || tpl_len == 0 || tpl_len > READER_TEMPLATE_MAX) {
		reader_note(msg, msg_cap, "template empty or over %d bytes", READER_TEMPLATE_MAX);
		return HF_EINVAL;
	}
	if (!reader_template_valid(tpl, tpl_len)) {
		reader_note(msg, msg_cap, "template does not parse (damaged, or not a libfprint template)");
		return HF_EINVAL;
	}
	struct reader_job *job = reader_job_new(r, READER_JOB_VERIFY);
	job->tpl = hf_xmalloc(tpl_len);
	memcpy(job->tpl, tpl, tpl_len);
	job->tpl_len = tpl_len;
	hf_err err = reader_run_job(r, job, timeout_ms, msg, msg_cap);
	if (err == HF_OK)
		*res = job->match;
	reader_job_unref(r, job);
	return err;
}
