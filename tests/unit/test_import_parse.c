/* test_import_parse.c - the importer's reading side: header rules, row and household rules, caps, report.
 *
 * Everything here runs without a database: the file is parsed exactly as import_run does (the structure
 * pass, then the row pass into a batch), and the batch's verdicts are read back, so every rule that does
 * not need to look anything up is pinned down - including the promise that the report never repeats a
 * rejected value. The database half (existing rows, IDs registered elsewhere, inserts) is covered by the
 * integration tests against a real MariaDB.
 */
#include "hf_base.h"

#include "../../core/core_config.c"
#include "../../core/db.c"
#include "../../core/location.c"
#include "../../core/person.c"
#include "../../core/validate.c"
#include "../../core/audit_chain.c"
#include "../../core/audit.c"
#include "../../core/import.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_test.h"

#define HEADER                                                                                                 \
	"household_ref,region,district,village,address,member_no,relationship,given_name,family_name,sex,"    \
	"date_of_birth,national_id,phone,disability,language,programme\n"

static char g_dir[64];

static void setup(void)
{
	hf_test_tmpdir(g_dir, sizeof(g_dir));
	HF_ASSERT(hf_crypto_init() == HF_OK);
	HF_ASSERT(hf_keyring_generate(g_dir) == HF_OK);
	HF_ASSERT(hf_keyring_load(g_dir, 1, &g_app.keys) == HF_OK);
	char kd[128], pw[128];
	snprintf(kd, sizeof(kd), "crypto.key_dir=%s", g_dir);
	snprintf(pw, sizeof(pw), "db.password_file=%s/none", g_dir);
	const char *ov[] = {kd, pw};
	struct hf_config *cfg = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	HF_ASSERT(hf_config_load(core_config_decls, core_config_ndecls, NULL, ov, 2, &cfg, &err) == HF_OK);
	HF_ASSERT(app_rules_from_config(cfg, &err) == HF_OK);
	hf_buf_release(&err);
}

/* One parsed file: the context after both passes, and the report the batch would produce. */
struct parsed {
	struct ictx *c;
	hf_err err;
	char *report;
	size_t report_len;
};

static void parse_text(const char *text, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	struct ictx *c = hf_xcalloc(1, sizeof(*c));
	FILE *rep = open_memstream(&p->report, &p->report_len);
	HF_ASSERT(rep != NULL);
	ctx_init(c, NULL, "test", rep, NULL);
	/* Two programmes, as programmes_load would find them. */
	c->progs = hf_xcalloc(2, sizeof(*c->progs));
	const char *codes[] = {"OPCT", "CT-OVC"};
	for (int i = 0; i < 2; i++) {
		uint8_t k[KEY_LEN];
		key_of("import.prog", codes[i], k);
		kmap_add(&c->progmap, k, i);
		c->progs[i] = (struct prog){i + 1, i == 1, ""};
		hf_strlcpy(c->progs[i].code, codes[i], sizeof(c->progs[i].code));
	}
	c->nprogs = 2;
	size_t len = strlen(text);
	const char *data = text;
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
		data += 3;
		len -= 3;
	}
	c->scanning = true;
	p->err = parse_all(c, data, len);
	if (!p->err) {
		c->scanning = false;
		p->err = parse_all(c, data, len);
		if (!p->err && c->hh_open)
			household_finish(c, &c->rb->hhs[c->rb->nhh - 1]);
		batch_reset_write(c, c->rb);
		batch_report(c, c->rb);
	}
	HF_ASSERT(fclose(rep) == 0);
	p->c = c;
}

static void parsed_free(struct parsed *p)
{
	ctx_release(p->c);
	free(p->c);
	free(p->report);
}

/* The row with record number recno, or NULL. */
static struct irow *row_at(struct parsed *p, uint64_t recno)
{
	struct ibatch *b = p->c->rb;
	for (size_t i = 0; i < b->nrows; i++)
		if (b->rows[i].recno == recno)
			return &b->rows[i];
	return NULL;
}

static bool has_reason(const struct irow *r, const char *field, const char *part)
{
	for (const struct rerr *e = r->perr; e; e = e->next)
		if (strcmp(e->field, field) == 0 && strstr(e->reason, part))
			return true;
	return false;
}

static void test_header_rules(void)
{
	struct parsed p;
	parse_text("household_ref,region,bogus\nA,B,C\n", &p);
	HF_CHECK(p.err == HF_EINVAL);
	HF_CHECK(strstr(hf_buf_cstr(&p.c->why), "column 3 of the header row is not a known column"));
	parsed_free(&p);

	/* A file without its header: the first data row must not be echoed (it is someone's data). */
	parse_text("HH1,Pwani,Kilifi,Mtwapa,,1,head,Wanjiru,Kamau,female,1980-01-01,,,none,sw,\n", &p);
	HF_CHECK(p.err == HF_EINVAL);
	HF_CHECK(!strstr(hf_buf_cstr(&p.c->why), "Wanjiru"));
	parsed_free(&p);

	parse_text("household_ref,region,region\n", &p);
	HF_CHECK(p.err == HF_EINVAL && strstr(hf_buf_cstr(&p.c->why), "region appears twice"));
	parsed_free(&p);

	parse_text("household_ref,region\n", &p);
	HF_CHECK(p.err == HF_EINVAL && strstr(hf_buf_cstr(&p.c->why), "required columns missing"));
	HF_CHECK(strstr(hf_buf_cstr(&p.c->why), "date_of_birth"));
	HF_CHECK(!strstr(hf_buf_cstr(&p.c->why), "national_id")); /* optional */
	parsed_free(&p);

	/* Any order, any case, optional columns left out, a BOM and CRLF line ends. */
	parse_text("\xEF\xBB\xBFMember_No,HOUSEHOLD_REF,region,district,village,relationship,given_name,family_name,"
		   "sex,date_of_birth,language\r\n1,H1,Pwani,Kilifi,Mtwapa,head,Amina,Said,female,1950-03-04,sw\r\n",
		   &p);
	HF_CHECK(p.err == HF_OK);
	HF_CHECK(p.c->total_rows == 0 || p.c->rb->nrows == 1);
	struct irow *r = row_at(&p, 2);
	HF_CHECK(r && r->valid && r->ext_ref && strcmp(r->ext_ref, "H1/1") == 0);
	parsed_free(&p);
}

static void test_structure_errors(void)
{
	struct parsed p;
	parse_text(HEADER "A,R,D,V,,1,head,Ann \"Mimi\",Bee,female,1980-01-01,,,none,sw,\n", &p);
	HF_CHECK(p.err == HF_EINVAL && strstr(hf_buf_cstr(&p.c->why), "record 2 is not valid CSV"));
	parsed_free(&p);

	parse_text(HEADER "A,R,D,V,,1,head,\"Ann,Bee,female,1980-01-01,,,none,sw,\n", &p);
	HF_CHECK(p.err == HF_EINVAL);
	parsed_free(&p);

	/* An unclosed quote swallowing the rest of a big file stops at the 64 KiB field cap. */
	size_t n = 200 * 1024;
	char *big = hf_xmalloc(n + 200);
	int k = snprintf(big, n + 200, "%sA,R,D,V,,1,head,\"", HEADER);
	memset(big + k, 'x', n);
	big[k + (int)n] = '\0';
	parse_text(big, &p);
	HF_CHECK(p.err == HF_EINVAL && strstr(hf_buf_cstr(&p.c->why), "longer than 64 KiB"));
	parsed_free(&p);
	free(big);
}

static void test_row_rules(void)
{
	char text[8192];
	char long_name[1200];
	memset(long_name, 'y', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	snprintf(text, sizeof(text),
		 HEADER
		 "OK,Pwani,Kilifi,Mtwapa,\"Plot 1, Main St\",1,head,Eve,Cee,female,1970-01-01,14249825,+254712345678,"
		 "none,sw,CT-OVC\n"                                                            /* 2 */
		 "OK,,,,,2,child,Fay,Cee,female,2012-01-01,,,none,sw,opct\n"                   /* 3 */
		 "OK,,,Elsewhere,,3,child,Gus,Cee,male,2013-01-01,,,none,sw,\n"                /* 4 */
		 "OK,,,,,3,child,Hal,Cee,male,2014-01-01,,,none,sw,NOPE\n"                     /* 5 */
		 "OK,,,,,4,child,Ian,Cee,male,2014-01-01,14249825,,none,sw,\n"                 /* 6 */
		 "OK,,,,,31,child,Jo,Cee,male,2014-01-01,,,none,sw,\n"                         /* 7 */
		 "OK,,,,,5,child,%s,Cee,male,2014-01-01,,,none,sw,\n"                          /* 8 */
		 "OK,,,,,6,child,Kim,Cee,male,2014-01-01,,,none,sw\n"                          /* 9 */
		 "bad ref!,R,D,V,,1,head,Lee,Dee,female,1960-01-01,,,none,sw,\n"               /* 10 */
		 "H2,R,D,V,,1,head,Mo,Eee,female,1960-02-30,,,none,sw,\n"                      /* 11 */
		 "H2,R,D,V,,2,child,Ned,Eee,male,2010-01-01,12345678,+1,none,xx,\n",           /* 12 */
		 long_name);
	struct parsed p;
	parse_text(text, &p);
	HF_CHECK(p.err == HF_OK);
	struct irow *r;
	HF_CHECK((r = row_at(&p, 2)) && r->valid && r->prog == 1 && r->has_nid);
	HF_CHECK((r = row_at(&p, 3)) && r->valid && r->prog == 0); /* programme codes ignore case */
	HF_CHECK((r = row_at(&p, 4)) && !r->valid && has_reason(r, "village", "head row"));
	HF_CHECK((r = row_at(&p, 5)) && has_reason(r, "member_no", "same member_no") &&
		 has_reason(r, "programme", "no active programme"));
	HF_CHECK((r = row_at(&p, 6)) && has_reason(r, "national_id", "earlier row"));
	HF_CHECK((r = row_at(&p, 7)) && has_reason(r, "member_no", "1 to 30") && !r->ext_ref);
	HF_CHECK((r = row_at(&p, 8)) && has_reason(r, "given_name", "longer than 1000 bytes"));
	HF_CHECK((r = row_at(&p, 8)) && !has_reason(r, "given_name", "at most 100")); /* one reason per field */
	HF_CHECK((r = row_at(&p, 9)) && has_reason(r, "", "15 fields"));
	HF_CHECK((r = row_at(&p, 10)) && has_reason(r, "household_ref", "1 to 40"));
	HF_CHECK((r = row_at(&p, 11)) && has_reason(r, "date_of_birth", "real calendar day"));
	HF_CHECK((r = row_at(&p, 12)) && has_reason(r, "national_id", "check digit") &&
		 has_reason(r, "phone", "") && has_reason(r, "language", "not offered"));

	/* The report: every rejected row, in order, with no rejected value repeated in it. */
	HF_CHECK_MSG(strncmp(p.report, "4,OK,village,", 13) == 0, "report:\n%s", p.report);
	HF_CHECK(strstr(p.report, "\n10,,household_ref,") != NULL); /* an invalid ref is not echoed */
	HF_CHECK(!strstr(p.report, "bad ref!"));
	HF_CHECK(!strstr(p.report, "Elsewhere") && !strstr(p.report, "NOPE") && !strstr(p.report, "yyyy") &&
		 !strstr(p.report, "14249825") && !strstr(p.report, "1960-02-30") && !strstr(p.report, "12345678"));
	HF_CHECK(p.c->st.rejected_rows == 9);
	parsed_free(&p);
}

static void test_household_rules(void)
{
	struct parsed p;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fputs(HEADER, f);
	fputs("NOHEAD,R,D,V,,1,spouse,Ann,Bee,female,1980-01-01,,,none,sw,\n", f);          /* 2 */
	fputs("TWO,R,D,V,,1,head,Ann,Bee,female,1980-01-01,,,none,sw,\n", f);               /* 3 */
	fputs("TWO,R,D,V,,2,head,Dan,Bee,male,1980-01-01,,,none,sw,\n", f);                 /* 4 */
	fputs("ONE,R,D,V,,1,head,Eve,Cee,female,1970-01-01,,,none,sw,\n", f);               /* 5 */
	fputs("OTHER,R,D,V,,1,head,Ivy,Dee,female,1960-01-01,,,none,sw,\n", f);             /* 6 */
	fputs("one,R,D,V,,2,child,Jon,Cee,male,2015-01-01,,,none,sw,\n", f);                /* 7: case-blind */
	for (int i = 1; i <= 32; i++)                                                     /* 8..39 */
		fprintf(f, "BIG,R,D,V,,%d,%s,Ola,Iii,female,2001-01-01,,,none,sw,\n", i, i == 1 ? "head" : "child");
	fputs("HH3,R,D,V,,1,head,Pat,Fff,male,1960-01-01,,,none,sw,\n", f);                 /* 40 */
	fputs("HH3,R,D,V,,2,child,Quin,Fff,male,2000-01-01,,,none,sw,\n", f);               /* 41 */
	HF_ASSERT(fclose(f) == 0);
	parse_text(text, &p);
	free(text);
	HF_CHECK(p.err == HF_OK);
	struct irow *r;
	HF_CHECK((r = row_at(&p, 2)) && has_reason(r, "", "no head"));
	HF_CHECK((r = row_at(&p, 3)) && has_reason(r, "", "2 heads"));
	HF_CHECK((r = row_at(&p, 4)) && has_reason(r, "", "2 heads"));
	HF_CHECK((r = row_at(&p, 5)) && r->valid);
	HF_CHECK((r = row_at(&p, 7)) && has_reason(r, "", "must be consecutive") && !r->ext_ref);
	HF_CHECK((r = row_at(&p, 8)) && has_reason(r, "", "more than 30 rows"));
	HF_CHECK(row_at(&p, 38) == NULL); /* rows past the cap are counted, not kept */
	HF_CHECK(strstr(p.report, "\n39,BIG,,the household has more than 30 rows\n") != NULL);
	HF_CHECK((r = row_at(&p, 40)) && r->valid && (r = row_at(&p, 41)) && r->valid);
	HF_CHECK(p.c->st.rejected_rows == 1 + 2 + 1 + 32);
	parsed_free(&p);
}

static void test_kmap(void)
{
	struct kmap m;
	kmap_init(&m, 16, true);
	int bad = 0;
	for (int64_t i = 0; i < 10000; i++) {
		uint8_t k[KEY_LEN];
		key_of_i64(i * 7919, k);
		if (!kmap_add(&m, k, i))
			bad++;
	}
	for (int64_t i = 0; i < 10000; i++) {
		uint8_t k[KEY_LEN];
		int64_t v = -1;
		key_of_i64(i * 7919, k);
		if (!kmap_get(&m, k, &v) || v != i || kmap_add(&m, k, 0))
			bad++;
	}
	HF_CHECK(bad == 0 && m.n == 10000);
	uint8_t k[KEY_LEN];
	key_of_i64(-5, k);
	HF_CHECK(!kmap_get(&m, k, NULL));
	kmap_clear(&m);
	key_of_i64(7919, k);
	HF_CHECK(!kmap_get(&m, k, NULL) && m.n == 0);
	kmap_release(&m);
}

int main(void)
{
	setup();
	HF_TEST(test_header_rules);
	HF_TEST(test_structure_errors);
	HF_TEST(test_row_rules);
	HF_TEST(test_household_rules);
	HF_TEST(test_kmap);
	hf_keyring_free(g_app.keys);
	hf_test_rmtree(g_dir);
	return hf_test_summary();
}
