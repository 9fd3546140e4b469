/* quality.c - completeness, re-validation, duplicate groups and staleness of the registry.
 *
 * Counting and grouping is left to MariaDB (aggregates over the blind-index columns, which are indexed);
 * only the checks that need plaintext decrypt, in one streamed pass over individuals. Lists are capped
 * while they are built, totals are always exact.
 */
#include "hf_base.h"
#include "quality.h"
#include "app.h"
#include "hf_buf.h"
#include "hf_log.h"
#include "person.h"
#include "validate.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#define GROUP_BEN_NOS_MAX 100
#define STALE_SAMPLE 100
#define PRINT_LIST_MAX 50

static json_t *percent_of(int64_t filled, int64_t total)
{
	double p = total > 0 ? (double)filled * 100.0 / (double)total : 0.0;
	return json_real(round(p * 10.0) / 10.0);
}

static void completeness_add(json_t *c, const char *field, int64_t filled, int64_t total)
{
	json_object_set_new(c, field, json_pack("{s:I, s:I, s:o}", "filled", (json_int_t)filled, "missing",
						(json_int_t)(total - filled), "percent", percent_of(filled, total)));
}

static hf_err completeness(struct db *db, json_t *rep)
{
	static const char *const fields[] = {"national_id",  "phone",	 "date_of_birth", "given_name",
					     "family_name",  "disability", "language",	  "relationship"};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT COUNT(*), COALESCE(SUM(LENGTH(national_id_enc) > 0), 0), "
			      "COALESCE(SUM(LENGTH(phone_enc) > 0), 0), COALESCE(SUM(LENGTH(dob_enc) > 0), 0), "
			      "COALESCE(SUM(LENGTH(given_name_enc) > 0), 0), COALESCE(SUM(LENGTH(family_name_enc) > 0), 0), "
			      "COUNT(disability), COALESCE(SUM(language <> ''), 0), COUNT(relationship) FROM individuals",
			      NULL, 0, &r);
	if (err)
		return err;
	json_t *c = json_object();
	json_object_set_new(rep, "completeness", c);
	int64_t total = 0;
	if (db_rows_next(r)) {
		total = db_rows_i64(r, 0);
		for (size_t i = 0; i < HF_ARRAY_LEN(fields); i++)
			completeness_add(c, fields[i], db_rows_i64(r, i + 1), total);
	}
	db_rows_free(r);
	json_object_set_new(rep, "individuals", json_integer(total));

	err = db_query(db, "SELECT COUNT(*), COALESCE(SUM(LENGTH(address_enc) > 0), 0) FROM households", NULL, 0, &r);
	if (err)
		return err;
	int64_t hh = 0;
	if (db_rows_next(r)) {
		hh = db_rows_i64(r, 0);
		completeness_add(c, "address", db_rows_i64(r, 1), hh);
	}
	db_rows_free(r);
	json_object_set_new(rep, "households", json_integer(hh));
	return HF_OK;
}

/* ---- re-validation ---- */

struct inv {
	json_t *list, *by_field;
	int64_t total;
	struct hf_buf plain;
};

static void inv_add(struct inv *v, const char *key, const char *no, const char *field, const char *code)
{
	v->total++;
	json_t *n = json_object_get(v->by_field, field);
	json_object_set_new(v->by_field, field, json_integer((n ? json_integer_value(n) : 0) + 1));
	if (json_array_size(v->list) < QUALITY_LIST_MAX)
		json_array_append_new(v->list, json_pack("{s:s, s:s, s:s}", key, no, "field", field, "code", code));
}

static void wipe(struct hf_buf *b)
{
	if (b->data)
		memset(b->data, 0, b->cap);
	b->len = 0;
}

/* Columns: id, ben_no, household_id, national_id_enc, phone_enc, dob_enc. */
static hf_err on_individual(void *ctx, struct db_rows *r)
{
	static const struct {
		size_t col;
		const char *column, *field;
	} sealed[] = {{3, "national_id", "national_id"}, {4, "phone", "phone"}, {5, "dob", "date_of_birth"}};
	struct inv *v = ctx;
	int64_t id = db_rows_i64(r, 0);
	const char *ben_no = db_rows_str(r, 1);
	if (db_rows_null(r, 2))
		inv_add(v, "ben_no", ben_no, "household", "no_household");
	for (size_t k = 0; k < HF_ARRAY_LEN(sealed); k++) {
		size_t len = 0;
		const void *b = db_rows_blob(r, sealed[k].col, &len);
		if (!b || len == 0)
			continue;
		wipe(&v->plain);
		if (person_open_field(g_app.keys, id, sealed[k].column, b, len, &v->plain) != HF_OK) {
			inv_add(v, "ben_no", ben_no, sealed[k].field, "unreadable");
			continue;
		}
		struct vfail why = {0};
		char norm[NID_MAX + PHONE_MAX + 2];
		int year;
		bool ok = k == 0   ? validate_national_id(v->plain.data, norm, &why)
			  : k == 1 ? validate_phone(v->plain.data, norm, &why)
				   : validate_birth_date(v->plain.data, &year, &why);
		memset(norm, 0, sizeof(norm));
		if (!ok)
			inv_add(v, "ben_no", ben_no, sealed[k].field, why.code);
	}
	wipe(&v->plain);
	return HF_OK;
}

static hf_err on_household_heads(void *ctx, struct db_rows *r)
{
	struct inv *v = ctx;
	inv_add(v, "hh_no", db_rows_str(r, 0), "head", db_rows_i64(r, 1) == 0 ? "no_head" : "several_heads");
	return HF_OK;
}

static hf_err invalid(struct db *db, json_t *rep)
{
	struct inv v = {json_array(), json_object(), 0, {0}};
	hf_buf_init(&v.plain, 4096);
	hf_err err = db_stream(db, "SELECT id, ben_no, household_id, national_id_enc, phone_enc, dob_enc FROM individuals",
			       NULL, 0, on_individual, &v);
	if (!err)
		err = db_stream(db,
				"SELECT h.hh_no, COUNT(i.id) FROM households h LEFT JOIN individuals i "
				"ON i.household_id = h.id AND i.relationship = 'head' GROUP BY h.id, h.hh_no "
				"HAVING COUNT(i.id) <> 1 ORDER BY h.hh_no",
				NULL, 0, on_household_heads, &v);
	wipe(&v.plain);
	hf_buf_release(&v.plain);
	json_object_set_new(rep, "invalid", v.list);
	json_object_set_new(rep, "invalid_total", json_integer(v.total));
	json_object_set_new(rep, "invalid_by_field", v.by_field);
	return err;
}

/* ---- duplicates ---- */

struct groups {
	json_t *list;
	int64_t total;
};

/* Columns: GROUP_CONCAT of ben_nos (comma-separated, possibly cut by group_concat_max_len), COUNT(*). */
static hf_err on_group(void *ctx, struct db_rows *r)
{
	struct groups *g = ctx;
	g->total++;
	if (json_array_size(g->list) >= QUALITY_LIST_MAX)
		return HF_OK;
	json_t *nos = json_array();
	const char *s = db_rows_str(r, 0);
	while (*s && json_array_size(nos) < GROUP_BEN_NOS_MAX) {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		if (n == BENNO_LEN) /* a number cut short by the server's length cap is left out */
			json_array_append_new(nos, json_stringn(s, n));
		s += n + (end ? 1 : 0);
	}
	json_array_append_new(g->list, json_pack("{s:o, s:I}", "ben_nos", nos, "size", (json_int_t)db_rows_i64(r, 1)));
	return HF_OK;
}

static hf_err duplicates(struct db *db, json_t *rep)
{
	static const struct {
		const char *name, *sql;
	} kinds[] = {
		{"same_national_id",
		 "SELECT GROUP_CONCAT(ben_no ORDER BY ben_no SEPARATOR ','), COUNT(*) FROM individuals "
		 "WHERE nid_bidx IS NOT NULL GROUP BY nid_bidx HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, MIN(ben_no)"},
		{"same_name_dob_village",
		 "SELECT GROUP_CONCAT(ben_no ORDER BY ben_no SEPARATOR ','), COUNT(*) FROM individuals "
		 "GROUP BY dedup_bidx HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, MIN(ben_no)"},
		/* A same-name-dob-village group always lies inside one phonetic group (equal names give equal
		 * phonetic codes), so a phonetic group equals one of them exactly when it has one dedup key. */
		{"phonetic_name_dob",
		 "SELECT GROUP_CONCAT(ben_no ORDER BY ben_no SEPARATOR ','), COUNT(*) FROM individuals "
		 "GROUP BY phonetic_bidx HAVING COUNT(*) > 1 AND COUNT(DISTINCT dedup_bidx) > 1 "
		 "ORDER BY COUNT(*) DESC, MIN(ben_no)"},
	};
	json_t *d = json_object();
	json_object_set_new(rep, "duplicates", d);
	for (size_t i = 0; i < HF_ARRAY_LEN(kinds); i++) {
		struct groups g = {json_array(), 0};
		hf_err err = db_stream(db, kinds[i].sql, NULL, 0, on_group, &g);
		char key[64];
		snprintf(key, sizeof(key), "%s_total", kinds[i].name);
		json_object_set_new(d, kinds[i].name, g.list);
		json_object_set_new(d, key, json_integer(g.total));
		if (err)
			return err;
	}
	return HF_OK;
}

/* ---- staleness ---- */

static hf_err count_one(struct db *db, const char *sql, const struct db_val *v, size_t n, int64_t *out)
{
	struct db_rows *r = NULL;
	hf_err err = db_query(db, sql, v, n, &r);
	if (err)
		return err;
	*out = db_rows_next(r) ? db_rows_i64(r, 0) : 0;
	db_rows_free(r);
	return HF_OK;
}

static hf_err stale(struct db *db, int days, json_t *rep)
{
	struct db_val v[] = {DB_I64(days)};
	int64_t ind = 0, hh = 0;
	hf_err err = count_one(db, "SELECT COUNT(*) FROM individuals WHERE updated_at < UTC_TIMESTAMP(3) - INTERVAL ? DAY",
			       v, 1, &ind);
	if (!err)
		err = count_one(db, "SELECT COUNT(*) FROM households WHERE updated_at < UTC_TIMESTAMP(3) - INTERVAL ? DAY",
				v, 1, &hh);
	if (err)
		return err;
	struct db_rows *r = NULL;
	err = db_query(db,
		       "SELECT ben_no FROM individuals WHERE updated_at < UTC_TIMESTAMP(3) - INTERVAL ? DAY "
		       "ORDER BY updated_at LIMIT 100",
		       v, 1, &r);
	if (err)
		return err;
	json_t *sample = json_array();
	while (db_rows_next(r))
		json_array_append_new(sample, json_string(db_rows_str(r, 0)));
	db_rows_free(r);
	json_object_set_new(rep, "stale", json_pack("{s:i, s:I, s:I, s:o}", "days", days, "individuals", (json_int_t)ind,
						    "households", (json_int_t)hh, "sample", sample));
	return HF_OK;
}

hf_err quality_report(struct db *db, int stale_days, json_t **out)
{
	if (stale_days < 1)
		stale_days = g_app.stale_days;
	int64_t t0 = hf_mono_ms();
	json_t *rep = json_object();
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(rep, "generated_at", json_string(ts));
	hf_err err = completeness(db, rep);
	if (!err)
		err = invalid(db, rep);
	if (!err)
		err = duplicates(db, rep);
	if (!err)
		err = stale(db, stale_days, rep);
	if (err) {
		json_decref(rep);
		return err;
	}
	hf_log(HF_LOG_INFO, "core.quality", "msg=\"quality report built\" individuals=%" JSON_INTEGER_FORMAT
	       " invalid=%" JSON_INTEGER_FORMAT " seconds=%.1f",
	       json_integer_value(json_object_get(rep, "individuals")),
	       json_integer_value(json_object_get(rep, "invalid_total")), (double)(hf_mono_ms() - t0) / 1000.0);
	*out = rep;
	return HF_OK;
}

/* ---- text ---- */

static json_int_t geti(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void print_groups(FILE *out, const json_t *dup, const char *name, const char *title)
{
	char key[64];
	snprintf(key, sizeof(key), "%s_total", name);
	const json_t *list = json_object_get(dup, name);
	fprintf(out, "  %s: %" JSON_INTEGER_FORMAT " groups\n", title, geti(dup, key));
	size_t i;
	const json_t *g;
	json_array_foreach(list, i, g) {
		if (i >= PRINT_LIST_MAX) {
			fprintf(out, "    ... %zu more in this report (--json shows up to %d)\n", json_array_size(list) - i,
				QUALITY_LIST_MAX);
			break;
		}
		fprintf(out, "    %2" JSON_INTEGER_FORMAT ":", geti(g, "size"));
		size_t j;
		const json_t *no;
		json_array_foreach(json_object_get(g, "ben_nos"), j, no)
			fprintf(out, "%s%s", j ? ", " : " ", json_string_value(no));
		fputc('\n', out);
	}
}

int quality_print(json_t *rep, FILE *out)
{
	fprintf(out, "Data quality report, %s\n", json_string_value(json_object_get(rep, "generated_at")));
	fprintf(out, "Individuals: %" JSON_INTEGER_FORMAT "   Households: %" JSON_INTEGER_FORMAT "\n\n",
		geti(rep, "individuals"), geti(rep, "households"));

	fprintf(out, "Completeness                 filled      missing   percent\n");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(rep, "completeness"), k, v)
		fprintf(out, "  %-20s %12" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT " %8.1f%%\n", k,
			geti(v, "filled"), geti(v, "missing"), json_real_value(json_object_get(v, "percent")));

	const json_t *inv = json_object_get(rep, "invalid");
	fprintf(out, "\nInvalid under today's rules: %" JSON_INTEGER_FORMAT "\n", geti(rep, "invalid_total"));
	json_object_foreach(json_object_get(rep, "invalid_by_field"), k, v)
		fprintf(out, "  %-20s %12" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
	size_t i;
	const json_t *e;
	json_array_foreach(inv, i, e) {
		if (i >= PRINT_LIST_MAX) {
			fprintf(out, "  ... %zu more in this report (--json shows up to %d)\n", json_array_size(inv) - i,
				QUALITY_LIST_MAX);
			break;
		}
		const json_t *no = json_object_get(e, "ben_no");
		fprintf(out, "  %s %s  %-14s %s\n", no ? "ben_no" : "hh_no ",
			json_string_value(no ? no : json_object_get(e, "hh_no")),
			json_string_value(json_object_get(e, "field")), json_string_value(json_object_get(e, "code")));
	}

	const json_t *dup = json_object_get(rep, "duplicates");
	fprintf(out, "\nPossible duplicates (group size: ben_nos)\n");
	print_groups(out, dup, "same_national_id", "same national ID");
	print_groups(out, dup, "same_name_dob_village", "same name, date of birth and village");
	print_groups(out, dup, "phonetic_name_dob", "similar-sounding name, same date of birth");

	const json_t *st = json_object_get(rep, "stale");
	fprintf(out, "\nNot updated for %" JSON_INTEGER_FORMAT " days: %" JSON_INTEGER_FORMAT " individuals, %"
		JSON_INTEGER_FORMAT " households\n", geti(st, "days"), geti(st, "individuals"), geti(st, "households"));
	const json_t *sample = json_object_get(st, "sample");
	if (json_array_size(sample)) {
		fprintf(out, "  oldest:");
		json_array_foreach(sample, i, e) {
			if (i >= 20) {
				fprintf(out, " ...");
				break;
			}
			fprintf(out, " %s", json_string_value(e));
		}
		fputc('\n', out);
	}
	return fflush(out) != 0 || ferror(out) ? -1 : 0;
}
