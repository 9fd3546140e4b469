/* hf_err.c - names, HTTP statuses and user messages of the error codes, in ONE table. */
#include "hf_base.h"
#include "hf_err.h"

static const struct {
	const char *name;
	int status;
	const char *message;
} err_table[HF_ERR_COUNT_] = {
	[HF_OK] = {"ok", 200, "OK"},
	[HF_EINVAL] = {"invalid", 400, "The request is not valid; see the field errors."},
	[HF_ENOTFOUND] = {"not_found", 404, "Not found."},
	[HF_ECONFLICT] = {"conflict", 409, "The request conflicts with the current state of the record."},
	[HF_ETOOBIG] = {"too_big", 413, "The request is too large."},
	[HF_EAUTH] = {"auth", 401, "Authentication is required."},
	[HF_EFORBIDDEN] = {"forbidden", 403, "You are not allowed to do this."},
	[HF_ETIMEOUT] = {"timeout", 504, "An upstream system did not answer in time."},
	[HF_EUPSTREAM] = {"upstream", 502, "An upstream system failed."},
	[HF_EDB] = {"db", 500, "The database refused the operation."},
	[HF_EDB_RETRY] = {"db_retry", 503, "The database is temporarily unavailable; nothing was changed. Try again shortly."},
	[HF_EDEVICE] = {"device", 500, "A device failed."},
	[HF_EINTERNAL] = {"internal", 500, "Internal error."},
	[HF_EIO] = {"io", 500, "A local input/output operation failed."},
	[HF_EMETHOD] = {"method", 405, "This method is not allowed on this resource."},
	[HF_ERATELIMIT] = {"rate_limited", 429, "Too many attempts; wait a minute and try again."},
	[HF_ELOCKED] = {"locked", 423, "Locked: staff must unlock it before it can be used again."},
};

const char *hf_err_name(hf_err e)
{
	return (unsigned)e < HF_ERR_COUNT_ ? err_table[e].name : "unknown";
}

int hf_err_http_status(hf_err e)
{
	return (unsigned)e < HF_ERR_COUNT_ ? err_table[e].status : 500;
}

const char *hf_err_message(hf_err e)
{
	return (unsigned)e < HF_ERR_COUNT_ ? err_table[e].message : "Internal error.";
}
