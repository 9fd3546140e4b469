/* outbox.c - SMS waiting to be sent (see outbox.h). */
#include "outbox.h"

#include "app.h"
#include "hf_crypto.h"
#include "hf_json.h"
#include "hf_log.h"
#include "person.h"
#include "svc.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hf_err seal_phone(const char *table_col, int64_t id, const char *phone, struct hf_buf *out)
{
	char ad[64];
	int n = snprintf(ad, sizeof(ad), "%s:%lld", table_col, (long long)id);
	return hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, phone, strlen(phone), out);
}

hf_err outbox_seal_staff_phone(int64_t user_id, const char *phone, struct hf_buf *out)
{
	return seal_phone("staff_users.phone", user_id, phone, out);
}

hf_err outbox_seal_phone(int64_t outbox_id, const char *phone, struct hf_buf *out)
{
	return seal_phone("outbox.phone", outbox_id, phone, out);
}

/* Inserts one row; phone is the NUL-terminated clear number. */
static hf_err put(struct db *db, int64_t case_id, const char *audience, const char *phone, const char *lang,
		  const char *tmpl, json_t *params)
{
	struct hf_buf sealed;
	hf_buf_init(&sealed, 512);
	int64_t id = db_new_id();
	hf_err err = outbox_seal_phone(id, phone, &sealed);
	if (!err) {
		char *ptext = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
		uint8_t bidx[HF_BIDX_LEN];
		person_phone_bidx(g_app.keys, phone, bidx); /* the claim skips numbers that sent STOP */
		struct db_val w[] = {DB_I64(id),	   case_id ? DB_I64(case_id) : DB_NULLV, db_str(audience),
				     DB_BLOB(sealed.data, sealed.len), DB_BLOB(bidx, HF_BIDX_LEN),
				     db_str(lang),	   db_str(tmpl),			 db_str(ptext)};
		/* A number that sent STOP gets nothing but the confirmation of it: the row is kept, as failed. */
		struct db_val all[HF_ARRAY_LEN(w) + 2];
		memcpy(all, w, sizeof(w));
		all[HF_ARRAY_LEN(w)] = db_str(tmpl);
		all[HF_ARRAY_LEN(w) + 1] = DB_BLOB(bidx, HF_BIDX_LEN);
		err = db_exec(db,
			      "INSERT INTO outbox (id, case_id, audience, phone_enc, phone_bidx, language, template, params,"
			      " status, created_at, updated_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, IF(? <> 'sms_stopped' AND"
			      " EXISTS (SELECT 1 FROM phone_optouts WHERE phone_bidx = ?), 'failed', 'queued'),"
			      " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)",
			      all, HF_ARRAY_LEN(all), NULL);
		free(ptext);
	}
	hf_buf_release(&sealed);
	return err;
}

/* Opens a sealed phone column into a NUL-terminated buffer, wiped by the caller. */
static hf_err open_phone(const char *table_col, int64_t id, const void *sealed, size_t n, struct hf_buf *out)
{
	char ad[64];
	int k = snprintf(ad, sizeof(ad), "%s:%lld", table_col, (long long)id);
	hf_err err = hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)k}, sealed, n, out);
	return err ? err : hf_buf_append(out, "", 1);
}

hf_err outbox_open_phone(int64_t outbox_id, const void *sealed, size_t n, struct hf_buf *out)
{
	return open_phone("outbox.phone", outbox_id, sealed, n, out);
}

static void wipe(struct hf_buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	hf_buf_release(b);
}

hf_err outbox_to_person(struct db *db, int64_t case_id, int64_t individual_id, const char *tmpl, json_t *params,
			bool *queued)
{
	*queued = false;
	if (!individual_id)
		return HF_OK;
	struct db_val v[] = {DB_I64(individual_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT phone_enc, language FROM individuals WHERE id = ?", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r) || db_rows_null(r, 0)) {
		db_rows_free(r);
		return HF_OK;
	}
	size_t n = 0;
	const void *sealed = db_rows_blob(r, 0, &n);
	char lang[9];
	hf_strlcpy(lang, db_rows_str(r, 1), sizeof(lang));
	struct hf_buf phone;
	hf_buf_init(&phone, 256);
	err = person_open_field(g_app.keys, individual_id, "phone", sealed, n, &phone);
	db_rows_free(r);
	if (!err)
		err = hf_buf_append(&phone, "", 1);
	if (!err)
		err = put(db, case_id, "beneficiary", phone.data, lang, tmpl, params);
	*queued = err == HF_OK;
	wipe(&phone);
	return err;
}

hf_err outbox_to_role(struct db *db, const char *role, const char *tmpl, json_t *params, int *n)
{
	*n = 0;
	struct db_val v[] = {db_str(role)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT id, phone_enc, language FROM staff_users WHERE role = ? AND disabled = 0 AND"
			      " phone_enc IS NOT NULL ORDER BY id LIMIT 1000",
			      v, 1, &r);
	if (err)
		return err;
	/* Collected first: the statement must be finished before the inserts run on the same connection. */
	struct staff { int64_t id; char lang[9]; struct hf_buf phone; } *s = NULL;
	size_t ns = 0, cap = 0;
	while (!err && db_rows_next(r)) {
		if (ns == cap) {
			cap = cap ? cap * 2 : 8;
			s = hf_xrealloc(s, cap * sizeof(*s));
		}
		size_t len = 0;
		const void *sealed = db_rows_blob(r, 1, &len);
		s[ns].id = db_rows_i64(r, 0);
		hf_strlcpy(s[ns].lang, db_rows_str(r, 2), sizeof(s[ns].lang));
		hf_buf_init(&s[ns].phone, 256);
		err = open_phone("staff_users.phone", s[ns].id, sealed, len, &s[ns].phone);
		ns++;
	}
	db_rows_free(r);
	for (size_t i = 0; i < ns; i++) {
		if (!err)
			err = put(db, 0, "staff", s[i].phone.data, s[i].lang, tmpl, params);
		if (!err)
			(*n)++;
		wipe(&s[i].phone);
	}
	free(s);
	return err;
}

/* ---- status reports from the gateway, many in one transaction ------------------------------------------ */

/* Why a batch: the gateway reports every message it hands to Kannel ("sent") and every delivery report
 * ("accepted", "delivered", "failed"), three or more per SMS. One transaction each is one commit (one log
 * flush) each; at a few hundred SMS a second that is what bounds the dispatcher, not Kannel. POST
 * /outbox/{id}/status is a batch of one: both routes apply the same rules (rep_apply). */

static int report_rank(const char *s)
{
	static const char *const order[] = {"queued", "sending", "sent", "delivered"};
	for (size_t i = 0; i < HF_ARRAY_LEN(order); i++)
		if (strcmp(order[i], s) == 0)
			return (int)i;
	return -1;
}

enum rep_result { REP_UNCHANGED, REP_CHANGED, REP_CONFLICT, REP_NOT_FOUND };

struct rep_item {
	int64_t id;
	const char *status; /* the report: sent, accepted, delivered, failed, released */
	size_t row;         /* index in rows */
	enum rep_result result;
	char after[16]; /* the row's status once this item was applied */
};

struct rep_row {
	int64_t id;
	bool found, accepted; /* accepted_at set (in the table, or by this batch) */
	char before[16], cur[16];
	bool status_changed, set_delivered, set_accepted, written;
};

struct rep_tx {
	struct rep_item *items;
	size_t nitems;
	struct rep_row *rows; /* distinct ids, ascending: rows are locked in one order, so batches cannot deadlock */
	size_t nrows;
};

static int cmp_row(const void *a, const void *b)
{
	int64_t x = ((const struct rep_row *)a)->id, y = ((const struct rep_row *)b)->id;
	return x < y ? -1 : x > y;
}

static struct rep_row *find_row(struct rep_tx *t, int64_t id)
{
	struct rep_row key = {.id = id};
	return bsearch(&key, t->rows, t->nrows, sizeof(*t->rows), cmp_row);
}

/* One report against the row as this batch left it (the rules of notices.c's report_body). */
static void rep_apply(struct rep_row *r, struct rep_item *it)
{
	it->result = REP_UNCHANGED;
	if (!r->found) {
		it->result = REP_NOT_FOUND;
		return;
	}
	if (strcmp(it->status, "released") == 0) {
		/* A message the gateway claimed and did not send: queued again, at once. */
		if (strcmp(r->cur, "sending") == 0) {
			hf_strlcpy(r->cur, "queued", sizeof(r->cur));
			r->status_changed = true;
			it->result = REP_CHANGED;
		}
	} else if (strcmp(it->status, "accepted") == 0) {
		/* The SMSC took it (delivery report 8): noted, the status stays. */
		if ((strcmp(r->cur, "sent") == 0 || strcmp(r->cur, "sending") == 0) && !r->accepted) {
			r->accepted = r->set_accepted = true;
			it->result = REP_CHANGED;
		}
	} else if (strcmp(r->cur, it->status) != 0) {
		bool is_final = strcmp(r->cur, "failed") == 0 || strcmp(r->cur, "delivered") == 0;
		bool forward = strcmp(it->status, "failed") == 0 ? !is_final
								  : report_rank(it->status) > report_rank(r->cur) && !is_final;
		if (!forward) {
			it->result = REP_CONFLICT;
		} else {
			hf_strlcpy(r->cur, it->status, sizeof(r->cur));
			r->status_changed = true;
			r->set_delivered |= strcmp(it->status, "delivered") == 0;
			it->result = REP_CHANGED;
		}
	}
	hf_strlcpy(it->after, r->cur, sizeof(it->after));
}

static hf_err ids_in(struct hf_buf *sql, size_t n)
{
	hf_err err = hf_buf_append_str(sql, "(");
	for (size_t i = 0; i < n && !err; i++)
		err = hf_buf_append_str(sql, i ? ", ?" : "?");
	return err ? err : hf_buf_append_str(sql, ")");
}

/* The rows whose change is the same as rows[first]'s, in one UPDATE ... WHERE id IN (...). */
static hf_err rep_write_group(struct db *db, struct rep_tx *t, size_t first, struct db_val *v)
{
	const struct rep_row *f = &t->rows[first];
	size_t nv = 0;
	if (f->status_changed) {
		v[nv++] = db_str(f->cur);
		v[nv++] = DB_I64(f->set_delivered);
		v[nv++] = DB_I64(f->set_accepted);
	}
	size_t nfixed = nv;
	for (size_t i = first; i < t->nrows; i++) {
		struct rep_row *r = &t->rows[i];
		if (r->written || !r->found || r->status_changed != f->status_changed || r->set_accepted != f->set_accepted ||
		    (f->status_changed && (strcmp(r->cur, f->cur) != 0 || r->set_delivered != f->set_delivered)))
			continue;
		r->written = true;
		v[nv++] = DB_I64(r->id);
		if (r->status_changed && strcmp(r->cur, "failed") == 0)
			hf_log(HF_LOG_INFO, "core.notices", "msg=\"sms failed\" outbox=%lld was=%s", (long long)r->id,
			       r->before);
	}
	struct hf_buf sql;
	hf_buf_init(&sql, 16384);
	hf_err err = hf_buf_append_str(&sql, f->status_changed
						   ? "UPDATE outbox SET status = ?, updated_at = UTC_TIMESTAMP(3), delivered_at ="
						     " IF(? = 1, UTC_TIMESTAMP(3), delivered_at), accepted_at = IF(? = 1,"
						     " UTC_TIMESTAMP(3), accepted_at) WHERE id IN "
						   : "UPDATE outbox SET accepted_at = UTC_TIMESTAMP(3) WHERE accepted_at IS NULL"
						     " AND id IN ");
	if (!err)
		err = ids_in(&sql, nv - nfixed);
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, nv, NULL);
	hf_buf_release(&sql);
	return err;
}

static hf_err rep_body(struct db *db, void *vctx)
{
	struct rep_tx *t = vctx;
	for (size_t i = 0; i < t->nrows; i++) { /* a retried transaction starts from the table again */
		struct rep_row *r = &t->rows[i];
		*r = (struct rep_row){.id = r->id};
	}
	struct db_val *v = hf_xcalloc(t->nrows + 3, sizeof(*v));
	struct hf_buf sql;
	hf_buf_init(&sql, 16384);
	hf_err err = hf_buf_append_str(&sql, "SELECT id, status, accepted_at IS NOT NULL FROM outbox WHERE id IN ");
	if (!err)
		err = ids_in(&sql, t->nrows);
	if (!err)
		err = hf_buf_append_str(&sql, " ORDER BY id FOR UPDATE");
	for (size_t i = 0; i < t->nrows; i++)
		v[i] = DB_I64(t->rows[i].id);
	struct db_rows *res = NULL;
	if (!err)
		err = db_query(db, hf_buf_cstr(&sql), v, t->nrows, &res);
	hf_buf_release(&sql);
	while (!err && db_rows_next(res)) {
		struct rep_row *r = find_row(t, db_rows_i64(res, 0));
		if (!r)
			continue;
		r->found = true;
		r->accepted = db_rows_i64(res, 2) != 0;
		hf_strlcpy(r->before, db_rows_str(res, 1), sizeof(r->before));
		hf_strlcpy(r->cur, r->before, sizeof(r->cur));
	}
	db_rows_free(res);
	if (!err)
		for (size_t i = 0; i < t->nitems; i++)
			rep_apply(&t->rows[t->items[i].row], &t->items[i]);
	for (size_t i = 0; i < t->nrows && !err; i++) {
		const struct rep_row *r = &t->rows[i];
		if (r->found && !r->written && (r->status_changed || r->set_accepted))
			err = rep_write_group(db, t, i, v);
	}
	free(v);
	return err;
}

hf_err outbox_report_batch(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const top[] = {"items", NULL};
	static const char *const fields[] = {"id", "status", "detail", NULL};
	static const char *const reports[] = {"sent", "accepted", "delivered", "failed", "released", NULL};
	hf_json_only_fields(body, top, "", c->fe);
	json_t *arr = json_object_get(body, "items");
	size_t n = json_array_size(arr);
	if (!json_is_array(arr) || n < 1 || n > OUTBOX_REPORT_MAX) {
		hf_ferrs_add(c->fe, "items", "bad_value", "an array of 1 to %d reports", OUTBOX_REPORT_MAX);
		return HF_EINVAL;
	}
	struct rep_tx t = {.items = hf_xcalloc(n, sizeof(*t.items)), .nitems = n, .rows = hf_xcalloc(n, sizeof(*t.rows))};
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "items[%zu]", i);
		if (!json_is_object(o)) {
			hf_ferrs_add(c->fe, prefix, "wrong_type", "each report is an object");
			continue;
		}
		hf_json_only_fields(o, fields, prefix, c->fe);
		const char *id = NULL, *detail = NULL;
		(void)hf_json_get_enum(o, prefix, "status", true, reports, c->fe, &t.items[i].status);
		(void)hf_json_get_str(o, prefix, "detail", false, 0, 200, c->fe, &detail); /* may quote a number: unused */
		if (hf_json_get_str(o, prefix, "id", true, 1, 20, c->fe, &id) &&
		    hf_parse_i64(id, 1, INT64_MAX, &t.items[i].id)) {
			char field[48];
			snprintf(field, sizeof(field), "%s.id", prefix);
			hf_ferrs_add(c->fe, field, "bad_value", "an outbox id");
		}
		t.rows[i].id = t.items[i].id;
	}
	hf_err err = HF_OK;
	if (hf_ferrs_any(c->fe)) {
		err = HF_EINVAL;
		goto out;
	}
	qsort(t.rows, n, sizeof(*t.rows), cmp_row);
	for (size_t k = 0; k < n; k++) /* distinct ids */
		if (t.nrows == 0 || t.rows[t.nrows - 1].id != t.rows[k].id)
			t.rows[t.nrows++] = t.rows[k];
	for (size_t k = 0; k < n; k++)
		t.items[k].row = (size_t)(find_row(&t, t.items[k].id) - t.rows);
	err = db_tx(c->db, rep_body, &t);
	if (err)
		goto out;
	static const char *const names[] = {"unchanged", "changed", "conflict", "not_found"};
	json_t *items = json_array();
	for (size_t k = 0; k < n; k++) {
		char sid[24];
		snprintf(sid, sizeof(sid), "%lld", (long long)t.items[k].id);
		json_t *one = json_pack("{s:s, s:s}", "id", sid, "result", names[t.items[k].result]);
		if (t.items[k].result != REP_NOT_FOUND)
			json_object_set_new(one, "status", json_string(t.items[k].after));
		json_array_append_new(items, one);
	}
	*out = json_pack("{s:o}", "items", items);
out:
	free(t.items);
	free(t.rows);
	return err;
}

hf_err outbox_report_one(struct svc_call *c, const char *id, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"status", "detail", NULL};
	static const char *const reports[] = {"sent", "accepted", "delivered", "failed", "released", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct rep_item it = {0};
	const char *detail = NULL; /* the gateway's or operator's words (it may quote a number): never kept or logged */
	(void)hf_json_get_enum(body, "", "status", true, reports, c->fe, &it.status);
	(void)hf_json_get_str(body, "", "detail", false, 0, 200, c->fe, &detail);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (hf_parse_i64(id, 1, INT64_MAX, &it.id)) {
		svc_say(c, "No such outbox message.");
		return HF_ENOTFOUND;
	}
	struct rep_row row = {.id = it.id};
	struct rep_tx t = {.items = &it, .nitems = 1, .rows = &row, .nrows = 1};
	hf_err err = db_tx(c->db, rep_body, &t);
	if (err)
		return err;
	if (it.result == REP_NOT_FOUND) {
		svc_say(c, "No such outbox message.");
		return HF_ENOTFOUND;
	}
	if (it.result == REP_CONFLICT) {
		svc_say(c, "The message is already %s: it cannot become %s.", row.before, it.status);
		return HF_ECONFLICT;
	}
	bool changed = it.result == REP_CHANGED;
	*out = json_pack("{s:s, s:s, s:b}", "id", id, "status", changed ? it.status : row.before, "changed", changed);
	return HF_OK;
}
