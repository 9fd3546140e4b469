/* outbox.c - SMS waiting to be sent (see outbox.h). */
#include "outbox.h"

#include "app.h"
#include "hf_crypto.h"
#include "person.h"

#include <sodium.h>
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
