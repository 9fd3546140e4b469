/* recon.h - reconciliation: a provider statement (CSV, docs/reconciliation.md) matched against the ledger of a
 * cycle: matched, amount mismatched, duplicated, missing on either side, broken lines; a report per run and
 * a statement_mismatch alert when anything does not match. */
#ifndef HF_CORE_RECON_H
#define HF_CORE_RECON_H

#include "audit.h"
#include "db.h"
#include "svc.h"
#include <jansson.h>
#include <stdio.h>

/* hifadhi-core reconcile CYCLE FILE.csv: reads the statement from in (any size; streamed). */
HF_MUST_CHECK hf_err recon_run_file(struct db *db, const struct audit_actor *who, const char *cycle_code, FILE *in,
				    json_t **report);
/* POST /cycles/{code}/reconciliations with a text/csv body. */
HF_MUST_CHECK hf_err recon_run_api(struct svc_call *c, const char *cycle_code, struct hf_str csv, json_t **out);
/* GET /cycles/{code}/reconciliations: the runs of a cycle, newest first. */
HF_MUST_CHECK hf_err recon_list(struct svc_call *c, const char *cycle_code, json_t **out);
/* GET /reconciliations/{id}?kind=&limit=&after=: a run's counts and its items (payments by number). */
HF_MUST_CHECK hf_err recon_get(struct svc_call *c, const char *run_id, const char *kind, int limit, const char *after,
			       json_t **out);

#endif
