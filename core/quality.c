/* quality.c - completeness, re-validation, duplicate groups and staleness of the registry.
 *
 * Every statement here streams rows from its first moment: one pass over individuals (counting, and
 * decrypting for re-validation), one over households, and one GROUP BY per duplicate kind that the
 * server answers from an index in order (see duplicates). A statement that aggregates or sorts a million
 * rows before sending the first one is turned into an error by the connection's read timeout
 * (db.rw_timeout_s, seconds). Lists are capped while they are built, totals are always exact; memory is
 * constant apart from one 16-byte entry per same-name-dob-village group.
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

static void *grow_array(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap * 2 : 256;
	while (n < need)
		n *= 2;
	*cap = n;
	return hf_xrealloc(p, n * size);
}

static void wipe(struct hf_buf *b)
{
	if (b->data)
		memset(b->data, 0, b->cap);
	b->len = 0;
}

/* ---- one pass over individuals, one over households: completeness and re-validation ---- */

static const char *const FILLED_FIELDS[] = {"national_id", "phone",	 "date_of_birth", "given_name",
					    "family_name", "disability", "language",	  "relationship"};

struct pass {
	int64_t individuals, households, address_filled;
	int64_t filled[HF_ARRAY_LEN(FILLED_FIELDS)];
	json_t *list, *by_field;
	int64_t invalid;
	struct hf_buf plain;
};

static void inv_add(struct pass *v, const char *key, const char *no, const char *field, const char *code)
{
	v->invalid++;
	json_t *n = json_object_get(v->by_field, field);
	json_object_set_new(v->by_field, field, json_integer((n ? json_integer_value(n) : 0) + 1));
	if (json_array_size(v->list) < QUALITY_LIST_MAX)
		json_array_append_new(v->list, json_pack("{s:s, s:s, s:s}", key, no, "field", field, "code", code));
}

/* Columns: id, ben_no, household_id, national_id_enc, phone_enc, dob_enc, then one 0/1 per FILLED_FIELDS
 * entry from given_name on. */
#define PASS_INDIVIDUALS                                                                                       \
	"SELECT id, ben_no, household_id, national_id_enc, phone_enc, dob_enc, LENGTH(given_name_enc) > 0, "   \
	"LENGTH(family_name_enc) > 0, disability IS NOT NULL, language <> '', relationship IS NOT NULL "      \
	"FROM individuals"

static hf_err on_individual(void *ctx, struct db_rows *r)
{
	static const struct {
		size_t col;
		const char *column, *field;
	} sealed[] = {{3, "national_id", "national_id"}, {4, "phone", "phone"}, {5, "dob", "date_of_birth"}};
	struct pass *v = ctx;
	int64_t id = db_rows_i64(r, 0);
	const char *ben_no = db_rows_str(r, 1);
	v->individuals++;
	for (size_t k = 3; k < HF_ARRAY_LEN(FILLED_FIELDS); k++)
		v->filled[k] += db_rows_i64(r, 6 + k - 3) ? 1 : 0;
	if (db_rows_null(r, 2))
		inv_add(v, "ben_no", ben_no, "household", "no_household");
	for (size_t k = 0; k < HF_ARRAY_LEN(sealed); k++) {
		size_t len = 0;
		const void *b = db_rows_blob(r, sealed[k].col, &len);
		if (!b || len == 0)
			continue;
		v->filled[k]++;
		wipe(&v->plain);
		if (person_open_field(g_app.keys, id, sealed[k].column, b, len, &v->plain) != HF_OK) {
			inv_add(v, "ben_no", ben_no, sealed[k].field, "unreadable");
			continue;
		}
		struct vfail why = {0};
		char norm[NID_MAX + PHONE_MAX + 2];
		int year;
		const char *plain = hf_buf_cstr(&v->plain);
		bool ok = k == 0   ? validate_national_id(plain, norm, &why)
			  : k == 1 ? validate_phone(plain, norm, &why)
				   : validate_birth_date(plain, &year, &why);
		memset(norm, 0, sizeof(norm));
		if (!ok)
			inv_add(v, "ben_no", ben_no, sealed[k].field, why.code);
	}
	wipe(&v->plain);
	return HF_OK;
}

/* Columns: hh_no, address filled (0/1), rows saying head. The count is a probe of the household's members
 * through uq_individuals_head (household_id first), so rows flow from the first household on. */
#define PASS_HOUSEHOLDS                                                                                        \
	"SELECT h.hh_no, LENGTH(h.address_enc) > 0, (SELECT COUNT(*) FROM individuals i "                      \
	"WHERE i.household_id = h.id AND i.relationship = 'head') FROM households h"

static hf_err on_household(void *ctx, struct db_rows *r)
{
	struct pass *v = ctx;
	v->households++;
	v->address_filled += db_rows_i64(r, 1) ? 1 : 0;
	int64_t heads = db_rows_i64(r, 2);
	if (heads != 1)
		inv_add(v, "hh_no", db_rows_str(r, 0), "head", heads == 0 ? "no_head" : "several_heads");
	return HF_OK;
}

static hf_err passes(struct db *db, json_t *rep)
{
	struct pass v = {.list = json_array(), .by_field = json_object()};
	hf_buf_init(&v.plain, 4096);
	hf_err err = db_stream(db, PASS_INDIVIDUALS, NULL, 0, on_individual, &v);
	if (!err)
		err = db_stream(db, PASS_HOUSEHOLDS, NULL, 0, on_household, &v);
	wipe(&v.plain);
	hf_buf_release(&v.plain);
	json_object_set_new(rep, "individuals", json_integer(v.individuals));
	json_object_set_new(rep, "households", json_integer(v.households));
	json_t *c = json_object();
	for (size_t k = 0; k < HF_ARRAY_LEN(FILLED_FIELDS); k++)
		completeness_add(c, FILLED_FIELDS[k], v.filled[k], v.individuals);
	completeness_add(c, "address", v.address_filled, v.households);
	json_object_set_new(rep, "completeness", c);
	json_object_set_new(rep, "invalid", v.list);
	json_object_set_new(rep, "invalid_total", json_integer(v.invalid));
	json_object_set_new(rep, "invalid_by_field", v.by_field);
	return err;
}

/* ---- duplicates ----
 * Each kind is one GROUP BY over its blind-index column, forced onto that column's index: the index holds
 * the key and the row id, so the server reads it in order and emits each group as it ends, without a
 * temporary table or a sort, and without touching the table rows (an ORDER BY COUNT(*) would aggregate
 * and sort the whole table before the first row, past the connection's read timeout on a national
 * registry). The 1,000 largest groups of each kind are kept as ids; their ben_nos are looked up at the
 * end, a page of ids at a time. */

#define ID_PAGE 1000

struct group {
	int64_t size;
	size_t nids;
	int64_t ids[GROUP_BEN_NOS_MAX];
};

struct dedup_size {
	int64_t min_id, size;
};

struct groups {
	int64_t total;
	struct group *top; /* QUALITY_LIST_MAX, ntop used */
	size_t ntop;
	struct group cur;
	/* same_name_dob_village groups by their smallest id (filled by that kind, read by phonetic) */
	bool collect_dedup, skip_dedup_equal;
	struct dedup_size *dd;
	size_t ndd, capdd;
};

static int cmp_dedup(const void *a, const void *b)
{
	const struct dedup_size *x = a, *y = b;
	return (x->min_id > y->min_id) - (x->min_id < y->min_id);
}

/* A phonetic group always contains the dedup group of its smallest id (equal names and dates give equal
 * phonetic keys), whose smallest id is then the same; the two are equal exactly when their sizes are. */
static bool equals_dedup_group(const struct groups *g, int64_t min_id, int64_t size)
{
	struct dedup_size k = {min_id, 0};
	const struct dedup_size *d = bsearch(&k, g->dd, g->ndd, sizeof(*g->dd), cmp_dedup);
	return d && d->size == size;
}

static void group_keep(struct groups *g)
{
	size_t at = g->ntop;
	if (g->ntop == QUALITY_LIST_MAX) {
		at = 0;
		for (size_t i = 1; i < g->ntop; i++)
			if (g->top[i].size < g->top[at].size)
				at = i;
		if (g->top[at].size >= g->cur.size)
			return;
	} else {
		g->ntop++;
	}
	g->top[at] = g->cur;
}

/* Columns: COUNT(*), MIN(id), GROUP_CONCAT(id ORDER BY id). */
static hf_err on_group(void *ctx, struct db_rows *r)
{
	struct groups *g = ctx;
	int64_t size = db_rows_i64(r, 0), min_id = db_rows_i64(r, 1);
	if (g->collect_dedup) {
		g->dd = grow_array(g->dd, &g->capdd, g->ndd + 1, sizeof(*g->dd));
		g->dd[g->ndd++] = (struct dedup_size){min_id, size};
	}
	if (g->skip_dedup_equal && equals_dedup_group(g, min_id, size))
		return HF_OK;
	g->total++;
	g->cur.size = size;
	g->cur.nids = 0;
	/* The list may be cut by group_concat_max_len; a cut last id fails to parse or is ignored below. */
	const char *s = db_rows_str(r, 2);
	while (*s && g->cur.nids < GROUP_BEN_NOS_MAX) {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		char num[24];
		int64_t id;
		if (n < sizeof(num) && end) {
			memcpy(num, s, n);
			num[n] = '\0';
			if (hf_parse_i64(num, 1, INT64_MAX, &id) == HF_OK)
				g->cur.ids[g->cur.nids++] = id;
		} else if (!end && (int64_t)g->cur.nids + 1 == size && n < sizeof(num)) {
			memcpy(num, s, n); /* the last id of an uncut list */
			num[n] = '\0';
			if (hf_parse_i64(num, 1, INT64_MAX, &id) == HF_OK)
				g->cur.ids[g->cur.nids++] = id;
		}
		s += n + (end ? 1 : 0);
	}
	group_keep(g);
	return HF_OK;
}

struct id_no {
	int64_t id;
	char no[BENNO_LEN + 1];
};

static int cmp_id_no(const void *a, const void *b)
{
	const struct id_no *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

struct lookup {
	struct id_no *map;
	size_t n;
};

static hf_err on_ben_no(void *ctx, struct db_rows *r)
{
	struct lookup *l = ctx;
	l->map[l->n].id = db_rows_i64(r, 0);
	hf_strlcpy(l->map[l->n].no, db_rows_str(r, 1), sizeof(l->map[l->n].no));
	l->n++;
	return HF_OK;
}

static int cmp_no(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return (x->ids[0] > y->ids[0]) - (x->ids[0] < y->ids[0]);
}

/* The kept groups as JSON, ben_nos looked up by id a page at a time. */
static hf_err groups_json(struct db *db, struct groups *g, json_t **out)
{
	size_t nids = 0;
	for (size_t k = 0; k < g->ntop; k++)
		nids += g->top[k].nids;
	struct lookup l = {hf_xcalloc(nids + 1, sizeof(*l.map)), 0};
	struct db_val *page = hf_xcalloc(ID_PAGE, sizeof(*page));
	struct hf_buf sql;
	hf_buf_init(&sql, 16 * 1024);
	hf_err err = hf_buf_append_str(&sql, "SELECT id, ben_no FROM individuals WHERE id IN (");
	for (size_t i = 0; !err && i < ID_PAGE; i++)
		err = hf_buf_append(&sql, i ? ",?" : "?", i ? 2 : 1);
	if (!err)
		err = hf_buf_append(&sql, ")", 1);
	HF_ASSERT(err == HF_OK);
	size_t n = 0;
	for (size_t k = 0; k < g->ntop && !err; k++) {
		for (size_t j = 0; j < g->top[k].nids && !err; j++) {
			page[n++] = DB_I64(g->top[k].ids[j]);
			bool last = k + 1 == g->ntop && j + 1 == g->top[k].nids;
			if (n < ID_PAGE && !last)
				continue;
			for (size_t i = n; i < ID_PAGE; i++) /* a repeated id changes nothing in an IN list */
				page[i] = page[n - 1];
			err = db_stream(db, hf_buf_cstr(&sql), page, ID_PAGE, on_ben_no, &l);
			n = 0;
		}
	}
	hf_buf_release(&sql);
	free(page);
	if (err) {
		free(l.map);
		return err;
	}
	if (l.n > 0)
		qsort(l.map, l.n, sizeof(*l.map), cmp_id_no);
	qsort(g->top, g->ntop, sizeof(*g->top), cmp_group);
	json_t *list = json_array();
	char nos[GROUP_BEN_NOS_MAX][BENNO_LEN + 1];
	for (size_t k = 0; k < g->ntop; k++) {
		size_t nn = 0;
		for (size_t j = 0; j < g->top[k].nids; j++) {
			struct id_no key = {.id = g->top[k].ids[j]};
			const struct id_no *f = l.n ? bsearch(&key, l.map, l.n, sizeof(*l.map), cmp_id_no) : NULL;
			if (f) /* deleted since: left out */
				hf_strlcpy(nos[nn++], f->no, sizeof(nos[0]));
		}
		qsort(nos, nn, sizeof(nos[0]), cmp_no);
		json_t *arr = json_array();
		for (size_t j = 0; j < nn; j++)
			json_array_append_new(arr, json_string(nos[j]));
		json_array_append_new(list, json_pack("{s:o, s:I}", "ben_nos", arr, "size", (json_int_t)g->top[k].size));
	}
	free(l.map);
	*out = list;
	return HF_OK;
}

static hf_err duplicates(struct db *db, json_t *rep)
{
	/* same_name_dob_village first: phonetic_name_dob needs its groups. */
	static const struct {
		const char *name, *sql;
	} kinds[] = {
		{"same_name_dob_village",
		 "SELECT COUNT(*), MIN(id), GROUP_CONCAT(id ORDER BY id) FROM individuals FORCE INDEX "
		 "(ix_individuals_dedup) GROUP BY dedup_bidx HAVING COUNT(*) > 1"},
		{"phonetic_name_dob",
		 "SELECT COUNT(*), MIN(id), GROUP_CONCAT(id ORDER BY id) FROM individuals FORCE INDEX "
		 "(ix_individuals_phonetic) GROUP BY phonetic_bidx HAVING COUNT(*) > 1"},
		{"same_national_id",
		 "SELECT COUNT(*), MIN(id), GROUP_CONCAT(id ORDER BY id) FROM individuals FORCE INDEX "
		 "(ix_individuals_nid) WHERE nid_bidx IS NOT NULL GROUP BY nid_bidx HAVING COUNT(*) > 1"},
	};
	json_t *d = json_object();
	json_object_set_new(rep, "duplicates", d);
	struct groups *g = hf_xcalloc(1, sizeof(*g));
	g->top = hf_xcalloc(QUALITY_LIST_MAX, sizeof(*g->top));
	hf_err err = HF_OK;
	for (size_t i = 0; i < HF_ARRAY_LEN(kinds) && !err; i++) {
		g->total = 0;
		g->ntop = 0;
		g->collect_dedup = i == 0;
		g->skip_dedup_equal = i == 1;
		err = db_stream(db, kinds[i].sql, NULL, 0, on_group, g);
		if (i == 0 && g->ndd > 0) /* qsort of a NULL array is undefined, even of 0 elements */
			qsort(g->dd, g->ndd, sizeof(*g->dd), cmp_dedup);
		json_t *list = NULL;
		if (!err)
			err = groups_json(db, g, &list);
		if (err)
			break;
		char key[64];
		snprintf(key, sizeof(key), "%s_total", kinds[i].name);
		json_object_set_new(d, kinds[i].name, list);
		json_object_set_new(d, key, json_integer(g->total));
	}
	free(g->dd);
	free(g->top);
	free(g);
	return err;
}

/* ---- staleness ---- */

static hf_err stale(struct db *db, int days, json_t *rep)
{
	struct db_val v[] = {DB_I64(days)};
	int64_t ind = 0, hh = 0;
	hf_err err = db_query_i64(db, "SELECT COUNT(*) FROM individuals WHERE updated_at < UTC_TIMESTAMP(3) - INTERVAL ? DAY",
			       v, 1, &ind);
	if (!err)
		err = db_query_i64(db, "SELECT COUNT(*) FROM households WHERE updated_at < UTC_TIMESTAMP(3) - INTERVAL ? DAY",
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
	hf_err err = passes(db, rep);
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
