/* reader.h - the fingerprint reader, through libfprint. kiosk/reader.c is the ONLY file that includes
 * <fprint.h> or any GLib header; the rest of the kiosk sees this interface and plain bytes.
 *
 * Production: the first reader libfprint finds (or the driver named in the config). Dev and tests:
 * libfprint's own virtual drivers, which appear only when their environment variable names a unix socket
 * (FP_VIRTUAL_IMAGE: an image sensor fed 8-bit grey images, matched on the host by libfprint's NBIS;
 * FP_VIRTUAL_DEVICE: scripted, deterministic). See ../shared notes in docs/kiosk.md.
 *
 * libfprint is asynchronous on a GLib main context. The reader owns one thread running the main context
 * libfprint uses (GLib's global default one: libfprint 1.94.5 attaches work there whatever context it is
 * given, see reader.c; so one reader per process, and nothing else in the kiosk may run GLib's default
 * context); the calls below are synchronous, thread-safe (one operation at a time: a second caller
 * waits), and each has a deadline after which the operation is cancelled and HF_ETIMEOUT returned.
 * A reader that is absent at start or unplugged later is looked for again every second by that thread;
 * reader_state() tells what it is now, without blocking.
 *
 * Templates are libfprint's own serialisation (fp_print_serialize, "FP3"...), opaque to the rest of the
 * kiosk, tagged with the driver and device they were made on: a template made on another kind of reader
 * is refused with HF_EINVAL before any scan (fp_print_compatible).
 */
#ifndef KIOSK_READER_H
#define KIOSK_READER_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define READER_TEMPLATE_MAX (64 * 1024) /* bytes of one serialised template, capped */
#define READER_DRIVER_MAX 64

struct reader;

struct reader_config {
	const char *driver; /* libfprint driver id ("virtual_image", "virtual_device", "elan", ...); "" or NULL: the first found */
	int open_timeout_ms; /* how long reader_open waits for the first scan's verdict (see reader_open) */
};

enum reader_state {
	READER_ABSENT,	/* no device found (unplugged, not yet plugged, driver missing) */
	READER_READY,	/* open and idle */
	READER_BUSY,	/* an enrolment or verification is running */
	READER_FAILED,	/* the device is present but failing (open or scan errors); retried every second */
};

enum reader_match {
	READER_MATCH,	  /* the live finger matches the template */
	READER_NO_MATCH,  /* a good scan of another finger */
	READER_RETRY,	  /* the scan was not usable (too short, centre finger, remove and retry): ask again */
};

/* Progress of an enrolment, called on the reader's thread (so it must not call reader_enrol, reader_verify or
 * reader_close; reader_state and the rest are fine): a stage
 * done (stage_done 1..stages, retry false), or stage_done 0 with retry true when the last scan was not usable
 * and the stage must be repeated (the UI says "press again"). Never called after reader_enrol returned. */
typedef void (*reader_progress_fn)(void *ud, int stage_done, int stages, bool retry);

/* Starts the reader thread and waits up to cfg->open_timeout_ms for the first scan's verdict: a device open
 * (READY), none found (ABSENT) or one that failed to open (FAILED). HF_OK in all three cases (it keeps
 * looking every second); an error only when the thread cannot start: HF_ECONFLICT when a reader is already
 * open in this process (or another thread owns GLib's default main context), HF_EINVAL for a driver id
 * longer than READER_DRIVER_MAX, HF_EINTERNAL when the thread cannot be created. */
HF_MUST_CHECK hf_err reader_open(const struct reader_config *cfg, struct reader **out);
/* Cancels whatever runs, closes the device, stops the thread. NULL is fine. */
void reader_close(struct reader *r);

/* The state now and, for ABSENT/FAILED, a short reason for logs and the staff console (no personal data). */
enum reader_state reader_state(struct reader *r, char *why, size_t cap);
/* The driver id and device id of the open device ("" when absent), for tagging templates. */
void reader_identity(struct reader *r, char driver[READER_DRIVER_MAX], char device[READER_DRIVER_MAX]);

/* Enrols one finger: as many stages as the device wants (5 on the virtual drivers), each a scan, with
 * progress reported through fn (may be NULL). On HF_OK the serialised template is appended to tpl_out.
 * HF_ETIMEOUT (nobody pressed in time; cancelled), HF_EDEVICE (device error, unplugged, or the reader is not
 * READY: msg says which), HF_ECONFLICT (another operation is running and did not finish within the
 * deadline), HF_ETOOBIG (the template does not fit tpl_out). msg (may be NULL) gets a short English reason,
 * without personal data. */
HF_MUST_CHECK hf_err reader_enrol(struct reader *r, int timeout_ms, reader_progress_fn fn, void *ud,
				  struct hf_buf *tpl_out, char *msg, size_t msg_cap);

/* One verification scan of the live finger against a serialised template. HF_OK with *res set (READER_RETRY
 * with msg saying why, e.g. "retry: too short"); HF_EINVAL when the template is empty, over
 * READER_TEMPLATE_MAX, damaged (its structure is checked before libfprint sees it: libfprint's own parser
 * aborts the process on some damaged input) or made on another kind of reader, all before any scan;
 * HF_ETIMEOUT; HF_EDEVICE (device error, unplugged mid-scan, or the reader is not READY); HF_ECONFLICT as
 * for reader_enrol. */
HF_MUST_CHECK hf_err reader_verify(struct reader *r, const void *tpl, size_t tpl_len, int timeout_ms,
				   enum reader_match *res, char *msg, size_t msg_cap);

/* Cancels the running operation, if any (it then returns HF_ETIMEOUT); from any thread. */
void reader_cancel(struct reader *r);

/* Whether a running enrolment or verification is waiting for a finger now (the sensor is armed), and in
 * *requests (may be NULL) how many times the reader has asked for a finger since reader_open: each stage of
 * an enrolment and each verification asks once (again after a retry). For the UI's "place your finger" and for whatever feeds the
 * virtual drivers (a scan sent before the sensor is armed is lost). Does not block. */
bool reader_finger_needed(struct reader *r, uint64_t *requests);

#endif
