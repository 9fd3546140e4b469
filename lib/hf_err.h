/* hf_err.h - the one error enum of Hifadhi, its names for logs and its HTTP mapping.
 *
 * Append-only: codes are never renumbered, so logs and metrics stay comparable across versions.
 */
#ifndef HF_ERR_H
#define HF_ERR_H

#include "hf_base.h"

typedef enum hf_err {
	HF_OK = 0,
	HF_EINVAL,    /* input failed validation */
	HF_ENOTFOUND, /* no such record or route */
	HF_ECONFLICT, /* unique value taken, stale version, state does not allow it */
	HF_ETOOBIG,   /* a size cap was hit */
	HF_EAUTH,     /* not authenticated */
	HF_EFORBIDDEN,/* authenticated, not allowed */
	HF_ETIMEOUT,
	HF_EUPSTREAM, /* an outside system failed */
	HF_EDB,       /* the database refused for a reason retrying will not fix */
	HF_EDB_RETRY, /* the database is down, restarting or deadlocked: retry later */
	HF_EDEVICE,
	HF_EINTERNAL,
	HF_EIO,       /* a local file or socket failed */
	HF_EMETHOD,   /* the route exists but not for this method */
	HF_ERATELIMIT,/* too many attempts: slow down (429 with Retry-After) */
	HF_ELOCKED,   /* the resource is locked until staff unlock it (423): a kiosk after tamper */
	HF_ERR_COUNT_
} hf_err;

/* Short stable name for logs and metrics, e.g. "db_retry". */
const char *hf_err_name(hf_err e);
/* HTTP status the API answers with for this code. */
int hf_err_http_status(hf_err e);
/* A user-facing sentence, safe to show to anyone (no internals). */
const char *hf_err_message(hf_err e);

#endif
