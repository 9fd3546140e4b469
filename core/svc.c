/* svc.c - helpers every service function uses (see svc.h). */
#include "hf_base.h"
#include "svc.h"

#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void svc_say(struct svc_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, c->msg_cap, fmt, ap);
	va_end(ap);
}

hf_err svc_individual(struct svc_call *c, const char *ben_no, int64_t *id)
{
	if (!ben_no || strlen(ben_no) != BENNO_LEN) {
		svc_say(c, "No beneficiary with that number.");
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {db_str(ben_no)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db, "SELECT id FROM individuals WHERE ben_no = ?", v, 1, &r);
	if (err)
		return err;
	err = db_rows_next(r) ? HF_OK : HF_ENOTFOUND;
	if (!err)
		*id = db_rows_i64(r, 0);
	else
		svc_say(c, "No beneficiary with that number.");
	db_rows_free(r);
	return err;
}
