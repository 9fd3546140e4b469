/* quality.h - the registry's data quality report (`hifadhi-core quality`, GET /api/v1/quality).
 *
 * Programme managers need to know, before a payment cycle, how much of the registry is complete, which
 * records would no longer pass today's validation, which people may be registered twice and which
 * records nobody has looked at for a long time. The report names records by ben_no / hh_no only: it can
 * be shared with anyone allowed to see the registry's statistics, never with personal data in it.
 *
 * JSON shape:
 *  {"generated_at": "2026-01-31T10:00:00Z", "individuals": N, "households": N,
 *   "completeness": {FIELD: {"filled": n, "missing": n, "percent": 97.5}, ...}
 *       FIELD in national_id, phone, date_of_birth, given_name, family_name, disability, language,
 *       relationship (individuals) and address (households); percent has one decimal, 0.0 when empty,
 *   "invalid": [{"ben_no", "field", "code"} | {"hh_no", "field": "head", "code"}, ...]   first 1000
 *   "invalid_total": N, "invalid_by_field": {FIELD: n, ...}
 *       individual fields national_id, phone, date_of_birth (code as from validate.h, or "unreadable"
 *       when the sealed value does not open) and household (code "no_household"); households with
 *       field head (code "no_head" or "several_heads"),
 *   "duplicates": {"same_national_id": [{"ben_nos": [...], "size": n}, ...], "same_national_id_total": N,
 *                  "same_name_dob_village": [...], "same_name_dob_village_total": N,
 *                  "phonetic_name_dob": [...], "phonetic_name_dob_total": N}
 *       groups of 2+ individuals: the 1000 largest of each kind, largest first; a group's ben_nos are
 *       sorted and cut at 100 (size is exact); phonetic groups exactly equal to a same_name_dob_village
 *       group are left out,
 *   "stale": {"days": N, "individuals": n, "households": n, "sample": [ben_no, ... up to 100, oldest first]}}
 */
#ifndef HF_CORE_QUALITY_H
#define HF_CORE_QUALITY_H

#include <jansson.h>
#include <stdio.h>

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"

#define QUALITY_LIST_MAX 1000

/* Builds the report (stale_days < 1 = the configured quality.stale_days). Decrypts every individual's
 * national ID, phone and date of birth once, streaming: memory stays constant (a million individuals
 * take about 15 s and 10 MB). *out is owned (json_decref). Uses g_app.keys; a database error as is.
 * Several statements run one after another without a transaction, so on a registry being written
 * meanwhile the counts may disagree by the rows written during the run. */
HF_MUST_CHECK hf_err quality_report(struct db *db, int stale_days, json_t **out);

/* Writes a readable summary of a report to out (ben_nos only, long lists cut with a count). Returns 0,
 * or -1 when out could not be written. */
int quality_print(json_t *report, FILE *out);

#endif
