/* person.c - validation, sealing and reading back of an individual's record. */
#include "hf_base.h"
#include "person.h"
#include "app.h"
#include "db.h"
#include "hf_log.h"

#include <stdio.h>
#include <string.h>

static bool given(const char *s)
{
	return s && s[0];
}

static void path(char *out, size_t n, const char *prefix, const char *field)
{
	snprintf(out, n, "%s%s%s", prefix, prefix[0] ? "." : "", field);
}

static void enum_field(const char *v, const char *const *list, const char *prefix, const char *field, bool required,
		       struct hf_ferrs *fe, const char **out, const char *def)
{
	char p[128];
	path(p, sizeof(p), prefix, field);
	if (!given(v)) {
		if (required)
			hf_ferrs_add(fe, p, "required", "this field is required");
		*out = def;
		return;
	}
	for (size_t i = 0; list[i]; i++)
		if (strcmp(v, list[i]) == 0) {
			*out = list[i];
			return;
		}
	char allowed[300] = "";
	size_t used = 0;
	for (size_t i = 0; list[i] && used < sizeof(allowed); i++) {
		int k = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "", list[i]);
		if (k < 0)
			break;
		used += (size_t)k;
	}
	hf_ferrs_add(fe, p, "not_allowed", "must be one of: %s", allowed);
	*out = def;
}

bool person_validate(const struct person_in *in, const char *prefix, bool need_relationship, struct hf_ferrs *fe,
		     struct person_row *row)
{
	size_t before = hf_ferrs_count(fe);
	char p[128];
	struct vfail why;
	memset(row, 0, sizeof(*row));

	const char *names[2][2] = {{"given_name", in->given_name}, {"family_name", in->family_name}};
	for (int i = 0; i < 2; i++) {
		path(p, sizeof(p), prefix, names[i][0]);
		if (!given(names[i][1]))
			hf_ferrs_add(fe, p, "required", "this field is required");
		else if (!validate_person_name(names[i][1], &why))
			hf_ferrs_add(fe, p, why.code, "%s", why.message);
	}
	row->given_name = in->given_name;
	row->family_name = in->family_name;

	enum_field(in->sex, VALID_SEX, prefix, "sex", true, fe, &row->sex, "other");
	if (need_relationship || given(in->relationship))
		enum_field(in->relationship, VALID_RELATIONSHIP, prefix, "relationship", true, fe, &row->relationship,
			   NULL);
	enum_field(in->disability, VALID_DISABILITY, prefix, "disability", false, fe, &row->disability, "none");

	path(p, sizeof(p), prefix, "language");
	if (!given(in->language))
		hf_ferrs_add(fe, p, "required", "this field is required");
	else if (!validate_language(in->language))
		hf_ferrs_add(fe, p, "not_allowed", "this language is not offered (registry.languages)");
	row->language = in->language;

	path(p, sizeof(p), prefix, "date_of_birth");
	if (!given(in->date_of_birth))
		hf_ferrs_add(fe, p, "required", "this field is required");
	else if (!validate_birth_date(in->date_of_birth, &row->birth_year, &why))
		hf_ferrs_add(fe, p, why.code, "%s", why.message);
	else
		hf_strlcpy(row->dob, in->date_of_birth, sizeof(row->dob));

	if (given(in->national_id)) {
		path(p, sizeof(p), prefix, "national_id");
		if (strlen(in->national_id) > 64)
			hf_ferrs_add(fe, p, "length", "the national ID is too long");
		else if (!validate_national_id(in->national_id, row->nid, &why))
			hf_ferrs_add(fe, p, why.code, "%s", why.message);
	}
	if (given(in->phone)) {
		path(p, sizeof(p), prefix, "phone");
		if (strlen(in->phone) > 32)
			hf_ferrs_add(fe, p, "length", "the phone number is too long");
		else if (!validate_phone(in->phone, row->phone, &why))
			hf_ferrs_add(fe, p, why.code, "%s", why.message);
	}
	return hf_ferrs_count(fe) == before;
}

static void seal(const struct hf_keyring *kr, int64_t id, const char *column, const char *value,
		 struct hf_buf *out)
{
	char ad[96];
	int n = snprintf(ad, sizeof(ad), "individuals.%s:%lld", column, (long long)id);
	hf_buf_init(out, 4096);
	if (!value || !value[0])
		return;
	if (hf_field_seal(kr, (struct hf_str){ad, (size_t)n}, value, strlen(value), out))
		HF_ASSERT(!"sealed value over 4 KiB: input caps are broken");
}

void person_nid_bidx(const struct hf_keyring *kr, const char *nid, uint8_t out[HF_BIDX_LEN])
{
	hf_blind_index(kr, "nid", hf_str_from(nid), out);
}

void person_phone_bidx(const struct hf_keyring *kr, const char *phone, uint8_t out[HF_BIDX_LEN])
{
	hf_blind_index(kr, "phone", hf_str_from(phone), out);
}

void person_dedup_bidx(const struct hf_keyring *kr, const char *given_name, const char *family_name, const char *dob,
		       int64_t village_id, uint8_t out[HF_BIDX_LEN])
{
	struct hf_buf k;
	hf_buf_init(&k, 1024);
	validate_name_norm(given_name, &k);
	if (hf_buf_append(&k, "|", 1) == HF_OK)
		validate_name_norm(family_name, &k);
	hf_buf_note(&k, "|%s|%lld", dob, (long long)village_id);
	hf_blind_index(kr, "dedup", (struct hf_str){k.data, k.len}, out);
	hf_buf_release(&k);
}

void person_seal(const struct hf_keyring *kr, struct person_row *row, int64_t village_id)
{
	seal(kr, row->id, "given_name", row->given_name, &row->given_enc);
	seal(kr, row->id, "family_name", row->family_name, &row->family_enc);
	seal(kr, row->id, "dob", row->dob, &row->dob_enc);
	seal(kr, row->id, "national_id", row->nid, &row->nid_enc);
	seal(kr, row->id, "phone", row->phone, &row->phone_enc);
	if (row->nid[0])
		person_nid_bidx(kr, row->nid, row->nid_bidx);
	if (row->phone[0])
		person_phone_bidx(kr, row->phone, row->phone_bidx);

	person_dedup_bidx(kr, row->given_name, row->family_name, row->dob, village_id, row->dedup_bidx);
	struct hf_buf k;
	hf_buf_init(&k, 1024);
	validate_phonetic_key(row->given_name, row->family_name, &k);
	hf_buf_note(&k, "|%s", row->dob);
	hf_blind_index(kr, "phonetic", (struct hf_str){k.data, k.len}, row->phonetic_bidx);
	hf_buf_release(&k);
}

void person_row_release(struct person_row *row)
{
	struct hf_buf *bufs[] = {&row->given_enc, &row->family_enc, &row->dob_enc, &row->nid_enc, &row->phone_enc};
	for (size_t i = 0; i < HF_ARRAY_LEN(bufs); i++)
		hf_buf_release(bufs[i]);
}

void person_insert_vals(const struct person_row *row, int64_t household_id, const char *ext_ref, const char *actor,
			struct db_val *v)
{
	bool head = row->relationship && strcmp(row->relationship, "head") == 0;
	size_t i = 0;
	v[i++] = DB_I64(row->id);
	v[i++] = db_str(row->ben_no);
	v[i++] = db_str(ext_ref);
	v[i++] = household_id ? DB_I64(household_id) : DB_NULLV;
	v[i++] = db_str(row->relationship);
	v[i++] = head ? DB_I64(1) : DB_NULLV;
	v[i++] = DB_BLOB(row->given_enc.data, row->given_enc.len);
	v[i++] = DB_BLOB(row->family_enc.data, row->family_enc.len);
	v[i++] = DB_BLOB(row->dob_enc.data, row->dob_enc.len);
	v[i++] = db_blob_or_null(row->nid_enc.data, row->nid_enc.len);
	v[i++] = db_blob_or_null(row->phone_enc.data, row->phone_enc.len);
	v[i++] = db_str(row->sex);
	v[i++] = DB_I64(row->birth_year);
	v[i++] = db_str(row->disability);
	v[i++] = db_str(row->language);
	v[i++] = row->nid[0] ? DB_BLOB(row->nid_bidx, HF_BIDX_LEN) : DB_NULLV;
	v[i++] = row->phone[0] ? DB_BLOB(row->phone_bidx, HF_BIDX_LEN) : DB_NULLV;
	v[i++] = DB_BLOB(row->dedup_bidx, HF_BIDX_LEN);
	v[i++] = DB_BLOB(row->phonetic_bidx, HF_BIDX_LEN);
	v[i++] = db_str(actor);
	v[i++] = db_str(actor);
	HF_ASSERT(i == PERSON_INSERT_NPARAMS);
}

hf_err person_open_field(const struct hf_keyring *kr, int64_t id, const char *column, const void *sealed, size_t len,
			 struct hf_buf *out)
{
	char ad[96];
	int n = snprintf(ad, sizeof(ad), "individuals.%s:%lld", column, (long long)id);
	hf_err err = hf_field_open(kr, (struct hf_str){ad, (size_t)n}, sealed, len, out);
	if (err)
		hf_log(HF_LOG_ERROR, "core.person", "msg=\"sealed field failed to open: tampered, moved or key missing\" "
		       "individual=%lld column=%s", (long long)id, column);
	return err;
}

hf_err person_to_json(const struct hf_keyring *kr, const struct db_rows *r, size_t c, json_t **out)
{
	static const char *const sealed_cols[] = {"given_name", "family_name", "dob", "national_id", "phone"};
	static const char *const json_keys[] = {"given_name", "family_name", "date_of_birth", "national_id", "phone"};
	int64_t id = db_rows_i64(r, c + 0);
	json_t *o = json_object();
	json_object_set_new(o, "ben_no", json_string(db_rows_str(r, c + 1)));
	json_object_set_new(o, "household", db_rows_null(r, c + 2) ? json_null() : json_string(db_rows_str(r, c + 2)));
	json_object_set_new(o, "relationship",
			    db_rows_null(r, c + 3) ? json_null() : json_string(db_rows_str(r, c + 3)));
	struct hf_buf v;
	hf_buf_init(&v, 4096);
	for (size_t k = 0; k < HF_ARRAY_LEN(sealed_cols); k++) {
		size_t len;
		const void *b = db_rows_blob(r, c + 4 + k, &len);
		if (!b) {
			json_object_set_new(o, json_keys[k], json_null());
			continue;
		}
		hf_buf_reset(&v);
		hf_err err = person_open_field(kr, id, sealed_cols[k], b, len, &v);
		if (err) {
			hf_buf_release(&v);
			json_decref(o);
			return HF_EINTERNAL;
		}
		json_object_set_new(o, json_keys[k], json_stringn(hf_buf_cstr(&v), v.len));
	}
	/* The plaintext copies are wiped before the buffer goes back to the allocator. */
	if (v.data)
		memset(v.data, 0, v.cap);
	hf_buf_release(&v);
	json_object_set_new(o, "sex", json_string(db_rows_str(r, c + 9)));
	json_object_set_new(o, "disability", json_string(db_rows_str(r, c + 10)));
	json_object_set_new(o, "language", json_string(db_rows_str(r, c + 11)));
	json_object_set_new(o, "version", json_integer(db_rows_i64(r, c + 12)));
	json_object_set_new(o, "created_at", json_string(db_rows_str(r, c + 13)));
	json_object_set_new(o, "updated_at", json_string(db_rows_str(r, c + 14)));
	*out = o;
	return HF_OK;
}
