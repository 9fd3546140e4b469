/* svc.h - what a service function called from the API (or the CLI) is handed: the database connection, the
 * authenticated caller, and where to put field errors and a human message. */
#ifndef HF_CORE_SVC_H
#define HF_CORE_SVC_H

#include "auth.h"
#include "db.h"
#include "hf_json.h"

struct svc_call {
	struct db *db;
	const struct principal *p;
	struct hf_ferrs *fe;
	char *msg;
	size_t msg_cap;
	int status; /* the HTTP status of a success when it is not the route's default (200 linked, 202 pending) */
};

/* Sets the human message of the answer. */
void svc_say(struct svc_call *c, const char *fmt, ...) HF_PRINTF(2, 3);
/* The individual behind a beneficiary number; HF_ENOTFOUND (with a message) when unknown. */
HF_MUST_CHECK hf_err svc_individual(struct svc_call *c, const char *ben_no, int64_t *id);

#endif
