/* registry.c - programmes, households, individuals, enrolments, search and history.
 *
 * Rules live here, storage details in person.c and db.c. Every write runs in one transaction (db_tx) that
 * also writes the previous version into record_versions, so "who changed what, when and why" can never
 * be missing for a change that happened. Optimistic concurrency: an update names the version it was
 * made from; a stale version is refused (409) instead of silently overwriting a colleague's change.
 */
#include "hf_base.h"
#include "registry.h"
#include "app.h"
#include "hf_log.h"
#include "location.h"
#include "person.h"
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 30
#define TS_FMT "'%Y-%m-%dT%H:%i:%s.%fZ'"

/* ------------------------------------------------------------------ helpers */

static hf_err conflict(struct reg_req *rq, hf_err e, const char *fmt, ...) HF_PRINTF(3, 4);
static hf_err conflict(struct reg_req *rq, hf_err e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rq->msg, sizeof(rq->msg), fmt, ap);
	va_end(ap);
	return e;
}

/* Our SQL text is built from constants and numbers only, within a fixed cap: overflow is our bug. */
static void sql_add(struct hf_buf *b, const char *fmt, ...) HF_PRINTF(2, 3);
static void sql_add(struct hf_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hf_err err = hf_buf_vappendf(b, fmt, ap);
	va_end(ap);
	HF_ASSERT(err == HF_OK);
}

static void sql_lit(struct hf_buf *b, const char *s)
{
	HF_ASSERT(hf_buf_append_str(b, s) == HF_OK);
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Reason and version fields every update carries. */
static bool change_meta(json_t *body, struct reg_req *rq, const char **reason, int64_t *version)
{
	bool ok = hf_json_get_str(body, "", "reason", true, 3, 500, rq->fe, reason);
	ok = hf_json_get_int(body, "", "version", true, 1, INT32_MAX, rq->fe, version) && ok;
	return ok;
}

/* One registry operation: the request, its body, the record it names (code, number or id; NULL for a
 * create) and, once the transaction committed, the JSON answer. */
struct tx_call {
	struct reg_req *rq;
	json_t *body;
	const char *key;
	json_t *result;
};

/* A registry transaction and its audit entry, committed together or not at all. */
struct audited {
	struct reg_req *rq;
	const char *key; /* the record's number; NULL: taken from the result (creates) */
	db_tx_fn fn;
	void *ctx;
	json_t **result;
	const json_t *body;
};

static hf_err audited_body(struct db *db, void *vctx)
{
	struct audited *a = vctx;
	struct reg_req *rq = a->rq;
	json_decref(rq->audit_before);
	rq->audit_before = NULL;
	hf_err err = a->fn(db, a->ctx);
	if (err)
		return err;
	HF_ASSERT(rq->who && rq->action && rq->entity);
	const json_t *res = *a->result;
	const char *record = a->key;
	static const char *const numbers[] = {"ben_no", "hh_no", "code", "id"};
	for (size_t i = 0; !record && i < HF_ARRAY_LEN(numbers); i++)
		record = json_string_value(json_object_get(res, numbers[i]));
	/* Which fields the request set (names only: values may be personal data). */
	json_t *fields = json_array();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)a->body, k, v) {
		if (strcmp(k, "reason") && strcmp(k, "version"))
			json_array_append_new(fields, json_string(k));
	}
	json_t *d = json_pack("{s:o}", "fields", fields);
	struct audit_event ev = {rq->action, rq->entity, record ? record : "", "ok", rq->audit_before, res, d};
	err = audit_append(db, rq->who, &ev);
	json_decref(d);
	return err;
}

static hf_err audited_tx(struct reg_req *rq, const json_t *body, const char *key, db_tx_fn fn, void *ctx,
			 json_t **result)
{
	struct audited a = {rq, key, fn, ctx, result, body};
	hf_err err = HF_OK;
	for (int attempt = 0; attempt < 3; attempt++) {
		err = db_tx(rq->db, audited_body, &a);
		/* Row ids are random in their low bits (db_new_id): two drawn in the same millisecond can collide.
		 * The transaction draws new ones when run again. */
		if (!(err == HF_ECONFLICT && strcmp(db_conflict_key(rq->db), "PRIMARY") == 0))
			break;
		rq->msg[0] = '\0';
	}
	return err;
}

/* Refuses unknown fields, then runs fn in a retried transaction and hands its result over. */
static hf_err run_tx(struct reg_req *rq, json_t *body, const char *const *allowed, const char *key, db_tx_fn fn,
		     json_t **out)
{
	hf_json_only_fields(body, allowed, "", rq->fe);
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	struct tx_call t = {rq, body, key, NULL};
	hf_err err = audited_tx(rq, body, key, fn, &t, &t.result);
	if (err) {
		json_decref(t.result);
		return err;
	}
	*out = t.result;
	return HF_OK;
}

/* Seals the JSON of the record as it was and stores it as version `version` of entity/id. */
static hf_err keep_version(struct reg_req *rq, const char *entity, int64_t entity_id, int64_t version, json_t *before,
			   const char *reason)
{
	int64_t id = db_new_id();
	char ad[96];
	int n = snprintf(ad, sizeof(ad), "record_versions.snapshot:%lld", (long long)id);
	char *text = json_dumps(before, JSON_COMPACT);
	HF_ASSERT(text != NULL);
	struct hf_buf sealed;
	hf_buf_init(&sealed, 16 * 1024 * 1024);
	hf_err err = hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, text, strlen(text), &sealed);
	memset(text, 0, strlen(text));
	json_decref(rq->audit_before);
	rq->audit_before = json_incref(before);
	free(text);
	if (err)
		goto out;
	struct db_val v[] = {DB_I64(id),	    db_str(entity),	 DB_I64(entity_id),
			     DB_I64(version), db_str(rq->actor), db_str(reason),
			     DB_BLOB(sealed.data, sealed.len)};
	err = db_exec(rq->db,
		      "INSERT INTO record_versions (id, entity, entity_id, version, changed_at, changed_by, reason, snapshot_enc)"
		      " VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3), ?, ?, ?)",
		      v, HF_ARRAY_LEN(v), NULL);
out:
	hf_buf_release(&sealed);
	return err;
}

static json_t *page(json_t *items, int limit, const char *next)
{
	return json_pack("{s:o, s:i, s:s?}", "items", items, "limit", limit, "next",
			 (next && json_array_size(items) >= (size_t)limit) ? next : NULL);
}

static bool cursor_parse(const char *after, int64_t *out)
{
	*out = 0;
	if (!after || !after[0])
		return true;
	return hf_parse_i64(after, 0, INT64_MAX, out) == HF_OK;
}

/* ------------------------------------------------------------------ programmes */

#define PROG_COLS                                                                                            \
	"id, code, name, target, currency, description, active, version, DATE_FORMAT(created_at, " TS_FMT     \
	"), DATE_FORMAT(updated_at, " TS_FMT ")"

static json_t *prog_json(struct db_rows *r)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b, s:I, s:s, s:s}", "code", db_rows_str(r, 1), "name",
			 db_rows_str(r, 2), "target", db_rows_str(r, 3), "currency", db_rows_str(r, 4), "description",
			 db_rows_null(r, 5) ? NULL : db_rows_str(r, 5), "active", db_rows_i64(r, 6) != 0, "version",
			 (json_int_t)db_rows_i64(r, 7), "created_at", db_rows_str(r, 8), "updated_at", db_rows_str(r, 9));
}

static bool code_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static bool currency_ok(const char *s)
{
	return strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
}

hf_err registry_programme_list(struct reg_req *rq, json_t **out)
{
	struct db_rows *r = NULL;
	hf_err err = db_query(rq->db, "SELECT " PROG_COLS " FROM programmes ORDER BY code", NULL, 0, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r))
		json_array_append_new(items, prog_json(r));
	db_rows_free(r);
	*out = json_pack("{s:o}", "items", items);
	return HF_OK;
}

static hf_err prog_load(struct reg_req *rq, const char *code, bool for_update, int64_t *id_out, json_t **out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(code)};
	hf_err err = db_query(rq->db,
			      for_update ? "SELECT " PROG_COLS " FROM programmes WHERE code = ? FOR UPDATE"
					 : "SELECT " PROG_COLS " FROM programmes WHERE code = ?",
			      p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return conflict(rq, HF_ENOTFOUND, "no programme with this code");
	}
	if (id_out)
		*id_out = db_rows_i64(r, 0);
	*out = prog_json(r);
	db_rows_free(r);
	return HF_OK;
}

hf_err registry_programme_get(struct reg_req *rq, const char *code, json_t **out)
{
	return prog_load(rq, code, false, NULL, out);
}

static const char *const PROG_FIELDS[] = {"code", "name", "target", "currency", "description", "active", NULL};

static hf_err prog_create_tx(struct db *db, void *vctx)
{
	(void)db;
	struct tx_call *t = vctx;
	struct reg_req *rq = t->rq;
	const char *code = NULL, *name = NULL, *target = NULL, *currency = NULL, *desc = NULL;
	hf_json_get_str(t->body, "", "code", true, 2, 32, rq->fe, &code);
	hf_json_get_str(t->body, "", "name", true, 2, 200, rq->fe, &name);
	hf_json_get_enum(t->body, "", "target", true, VALID_TARGET, rq->fe, &target);
	hf_json_get_str(t->body, "", "currency", true, 3, 3, rq->fe, &currency);
	hf_json_get_str(t->body, "", "description", false, 0, 1000, rq->fe, &desc);
	bool active = true;
	hf_json_get_bool(t->body, "", "active", false, rq->fe, &active);
	if (code && !code_ok(code))
		hf_ferrs_add(rq->fe, "code", "bad_format", "2-32 capital letters, digits, '-' or '_'");
	if (currency && !currency_ok(currency))
		hf_ferrs_add(rq->fe, "currency", "bad_format", "an ISO 4217 code such as KES");
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	int64_t id = db_new_id();
	struct db_val v[] = {DB_I64(id),	db_str(code),	    db_str(name),      db_str(target), db_str(currency),
			     db_str(desc), DB_I64(active), db_str(rq->actor), db_str(rq->actor)};
	hf_err err = db_exec(rq->db,
			     "INSERT INTO programmes (id, code, name, target, currency, description, active, version,"
			     " created_at, created_by, updated_at, updated_by)"
			     " VALUES (?, ?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(3), ?, UTC_TIMESTAMP(3), ?)",
			     v, HF_ARRAY_LEN(v), NULL);
	if (err == HF_ECONFLICT)
		return conflict(rq, HF_ECONFLICT, "a programme with this code already exists");
	if (err)
		return err;
	return prog_load(rq, code, false, NULL, &t->result);
}

hf_err registry_programme_create(struct reg_req *rq, json_t *body, json_t **out)
{
	return run_tx(rq, body, PROG_FIELDS, NULL, prog_create_tx, out);
}

static hf_err prog_update_tx(struct db *db, void *vctx)
{
	(void)db;
	struct tx_call *t = vctx;
	struct reg_req *rq = t->rq;
	const char *reason = NULL, *name = NULL, *desc = NULL;
	int64_t version = 0, id = 0;
	bool active = true, has_active;
	change_meta(t->body, rq, &reason, &version);
	hf_json_get_str(t->body, "", "name", false, 2, 200, rq->fe, &name);
	hf_json_get_str(t->body, "", "description", false, 0, 1000, rq->fe, &desc);
	has_active = hf_json_get_bool(t->body, "", "active", false, rq->fe, &active);
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	json_t *before = NULL;
	hf_err err = prog_load(rq, t->key, true, &id, &before);
	if (err)
		return err;
	if (json_integer_value(json_object_get(before, "version")) != version) {
		json_decref(before);
		return conflict(rq, HF_ECONFLICT, "the programme was changed by someone else; reload it and try again");
	}
	err = keep_version(rq, "programme", id, version, before, reason);
	if (!name)
		name = jstr(before, "name");
	if (!json_object_get(t->body, "description"))
		desc = jstr(before, "description");
	if (!has_active)
		active = json_is_true(json_object_get(before, "active"));
	if (!err) {
		struct db_val v[] = {db_str(name), db_str(desc), DB_I64(active), db_str(rq->actor), DB_I64(id)};
		err = db_exec(rq->db,
			      "UPDATE programmes SET name = ?, description = ?, active = ?, version = version + 1,"
			      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
	}
	json_decref(before);
	if (err)
		return err;
	return prog_load(rq, t->key, false, NULL, &t->result);
}

hf_err registry_programme_update(struct reg_req *rq, const char *code, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"name", "description", "active", "reason", "version", NULL};
	return run_tx(rq, body, allowed, code, prog_update_tx, out);
}

/* ------------------------------------------------------------------ individuals: read */

#define IND_FROM " FROM individuals i LEFT JOIN households h ON h.id = i.household_id"

static int enrolment_cmp(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "programme"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "programme"));
	return strcmp(x ? x : "", y ? y : "");
}

/* Sorts an array of enrolments by programme code, in place. */
static void enrolments_sort(json_t *a)
{
	size_t n = json_array_size(a);
	if (n < 2)
		return;
	json_t **items = hf_xcalloc(n, sizeof(*items));
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(a, i));
	qsort(items, n, sizeof(*items), enrolment_cmp);
	json_array_clear(a);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, items[i]);
	free(items);
}

/* Adds the enrolment in columns c..c+3 (id, code, status, version) unless absent or already listed. */
static void enrolment_add(json_t *list, const struct db_rows *r, size_t c, const char *target)
{
	if (db_rows_null(r, c))
		return;
	const char *id = db_rows_str(r, c);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
			return;
	}
	json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", id, "programme", db_rows_str(r, c + 1),
					      "status", db_rows_str(r, c + 2), "target", target, "version",
					      (json_int_t)db_rows_i64(r, c + 3)));
}

/* Enrolments of a household, as [{id, programme, status, target, version}]. */
static hf_err enrolments_of_household(struct reg_req *rq, int64_t hh_id, json_t **out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {DB_I64(hh_id)};
	hf_err err = db_query(rq->db,
			      "SELECT id, programme_code, status, version FROM enrolments WHERE household_id = ?"
			      " ORDER BY programme_code",
			      p, 1, &r);
	if (err)
		return err;
	json_t *a = json_array();
	while (db_rows_next(r))
		enrolment_add(a, r, 0, "household");
	db_rows_free(r);
	*out = a;
	return HF_OK;
}

/* Runs a one-individual query whose single parameter is ben_no; on success r is on its first row. */
static hf_err ind_query(struct reg_req *rq, const char *ben_no, const char *sql, struct db_rows **out)
{
	if (!numbers_valid(ben_no))
		return conflict(rq, HF_ENOTFOUND,
				"no beneficiary with this number (a beneficiary number has 9 digits and a valid check digit)");
	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(ben_no)};
	hf_err err = db_query(rq->db, sql, p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return conflict(rq, HF_ENOTFOUND, "no beneficiary with this number");
	}
	*out = r;
	return HF_OK;
}

/* Loads one individual by ben_no; *id_out, *hh_out and *village_out when not NULL. */
static hf_err ind_load(struct reg_req *rq, const char *ben_no, bool for_update, int64_t *id_out, int64_t *hh_out,
		       int64_t *village_out, json_t **out)
{
	struct db_rows *r = NULL;
	hf_err err = ind_query(rq, ben_no,
			       for_update ? "SELECT " PERSON_SELECT_COLUMNS ", i.household_id, h.location_id" IND_FROM
					    " WHERE i.ben_no = ? FOR UPDATE"
					  : "SELECT " PERSON_SELECT_COLUMNS ", i.household_id, h.location_id" IND_FROM
					    " WHERE i.ben_no = ?",
			       &r);
	if (err)
		return err;
	json_t *o = NULL;
	err = person_to_json(g_app.keys, r, 0, &o);
	if (!err) {
		if (id_out)
			*id_out = db_rows_i64(r, 0);
		if (hh_out)
			*hh_out = db_rows_i64(r, PERSON_SELECT_NCOLS);
		if (village_out)
			*village_out = db_rows_i64(r, PERSON_SELECT_NCOLS + 1);
		*out = o;
	}
	db_rows_free(r);
	return err;
}

/* The hot read (kiosks, USSD, staff): one statement, one round trip, every lookup by a unique or
 * foreign-key index. The individual's and the household's enrolments come as LEFT JOINs (a person has a
 * handful, so the rows multiply by little); measured at about twice the throughput of correlated
 * subqueries or a second query. */
hf_err registry_individual_get(struct reg_req *rq, const char *ben_no, json_t **out)
{
	struct db_rows *r = NULL;
	hf_err err = ind_query(rq, ben_no,
			       "SELECT " PERSON_SELECT_COLUMNS ", e1.id, e1.programme_code, e1.status, e1.version,"
			       " e2.id, e2.programme_code, e2.status, e2.version" IND_FROM
			       " LEFT JOIN enrolments e1 ON e1.individual_id = i.id"
			       " LEFT JOIN enrolments e2 ON e2.household_id = i.household_id"
			       " WHERE i.ben_no = ?",
			       &r);
	if (err)
		return err;
	json_t *o = NULL;
	err = person_to_json(g_app.keys, r, 0, &o);
	if (!err) {
		json_t *enr = json_array();
		do {
			enrolment_add(enr, r, PERSON_SELECT_NCOLS, "individual");
			enrolment_add(enr, r, PERSON_SELECT_NCOLS + 4, "household");
		} while (db_rows_next(r));
		enrolments_sort(enr);
		json_object_set_new(o, "enrolments", enr);
		*out = o;
	}
	db_rows_free(r);
	return err;
}

/* ------------------------------------------------------------------ individuals: write */

static const char *const PERSON_FIELDS[] = {"given_name", "family_name", "sex",	     "date_of_birth", "national_id",
					    "phone",	  "relationship", "disability", "language",	 NULL};

/* Reads a person's fields from JSON; strings only (type errors are recorded). */
static void person_in_from_json(json_t *o, const char *prefix, struct reg_req *rq, struct person_in *in)
{
	const char **slots[] = {&in->given_name, &in->family_name, &in->sex,	    &in->date_of_birth, &in->national_id,
				&in->phone,	 &in->relationship, &in->disability, &in->language};
	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < HF_ARRAY_LEN(slots); i++) {
		json_t *v = json_object_get(o, PERSON_FIELDS[i]);
		if (!v || json_is_null(v))
			continue;
		const char *s = NULL;
		/* Length checks are person_validate's; this only enforces the type, text-ness and a hard cap. */
		if (hf_json_get_str(o, prefix, PERSON_FIELDS[i], false, 0, 200, rq->fe, &s))
			*slots[i] = s;
	}
}

/* Refuses a national ID already held by someone else (exclude_id = the individual being edited). */
static hf_err nid_unique(struct reg_req *rq, const char *nid, int64_t exclude_id, const char *field)
{
	if (!nid[0])
		return HF_OK;
	uint8_t b[HF_BIDX_LEN];
	person_nid_bidx(g_app.keys, nid, b);
	struct db_rows *r = NULL;
	struct db_val p[] = {DB_BLOB(b, sizeof(b)), DB_I64(exclude_id)};
	hf_err err = db_query(rq->db, "SELECT ben_no FROM individuals WHERE nid_bidx = ? AND id <> ? LIMIT 1", p, 2, &r);
	if (err)
		return err;
	if (db_rows_next(r))
		hf_ferrs_add(rq->fe, field, "already_registered", "this national ID is already registered to beneficiary %s",
			     db_rows_str(r, 0));
	db_rows_free(r);
	return hf_ferrs_any(rq->fe) ? HF_EINVAL : HF_OK;
}

/* Inserts one sealed individual, drawing a new beneficiary number if the random one is taken. */
static hf_err ind_insert(struct reg_req *rq, struct person_row *row, int64_t hh_id)
{
	struct db_val v[PERSON_INSERT_NPARAMS];
	for (int attempt = 0; attempt < 5; attempt++) {
		numbers_new(row->ben_no);
		person_insert_vals(row, hh_id, NULL, rq->actor, v);
		hf_err err = db_exec(rq->db, "INSERT INTO individuals (" PERSON_INSERT_COLUMNS ") VALUES " PERSON_INSERT_ROW,
				     v, PERSON_INSERT_NPARAMS, NULL);
		if (err == HF_ECONFLICT && strcmp(db_conflict_key(rq->db), "uq_individuals_ben_no") == 0)
			continue;
		if (err == HF_ECONFLICT && strcmp(db_conflict_key(rq->db), "uq_individuals_head") == 0)
			return conflict(rq, HF_ECONFLICT, "the household already has a head");
		return err;
	}
	return conflict(rq, HF_ECONFLICT, "could not draw a free beneficiary number; try again");
}

static hf_err ind_update_tx(struct db *db, void *vctx)
{
	(void)db;
	struct tx_call *t = vctx;
	struct reg_req *rq = t->rq;
	const char *reason = NULL;
	int64_t version = 0, id = 0, hh = 0, village = 0;
	change_meta(t->body, rq, &reason, &version);
	struct person_in patch;
	person_in_from_json(t->body, "", rq, &patch);
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	json_t *before = NULL;
	hf_err err = ind_load(rq, t->key, true, &id, &hh, &village, &before);
	if (err)
		return err;
	struct person_row row;
	memset(&row, 0, sizeof(row));
	if (json_integer_value(json_object_get(before, "version")) != version) {
		err = conflict(rq, HF_ECONFLICT, "the record was changed by someone else; reload it and try again");
		goto out;
	}
	/* Merge: a field present in the body replaces the stored one; null clears optional fields. */
	struct person_in in;
	const char **slots[] = {&in.given_name, &in.family_name, &in.sex,	  &in.date_of_birth, &in.national_id,
				&in.phone,	&in.relationship, &in.disability, &in.language};
	const char **pslots[] = {&patch.given_name, &patch.family_name, &patch.sex,	   &patch.date_of_birth,
				 &patch.national_id, &patch.phone,	&patch.relationship, &patch.disability,
				 &patch.language};
	static const char *const json_keys[] = {"given_name", "family_name", "sex",	     "date_of_birth", "national_id",
						"phone",      "relationship", "disability", "language"};
	for (size_t i = 0; i < HF_ARRAY_LEN(slots); i++) {
		json_t *pv = json_object_get(t->body, json_keys[i]);
		*slots[i] = pv ? *pslots[i] : jstr(before, json_keys[i]);
	}
	const char *old_rel = jstr(before, "relationship");
	bool was_head = old_rel && strcmp(old_rel, "head") == 0;
	bool is_head = in.relationship && strcmp(in.relationship, "head") == 0;
	if (was_head != is_head) {
		err = conflict(rq, HF_ECONFLICT,
			       "the head of a household changes through a change-of-head request, not by editing a member");
		goto out;
	}
	if (!person_validate(&in, "", hh != 0, rq->fe, &row)) {
		err = HF_EINVAL;
		goto out;
	}
	err = nid_unique(rq, row.nid, id, "national_id");
	if (err)
		goto out;
	err = keep_version(rq, "individual", id, version, before, reason);
	if (err)
		goto out;
	row.id = id;
	person_seal(g_app.keys, &row, village);
	struct db_val v[] = {
		db_str(row.relationship),
		DB_BLOB(row.given_enc.data, row.given_enc.len),
		DB_BLOB(row.family_enc.data, row.family_enc.len),
		DB_BLOB(row.dob_enc.data, row.dob_enc.len),
		db_blob_or_null(row.nid_enc.data, row.nid_enc.len),
		db_blob_or_null(row.phone_enc.data, row.phone_enc.len),
		db_str(row.sex),
		DB_I64(row.birth_year),
		db_str(row.disability),
		db_str(row.language),
		row.nid[0] ? DB_BLOB(row.nid_bidx, HF_BIDX_LEN) : DB_NULLV,
		row.phone[0] ? DB_BLOB(row.phone_bidx, HF_BIDX_LEN) : DB_NULLV,
		DB_BLOB(row.dedup_bidx, HF_BIDX_LEN),
		DB_BLOB(row.phonetic_bidx, HF_BIDX_LEN),
		db_str(rq->actor),
		DB_I64(id),
	};
	err = db_exec(rq->db,
		      "UPDATE individuals SET relationship = ?, given_name_enc = ?, family_name_enc = ?, dob_enc = ?,"
		      " national_id_enc = ?, phone_enc = ?, sex = ?, birth_year = ?, disability = ?, language = ?,"
		      " nid_bidx = ?, phone_bidx = ?, dedup_bidx = ?, phonetic_bidx = ?, version = version + 1,"
		      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
		      v, HF_ARRAY_LEN(v), NULL);
	if (err)
		goto out;
	err = registry_individual_get(rq, t->key, &t->result);
out:
	person_row_release(&row);
	json_decref(before);
	return err;
}

static const char *const IND_UPDATE_FIELDS[] = {"given_name", "family_name", "sex",	"date_of_birth",
						 "national_id", "phone",       "relationship", "disability",
						 "language",   "reason",      "version",      NULL};

hf_err registry_individual_update(struct reg_req *rq, const char *ben_no, json_t *body, json_t **out)
{
	return run_tx(rq, body, IND_UPDATE_FIELDS, ben_no, ind_update_tx, out);
}



/* ------------------------------------------------------------------ households */

#define HH_COLS                                                                                              \
	"h.id, h.hh_no, l.path, h.address_enc, h.version, DATE_FORMAT(h.created_at, " TS_FMT                 \
	"), DATE_FORMAT(h.updated_at, " TS_FMT "), h.location_id"
#define HH_FROM " FROM households h JOIN locations l ON l.id = h.location_id"

static hf_err hh_json(struct db_rows *r, json_t **out)
{
	int64_t id = db_rows_i64(r, 0);
	json_t *o = json_object();
	json_object_set_new(o, "hh_no", json_string(db_rows_str(r, 1)));
	/* "Region/District/Village" as an object too, so clients need not split strings. */
	const char *path = db_rows_str(r, 2);
	json_object_set_new(o, "location_path", json_string(path));
	char parts[3][LOCATION_PATH_MAX];
	size_t k = 0, n = 0;
	for (const char *p = path; k < 3; p++) {
		if (*p == '/' || *p == '\0') {
			parts[k][n] = '\0';
			k++;
			n = 0;
			if (!*p)
				break;
		} else if (n + 1 < LOCATION_PATH_MAX) {
			parts[k][n++] = *p;
		}
	}
	for (; k < 3; k++)
		parts[k][0] = '\0';
	json_object_set_new(o, "location", json_pack("{s:s, s:s, s:s}", "region", parts[0], "district", parts[1],
						       "village", parts[2]));
	size_t len;
	const void *b = db_rows_blob(r, 3, &len);
	if (b) {
		char ad[64];
		int an = snprintf(ad, sizeof(ad), "households.address:%lld", (long long)id);
		struct hf_buf v;
		hf_buf_init(&v, 4096);
		if (hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)an}, b, len, &v)) {
			hf_log(HF_LOG_ERROR, "core.registry", "msg=\"sealed field failed to open\" household=%lld column=address",
			       (long long)id);
			hf_buf_release(&v);
			json_decref(o);
			return HF_EINTERNAL;
		}
		json_object_set_new(o, "address", json_stringn(hf_buf_cstr(&v), v.len));
		hf_buf_release(&v);
	} else {
		json_object_set_new(o, "address", json_null());
	}
	json_object_set_new(o, "version", json_integer(db_rows_i64(r, 4)));
	json_object_set_new(o, "created_at", json_string(db_rows_str(r, 5)));
	json_object_set_new(o, "updated_at", json_string(db_rows_str(r, 6)));
	*out = o;
	return HF_OK;
}

static hf_err hh_load(struct reg_req *rq, const char *hh_no, bool for_update, int64_t *id_out, int64_t *village_out,
		      json_t **out)
{
	if (!numbers_valid(hh_no))
		return conflict(rq, HF_ENOTFOUND, "no household with this number (9 digits with a valid check digit)");
	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(hh_no)};
	hf_err err = db_query(rq->db,
			      for_update ? "SELECT " HH_COLS HH_FROM " WHERE h.hh_no = ? FOR UPDATE"
					 : "SELECT " HH_COLS HH_FROM " WHERE h.hh_no = ?",
			      p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return conflict(rq, HF_ENOTFOUND, "no household with this number");
	}
	if (id_out)
		*id_out = db_rows_i64(r, 0);
	if (village_out)
		*village_out = db_rows_i64(r, 7);
	err = hh_json(r, out);
	db_rows_free(r);
	return err;
}

static hf_err hh_members(struct reg_req *rq, int64_t hh_id, json_t **out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {DB_I64(hh_id)};
	hf_err err = db_query(rq->db,
			      "SELECT " PERSON_SELECT_COLUMNS IND_FROM
			      " WHERE i.household_id = ? ORDER BY i.head_marker IS NULL, i.id",
			      p, 1, &r);
	if (err)
		return err;
	json_t *a = json_array();
	while (db_rows_next(r)) {
		json_t *m = NULL;
		err = person_to_json(g_app.keys, r, 0, &m);
		if (err)
			break;
		json_array_append_new(a, m);
	}
	db_rows_free(r);
	if (err) {
		json_decref(a);
		return err;
	}
	*out = a;
	return HF_OK;
}

hf_err registry_household_get(struct reg_req *rq, const char *hh_no, json_t **out)
{
	int64_t id = 0;
	json_t *o = NULL, *members = NULL, *enr = NULL;
	hf_err err = hh_load(rq, hh_no, false, &id, NULL, &o);
	if (err)
		return err;
	err = hh_members(rq, id, &members);
	if (!err)
		err = enrolments_of_household(rq, id, &enr);
	if (err) {
		json_decref(o);
		json_decref(members);
		return err;
	}
	json_object_set_new(o, "members", members);
	json_object_set_new(o, "enrolments", enr);
	*out = o;
	return HF_OK;
}

static void read_location(json_t *body, struct reg_req *rq, bool required, const char **reg, const char **dis,
			  const char **vil)
{
	json_t *loc = json_object_get(body, "location");
	*reg = *dis = *vil = NULL;
	if (!loc || json_is_null(loc)) {
		if (required)
			hf_ferrs_add(rq->fe, "location", "required", "region, district and village are required");
		return;
	}
	if (!json_is_object(loc)) {
		hf_ferrs_add(rq->fe, "location", "wrong_type", "must be an object with region, district and village");
		return;
	}
	static const char *const allowed[] = {"region", "district", "village", NULL};
	hf_json_only_fields(loc, allowed, "location", rq->fe);
	const char **slots[] = {reg, dis, vil};
	for (size_t i = 0; i < 3; i++) {
		struct vfail why;
		char path[32];
		snprintf(path, sizeof(path), "location.%s", allowed[i]);
		if (hf_json_get_str(loc, "location", allowed[i], true, 1, 100, rq->fe, slots[i]) &&
		    !validate_place_name(*slots[i], &why)) {
			hf_ferrs_add(rq->fe, path, why.code, "%s", why.message);
			*slots[i] = NULL;
		}
	}
}

static hf_err seal_address(int64_t hh_id, const char *address, struct hf_buf *out)
{
	hf_buf_init(out, 4096);
	if (!address || !address[0])
		return HF_OK;
	char ad[64];
	int n = snprintf(ad, sizeof(ad), "households.address:%lld", (long long)hh_id);
	return hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, address, strlen(address), out);
}

struct hh_tx {
	struct reg_req *rq;
	json_t *body;
	const char *number;
	json_t *result;
	/* create: validated before the transaction */
	struct person_row rows[MAX_MEMBERS];
	size_t nrows;
	const char *reg, *dis, *vil, *address;
	bool in_open_tx; /* add_member inside the caller's transaction (approved change requests) */
	/* remove_member / change_head */
	const char *member, *previous_head_relationship;
};

static hf_err hh_create_tx(struct db *db, void *vctx)
{
	(void)db;
	struct hh_tx *t = vctx;
	struct reg_req *rq = t->rq;
	int64_t village = 0;
	hf_err err = location_resolve(rq->db, t->reg, t->dis, t->vil, &village);
	if (err)
		return err;
	for (size_t i = 0; i < t->nrows; i++) {
		char field[48];
		snprintf(field, sizeof(field), "members[%zu].national_id", i);
		err = nid_unique(rq, t->rows[i].nid, 0, field);
		if (err && err != HF_EINVAL)
			return err;
	}
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	int64_t hh_id = db_new_id();
	struct hf_buf addr;
	err = seal_address(hh_id, t->address, &addr);
	if (err)
		return err;
	char hh_no[BENNO_LEN + 1];
	for (int attempt = 0; attempt < 5; attempt++) {
		numbers_new(hh_no);
		struct db_val v[] = {DB_I64(hh_id),	 db_str(hh_no),	   DB_I64(village),
				     db_blob_or_null(addr.data, addr.len), db_str(rq->actor), db_str(rq->actor)};
		err = db_exec(rq->db,
			      "INSERT INTO households (id, hh_no, ext_ref, location_id, address_enc, version, created_at,"
			      " created_by, updated_at, updated_by) VALUES (?, ?, NULL, ?, ?, 1, UTC_TIMESTAMP(3), ?,"
			      " UTC_TIMESTAMP(3), ?)",
			      v, HF_ARRAY_LEN(v), NULL);
		if (!(err == HF_ECONFLICT && strcmp(db_conflict_key(rq->db), "uq_households_no") == 0))
			break;
	}
	hf_buf_release(&addr);
	if (err)
		return err;
	for (size_t i = 0; i < t->nrows; i++) {
		t->rows[i].id = db_new_id();
		person_row_release(&t->rows[i]); /* a retried transaction seals again */
		person_seal(g_app.keys, &t->rows[i], village);
		err = ind_insert(rq, &t->rows[i], hh_id);
		if (err)
			return err;
	}
	return registry_household_get(rq, hh_no, &t->result);
}

hf_err registry_household_create(struct reg_req *rq, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"location", "address", "members", NULL};
	struct hh_tx *t = hf_xcalloc(1, sizeof(*t));
	t->rq = rq;
	t->body = body;
	hf_json_only_fields(body, allowed, "", rq->fe);
	read_location(body, rq, true, &t->reg, &t->dis, &t->vil);
	hf_json_get_str(body, "", "address", false, 0, 200, rq->fe, &t->address);
	json_t *members = json_object_get(body, "members");
	hf_err err = HF_OK;
	if (!json_is_array(members) || json_array_size(members) == 0) {
		hf_ferrs_add(rq->fe, "members", "required", "a household has at least one member, its head");
	} else if (json_array_size(members) > MAX_MEMBERS) {
		hf_ferrs_add(rq->fe, "members", "too_many", "a household has at most %d members", MAX_MEMBERS);
	} else {
		size_t heads = 0;
		for (size_t i = 0; i < json_array_size(members); i++) {
			json_t *m = json_array_get(members, i);
			char prefix[32];
			snprintf(prefix, sizeof(prefix), "members[%zu]", i);
			if (!json_is_object(m)) {
				hf_ferrs_add(rq->fe, prefix, "wrong_type", "each member is an object");
				continue;
			}
			hf_json_only_fields(m, PERSON_FIELDS, prefix, rq->fe);
			struct person_in in;
			person_in_from_json(m, prefix, rq, &in);
			/* This member's row (kept only if valid) is compared with the members kept before it. */
			struct person_row *row = &t->rows[t->nrows];
			bool valid = person_validate(&in, prefix, true, rq->fe, row);
			if (in.relationship && strcmp(in.relationship, "head") == 0)
				heads++;
			for (size_t j = 0; row->nid[0] && j < t->nrows; j++) {
				if (strcmp(t->rows[j].nid, row->nid) == 0) {
					char f[48];
					snprintf(f, sizeof(f), "%s.national_id", prefix);
					hf_ferrs_add(rq->fe, f, "duplicate", "two members have the same national ID");
					break;
				}
			}
			if (valid)
				t->nrows++;
		}
		if (heads != 1)
			hf_ferrs_add(rq->fe, "members", heads ? "many_heads" : "no_head",
				     "a household has exactly one member with relationship \"head\" (found %zu)", heads);
	}
	if (hf_ferrs_any(rq->fe)) {
		err = HF_EINVAL;
		goto out;
	}
	err = audited_tx(rq, body, NULL, hh_create_tx, t, &t->result);
	if (!err) {
		*out = t->result;
		t->result = NULL;
	}
out:
	for (size_t i = 0; i < t->nrows; i++)
		person_row_release(&t->rows[i]);
	json_decref(t->result);
	free(t);
	return err;
}

static hf_err hh_update_tx(struct db *db, void *vctx)
{
	(void)db;
	struct hh_tx *t = vctx;
	struct reg_req *rq = t->rq;
	const char *reason = NULL, *address = NULL;
	int64_t version = 0, id = 0, village = 0;
	change_meta(t->body, rq, &reason, &version);
	read_location(t->body, rq, false, &t->reg, &t->dis, &t->vil);
	hf_json_get_str(t->body, "", "address", false, 0, 200, rq->fe, &address);
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	json_t *before = NULL;
	hf_err err = hh_load(rq, t->number, true, &id, &village, &before);
	if (err)
		return err;
	struct hf_buf addr;
	hf_buf_init(&addr, 1);
	if (json_integer_value(json_object_get(before, "version")) != version) {
		err = conflict(rq, HF_ECONFLICT, "the household was changed by someone else; reload it and try again");
		goto out;
	}
	if (t->reg) {
		err = location_resolve(rq->db, t->reg, t->dis, t->vil, &village);
		if (err)
			goto out;
	}
	if (!json_object_get(t->body, "address"))
		address = jstr(before, "address");
	err = keep_version(rq, "household", id, version, before, reason);
	if (!err)
		err = seal_address(id, address, &addr);
	if (err)
		goto out;
	struct db_val v[] = {DB_I64(village), db_blob_or_null(addr.data, addr.len), db_str(rq->actor), DB_I64(id)};
	err = db_exec(rq->db,
		      "UPDATE households SET location_id = ?, address_enc = ?, version = version + 1,"
		      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
		      v, HF_ARRAY_LEN(v), NULL);
	/* Members' duplicate keys include the village: re-key them when the household moves. */
	if (!err && t->reg) {
		struct db_rows *r = NULL;
		struct db_val p[] = {DB_I64(id)};
		err = db_query(rq->db,
			       "SELECT " PERSON_SELECT_COLUMNS IND_FROM " WHERE i.household_id = ? FOR UPDATE", p, 1, &r);
		while (!err && db_rows_next(r)) {
			json_t *m = NULL;
			err = person_to_json(g_app.keys, r, 0, &m);
			if (err)
				break;
			uint8_t bidx[HF_BIDX_LEN];
			person_dedup_bidx(g_app.keys, jstr(m, "given_name"), jstr(m, "family_name"),
					  jstr(m, "date_of_birth"), village, bidx);
			json_decref(m);
			struct db_val u[] = {DB_BLOB(bidx, HF_BIDX_LEN), DB_I64(db_rows_i64(r, 0))};
			err = db_exec(rq->db, "UPDATE individuals SET dedup_bidx = ? WHERE id = ?", u, 2, NULL);
		}
		db_rows_free(r);
	}
	if (!err)
		err = registry_household_get(rq, t->number, &t->result);
out:
	hf_buf_release(&addr);
	json_decref(before);
	return err;
}

hf_err registry_household_update(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"location", "address", "reason", "version", NULL};
	hf_json_only_fields(body, allowed, "", rq->fe);
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	struct hh_tx *t = hf_xcalloc(1, sizeof(*t));
	t->rq = rq;
	t->body = body;
	t->number = hh_no;
	hf_err err = audited_tx(rq, body, hh_no, hh_update_tx, t, &t->result);
	if (!err)
		*out = t->result;
	else
		json_decref(t->result);
	free(t);
	return err;
}

static hf_err hh_touch(struct reg_req *rq, int64_t id, json_t *before, const char *reason);

static hf_err hh_member_tx(struct db *db, void *vctx)
{
	(void)db;
	struct hh_tx *t = vctx;
	struct reg_req *rq = t->rq;
	int64_t id = 0, village = 0;
	json_t *before = NULL;
	hf_err err = hh_load(rq, t->number, true, &id, &village, &before);
	if (err)
		return err;
	struct db_rows *r = NULL;
	struct db_val p[] = {DB_I64(id)};
	err = db_query(rq->db, "SELECT COUNT(*) FROM individuals WHERE household_id = ?", p, 1, &r);
	if (!err) {
		db_rows_next(r);
		if (db_rows_i64(r, 0) >= MAX_MEMBERS)
			err = conflict(rq, HF_ECONFLICT, "a household has at most %d members", MAX_MEMBERS);
		db_rows_free(r);
	}
	if (!err)
		err = nid_unique(rq, t->rows[0].nid, 0, "national_id");
	if (!err)
		err = hh_touch(rq, id, before, t->address);
	if (!err) {
		t->rows[0].id = db_new_id();
		person_row_release(&t->rows[0]);
		person_seal(g_app.keys, &t->rows[0], village);
		err = ind_insert(rq, &t->rows[0], id);
	}
	if (!err)
		err = registry_individual_get(rq, t->rows[0].ben_no, &t->result);
	json_decref(before);
	return err;
}

static hf_err in_tx(struct reg_req *rq, const char *key, json_t *body, const char *const *allowed, db_tx_fn fn,
		    void *ctx, json_t **result);

static const char *const VALID_RELATIONSHIPS_NOT_HEAD[] = {"spouse",  "child",	   "grandchild",  "parent",
							  "sibling", "other_relative", "non_relative", NULL};

static hf_err member_add(struct reg_req *rq, const char *hh_no, json_t *body, bool in_open_tx, json_t **out)
{
	static const char *const allowed[] = {"given_name", "family_name", "sex",	 "date_of_birth", "national_id",
					      "phone",	    "relationship", "disability", "language",	   "reason",
					      NULL};
	hf_json_only_fields(body, allowed, "", rq->fe);
	struct hh_tx *t = hf_xcalloc(1, sizeof(*t));
	t->rq = rq;
	t->body = body;
	t->number = hh_no;
	t->in_open_tx = in_open_tx;
	hf_json_get_str(body, "", "reason", true, 3, 500, rq->fe, &t->address /* the reason, kept for history */);
	struct person_in in;
	person_in_from_json(body, "", rq, &in);
	hf_err err = HF_OK;
	if (person_validate(&in, "", true, rq->fe, &t->rows[0]))
		t->nrows = 1;
	if (in.relationship && strcmp(in.relationship, "head") == 0)
		hf_ferrs_add(rq->fe, "relationship", "head_exists",
			     "a household has one head; a new head comes through a change-of-head request");
	if (hf_ferrs_any(rq->fe)) {
		err = HF_EINVAL;
		goto out;
	}
	err = t->in_open_tx ? in_tx(rq, hh_no, body, allowed, hh_member_tx, t, &t->result)
			    : audited_tx(rq, body, hh_no, hh_member_tx, t, &t->result);
	if (!err) {
		*out = t->result;
		t->result = NULL;
	}
out:
	person_row_release(&t->rows[0]);
	json_decref(t->result);
	free(t);
	return err;
}

hf_err registry_household_add_member(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out)
{
	return member_add(rq, hh_no, body, false, out);
}

hf_err registry_household_add_member_in_tx(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out)
{
	HF_ASSERT(db_in_tx(rq->db));
	return member_add(rq, hh_no, body, true, out);
}

/* Keeps the household's version and bumps it: a change of its members is a change of the household. */
static hf_err hh_touch(struct reg_req *rq, int64_t id, json_t *before, const char *reason)
{
	hf_err err = keep_version(rq, "household", id, json_integer_value(json_object_get(before, "version")), before,
				  reason);
	struct db_val u[] = {db_str(rq->actor), DB_I64(id)};
	if (!err)
		err = db_exec(rq->db,
			      "UPDATE households SET version = version + 1, updated_at = UTC_TIMESTAMP(3), updated_by = ?"
			      " WHERE id = ?",
			      u, 2, NULL);
	return err;
}

/* Sets an individual's relationship and head marker, keeping the previous version. */
static hf_err ind_set_relationship(struct reg_req *rq, const char *ben_no, int64_t household_id,
				   const char *relationship, const char *reason)
{
	int64_t iid = 0, ihh = 0, village = 0;
	json_t *before = NULL;
	hf_err err = ind_load(rq, ben_no, true, &iid, &ihh, &village, &before);
	if (!err && household_id && ihh != household_id)
		err = conflict(rq, HF_ECONFLICT, "%s is not a member of this household", ben_no);
	if (!err)
		err = keep_version(rq, "individual", iid, json_integer_value(json_object_get(before, "version")), before,
				   reason);
	bool head = relationship && strcmp(relationship, "head") == 0;
	struct db_val v[] = {db_str(relationship), head ? DB_I64(1) : DB_NULLV, household_id ? DB_I64(household_id) : DB_NULLV,
			     db_str(rq->actor), DB_I64(iid)};
	if (!err)
		err = db_exec(rq->db,
			      "UPDATE individuals SET relationship = ?, head_marker = ?, household_id = ?, version = version + 1,"
			      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
	json_decref(before);
	return err;
}

static hf_err hh_remove_tx(struct db *db, void *vctx)
{
	(void)db;
	struct hh_tx *t = vctx;
	struct reg_req *rq = t->rq;
	int64_t id = 0, village = 0;
	json_t *before = NULL;
	hf_err err = hh_load(rq, t->number, true, &id, &village, &before);
	struct db_rows *r = NULL;
	if (!err) {
		struct db_val v[] = {db_str(t->member), DB_I64(id)};
		err = db_query(rq->db, "SELECT relationship FROM individuals WHERE ben_no = ? AND household_id = ?", v, 2, &r);
		if (!err && !db_rows_next(r))
			err = conflict(rq, HF_ECONFLICT, "%s is not a member of this household", t->member);
		else if (!err && strcmp(db_rows_str(r, 0), "head") == 0)
			err = conflict(rq, HF_ECONFLICT, "the head cannot leave the household: change the head first");
		db_rows_free(r);
	}
	/* The person stays in the registry (and in their own enrolments), outside any household. */
	if (!err)
		err = ind_set_relationship(rq, t->member, 0, NULL, t->address);
	if (!err)
		err = hh_touch(rq, id, before, t->address);
	if (!err)
		err = registry_household_get(rq, t->number, &t->result);
	json_decref(before);
	return err;
}

static hf_err hh_head_tx(struct db *db, void *vctx)
{
	(void)db;
	struct hh_tx *t = vctx;
	struct reg_req *rq = t->rq;
	int64_t id = 0, village = 0;
	json_t *before = NULL;
	hf_err err = hh_load(rq, t->number, true, &id, &village, &before);
	char old_head[BENNO_LEN + 1] = "";
	struct db_rows *r = NULL;
	if (!err) {
		struct db_val v[] = {DB_I64(id)};
		err = db_query(rq->db, "SELECT ben_no FROM individuals WHERE household_id = ? AND head_marker = 1 FOR UPDATE",
			       v, 1, &r);
		if (!err && db_rows_next(r))
			hf_strlcpy(old_head, db_rows_str(r, 0), sizeof(old_head));
		db_rows_free(r);
	}
	if (!err && strcmp(old_head, t->member) == 0)
		err = conflict(rq, HF_ECONFLICT, "%s is already the head", t->member);
	/* The old head steps down first: the unique key allows one head per household at any moment. */
	if (!err && old_head[0])
		err = ind_set_relationship(rq, old_head, id, t->previous_head_relationship, t->address);
	if (!err)
		err = ind_set_relationship(rq, t->member, id, "head", t->address);
	if (!err)
		err = hh_touch(rq, id, before, t->address);
	if (!err)
		err = registry_household_get(rq, t->number, &t->result);
	json_decref(before);
	return err;
}

static hf_err member_change_in_tx(struct reg_req *rq, const char *hh_no, json_t *body, db_tx_fn fn, json_t **out)
{
	static const char *const allowed[] = {"ben_no", "previous_head_relationship", "reason", NULL};
	HF_ASSERT(db_in_tx(rq->db));
	struct hh_tx *t = hf_xcalloc(1, sizeof(*t));
	t->rq = rq;
	t->body = body;
	t->number = hh_no;
	hf_json_get_str(body, "", "ben_no", true, BENNO_LEN, BENNO_LEN, rq->fe, &t->member);
	hf_json_get_str(body, "", "reason", true, 3, 500, rq->fe, &t->address);
	t->previous_head_relationship = "other_relative";
	if (fn == hh_head_tx)
		hf_json_get_enum(body, "", "previous_head_relationship", false, VALID_RELATIONSHIPS_NOT_HEAD, rq->fe,
				 &t->previous_head_relationship);
	hf_err err = hf_ferrs_any(rq->fe) ? HF_EINVAL : in_tx(rq, hh_no, body, allowed, fn, t, &t->result);
	if (!err) {
		*out = t->result;
		t->result = NULL;
	}
	json_decref(t->result);
	free(t);
	return err;
}

hf_err registry_household_remove_member_in_tx(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out)
{
	return member_change_in_tx(rq, hh_no, body, hh_remove_tx, out);
}

hf_err registry_household_change_head_in_tx(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out)
{
	return member_change_in_tx(rq, hh_no, body, hh_head_tx, out);
}

/* Location filter: the path itself or anything below it. Appends SQL and one or two values. */
static bool location_filter(const char *loc, struct hf_buf *sql, struct db_val *v, size_t *nv, char *below,
			    size_t below_n)
{
	if (!loc || !loc[0])
		return false;
	snprintf(below, below_n, "%s/", loc);
	sql_add(sql, " AND (l.path = ? OR LEFT(l.path, %zu) = ?)", hf_utf8_len(below));
	v[(*nv)++] = db_str(loc);
	v[(*nv)++] = db_str(below);
	return true;
}

hf_err registry_household_search(struct reg_req *rq, const struct reg_query *q, json_t **out)
{
	int64_t after = 0;
	if (!cursor_parse(q->after, &after)) {
		hf_ferrs_add(rq->fe, "after", "bad_value", "use the \"next\" value of the previous page");
		return HF_EINVAL;
	}
	struct hf_buf sql;
	hf_buf_init(&sql, 4096);
	struct db_val v[6];
	size_t nv = 0;
	char below[LOCATION_PATH_MAX + 2];
	sql_lit(&sql, "SELECT " HH_COLS HH_FROM " WHERE h.id > ?");
	v[nv++] = DB_I64(after);
	location_filter(q->location, &sql, v, &nv, below, sizeof(below));
	sql_add(&sql, " ORDER BY h.id LIMIT %d", q->limit);
	struct db_rows *r = NULL;
	hf_err err = db_query(rq->db, hf_buf_cstr(&sql), v, nv, &r);
	hf_buf_release(&sql);
	if (err)
		return err;
	json_t *items = json_array();
	char next[24] = "";
	while (db_rows_next(r)) {
		json_t *o = NULL;
		err = hh_json(r, &o);
		if (err)
			break;
		json_array_append_new(items, o);
		snprintf(next, sizeof(next), "%lld", (long long)db_rows_i64(r, 0));
	}
	db_rows_free(r);
	if (err) {
		json_decref(items);
		return err;
	}
	*out = page(items, q->limit, next);
	return HF_OK;
}

/* ------------------------------------------------------------------ search */

/* Case-insensitive (ASCII) substring test, on the normalised form of both. */
static bool name_matches(const char *given_name, const char *family, const char *needle_norm)
{
	struct hf_buf h;
	hf_buf_init(&h, 1024);
	validate_name_norm(given_name, &h);
	if (hf_buf_append(&h, " ", 1) == HF_OK)
		validate_name_norm(family, &h);
	bool hit = strstr(hf_buf_cstr(&h), needle_norm) != NULL;
	if (h.data)
		memset(h.data, 0, h.cap);
	hf_buf_release(&h);
	return hit;
}

hf_err registry_individual_search(struct reg_req *rq, const struct reg_query *q, json_t **out)
{
	int64_t after = 0;
	if (!cursor_parse(q->after, &after))
		hf_ferrs_add(rq->fe, "after", "bad_value", "use the \"next\" value of the previous page");
	int criteria = !!(q->ben_no && q->ben_no[0]) + !!(q->national_id && q->national_id[0]) +
		       !!(q->phone && q->phone[0]) + !!(q->name && q->name[0]) + !!(q->location && q->location[0]);
	if (criteria == 0)
		hf_ferrs_add(rq->fe, "", "no_criteria",
			     "search by ben_no, national_id, phone, name (with or without location) or location");
	char nid[NID_MAX + 1], phone[PHONE_MAX + 1];
	struct vfail why;
	uint8_t bidx[HF_BIDX_LEN];
	struct hf_buf needle;
	hf_buf_init(&needle, 400);
	if (q->national_id && q->national_id[0] && !validate_national_id(q->national_id, nid, &why))
		hf_ferrs_add(rq->fe, "national_id", why.code, "%s", why.message);
	if (q->phone && q->phone[0] && !validate_phone(q->phone, phone, &why))
		hf_ferrs_add(rq->fe, "phone", why.code, "%s", why.message);
	if (q->ben_no && q->ben_no[0] && !numbers_valid(q->ben_no))
		hf_ferrs_add(rq->fe, "ben_no", "check_digit", "a beneficiary number has 9 digits and a valid check digit");
	if (q->name && q->name[0]) {
		validate_name_norm(q->name, &needle);
		if (hf_utf8_len(hf_buf_cstr(&needle)) < 2)
			hf_ferrs_add(rq->fe, "name", "too_short", "give at least 2 letters of the name");
	}
	if (hf_ferrs_any(rq->fe)) {
		hf_buf_release(&needle);
		return HF_EINVAL;
	}

	struct hf_buf sql;
	hf_buf_init(&sql, 4096);
	struct db_val v[10];
	size_t nv = 0;
	char below[LOCATION_PATH_MAX + 2];
	bool by_location = q->location && q->location[0];
	sql_lit(&sql, by_location ? "SELECT " PERSON_SELECT_COLUMNS IND_FROM " JOIN locations l ON l.id = h.location_id"
				    " WHERE i.id > ?"
				  : "SELECT " PERSON_SELECT_COLUMNS IND_FROM " WHERE i.id > ?");
	v[nv++] = DB_I64(after);
	if (q->ben_no && q->ben_no[0]) {
		sql_lit(&sql, " AND i.ben_no = ?");
		v[nv++] = db_str(q->ben_no);
	}
	if (q->national_id && q->national_id[0]) {
		person_nid_bidx(g_app.keys, nid, bidx);
		sql_lit(&sql, " AND i.nid_bidx = ?");
		v[nv++] = DB_BLOB(bidx, HF_BIDX_LEN);
	}
	uint8_t pbidx[HF_BIDX_LEN];
	if (q->phone && q->phone[0]) {
		person_phone_bidx(g_app.keys, phone, pbidx);
		sql_lit(&sql, " AND i.phone_bidx = ?");
		v[nv++] = DB_BLOB(pbidx, HF_BIDX_LEN);
	}
	location_filter(q->location, &sql, v, &nv, below, sizeof(below));
	bool by_name = needle.len > 0;
	/* A name fragment cannot use an index (names are sealed): decrypt within the other criteria, at most
	 * registry.name_scan_max rows, and ask for a narrower search beyond that. */
	int scan_cap = g_app.name_scan_max;
	sql_add(&sql, " ORDER BY i.id LIMIT %d", by_name ? scan_cap + 1 : q->limit);
	struct db_rows *r = NULL;
	hf_err err = db_query(rq->db, hf_buf_cstr(&sql), v, nv, &r);
	hf_buf_release(&sql);
	if (err) {
		hf_buf_release(&needle);
		return err;
	}
	if (by_name && db_rows_count(r) > (size_t)scan_cap) {
		db_rows_free(r);
		hf_buf_release(&needle);
		hf_ferrs_add(rq->fe, "location", "too_broad",
			     "a name search covers at most %d people; add a location (region, district or village)", scan_cap);
		return HF_EINVAL;
	}
	json_t *items = json_array();
	char next[24] = "";
	struct hf_buf g, f;
	hf_buf_init(&g, 1024);
	hf_buf_init(&f, 1024);
	while (db_rows_next(r) && json_array_size(items) < (size_t)q->limit) {
		int64_t id = db_rows_i64(r, 0);
		if (by_name) {
			size_t gl, fl;
			const void *gb = db_rows_blob(r, 4, &gl), *fb = db_rows_blob(r, 5, &fl);
			hf_buf_reset(&g);
			hf_buf_reset(&f);
			err = person_open_field(g_app.keys, id, "given_name", gb, gl, &g);
			if (!err)
				err = person_open_field(g_app.keys, id, "family_name", fb, fl, &f);
			if (err)
				break;
			if (!name_matches(hf_buf_cstr(&g), hf_buf_cstr(&f), hf_buf_cstr(&needle)))
				continue;
		}
		json_t *o = NULL;
		err = person_to_json(g_app.keys, r, 0, &o);
		if (err)
			break;
		json_array_append_new(items, o);
		snprintf(next, sizeof(next), "%lld", (long long)id);
	}
	if (g.data)
		memset(g.data, 0, g.cap);
	if (f.data)
		memset(f.data, 0, f.cap);
	hf_buf_release(&g);
	hf_buf_release(&f);
	hf_buf_release(&needle);
	db_rows_free(r);
	if (err) {
		json_decref(items);
		return err;
	}
	*out = page(items, q->limit, next);
	return HF_OK;
}

/* ------------------------------------------------------------------ history */

hf_err registry_history(struct reg_req *rq, const char *entity, const char *number, json_t **out)
{
	int64_t id = 0;
	json_t *cur = NULL;
	hf_err err;
	if (strcmp(entity, "individual") == 0)
		err = ind_load(rq, number, false, &id, NULL, NULL, &cur);
	else if (strcmp(entity, "household") == 0)
		err = hh_load(rq, number, false, &id, NULL, &cur);
	else if (strcmp(entity, "programme") == 0)
		err = prog_load(rq, number, false, &id, &cur);
	else {
		if (hf_parse_i64(number, 1, INT64_MAX, &id))
			return conflict(rq, HF_ENOTFOUND, "no enrolment with this id");
		struct db_rows *r = NULL;
		struct db_val p[] = {DB_I64(id)};
		err = db_query(rq->db, "SELECT version FROM enrolments WHERE id = ?", p, 1, &r);
		if (err)
			return err;
		if (!db_rows_next(r))
			err = conflict(rq, HF_ENOTFOUND, "no enrolment with this id");
		else
			cur = json_pack("{s:I}", "version", (json_int_t)db_rows_i64(r, 0));
		db_rows_free(r);
	}
	if (err)
		return err;
	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(entity), DB_I64(id)};
	err = db_query(rq->db,
		       "SELECT id, version, DATE_FORMAT(changed_at, " TS_FMT "), changed_by, reason, snapshot_enc"
		       " FROM record_versions WHERE entity = ? AND entity_id = ? ORDER BY version DESC",
		       p, 2, &r);
	if (err) {
		json_decref(cur);
		return err;
	}
	json_t *versions = json_array();
	while (db_rows_next(r)) {
		int64_t vid = db_rows_i64(r, 0);
		char ad[96];
		int n = snprintf(ad, sizeof(ad), "record_versions.snapshot:%lld", (long long)vid);
		size_t len;
		const void *b = db_rows_blob(r, 5, &len);
		struct hf_buf plain;
		hf_buf_init(&plain, 16 * 1024 * 1024);
		json_t *snap = NULL;
		if (hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)n}, b, len, &plain) == HF_OK)
			snap = json_loadb(plain.data ? plain.data : "", plain.len, 0, NULL);
		else
			hf_log(HF_LOG_ERROR, "core.registry", "msg=\"history snapshot failed to open\" version_row=%lld",
			       (long long)vid);
		if (plain.data)
			memset(plain.data, 0, plain.cap);
		hf_buf_release(&plain);
		json_array_append_new(versions, json_pack("{s:I, s:s, s:s, s:s, s:o}", "version",
							  (json_int_t)db_rows_i64(r, 1), "changed_at", db_rows_str(r, 2),
							  "changed_by", db_rows_str(r, 3), "reason", db_rows_str(r, 4),
							  "record", snap ? snap : json_null()));
	}
	db_rows_free(r);
	*out = json_pack("{s:s, s:s, s:o, s:o}", "entity", entity, "id", number, "current", cur, "previous", versions);
	return HF_OK;
}

/* ------------------------------------------------------------------ enrolments */

bool registry_status_transition_ok(const char *from, const char *to)
{
	static const char *const allowed[][2] = {
		{"pending", "enrolled"},  {"pending", "duplicate"},  {"pending", "exited"},    {"pending", "deceased"},
		{"enrolled", "suspended"}, {"enrolled", "exited"},    {"enrolled", "deceased"}, {"enrolled", "duplicate"},
		{"suspended", "enrolled"}, {"suspended", "exited"},   {"suspended", "deceased"},
		{"exited", "pending"}, /* re-application after exit */
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(allowed); i++)
		if (strcmp(allowed[i][0], from) == 0 && strcmp(allowed[i][1], to) == 0)
			return true;
	return false;
}

#define ENR_COLS                                                                                             \
	"e.id, p.code, i.ben_no, h.hh_no, e.status, e.status_reason, e.version, DATE_FORMAT(e.created_at, "  \
	TS_FMT "), DATE_FORMAT(e.updated_at, " TS_FMT ")"
#define ENR_FROM                                                                                             \
	" FROM enrolments e JOIN programmes p ON p.id = e.programme_id"                                      \
	" LEFT JOIN individuals i ON i.id = e.individual_id LEFT JOIN households h ON h.id = e.household_id"

static json_t *enr_json(struct db_rows *r)
{
	return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s?, s:I, s:s, s:s}", "id", db_rows_str(r, 0), "programme",
			 db_rows_str(r, 1), "ben_no", db_rows_null(r, 2) ? NULL : db_rows_str(r, 2), "hh_no",
			 db_rows_null(r, 3) ? NULL : db_rows_str(r, 3), "status", db_rows_str(r, 4), "status_reason",
			 db_rows_null(r, 5) ? NULL : db_rows_str(r, 5), "version", (json_int_t)db_rows_i64(r, 6),
			 "created_at", db_rows_str(r, 7), "updated_at", db_rows_str(r, 8));
}

static hf_err enr_load(struct reg_req *rq, int64_t id, bool for_update, json_t **out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {DB_I64(id)};
	hf_err err = db_query(rq->db,
			      for_update ? "SELECT " ENR_COLS ENR_FROM " WHERE e.id = ? FOR UPDATE"
					 : "SELECT " ENR_COLS ENR_FROM " WHERE e.id = ?",
			      p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return conflict(rq, HF_ENOTFOUND, "no enrolment with this id");
	}
	*out = enr_json(r);
	db_rows_free(r);
	return HF_OK;
}

static hf_err enr_create_tx(struct db *db, void *vctx)
{
	(void)db;
	struct tx_call *t = vctx;
	struct reg_req *rq = t->rq;
	const char *prog = NULL, *ben_no = NULL, *hh_no = NULL, *status = "pending", *reason = NULL;
	hf_json_get_str(t->body, "", "programme", true, 2, 32, rq->fe, &prog);
	hf_json_get_str(t->body, "", "ben_no", false, 1, 9, rq->fe, &ben_no);
	hf_json_get_str(t->body, "", "hh_no", false, 1, 9, rq->fe, &hh_no);
	hf_json_get_enum(t->body, "", "status", false, VALID_ENROLMENT_STATUS, rq->fe, &status);
	hf_json_get_str(t->body, "", "reason", false, 0, 500, rq->fe, &reason);
	if (!!ben_no == !!hh_no)
		hf_ferrs_add(rq->fe, "ben_no", "one_target", "give exactly one of ben_no (individual) or hh_no (household)");
	if (status && strcmp(status, "pending") && strcmp(status, "enrolled"))
		hf_ferrs_add(rq->fe, "status", "not_allowed", "a new enrolment is pending or enrolled");
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	int64_t prog_id = 0, target_id = 0;
	json_t *p = NULL, *tj = NULL;
	hf_err err = prog_load(rq, prog, false, &prog_id, &p);
	if (err == HF_ENOTFOUND) {
		hf_ferrs_add(rq->fe, "programme", "unknown", "no programme with this code");
		return HF_EINVAL;
	}
	if (err)
		return err;
	const char *target = jstr(p, "target");
	bool wants_ind = strcmp(target, "individual") == 0;
	char code[40];
	hf_strlcpy(code, jstr(p, "code"), sizeof(code)); /* as stored: the lookup ignores case */
	if (!json_is_true(json_object_get(p, "active")))
		err = conflict(rq, HF_ECONFLICT, "the programme is not active");
	else if (wants_ind != !!ben_no)
		err = conflict(rq, HF_ECONFLICT, "programme %s enrols %ss: give %s", code, target,
			       wants_ind ? "ben_no" : "hh_no");
	else if (ben_no)
		err = ind_load(rq, ben_no, false, &target_id, NULL, NULL, &tj);
	else
		err = hh_load(rq, hh_no, false, &target_id, NULL, &tj);
	json_decref(p);
	json_decref(tj);
	if (err)
		return err;
	int64_t id = db_new_id();
	struct db_val v[] = {DB_I64(id),	 DB_I64(prog_id),	    db_str(code), ben_no ? DB_I64(target_id) : DB_NULLV,
			     hh_no ? DB_I64(target_id) : DB_NULLV, db_str(status), db_str(reason),
			     db_str(rq->actor), db_str(rq->actor)};
	err = db_exec(rq->db,
		      "INSERT INTO enrolments (id, programme_id, programme_code, individual_id, household_id, status,"
		      " status_reason, version, created_at, created_by, updated_at, updated_by)"
		      " VALUES (?, ?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(3), ?, UTC_TIMESTAMP(3), ?)",
		      v, HF_ARRAY_LEN(v), NULL);
	if (err == HF_ECONFLICT)
		return conflict(rq, HF_ECONFLICT, "already enrolled in programme %s", code);
	if (err)
		return err;
	return enr_load(rq, id, false, &t->result);
}

hf_err registry_enrolment_create(struct reg_req *rq, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"programme", "ben_no", "hh_no", "status", "reason", NULL};
	return run_tx(rq, body, allowed, NULL, enr_create_tx, out);
}

static hf_err enr_update_tx(struct db *db, void *vctx)
{
	(void)db;
	struct tx_call *t = vctx;
	struct reg_req *rq = t->rq;
	const char *reason = NULL, *status = NULL;
	int64_t version = 0, id = 0;
	change_meta(t->body, rq, &reason, &version);
	hf_json_get_enum(t->body, "", "status", true, VALID_ENROLMENT_STATUS, rq->fe, &status);
	if (hf_parse_i64(t->key, 1, INT64_MAX, &id))
		return conflict(rq, HF_ENOTFOUND, "no enrolment with this id");
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	json_t *before = NULL;
	hf_err err = enr_load(rq, id, true, &before);
	if (err)
		return err;
	const char *from = jstr(before, "status");
	if (json_integer_value(json_object_get(before, "version")) != version)
		err = conflict(rq, HF_ECONFLICT, "the enrolment was changed by someone else; reload it and try again");
	else if (!registry_status_transition_ok(from, status))
		err = conflict(rq, HF_ECONFLICT, "an enrolment cannot go from %s to %s", from, status);
	if (!err)
		err = keep_version(rq, "enrolment", id, version, before, reason);
	if (!err) {
		struct db_val v[] = {db_str(status), db_str(reason), db_str(rq->actor), DB_I64(id)};
		err = db_exec(rq->db,
			      "UPDATE enrolments SET status = ?, status_reason = ?, version = version + 1,"
			      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
	}
	json_decref(before);
	if (err)
		return err;
	return enr_load(rq, id, false, &t->result);
}

hf_err registry_enrolment_update(struct reg_req *rq, const char *id, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"status", "reason", "version", NULL};
	return run_tx(rq, body, allowed, id, enr_update_tx, out);
}

/* The in-transaction forms used by approved change requests (see registry.h). */

hf_err registry_individual_update_in_tx(struct reg_req *rq, const char *ben_no, json_t *body, json_t **out)
{
	struct tx_call t = {rq, body, ben_no, NULL};
	hf_err err = in_tx(rq, ben_no, body, IND_UPDATE_FIELDS, ind_update_tx, &t, &t.result);
	if (err)
		json_decref(t.result);
	else
		*out = t.result;
	return err;
}
static hf_err in_tx(struct reg_req *rq, const char *key, json_t *body, const char *const *allowed, db_tx_fn fn,
		    void *ctx, json_t **result)
{
	HF_ASSERT(db_in_tx(rq->db));
	hf_json_only_fields(body, allowed, "", rq->fe);
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	struct audited a = {rq, key, fn, ctx, result, body};
	return audited_body(rq->db, &a);
}

hf_err registry_enrolment_update_in_tx(struct reg_req *rq, const char *id, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"status", "reason", "version", NULL};
	struct tx_call t = {rq, body, id, NULL};
	hf_err err = in_tx(rq, id, body, allowed, enr_update_tx, &t, &t.result);
	if (err)
		json_decref(t.result);
	else
		*out = t.result;
	return err;
}

hf_err registry_household_update_in_tx(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"location", "address", "reason", "version", NULL};
	struct hh_tx *t = hf_xcalloc(1, sizeof(*t));
	t->rq = rq;
	t->body = body;
	t->number = hh_no;
	hf_err err = in_tx(rq, hh_no, body, allowed, hh_update_tx, t, &t->result);
	if (err)
		json_decref(t->result);
	else
		*out = t->result;
	free(t);
	return err;
}

hf_err registry_enrolment_search(struct reg_req *rq, const struct reg_query *q, json_t **out)
{
	int64_t after = 0;
	if (!cursor_parse(q->after, &after))
		hf_ferrs_add(rq->fe, "after", "bad_value", "use the \"next\" value of the previous page");
	if (q->status && q->status[0]) {
		bool ok = false;
		for (size_t i = 0; VALID_ENROLMENT_STATUS[i]; i++)
			ok = ok || strcmp(q->status, VALID_ENROLMENT_STATUS[i]) == 0;
		if (!ok)
			hf_ferrs_add(rq->fe, "status", "not_allowed", "unknown status");
	}
	if (hf_ferrs_any(rq->fe))
		return HF_EINVAL;
	struct hf_buf sql;
	hf_buf_init(&sql, 2048);
	struct db_val v[6];
	size_t nv = 0;
	sql_lit(&sql, "SELECT " ENR_COLS ENR_FROM " WHERE e.id > ?");
	v[nv++] = DB_I64(after);
	if (q->programme && q->programme[0]) {
		sql_lit(&sql, " AND p.code = ?");
		v[nv++] = db_str(q->programme);
	}
	if (q->status && q->status[0]) {
		sql_lit(&sql, " AND e.status = ?");
		v[nv++] = db_str(q->status);
	}
	if (q->ben_no && q->ben_no[0]) {
		sql_lit(&sql, " AND i.ben_no = ?");
		v[nv++] = db_str(q->ben_no);
	}
	sql_add(&sql, " ORDER BY e.id LIMIT %d", q->limit);
	struct db_rows *r = NULL;
	hf_err err = db_query(rq->db, hf_buf_cstr(&sql), v, nv, &r);
	hf_buf_release(&sql);
	if (err)
		return err;
	json_t *items = json_array();
	char next[24] = "";
	while (db_rows_next(r)) {
		json_array_append_new(items, enr_json(r));
		snprintf(next, sizeof(next), "%s", db_rows_str(r, 0));
	}
	db_rows_free(r);
	*out = page(items, q->limit, next);
	return HF_OK;
}
