/* export.c - streams households and members out as an import-format CSV, decrypting personal fields.
 *
 * Households are walked in id order, a page of 1,000 at a time (a primary-key range: no sort), and each
 * page's members are streamed with db_stream, joined to the household and its three location levels.
 * Sorting the whole registry in one ORDER BY would make the server build and sort a million-row
 * temporary table before sending the first row, long enough to hit the connection's read timeout; a
 * page sorts a few thousand rows. Only one household's members are held here at a time, so memory is
 * constant whatever the registry's size. Plaintext buffers are wiped once written.
 */
#include "hf_base.h"
#include "export.h"
#include "app.h"
#include "hf_buf.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "import.h"
#include "person.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_BYTES (64 * 1024)

/* Columns of the export query, in order. */
enum {
	X_HH_ID,
	X_HH_EXT_REF,
	X_HH_NO,
	X_ADDRESS_ENC,
	X_REGION,
	X_DISTRICT,
	X_VILLAGE,
	X_ID,
	X_EXT_REF,
	X_RELATIONSHIP,
	X_GIVEN_ENC,
	X_FAMILY_ENC,
	X_SEX,
	X_DOB_ENC,
	X_NID_ENC,
	X_PHONE_ENC,
	X_DISABILITY,
	X_LANGUAGE,
	X_PROG_INDIVIDUAL,
	X_PROG_HOUSEHOLD,
};

#define EXPORT_SELECT                                                                                          \
	"SELECT i.household_id, h.ext_ref, h.hh_no, h.address_enc, lr.name, ld.name, lv.name, i.id, i.ext_ref, " \
	"i.relationship, i.given_name_enc, i.family_name_enc, i.sex, i.dob_enc, i.national_id_enc, i.phone_enc, " \
	"i.disability, i.language, "                                                                           \
	"(SELECT MIN(p.code) FROM enrolments e JOIN programmes p ON p.id = e.programme_id "                     \
	" WHERE e.individual_id = i.id AND e.status IN ('pending', 'enrolled')), "                             \
	"IF(i.relationship = 'head', (SELECT MIN(p.code) FROM enrolments e JOIN programmes p "                  \
	" ON p.id = e.programme_id WHERE e.household_id = i.household_id "                                     \
	" AND e.status IN ('pending', 'enrolled')), NULL) "                                                    \
	"FROM individuals i JOIN households h ON h.id = i.household_id "                                       \
	"JOIN locations lv ON lv.id = h.location_id JOIN locations ld ON ld.id = lv.parent_id "                 \
	"JOIN locations lr ON lr.id = ld.parent_id "
#define EXPORT_PAGE 1000
#define PAGE_ALL "SELECT id FROM households WHERE id > ? ORDER BY id LIMIT 1000"
#define PAGE_BELOW                                                                                             \
	"SELECT h.id FROM households h JOIN locations lv ON lv.id = h.location_id "                            \
	"WHERE h.id > ? AND (lv.path = ? OR lv.path LIKE ? ESCAPE '!') ORDER BY h.id LIMIT 1000"

struct member {
	int64_t id;
	int no;             /* 0 until assigned */
	struct hf_buf tail; /* ",relationship,...,programme\n" */
};

struct xctx {
	FILE *out;
	int64_t hh_id;         /* household being collected; 0 = none */
	struct hf_buf hh_head; /* "household_ref,region,district,village,address," */
	char ref[80];          /* household_ref being written */
	struct member *m;
	size_t nm, capm;
	struct hf_buf plain;
	uint64_t households, individuals;
};

static void wipe(struct hf_buf *b)
{
	if (b->data)
		memset(b->data, 0, b->cap);
	b->len = 0;
}

static hf_err cell(struct hf_buf *b, const char *s, size_t n, bool first)
{
	return hf_buf_csv_cell(b, s, n, first);
}

static hf_err cell_str(struct hf_buf *b, const char *s)
{
	return cell(b, s, strlen(s), false);
}

/* Opens a sealed column of the current row into x->plain and appends it as a cell ("" when NULL). */
static hf_err cell_sealed(struct xctx *x, struct hf_buf *b, struct db_rows *r, size_t col, int64_t id,
			  const char *column, bool household)
{
	size_t len = 0;
	const void *sealed = db_rows_blob(r, col, &len);
	if (!sealed || len == 0)
		return cell(b, "", 0, false);
	wipe(&x->plain);
	hf_err err;
	if (household) {
		char ad[64];
		int n = snprintf(ad, sizeof(ad), "households.address:%lld", (long long)id);
		err = hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)n}, sealed, len, &x->plain);
		if (err)
			hf_log(HF_LOG_ERROR, "core.export", "msg=\"sealed field failed to open\" household=%lld column=%s",
			       (long long)id, column);
	} else {
		err = person_open_field(g_app.keys, id, column, sealed, len, &x->plain);
	}
	if (err)
		return HF_EINTERNAL;
	err = cell(b, x->plain.data, x->plain.len, false);
	wipe(&x->plain);
	return err;
}

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	return (x->no > y->no) - (x->no < y->no);
}

/* Member numbers: kept from "<ref>/<n>" ext_refs, the lowest free ones for the rest, in id order. */
static void household_number(struct xctx *x)
{
	uint64_t used = 0;
	for (size_t i = 0; i < x->nm; i++)
		if (x->m[i].no > 0 && x->m[i].no <= 63 && !(used & (1ULL << x->m[i].no)))
			used |= 1ULL << x->m[i].no;
		else
			x->m[i].no = 0;
	int next = 1;
	for (size_t i = 0; i < x->nm; i++) {
		if (x->m[i].no)
			continue;
		while (next <= 63 && (used & (1ULL << next)))
			next++;
		x->m[i].no = next++;
		if (x->m[i].no <= 63)
			used |= 1ULL << x->m[i].no;
	}
	if (x->nm > 1)
		qsort(x->m, x->nm, sizeof(*x->m), member_cmp);
}

static hf_err household_write(struct xctx *x)
{
	if (!x->hh_id)
		return HF_OK;
	household_number(x);
	for (size_t i = 0; i < x->nm; i++) {
		fwrite(x->hh_head.data, 1, x->hh_head.len, x->out);
		fprintf(x->out, "%d", x->m[i].no);
		fwrite(x->m[i].tail.data, 1, x->m[i].tail.len, x->out);
		wipe(&x->m[i].tail);
	}
	wipe(&x->hh_head);
	x->households++;
	x->individuals += x->nm;
	x->nm = 0;
	x->hh_id = 0;
	return ferror(x->out) ? HF_EIO : HF_OK;
}

static int member_no_of(const char *ext_ref, const char *ref)
{
	size_t rl = strlen(ref);
	if (strncasecmp(ext_ref, ref, rl) != 0 || ext_ref[rl] != '/')
		return 0;
	int64_t n = 0;
	if (hf_parse_i64(ext_ref + rl + 1, 1, IMPORT_HOUSEHOLD_MAX, &n))
		return 0;
	return (int)n;
}

static bool ref_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static hf_err on_row(void *vctx, struct db_rows *r)
{
	struct xctx *x = vctx;
	int64_t hh = db_rows_i64(r, X_HH_ID);
	hf_err err = HF_OK;
	if (hh != x->hh_id) {
		err = household_write(x);
		if (err)
			return err;
		x->hh_id = hh;
		const char *ext = db_rows_str(r, X_HH_EXT_REF);
		hf_strlcpy(x->ref, ref_ok(ext) ? ext : db_rows_str(r, X_HH_NO), sizeof(x->ref));
		err = cell(&x->hh_head, x->ref, strlen(x->ref), true);
		if (!err)
			err = cell_str(&x->hh_head, db_rows_str(r, X_REGION));
		if (!err)
			err = cell_str(&x->hh_head, db_rows_str(r, X_DISTRICT));
		if (!err)
			err = cell_str(&x->hh_head, db_rows_str(r, X_VILLAGE));
		if (!err)
			err = cell_sealed(x, &x->hh_head, r, X_ADDRESS_ENC, hh, "address", true);
		if (!err)
			err = hf_buf_append(&x->hh_head, ",", 1);
		if (err)
			return err;
	}
	if (x->nm == x->capm) {
		size_t cap = x->capm ? x->capm * 2 : 32;
		x->m = hf_xrealloc(x->m, cap * sizeof(*x->m));
		for (size_t i = x->capm; i < cap; i++)
			hf_buf_init(&x->m[i].tail, LINE_MAX_BYTES);
		x->capm = cap;
	}
	struct member *m = &x->m[x->nm++];
	int64_t id = db_rows_i64(r, X_ID);
	m->id = id;
	m->no = member_no_of(db_rows_str(r, X_EXT_REF), x->ref);
	struct hf_buf *t = &m->tail;
	t->len = 0;
	const char *pi = db_rows_str(r, X_PROG_INDIVIDUAL), *ph = db_rows_str(r, X_PROG_HOUSEHOLD);
	const char *prog = !pi[0] ? ph : !ph[0] ? pi : strcasecmp(pi, ph) <= 0 ? pi : ph;
	err = cell_str(t, db_rows_str(r, X_RELATIONSHIP));
	if (!err)
		err = cell_sealed(x, t, r, X_GIVEN_ENC, id, "given_name", false);
	if (!err)
		err = cell_sealed(x, t, r, X_FAMILY_ENC, id, "family_name", false);
	if (!err)
		err = cell_str(t, db_rows_str(r, X_SEX));
	if (!err)
		err = cell_sealed(x, t, r, X_DOB_ENC, id, "dob", false);
	if (!err)
		err = cell_sealed(x, t, r, X_NID_ENC, id, "national_id", false);
	if (!err)
		err = cell_sealed(x, t, r, X_PHONE_ENC, id, "phone", false);
	if (!err)
		err = cell_str(t, db_rows_str(r, X_DISABILITY));
	if (!err)
		err = cell_str(t, db_rows_str(r, X_LANGUAGE));
	if (!err)
		err = cell_str(t, prog);
	if (!err)
		err = hf_buf_append(t, "\n", 1);
	return err;
}

/* The LIKE pattern for everything below prefix: its own % and _ escaped with '!'. */
static hf_err below_pattern(const char *prefix, struct hf_buf *out)
{
	hf_err err = HF_OK;
	for (const char *p = prefix; *p && !err; p++) {
		if (*p == '%' || *p == '_' || *p == '!')
			err = hf_buf_append(out, "!", 1);
		if (!err)
			err = hf_buf_append(out, p, 1);
	}
	return err ? err : hf_buf_append(out, "/%", 2);
}

hf_err export_run(struct db *db, FILE *out, const char *location_prefix)
{
	struct xctx x = {.out = out};
	struct hf_buf path, like, sql;
	struct db_val *ids = NULL;
	hf_buf_init(&path, 1024);
	hf_buf_init(&like, 2048);
	hf_buf_init(&sql, 64 * 1024);
	hf_buf_init(&x.hh_head, LINE_MAX_BYTES);
	hf_buf_init(&x.plain, LINE_MAX_BYTES);
	hf_err err = HF_OK;
	int64_t t0 = hf_mono_ms();

	struct db_rows *r = NULL;
	int64_t orphans = 0;
	err = db_query_i64(db, "SELECT COUNT(*) FROM individuals WHERE household_id IS NULL", NULL, 0, &orphans);
	if (err)
		goto out;
	if (orphans)
		hf_log(HF_LOG_WARN, "core.export", "msg=\"individuals without a household are not exported\" count=%lld",
		       (long long)orphans);

	for (size_t i = 0; i < IMPORT_NCOLUMNS; i++)
		fprintf(out, "%s%s", i ? "," : "", import_columns[i]);
	fputc('\n', out);

	bool below = location_prefix && location_prefix[0];
	if (below) {
		err = hf_buf_append_str(&path, location_prefix);
		while (!err && path.len && path.data[path.len - 1] == '/')
			path.data[--path.len] = '\0';
		if (!err)
			err = below_pattern(hf_buf_cstr(&path), &like);
		if (err) {
			err = HF_EINVAL;
			goto out;
		}
	}
	/* The members query: SQL from constants only, EXPORT_PAGE placeholders (a short page repeats its last
	 * id, which changes nothing in an IN list). */
	err = hf_buf_append_str(&sql, EXPORT_SELECT "WHERE i.household_id IN (");
	for (size_t i = 0; !err && i < EXPORT_PAGE; i++)
		err = hf_buf_append(&sql, i ? ",?" : "?", i ? 2 : 1);
	if (!err)
		err = hf_buf_append_str(&sql, ") ORDER BY i.household_id, i.id");
	HF_ASSERT(err == HF_OK);
	ids = hf_xcalloc(EXPORT_PAGE, sizeof(*ids));
	int64_t after = 0;
	for (;;) {
		struct db_val pv[] = {DB_I64(after), db_str(hf_buf_cstr(&path)), db_str(hf_buf_cstr(&like))};
		err = db_query(db, below ? PAGE_BELOW : PAGE_ALL, pv, below ? 3 : 1, &r);
		if (err)
			goto out;
		size_t n = 0;
		while (db_rows_next(r) && n < EXPORT_PAGE)
			ids[n++] = DB_I64(db_rows_i64(r, 0));
		db_rows_free(r);
		r = NULL;
		if (n == 0)
			break;
		after = ids[n - 1].i;
		for (size_t i = n; i < EXPORT_PAGE; i++)
			ids[i] = ids[n - 1];
		err = db_stream(db, hf_buf_cstr(&sql), ids, EXPORT_PAGE, on_row, &x);
		if (err)
			goto out;
		if (n < EXPORT_PAGE)
			break;
	}
	if (!err)
		err = household_write(&x);
	if (!err && (fflush(out) != 0 || ferror(out))) {
		hf_log(HF_LOG_ERROR, "core.export", "msg=\"cannot write the export\"");
		err = HF_EIO;
	}
	if (!err)
		hf_log(HF_LOG_INFO, "core.export", "msg=\"export finished\" households=%" PRIu64 " individuals=%" PRIu64
		       " seconds=%.1f", x.households, x.individuals, (double)(hf_mono_ms() - t0) / 1000.0);
out:
	for (size_t i = 0; i < x.capm; i++) {
		wipe(&x.m[i].tail);
		hf_buf_release(&x.m[i].tail);
	}
	free(x.m);
	wipe(&x.hh_head);
	wipe(&x.plain);
	hf_buf_release(&x.hh_head);
	hf_buf_release(&x.plain);
	hf_buf_release(&path);
	hf_buf_release(&like);
	hf_buf_release(&sql);
	free(ids);
	return err;
}
