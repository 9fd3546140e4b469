/* test_demo_gen.c - the synthetic registry generator: determinism, CSV shape, data rules, faults, options.
 *
 * Importer tests and demos rely on this file being reproducible (same command, same bytes), valid when
 * asked to be (unique Luhn-checked IDs, one head per household, plausible ages) and wrong in exactly the
 * ways asked for. The output is parsed back with an independent RFC 4180 reader and checked row by row.
 */
#include "hf_base.h"

#include "../../core/demo_gen.c"
/* The importer's own field rules, to prove the generated rows pass (or fail) where it matters. */
#include "../../core/validate.c"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hf_test.h"

/* ---- Generating into memory and reading the CSV back ---- */

static char *gen_text(const struct demo_gen_opts *o, size_t *out_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	HF_ASSERT(f != NULL);
	hf_err err = demo_gen_write(f, o);
	HF_CHECK_MSG(err == HF_OK, "err=%d", (int)err);
	HF_ASSERT(fclose(f) == 0);
	*out_len = len;
	return buf;
}

static void opts(struct demo_gen_opts *o, uint32_t households, uint64_t seed, unsigned bad, unsigned dup)
{
	demo_gen_opts_init(o);
	o->households = households;
	o->seed = seed;
	o->bad_rate = bad;
	o->dup_rate = dup;
}

#define CSV_MAXF 20
enum {
	F_REF,
	F_REGION,
	F_DISTRICT,
	F_VILLAGE,
	F_ADDRESS,
	F_MEMBER,
	F_REL,
	F_GIVEN,
	F_FAMILY,
	F_SEX,
	F_DOB,
	F_NID,
	F_PHONE,
	F_DIS,
	F_LANG,
	F_PROG,
	F_COUNT
};

struct csv_row {
	char *f[CSV_MAXF];
	size_t nf;
};

struct csv {
	char *text; /* owned; the fields point into it */
	struct csv_row *rows;
	size_t n;
	bool ok; /* false: not RFC 4180 (stray quote, CR, no final newline) */
};

/* An independent RFC 4180 reader: quoted fields with doubled quotes, "\n" line ends, unquoted fields
 * without quotes or CR. Unquotes in place. */
static struct csv csv_parse(const char *src, size_t len)
{
	struct csv c = {0};
	size_t cap = 1024;
	c.text = hf_xmalloc(len + 1);
	memcpy(c.text, src, len);
	c.text[len] = '\0';
	c.rows = hf_xmalloc(cap * sizeof(*c.rows));
	c.ok = true;
	char *p = c.text, *end = c.text + len;
	while (p < end) {
		if (c.n == cap) {
			cap *= 2;
			c.rows = hf_xrealloc(c.rows, cap * sizeof(*c.rows));
		}
		struct csv_row *row = &c.rows[c.n++];
		row->nf = 0;
		for (;;) {
			char *start = p, *w = p;
			if (*p == '"') {
				p++;
				for (;;) {
					if (p >= end) {
						c.ok = false;
						return c;
					}
					if (*p == '"') {
						if (p + 1 < end && p[1] == '"') {
							*w++ = '"';
							p += 2;
							continue;
						}
						p++;
						break;
					}
					*w++ = *p++;
				}
			} else {
				while (p < end && *p != ',' && *p != '\n') {
					if (*p == '"' || *p == '\r')
						c.ok = false;
					p++;
				}
				w = p;
			}
			if (p >= end || (*p != ',' && *p != '\n')) {
				c.ok = false;
				return c;
			}
			char sep = *p++;
			*w = '\0';
			if (row->nf < CSV_MAXF)
				row->f[row->nf] = start;
			row->nf++;
			if (sep == '\n')
				break;
		}
	}
	return c;
}

static void csv_free(struct csv *c)
{
	free(c->text);
	free(c->rows);
}

/* ---- An independent validator of one row ---- */

static int digits_val(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool all_digits(const char *s)
{
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

struct ymd {
	int y, m, d;
};

/* Strict YYYY-MM-DD, any day number 1..31 (the calendar is checked separately). */
static bool date_parse(const char *s, struct ymd *out)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	out->y = digits_val(s, 4);
	out->m = digits_val(s + 5, 2);
	out->d = digits_val(s + 8, 2);
	return out->y >= 0 && out->m >= 1 && out->m <= 12 && out->d >= 1 && out->d <= 31;
}

static bool date_in_calendar(struct ymd t)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (t.y % 4 == 0 && t.y % 100 != 0) || t.y % 400 == 0;
	return t.d <= (t.m == 2 && leap ? 29 : days[t.m - 1]);
}

static int date_cmp(struct ymd a, struct ymd b)
{
	if (a.y != b.y)
		return a.y < b.y ? -1 : 1;
	if (a.m != b.m)
		return a.m < b.m ? -1 : 1;
	return a.d == b.d ? 0 : a.d < b.d ? -1 : 1;
}

static int age_on_ref(struct ymd t)
{
	return 2026 - t.y - (t.m > 1 || t.d > 1 ? 1 : 0);
}

enum {
	E_NID = 1,
	E_PHONE = 2,
	E_DATE = 4,
	E_FUTURE = 8,
	E_GIVEN = 16,
	E_SEX = 32,
	E_REL = 64,
};

static bool one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

static const char *const rels[] = {"head",   "spouse",  "child",          "grandchild",
				   "parent", "sibling", "other_relative", "non_relative"};

/* The validation errors of a row as a set of E_* bits. */
static unsigned row_errors(char *const *f)
{
	unsigned e = 0;
	const char *nid = f[F_NID], *phone = f[F_PHONE];
	if (nid[0] && !(strlen(nid) == 8 && all_digits(nid) && nid[0] >= '1' && nid[0] <= '3' &&
			hf_check_valid(HF_CHECK_LUHN, nid, 8)))
		e |= E_NID;
	if (phone[0] && !(strlen(phone) == 13 && strncmp(phone, "+2547", 5) == 0 && all_digits(phone + 5)))
		e |= E_PHONE;
	struct ymd t;
	if (!date_parse(f[F_DOB], &t) || !date_in_calendar(t))
		e |= E_DATE;
	else if (date_cmp(t, (struct ymd){2026, 1, 1}) > 0)
		e |= E_FUTURE;
	if (!f[F_GIVEN][0])
		e |= E_GIVEN;
	if (strcmp(f[F_SEX], "female") != 0 && strcmp(f[F_SEX], "male") != 0)
		e |= E_SEX;
	if (!one_of(f[F_REL], rels, HF_ARRAY_LEN(rels)))
		e |= E_REL;
	return e;
}

static unsigned popcount(unsigned v)
{
	unsigned n = 0;
	for (; v; v &= v - 1)
		n++;
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Counts values that occur more than once among the non-empty ones. */
static size_t count_repeats(const char **v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_str);
	size_t rep = 0;
	for (size_t i = 1; i < n; i++)
		rep += strcmp(v[i], v[i - 1]) == 0;
	return rep;
}

/* Rows [first, end) of the household starting at row `first` (rows from 1; row 0 is the header). */
static size_t household_end(const struct csv *c, size_t first)
{
	size_t e = first + 1;
	while (e < c->n && strcmp(c->rows[e].f[F_REF], c->rows[first].f[F_REF]) == 0)
		e++;
	return e;
}

/* The rules hifadhi-core starts with by default (core/core_config.c). */
struct app g_app;

static void app_defaults(void)
{
	memset(&g_app, 0, sizeof(g_app));
	g_app.nid = (struct nid_rules){.min_len = 8, .max_len = 8, .alnum = false, .check = HF_CHECK_LUHN};
	memcpy(g_app.phone_cc, "254", 4);
	g_app.phone_min_digits = 10;
	g_app.phone_max_digits = 12;
	static const char *const langs[] = {"sw", "en", "so", "luo", "kik"};
	for (size_t i = 0; i < HF_ARRAY_LEN(langs); i++)
		memcpy(g_app.languages[g_app.nlanguages++], langs[i], strlen(langs[i]) + 1);
	g_app.min_birth_year = 1900;
}

/* How many of the importer's per-person rules (person_validate's checks) a row breaks. */
static unsigned importer_failures(char *const *f)
{
	struct vfail why;
	char nid[NID_MAX + 1], phone[PHONE_MAX + 1];
	int year;
	unsigned n = 0;
	n += !f[F_GIVEN][0] || !validate_person_name(f[F_GIVEN], &why);
	n += !f[F_FAMILY][0] || !validate_person_name(f[F_FAMILY], &why);
	n += !one_of(f[F_SEX], VALID_SEX, 3);
	n += !one_of(f[F_REL], VALID_RELATIONSHIP, 8);
	n += !one_of(f[F_DIS], VALID_DISABILITY, 7);
	n += !validate_language(f[F_LANG]);
	n += !validate_birth_date(f[F_DOB], &year, &why);
	n += f[F_NID][0] && !validate_national_id(f[F_NID], nid, &why);
	n += f[F_PHONE][0] && !validate_phone(f[F_PHONE], phone, &why);
	n += !validate_place_name(f[F_REGION], &why) || !validate_place_name(f[F_DISTRICT], &why) ||
	     !validate_place_name(f[F_VILLAGE], &why);
	return n;
}

/* Runs fn with fd 2 on /dev/null: for the calls whose stderr text (usage, error log) is expected. */
static void quietly(void (*fn)(void *), void *arg)
{
	fflush(stderr);
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	HF_ASSERT(saved >= 0 && null >= 0 && dup2(null, 2) == 2);
	fn(arg);
	fflush(stderr);
	HF_ASSERT(dup2(saved, 2) == 2);
	close(saved);
	close(null);
}

/* ---- Tests ---- */

static void test_header(void)
{
	struct demo_gen_opts o;
	opts(&o, 3, 1, 0, 0);
	size_t len;
	char *text = gen_text(&o, &len);
	static const char want[] = "household_ref,region,district,village,address,member_no,relationship,given_name,"
				   "family_name,sex,date_of_birth,national_id,phone,disability,language,programme\n";
	HF_CHECK(len > sizeof(want) - 1 && memcmp(text, want, sizeof(want) - 1) == 0);
	HF_CHECK(text[len - 1] == '\n');
	free(text);
}

static void test_deterministic(void)
{
	struct demo_gen_opts o;
	size_t a_len, b_len, c_len;
	opts(&o, 700, 42, 10, 10);
	char *a = gen_text(&o, &a_len);
	char *b = gen_text(&o, &b_len);
	HF_CHECK(a_len == b_len && memcmp(a, b, a_len) == 0);
	o.seed = 43;
	char *c = gen_text(&o, &c_len);
	HF_CHECK(a_len != c_len || memcmp(a, c, a_len) != 0);
	free(a);
	free(b);
	free(c);

	/* The first households do not depend on how many follow. */
	opts(&o, 50, 9, 0, 0);
	a = gen_text(&o, &a_len);
	o.households = 80;
	b = gen_text(&o, &b_len);
	HF_CHECK(b_len > a_len && memcmp(a, b, a_len) == 0);
	free(a);
	free(b);
}

static void test_structure_and_rules(void)
{
	struct demo_gen_opts o;
	opts(&o, 6000, 7, 0, 0);
	size_t len;
	char *text = gen_text(&o, &len);
	struct csv c = csv_parse(text, len);
	HF_CHECK(c.ok);
	HF_CHECK(c.n > 6000);
	if (!c.ok || c.n < 2)
		goto out_text;

	size_t bad_fields = 0, bad_rows = 0, bad_heads = 0, bad_members = 0, bad_refs = 0, bad_ages = 0;
	size_t bad_gaps = 0, bad_minor_ids = 0, bad_prog = 0, bad_codes = 0, bad_family = 0, spouses_over = 0;
	size_t households = 0, old_heads = 0, adults = 0, adult_ids = 0, adult_phones = 0, disabled = 0;
	size_t skipped_gen = 0, single_old = 0, quoted_address = 0, empty_address = 0, big_households = 0;
	size_t family_rows = 0;
	size_t sizes[10] = {0};
	const char **nids = hf_xcalloc(c.n, sizeof(*nids));
	const char **phones = hf_xcalloc(c.n, sizeof(*phones));
	size_t n_nids = 0, n_phones = 0;
	static const char *const dis[] = {"none",         "visual",       "hearing", "physical",
					  "intellectual", "psychosocial", "multiple"};
	static const char *const langs[] = {"sw", "en", "so", "luo", "kik"};

	for (size_t r = 1; r < c.n; r++)
		if (c.rows[r].nf != F_COUNT)
			bad_fields++;
	HF_CHECK_MSG(bad_fields == 0, "%zu rows without 16 fields", bad_fields);
	if (bad_fields)
		goto out_lists;

	for (size_t first = 1; first < c.n;) {
		size_t end = household_end(&c, first), n = end - first;
		char want_ref[32];
		snprintf(want_ref, sizeof(want_ref), "GEN-%07zu", households + 1);
		households++;
		if (strcmp(c.rows[first].f[F_REF], want_ref) != 0)
			bad_refs++;
		sizes[n <= 9 ? n : 0]++;
		size_t heads = 0, spouses = 0, under18 = 0, grandchildren = 0, same_family = 0;
		struct ymd head_dob = {0}, spouse_dob = {0};
		for (size_t r = first; r < end; r++) {
			char *const *f = c.rows[r].f;
			struct ymd t;
			if (row_errors(f) != 0)
				bad_rows++;
			if (digits_val(f[F_MEMBER], strlen(f[F_MEMBER])) != (int)(r - first + 1))
				bad_members++;
			if (strcmp(f[F_REL], "head") == 0) {
				heads++;
				if (r != first)
					bad_heads++;
			}
			spouses += strcmp(f[F_REL], "spouse") == 0;
			grandchildren += strcmp(f[F_REL], "grandchild") == 0;
			same_family += strcmp(f[F_FAMILY], c.rows[first].f[F_FAMILY]) == 0;
			if (!date_parse(f[F_DOB], &t))
				continue;
			int age = age_on_ref(t);
			under18 += age < 18;
			if (r == first)
				head_dob = t;
			if (strcmp(f[F_REL], "spouse") == 0)
				spouse_dob = t;
			if (age >= 18) {
				adults++;
				adult_ids += f[F_NID][0] != '\0';
				adult_phones += f[F_PHONE][0] != '\0';
			} else if (f[F_NID][0] || f[F_PHONE][0]) {
				bad_minor_ids++;
			}
			if (f[F_NID][0])
				nids[n_nids++] = f[F_NID];
			if (f[F_PHONE][0])
				phones[n_phones++] = f[F_PHONE];
			disabled += strcmp(f[F_DIS], "none") != 0;
			if (!one_of(f[F_DIS], dis, HF_ARRAY_LEN(dis)) ||
			    !one_of(f[F_LANG], langs, HF_ARRAY_LEN(langs)) ||
			    strcmp(f[F_LANG], c.rows[first].f[F_LANG]) != 0 || !f[F_REGION][0] || !f[F_DISTRICT][0] ||
			    !f[F_VILLAGE][0] || strcmp(f[F_ADDRESS], c.rows[first].f[F_ADDRESS]) != 0)
				bad_codes++;
		}
		if (heads != 1)
			bad_heads++;
		if (spouses > 1)
			spouses_over++;
		/* "Mostly shares a family name": a majority in at least 95% of households of 4+. */
		if (n >= 4 && same_family * 2 <= n)
			bad_family++;
		big_households += n >= 4;
		family_rows += same_family;
		int head_age = age_on_ref(head_dob);
		if (head_age < 18 || head_age > 95)
			bad_ages++;
		old_heads += head_age >= 65;
		if (n == 1 && head_age >= 60)
			single_old++;
		if (head_age >= 55 && n >= 2 && grandchildren + spouses == n - 1 && grandchildren > 0)
			skipped_gen++;
		quoted_address += strchr(c.rows[first].f[F_ADDRESS], ',') != NULL;
		empty_address += c.rows[first].f[F_ADDRESS][0] == '\0';

		for (size_t r = first; r < end; r++) {
			char *const *f = c.rows[r].f;
			struct ymd t;
			if (!date_parse(f[F_DOB], &t))
				continue;
			/* Children and grandchildren are 15+ years younger than the head and the spouse. */
			bool descendant = strcmp(f[F_REL], "child") == 0 || strcmp(f[F_REL], "grandchild") == 0;
			if (descendant) {
				struct ymd h15 = {head_dob.y + 15, head_dob.m, head_dob.d};
				struct ymd s15 = {spouse_dob.y + 15, spouse_dob.m, spouse_dob.d};
				if (date_cmp(t, h15) < 0 || (spouses && date_cmp(t, s15) < 0))
					bad_gaps++;
			}
			int age = age_on_ref(t);
			const char *want = age >= 70                       ? "OPCT"
					   : strcmp(f[F_DIS], "none") != 0 ? "PWSD-CT"
					   : r == first && under18 >= 3    ? "CT-OVC"
									   : "";
			if (strcmp(f[F_PROG], want) != 0)
				bad_prog++;
		}
		first = end;
	}

	HF_CHECK_MSG(households == 6000, "households=%zu", households);
	HF_CHECK_MSG(bad_refs == 0, "%zu household_refs out of sequence", bad_refs);
	HF_CHECK_MSG(bad_rows == 0, "%zu rows fail validation with --bad-rate 0", bad_rows);
	HF_CHECK_MSG(bad_heads == 0, "%zu households without exactly one head as member 1", bad_heads);
	HF_CHECK_MSG(bad_members == 0, "%zu rows with member_no out of sequence", bad_members);
	HF_CHECK_MSG(spouses_over == 0, "%zu households with 2+ spouses", spouses_over);
	HF_CHECK_MSG(bad_ages == 0, "%zu heads outside 18..95", bad_ages);
	HF_CHECK_MSG(bad_gaps == 0, "%zu children less than 15 years younger than a parent", bad_gaps);
	HF_CHECK_MSG(bad_minor_ids == 0, "%zu minors with an ID or phone", bad_minor_ids);
	HF_CHECK_MSG(bad_prog == 0, "%zu rows with the wrong programme", bad_prog);
	HF_CHECK_MSG(bad_codes == 0, "%zu rows with bad codes or household fields", bad_codes);
	HF_CHECK_MSG(bad_family * 100 < big_households * 5,
		     "%zu of %zu households of 4+ without a majority family name", bad_family, big_households);
	HF_CHECK_MSG(sizes[0] == 0, "%zu households above 9", sizes[0]);
	for (size_t s = 1; s <= 9; s++)
		HF_CHECK_MSG(sizes[s] > 0, "no household of size %zu", s);
	double rows = (double)(c.n - 1);
	HF_CHECK_MSG(family_rows / rows > 0.80, "share of rows with the head's family name %.3f", family_rows / rows);
	HF_CHECK_MSG(rows / 6000 > 3.6 && rows / 6000 < 4.5, "mean household size %.2f", rows / 6000);
	HF_CHECK_MSG(old_heads > 6000 * 12 / 100 && old_heads < 6000 * 18 / 100, "heads 65+: %zu", old_heads);
	HF_CHECK_MSG(adult_ids * 100 > adults * 92 && adult_ids * 100 < adults * 98, "%zu of %zu adults with ID",
		     adult_ids, adults);
	HF_CHECK_MSG(adult_phones * 100 > adults * 65 && adult_phones * 100 < adults * 75,
		     "%zu of %zu adults with phone", adult_phones, adults);
	HF_CHECK_MSG(disabled / rows > 0.03 && disabled / rows < 0.08, "disability share %.3f", disabled / rows);
	HF_CHECK_MSG(skipped_gen > 50, "skipped-generation households: %zu", skipped_gen);
	HF_CHECK_MSG(single_old > 50, "single older persons: %zu", single_old);
	HF_CHECK_MSG(quoted_address > 100 && empty_address > 100, "addresses with comma %zu, empty %zu", quoted_address,
		     empty_address);
	HF_CHECK_MSG(count_repeats(nids, n_nids) == 0, "national IDs repeat");
	HF_CHECK_MSG(count_repeats(phones, n_phones) == 0, "phones repeat");

out_lists:
	free(nids);
	free(phones);
out_text:
	csv_free(&c);
	free(text);
}

/* Name + locations: the same village name always lies in the same district and region. */
static void test_locations(void)
{
	struct demo_gen *g = hf_xcalloc(1, sizeof(*g));
	demo_gen_places_init(g);
	size_t same_village = 0, same_district = 0;
	for (size_t i = 0; i < DEMO_GEN_VILLAGES; i++)
		for (size_t j = i + 1; j < DEMO_GEN_VILLAGES; j++)
			same_village += strcmp(g->villages[i], g->villages[j]) == 0;
	for (size_t i = 0; i < DEMO_GEN_DISTRICTS; i++)
		for (size_t j = i + 1; j < DEMO_GEN_DISTRICTS; j++)
			same_district += strcmp(g->districts[i], g->districts[j]) == 0;
	HF_CHECK_MSG(same_village == 0, "%zu village names repeat", same_village);
	HF_CHECK_MSG(same_district == 0, "%zu district names repeat", same_district);
	free(g);
}

/* Every age 0..100 gives valid dates at which the person has exactly that age on 2026-01-01. */
static void test_dob(void)
{
	struct demo_gen_rng r;
	demo_gen_rng_seed(&r, 5, 0, 0);
	size_t bad = 0;
	for (int age = 0; age <= 100; age++) {
		for (int k = 0; k < 400; k++) {
			struct demo_gen_date d = demo_gen_dob(&r, age);
			struct ymd t = {d.y, d.m, d.d};
			if (t.m < 1 || t.m > 12 || t.d < 1 || !date_in_calendar(t) || age_on_ref(t) != age)
				bad++;
		}
	}
	HF_CHECK_MSG(bad == 0, "%zu dates with the wrong age", bad);
}

/* Bad rate 100: every row invalid in exactly one way, every kind used, still one head per household. */
static void test_bad_rate_all(void)
{
	struct demo_gen_opts o;
	opts(&o, 3000, 11, 100, 0);
	size_t len;
	char *text = gen_text(&o, &len);
	struct csv c = csv_parse(text, len);
	HF_CHECK(c.ok);
	size_t not_one = 0, heads = 0;
	unsigned seen = 0;
	for (size_t r = 1; r < c.n; r++) {
		if (!HF_CHECK(c.rows[r].nf == F_COUNT))
			break;
		unsigned e = row_errors(c.rows[r].f);
		if (popcount(e) != 1)
			not_one++;
		seen |= e;
		heads += strcmp(c.rows[r].f[F_REL], "head") == 0;
	}
	HF_CHECK_MSG(not_one == 0, "%zu rows not invalid in exactly one way", not_one);
	HF_CHECK_MSG(seen == (E_NID | E_PHONE | E_DATE | E_FUTURE | E_GIVEN | E_SEX | E_REL), "kinds seen 0x%x", seen);
	HF_CHECK_MSG(heads == 3000, "heads=%zu", heads);
	csv_free(&c);
	free(text);
}

/* Bad rate 10: about 10% of rows differ from the clean output, each with one error; the rest identical. */
static void test_bad_rate_partial(void)
{
	struct demo_gen_opts o;
	size_t clean_len, bad_len;
	opts(&o, 3000, 12, 0, 0);
	char *clean_text = gen_text(&o, &clean_len);
	o.bad_rate = 10;
	char *bad_text = gen_text(&o, &bad_len);
	struct csv clean = csv_parse(clean_text, clean_len), bad = csv_parse(bad_text, bad_len);
	HF_CHECK(clean.ok && bad.ok);
	if (!HF_CHECK(clean.n == bad.n))
		goto out;
	size_t differ = 0, wrong = 0;
	for (size_t r = 1; r < bad.n; r++) {
		bool same = true;
		for (size_t i = 0; i < F_COUNT; i++)
			same = same && strcmp(clean.rows[r].f[i], bad.rows[r].f[i]) == 0;
		unsigned e = row_errors(bad.rows[r].f);
		differ += !same;
		if (same ? e != 0 : popcount(e) != 1)
			wrong++;
	}
	double share = (double)differ / (double)(bad.n - 1);
	HF_CHECK_MSG(share > 0.08 && share < 0.12, "share of bad rows %.3f", share);
	HF_CHECK_MSG(wrong == 0, "%zu rows changed without exactly one error, or unchanged with one", wrong);
out:
	csv_free(&clean);
	csv_free(&bad);
	free(clean_text);
	free(bad_text);
}

/* Dup rate 100: every household from the second on has one duplicate member (appended, or in place of
 * member 9) matching an adult of an earlier household by name + sex + birth date with another or no ID,
 * or by national ID; nothing else changes and the other IDs stay unique. */
static void test_dup_rate(void)
{
	struct demo_gen_opts o;
	size_t base_len, dup_len;
	opts(&o, 3000, 13, 0, 0);
	char *base_text = gen_text(&o, &base_len);
	o.dup_rate = 100;
	char *dup_text = gen_text(&o, &dup_len);
	struct csv base = csv_parse(base_text, base_len), dup = csv_parse(dup_text, dup_len);
	HF_CHECK(base.ok && dup.ok);
	size_t households = 0, bad_shape = 0, by_name = 0, by_id = 0, unmatched = 0, same_village = 0;
	size_t b = 1, d = 1;
	const char **nids = hf_xcalloc(dup.n, sizeof(*nids));
	size_t n_nids = 0;
	while (b < base.n && d < dup.n) {
		size_t be = household_end(&base, b), de = household_end(&dup, d);
		size_t bn = be - b, dn = de - d;
		bool first = households++ == 0;
		/* Base rows kept as they were: all (first household), all but none or the 9th. */
		size_t kept = first ? bn : bn < 9 ? bn : 8;
		if (strcmp(base.rows[b].f[F_REF], dup.rows[d].f[F_REF]) != 0 || dn != (first ? bn : kept + 1)) {
			bad_shape++;
			b = be;
			d = de;
			continue;
		}
		for (size_t i = 0; i < kept; i++)
			for (size_t k = 0; k < F_COUNT; k++)
				if (strcmp(base.rows[b + i].f[k], dup.rows[d + i].f[k]) != 0)
					bad_shape++;
		for (size_t i = 0; i < kept; i++)
			if (dup.rows[d + i].f[F_NID][0])
				nids[n_nids++] = dup.rows[d + i].f[F_NID];
		if (!first) {
			char *const *x = dup.rows[de - 1].f;
			if (strcmp(x[F_REL], "other_relative") != 0 && strcmp(x[F_REL], "non_relative") != 0)
				bad_shape++;
			if (row_errors(x) != 0)
				bad_shape++;
			/* Look for the original in earlier households of the duplicate file. */
			bool found_name = false, found_id = false;
			for (size_t r = 1; r < d && !found_name && !found_id; r++) {
				char *const *y = dup.rows[r].f;
				found_name = strcmp(x[F_GIVEN], y[F_GIVEN]) == 0 &&
					     strcmp(x[F_FAMILY], y[F_FAMILY]) == 0 && strcmp(x[F_SEX], y[F_SEX]) == 0 &&
					     strcmp(x[F_DOB], y[F_DOB]) == 0 && strcmp(x[F_NID], y[F_NID]) != 0;
				found_id = x[F_NID][0] && strcmp(x[F_NID], y[F_NID]) == 0;
				if (found_name || found_id)
					same_village += strcmp(x[F_VILLAGE], y[F_VILLAGE]) == 0;
			}
			by_name += found_name;
			by_id += found_id;
			unmatched += !found_name && !found_id;
			/* A new ID given to a same-name duplicate must be unique like the others. */
			if (found_name && x[F_NID][0])
				nids[n_nids++] = x[F_NID];
		}
		b = be;
		d = de;
	}
	HF_CHECK_MSG(b == base.n && d == dup.n, "files end at different households");
	HF_CHECK_MSG(households == 3000, "households=%zu", households);
	HF_CHECK_MSG(bad_shape == 0, "%zu shape differences", bad_shape);
	HF_CHECK_MSG(unmatched == 0, "%zu duplicates without an original", unmatched);
	HF_CHECK_MSG(by_name > 1200 && by_id > 1200, "by name %zu, by id %zu", by_name, by_id);
	HF_CHECK_MSG(same_village * 100 > (by_name + by_id) * 70, "same village %zu of %zu", same_village,
		     by_name + by_id);
	HF_CHECK_MSG(count_repeats(nids, n_nids) == 0, "IDs of non-duplicate members repeat");
	free(nids);
	csv_free(&base);
	csv_free(&dup);
	free(base_text);
	free(dup_text);
}

/* The IDs a duplicate gets new are unique too: base members count up, duplicates down, and both stop
 * when they meet. */
static void test_id_space(void)
{
	struct demo_gen *g = hf_xcalloc(1, sizeof(*g));
	demo_gen_perm_init(1, 0x6e6174696f6e616cu, DEMO_GEN_NID_SPACE, &g->id_a, &g->id_b);
	char a[DEMO_GEN_NID_LEN + 1], b[DEMO_GEN_NID_LEN + 1], c[DEMO_GEN_NID_LEN + 1];
	demo_gen_nid_issue(g, false, a);
	demo_gen_nid_issue(g, true, b);
	HF_CHECK(strlen(a) == 8 && strlen(b) == 8 && strcmp(a, b) != 0);
	HF_CHECK(hf_check_valid(HF_CHECK_LUHN, a, 8) && hf_check_valid(HF_CHECK_LUHN, b, 8));
	g->id_next = DEMO_GEN_NID_SPACE - 2; /* one left */
	demo_gen_nid_issue(g, false, c);
	HF_CHECK(strlen(c) == 8 && c[0] >= '1' && c[0] <= '3');
	demo_gen_nid_issue(g, false, c);
	HF_CHECK(c[0] == '\0');
	demo_gen_nid_issue(g, true, c);
	HF_CHECK(c[0] == '\0');

	/* The permutation really is one: all 3,000,000 payloads distinct. */
	uint8_t *seen = hf_xcalloc(DEMO_GEN_NID_SPACE / 8 + 1, 1);
	size_t repeats = 0;
	for (uint64_t k = 0; k < DEMO_GEN_NID_SPACE; k++) {
		uint64_t v = (g->id_a * k + g->id_b) % DEMO_GEN_NID_SPACE;
		repeats += (seen[v / 8] >> (v % 8)) & 1u;
		seen[v / 8] |= (uint8_t)(1u << (v % 8));
	}
	HF_CHECK(repeats == 0);
	free(seen);
	free(g);
}

/* Clean rows pass the importer's rules; a bad row breaks exactly one of them, whatever today's date. */
static void test_importer_rules(void)
{
	app_defaults();
	for (unsigned bad = 0; bad <= 100; bad += 100) {
		struct demo_gen_opts o;
		opts(&o, 3000, 21, bad, 0);
		size_t len;
		char *text = gen_text(&o, &len);
		struct csv c = csv_parse(text, len);
		HF_CHECK(c.ok);
		size_t wrong = 0;
		for (size_t r = 1; c.ok && r < c.n; r++) {
			if (!HF_CHECK(c.rows[r].nf == F_COUNT))
				break;
			if (importer_failures(c.rows[r].f) != (bad ? 1u : 0u))
				wrong++;
		}
		HF_CHECK_MSG(wrong == 0, "bad-rate %u: %zu rows with the wrong number of importer failures", bad, wrong);
		csv_free(&c);
		free(text);
	}
}

static void sink_field_text(const char *in, char *out, size_t out_size)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	HF_ASSERT(f != NULL);
	struct demo_gen_sink *s = hf_xcalloc(1, sizeof(*s));
	s->f = f;
	demo_gen_sink_field(s, in, strlen(in), true);
	demo_gen_sink_flush(s);
	HF_ASSERT(fclose(f) == 0);
	snprintf(out, out_size, "%s", buf);
	free(s);
	free(buf);
}

static void test_csv_quoting(void)
{
	char out[64];
	sink_field_text("plain", out, sizeof(out));
	HF_CHECK(strcmp(out, "plain") == 0);
	sink_field_text("Plot 12, market road", out, sizeof(out));
	HF_CHECK(strcmp(out, "\"Plot 12, market road\"") == 0);
	sink_field_text("near \"Mama Mboga\" kiosk", out, sizeof(out));
	HF_CHECK(strcmp(out, "\"near \"\"Mama Mboga\"\" kiosk\"") == 0);
	sink_field_text("two\nlines", out, sizeof(out));
	HF_CHECK(strcmp(out, "\"two\nlines\"") == 0);
	sink_field_text("", out, sizeof(out));
	HF_CHECK(strcmp(out, "") == 0);

	/* In a whole file: addresses with a comma or quotes are quoted and read back as written. */
	struct demo_gen_opts o;
	opts(&o, 400, 3, 0, 0);
	size_t len;
	char *text = gen_text(&o, &len);
	HF_CHECK(strstr(text, ",\"Plot ") != NULL && strstr(text, "near \"\"Mama Mboga\"\" kiosk\",") != NULL);
	struct csv c = csv_parse(text, len);
	size_t with_comma = 0, with_quotes = 0;
	for (size_t r = 1; c.ok && r < c.n; r++) {
		if (!HF_CHECK(c.rows[r].nf == F_COUNT))
			break;
		with_comma += strchr(c.rows[r].f[F_ADDRESS], ',') != NULL;
		with_quotes += strstr(c.rows[r].f[F_ADDRESS], "near \"Mama Mboga\" kiosk") != NULL;
	}
	HF_CHECK(c.ok && with_comma > 0 && with_quotes > 0);
	csv_free(&c);
	free(text);
}

static hf_err parse(const char *line, struct demo_gen_opts *o, bool *help)
{
	char copy[256];
	char *argv[16];
	int argc = 0;
	snprintf(copy, sizeof(copy), "%s", line);
	/* Split on '|' so that arguments may contain spaces. */
	argv[argc++] = copy;
	for (char *p = copy; *p; p++) {
		if (*p == '|') {
			*p = '\0';
			HF_ASSERT(argc < 16);
			argv[argc++] = p + 1;
		}
	}
	FILE *err = fopen("/dev/null", "w");
	HF_ASSERT(err != NULL);
	hf_err e = demo_gen_parse_args(argc, argv, err, o, help);
	fclose(err);
	return e;
}

static void main_bad_option(void *rc)
{
	char a0[] = "gen", a1[] = "--households", a2[] = "zero";
	char *argv[] = {a0, a1, a2, NULL};
	*(int *)rc = demo_gen_main(3, argv);
}

static void test_args(void)
{
	struct demo_gen_opts o;
	bool help = true;
	HF_CHECK(parse("gen", &o, &help) == HF_OK);
	HF_CHECK(o.households == 20 && o.seed == 1 && o.bad_rate == 0 && o.dup_rate == 0 &&
		 strcmp(o.ref_prefix, "GEN") == 0 && !help);
	HF_CHECK(parse("gen|--households|2000000|--seed|18446744073709551615|--bad-rate|100|--dup-rate=0|"
		       "--ref-prefix|HH_2026-a",
		       &o, &help) == HF_OK);
	HF_CHECK(o.households == 2000000 && o.seed == UINT64_MAX && o.bad_rate == 100 && o.dup_rate == 0 &&
		 strcmp(o.ref_prefix, "HH_2026-a") == 0);
	HF_CHECK(parse("gen|--households=1|--seed=0", &o, &help) == HF_OK && o.households == 1 && o.seed == 0);
	HF_CHECK(parse("gen|--help", &o, &help) == HF_OK && help);

	static const char *const bad[] = {
		"gen|--households|0",
		"gen|--households|2000001",
		"gen|--households|12x",
		"gen|--households|-1",
		"gen|--households| 5",
		"gen|--households|+5",
		"gen|--households|",
		"gen|--households",
		"gen|--seed|18446744073709551616",
		"gen|--seed|-1",
		"gen|--bad-rate|101",
		"gen|--bad-rate|5.5",
		"gen|--dup-rate|-0",
		"gen|--ref-prefix|",
		"gen|--ref-prefix|ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
		"gen|--ref-prefix|A\nB",
		"gen|--ref-prefix|A,B",
		"gen|--ref-prefix|HH 2026",
		"gen|--ref-prefix|KE/1",
		"gen|--colour|red",
		"gen|households|5",
		"gen|--help=yes",
		"gen|-h",
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		struct demo_gen_opts before = {.households = 7};
		o = before;
		HF_CHECK_MSG(parse(bad[i], &o, &help) == HF_EINVAL, "accepted \"%s\"", bad[i]);
		HF_CHECK(o.households == 7); /* untouched on error */
	}

	/* The entry point answers bad options with 2 (and the usage on stderr). */
	int rc = -1;
	quietly(main_bad_option, &rc);
	HF_CHECK(rc == 2);
}

static void write_to_full(void *err)
{
	struct demo_gen_opts o;
	opts(&o, 2000, 1, 0, 0);
	FILE *full = fopen("/dev/full", "w");
	HF_ASSERT(full != NULL);
	*(hf_err *)err = demo_gen_write(full, &o);
	fclose(full);
}

static void test_write_errors(void)
{
	struct demo_gen_opts o;
	opts(&o, 0, 1, 0, 0);
	HF_CHECK(demo_gen_write(stdout, &o) == HF_EINVAL);
	opts(&o, 10, 1, 101, 0);
	HF_CHECK(demo_gen_write(stdout, &o) == HF_EINVAL);
	opts(&o, 10, 1, 0, 0);
	o.ref_prefix = NULL;
	HF_CHECK(demo_gen_write(stdout, &o) == HF_EINVAL);

	/* A full disk is reported (and logged), not ignored. */
	hf_err err = HF_OK;
	quietly(write_to_full, &err);
	HF_CHECK(err == HF_EIO);
}

int main(void)
{
	HF_TEST(test_header);
	HF_TEST(test_deterministic);
	HF_TEST(test_structure_and_rules);
	HF_TEST(test_locations);
	HF_TEST(test_dob);
	HF_TEST(test_bad_rate_all);
	HF_TEST(test_bad_rate_partial);
	HF_TEST(test_dup_rate);
	HF_TEST(test_id_space);
	HF_TEST(test_importer_rules);
	HF_TEST(test_csv_quoting);
	HF_TEST(test_args);
	HF_TEST(test_write_errors);
	return hf_test_summary();
}
