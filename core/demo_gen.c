/* demo_gen.c - deterministic synthetic beneficiary registry generator (`hifadhi-core gen`).
 *
 * A cash-transfer registry cannot be demonstrated or load-tested with real people's data, and a
 * hand-written sample never has the shapes that break importers: skipped-generation households,
 * shared family names, 9-person households, near-duplicate registrations, mistyped IDs. This file
 * makes as many households as asked, plausibly East African, and reproducibly: every household draws
 * from its own PRNG streams seeded by (seed, household index), one for its content and one for the
 * deliberate faults, so turning --bad-rate or --dup-rate on changes only the rows it touches. IDs and
 * phone numbers come from affine permutations of counters, which makes them unique without keeping a
 * set of the ones already issued; 1,000,000 households are a few hundred MB of CSV and take seconds.
 */
#include "hf_base.h"
#include "demo_gen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hf_checkdigit.h"
#include "hf_log.h"

/* Fixed "today" for every age, so that output does not depend on when it is generated. */
#define DEMO_GEN_REF_YEAR 2026

#define DEMO_GEN_REGIONS 8u
#define DEMO_GEN_DISTRICTS_PER_REGION 6u
#define DEMO_GEN_VILLAGES_PER_DISTRICT 12u
#define DEMO_GEN_DISTRICTS (DEMO_GEN_REGIONS * DEMO_GEN_DISTRICTS_PER_REGION)
#define DEMO_GEN_VILLAGES (DEMO_GEN_DISTRICTS * DEMO_GEN_VILLAGES_PER_DISTRICT)
#define DEMO_GEN_PLACE_MAX 24u /* bytes of a built district or village name, with its NUL */

#define DEMO_GEN_MEMBERS_MAX 9u
#define DEMO_GEN_NID_LEN 8u
/* National IDs: 7-digit payloads 1000000..3999999 (first digit 1..3), then the Luhn digit. */
#define DEMO_GEN_NID_BASE 1000000u
#define DEMO_GEN_NID_SPACE 3000000u
/* Phones: "+2547" then 8 digits. */
#define DEMO_GEN_PHONE_PREFIX "+2547"
#define DEMO_GEN_PHONE_LEN 13u
#define DEMO_GEN_PHONE_SPACE 100000000u

#define DEMO_GEN_SINK_CAP 65536u

/* ---- PRNG: splitmix64 to seed, xoshiro256** to draw (both public domain, Vigna) ---- */

struct demo_gen_rng {
	uint64_t s[4];
};

static uint64_t demo_gen_splitmix_next(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/* A bijection of 64-bit values (splitmix64's finaliser), used to derive independent seeds. */
static uint64_t demo_gen_hash64(uint64_t v)
{
	uint64_t x = v;
	return demo_gen_splitmix_next(&x);
}

/* Stream `stream` (0 = content, 1 = faults) of household `index`: distinct (index, stream) pairs give
 * distinct splitmix states for a given seed, because hash64 is a bijection. */
static void demo_gen_rng_seed(struct demo_gen_rng *r, uint64_t seed, uint64_t index, uint64_t stream)
{
	uint64_t x = demo_gen_hash64(demo_gen_hash64(seed) + index * 4u + stream);
	for (size_t i = 0; i < 4; i++)
		r->s[i] = demo_gen_splitmix_next(&x);
}

static uint64_t demo_gen_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t demo_gen_rng_next(struct demo_gen_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = demo_gen_rotl(s[1] * 5u, 7) * 9u;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = demo_gen_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n) for n >= 1 (multiply-shift; the bias of at most n / 2^32 does not matter here). */
static unsigned demo_gen_below(struct demo_gen_rng *r, unsigned n)
{
	HF_ASSERT(n > 0);
	return (unsigned)(((demo_gen_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static int demo_gen_range(struct demo_gen_rng *r, int lo, int hi)
{
	HF_ASSERT(lo <= hi);
	return lo + (int)demo_gen_below(r, (unsigned)(hi - lo + 1));
}

static bool demo_gen_chance(struct demo_gen_rng *r, unsigned percent)
{
	return demo_gen_below(r, 100) < percent;
}

static size_t demo_gen_weighted(struct demo_gen_rng *r, const uint8_t *w, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += w[i];
	unsigned x = demo_gen_below(r, sum);
	for (size_t i = 0; i < n; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	HF_ASSERT(!"unreachable");
	return 0;
}

/* ---- Names, places and code lists ---- */

struct demo_gen_names {
	const char *const *v;
	size_t n;
};

#define DEMO_GEN_NAMES(a)                                                                                              \
	{                                                                                                              \
		(a), HF_ARRAY_LEN(a)                                                                                   \
	}

static const char *demo_gen_pick(struct demo_gen_rng *r, struct demo_gen_names names)
{
	return names.v[demo_gen_below(r, (unsigned)names.n)];
}

static const char *const demo_gen_kikuyu_f[] = {"Wanjiru", "Wambui",  "Njeri",   "Nyambura", "Wairimu",
						"Wanjiku", "Wangari", "Muthoni", "Nyokabi",  "Wangui"};
static const char *const demo_gen_kikuyu_m[] = {"Kamau",  "Njoroge", "Mwangi", "Kariuki", "Githinji",
						"Kimani", "Waweru",  "Maina",  "Ngugi",   "Macharia"};
static const char *const demo_gen_kikuyu_fam[] = {"Kamau",  "Mwangi",  "Njoroge", "Kariuki", "Wainaina", "Gitau",
						  "Kinyua", "Muriuki", "Ndungu",  "Karanja", "Gichuru",  "Mbugua"};
static const char *const demo_gen_luo_f[] = {"Akinyi",  "Achieng", "Atieno", "Awino", "Adhiambo",
					     "Anyango", "Apiyo",   "Auma",   "Akoth", "Aoko"};
static const char *const demo_gen_luo_m[] = {"Otieno", "Ochieng", "Odhiambo", "Omondi", "Onyango",
					     "Owino",  "Okoth",   "Ouma",     "Oduor",  "Opiyo"};
static const char *const demo_gen_luo_fam[] = {"Otieno", "Odhiambo", "Okello", "Onyango", "Ochieng", "Owuor",
					       "Oloo",   "Omolo",    "Ogola",  "Obura",   "Nyong'o", "Oketch"};
static const char *const demo_gen_kalenjin_f[] = {"Chebet",  "Jepkoech",    "Jeptoo",    "Chepkemoi",   "Jerotich",
						  "Cherono", "Jepchirchir", "Chelangat", "Chepngetich", "Jelagat"};
static const char *const demo_gen_kalenjin_m[] = {"Kipchoge",  "Kiprono",   "Kibet",  "Kiptoo",  "Cheruiyot",
						  "Kipkemboi", "Kiprotich", "Langat", "Kipruto", "Kirui"};
static const char *const demo_gen_kalenjin_fam[] = {"Kiprop", "Rotich", "Kosgei",    "Kirui",  "Langat", "Koech",
						    "Ruto",   "Biwott", "Cheruiyot", "Kemboi", "Tanui",  "Sang"};
static const char *const demo_gen_luhya_f[] = {"Nafula",   "Nasimiyu", "Nekesa",  "Naliaka", "Nanjala",
					       "Navalayo", "Nabwire",  "Nangila", "Khavele", "Ayuma"};
static const char *const demo_gen_luhya_m[] = {"Wafula",  "Wekesa",  "Simiyu",  "Barasa",  "Wanyama",
					       "Masinde", "Shikuku", "Makokha", "Khaemba", "Wasike"};
static const char *const demo_gen_luhya_fam[] = {"Wafula",  "Wekesa",   "Simiyu",   "Barasa",   "Wanyama", "Masinde",
						 "Makokha", "Shitanda", "Mukhwana", "Namwamba", "Khaemba", "Wasike"};
static const char *const demo_gen_swahili_f[] = {"Mwanaisha", "Fatuma", "Zawadi", "Amina",     "Rehema", "Halima",
						 "Mwanajuma", "Saida",  "Zuhura", "Mwanamisi", "Kadzo",  "Sidi"};
static const char *const demo_gen_swahili_m[] = {"Juma",  "Hamisi", "Bakari",  "Salim",  "Rashid", "Athumani",
						 "Omari", "Shaban", "Kazungu", "Karisa", "Baya",   "Hassan"};
static const char *const demo_gen_swahili_fam[] = {"Mwinyi", "Bakari", "Said",   "Abdalla", "Kazungu", "Karisa",
						   "Baya",   "Chengo", "Katana", "Ngala",   "Mohamed", "Hamisi"};
static const char *const demo_gen_somali_f[] = {"Hodan",  "Faduma", "Ayaan", "Sahra", "Asha",    "Hawa",
						"Maryan", "Ubah",   "Ifrah", "Deeqa", "Xaliimo", "Khadra"};
static const char *const demo_gen_somali_m[] = {"Abdi",  "Mohamed", "Ahmed", "Hassan", "Abdirahman", "Ibrahim",
						"Farah", "Yusuf",   "Mahad", "Guled",  "Abdullahi",  "Bashir"};
static const char *const demo_gen_somali_fam[] = {"Abdi", "Hassan",  "Farah", "Warsame", "Ali",   "Osman",
						  "Aden", "Hussein", "Gedi",  "Dahir",   "Yusuf", "Jama"};
static const char *const demo_gen_maasai_f[] = {"Naserian", "Naisula",  "Nashipae", "Resiato",  "Nalangu",
						"Sinyati",  "Namunyak", "Nasieku",  "Noonkipa", "Seleina"};
static const char *const demo_gen_maasai_m[] = {"Lemayian", "Sankale", "Saitoti", "Parsimei", "Meitamei",
						"Lekishon", "Saruni",  "Tajeu",   "Koinet",   "Kasaine"};
static const char *const demo_gen_maasai_fam[] = {"ole Kaelo", "ole Ntimama", "ole Sapit", "ole Kisio",
						  "Kereto",    "Lekakeny",    "Parsitau",  "Sitonik",
						  "Tipis",     "Koikai",      "Mpaayei",   "Nkaissery"};
static const char *const demo_gen_english_f[] = {
	"Mary",     "Grace",     "Jane",  "Faith",    "Mercy", "Esther", "Joyce",    "Lucy",   "Ann",   "Elizabeth",
	"Margaret", "Catherine", "Susan", "Beatrice", "Rose",  "Purity", "Caroline", "Dorcas", "Agnes", "Eunice"};
static const char *const demo_gen_english_m[] = {
	"John",   "Peter",   "Joseph",  "James",   "David", "Samuel",  "Daniel", "Paul",  "Stephen", "Francis",
	"George", "Patrick", "Michael", "Charles", "Simon", "Kennedy", "Dennis", "Brian", "Victor",  "Moses"};

enum demo_gen_locale {
	DEMO_GEN_LOC_KIKUYU,
	DEMO_GEN_LOC_LUO,
	DEMO_GEN_LOC_KALENJIN,
	DEMO_GEN_LOC_LUHYA,
	DEMO_GEN_LOC_SWAHILI,
	DEMO_GEN_LOC_SOMALI,
	DEMO_GEN_LOC_MAASAI,
	DEMO_GEN_LOC_COUNT,
	DEMO_GEN_LOC_MIXED = DEMO_GEN_LOC_COUNT, /* a region without a dominant locale */
};

struct demo_gen_locale_def {
	struct demo_gen_names female, male, family;
	/* Percent of given names that are English/Christian alone, and "English local" (e.g. "Mary Wanjiru"). */
	uint8_t english_only, english_plus_local;
	/* Household language: lang[0] with pct[0] percent, lang[1] with pct[1], otherwise "en". */
	const char *lang[2];
	uint8_t pct[2];
};

static const struct demo_gen_locale_def demo_gen_locales[DEMO_GEN_LOC_COUNT] = {
	[DEMO_GEN_LOC_KIKUYU] = {DEMO_GEN_NAMES(demo_gen_kikuyu_f),
				 DEMO_GEN_NAMES(demo_gen_kikuyu_m),
				 DEMO_GEN_NAMES(demo_gen_kikuyu_fam),
				 35,
				 25,
				 {"kik", "sw"},
				 {70, 20}},
	[DEMO_GEN_LOC_LUO] = {DEMO_GEN_NAMES(demo_gen_luo_f),
			      DEMO_GEN_NAMES(demo_gen_luo_m),
			      DEMO_GEN_NAMES(demo_gen_luo_fam),
			      35,
			      25,
			      {"luo", "sw"},
			      {70, 20}},
	[DEMO_GEN_LOC_KALENJIN] = {DEMO_GEN_NAMES(demo_gen_kalenjin_f),
				   DEMO_GEN_NAMES(demo_gen_kalenjin_m),
				   DEMO_GEN_NAMES(demo_gen_kalenjin_fam),
				   35,
				   25,
				   {"sw", "sw"},
				   {70, 0}},
	[DEMO_GEN_LOC_LUHYA] = {DEMO_GEN_NAMES(demo_gen_luhya_f),
				DEMO_GEN_NAMES(demo_gen_luhya_m),
				DEMO_GEN_NAMES(demo_gen_luhya_fam),
				35,
				25,
				{"sw", "sw"},
				{70, 0}},
	[DEMO_GEN_LOC_SWAHILI] = {DEMO_GEN_NAMES(demo_gen_swahili_f),
				  DEMO_GEN_NAMES(demo_gen_swahili_m),
				  DEMO_GEN_NAMES(demo_gen_swahili_fam),
				  10,
				  5,
				  {"sw", "sw"},
				  {95, 0}},
	[DEMO_GEN_LOC_SOMALI] = {DEMO_GEN_NAMES(demo_gen_somali_f),
				 DEMO_GEN_NAMES(demo_gen_somali_m),
				 DEMO_GEN_NAMES(demo_gen_somali_fam),
				 0,
				 0,
				 {"so", "sw"},
				 {90, 10}},
	[DEMO_GEN_LOC_MAASAI] = {DEMO_GEN_NAMES(demo_gen_maasai_f),
				 DEMO_GEN_NAMES(demo_gen_maasai_m),
				 DEMO_GEN_NAMES(demo_gen_maasai_fam),
				 30,
				 20,
				 {"sw", "sw"},
				 {85, 0}},
};

static const struct demo_gen_names demo_gen_english_female = DEMO_GEN_NAMES(demo_gen_english_f);
static const struct demo_gen_names demo_gen_english_male = DEMO_GEN_NAMES(demo_gen_english_m);

/* Region names and the locale most of their households belong to (75%; the rest are migrants). */
static const struct {
	const char *name;
	enum demo_gen_locale locale;
} demo_gen_regions[DEMO_GEN_REGIONS] = {
	{"Kati", DEMO_GEN_LOC_KIKUYU},    {"Ziwani", DEMO_GEN_LOC_LUO},
	{"Bonde", DEMO_GEN_LOC_KALENJIN}, {"Magharibi", DEMO_GEN_LOC_LUHYA},
	{"Pwani", DEMO_GEN_LOC_SWAHILI},  {"Kaskazini Mashariki", DEMO_GEN_LOC_SOMALI},
	{"Kusini", DEMO_GEN_LOC_MAASAI},  {"Jiji", DEMO_GEN_LOC_MIXED},
};

/* District names are first x second syllable (8 x 6), village names pre x mid x end (8 x 8 x 9 = 576,
 * one per village, all distinct). */
static const char *const demo_gen_district_a[] = {"Kam", "Lod", "Mer", "Nak", "Bar", "Kit", "Mum", "Gar"};
static const char *const demo_gen_district_b[] = {"ana", "iru", "ongo", "eti", "ulu", "ama"};
static const char *const demo_gen_village_a[] = {"Ki", "Ma", "Nya", "Mwa", "Ga", "Bu", "Ka", "Olo"};
static const char *const demo_gen_village_b[] = {"ra", "bu", "ti", "nya", "ku", "se", "lo", "ndi"};
static const char *const demo_gen_village_c[] = {"ni", "ru", "ka", "ma", "to", "go", "wa", "ri", "ye"};

static const char *const demo_gen_landmarks[] = {
	"near the water point",   "market road",
	"behind the church",      "opposite the mosque",
	"next to the dispensary", "near the primary school",
	"off the main road",      "by the borehole",
	"near the chief's camp",  "near \"Mama Mboga\" kiosk",
	"behind the cattle dip",  "near the matatu stage",
};

enum demo_gen_sex { DEMO_GEN_SEX_FEMALE, DEMO_GEN_SEX_MALE };
static const char *const demo_gen_sex_names[] = {"female", "male"};

enum demo_gen_rel {
	DEMO_GEN_REL_HEAD,
	DEMO_GEN_REL_SPOUSE,
	DEMO_GEN_REL_CHILD,
	DEMO_GEN_REL_GRANDCHILD,
	DEMO_GEN_REL_PARENT,
	DEMO_GEN_REL_SIBLING,
	DEMO_GEN_REL_OTHER,
	DEMO_GEN_REL_NONREL,
	DEMO_GEN_REL_COUNT,
};
static const char *const demo_gen_rel_names[DEMO_GEN_REL_COUNT] = {
	"head", "spouse", "child", "grandchild", "parent", "sibling", "other_relative", "non_relative",
};
/* Percent of members with this relationship who carry the household's family name. */
static const uint8_t demo_gen_rel_share_family[DEMO_GEN_REL_COUNT] = {100, 70, 92, 75, 60, 85, 50, 0};

enum demo_gen_disability {
	DEMO_GEN_DIS_NONE,
	DEMO_GEN_DIS_VISUAL,
	DEMO_GEN_DIS_HEARING,
	DEMO_GEN_DIS_PHYSICAL,
	DEMO_GEN_DIS_INTELLECTUAL,
	DEMO_GEN_DIS_PSYCHOSOCIAL,
	DEMO_GEN_DIS_MULTIPLE,
	DEMO_GEN_DIS_COUNT,
};
static const char *const demo_gen_dis_names[DEMO_GEN_DIS_COUNT] = {
	"none", "visual", "hearing", "physical", "intellectual", "psychosocial", "multiple",
};
static const uint8_t demo_gen_dis_weights[DEMO_GEN_DIS_COUNT - 1] = {20, 15, 35, 10, 10, 10};

/* The one deliberate validation error of a bad row. */
enum demo_gen_bad {
	DEMO_GEN_BAD_NONE,
	DEMO_GEN_BAD_LUHN,        /* national_id with a wrong check digit */
	DEMO_GEN_BAD_PHONE,       /* phone not in E.164 */
	DEMO_GEN_BAD_DATE,        /* date_of_birth that is not a calendar date */
	DEMO_GEN_BAD_FUTURE,      /* date_of_birth a century ahead */
	DEMO_GEN_BAD_GIVEN_EMPTY, /* empty given_name */
	DEMO_GEN_BAD_SEX,         /* sex "x" */
	DEMO_GEN_BAD_REL,         /* relationship "boss" */
	DEMO_GEN_BAD_COUNT,
};

/* Household sizes 1..9: general households (mean 4.3) and those headed by someone 65+ (mean 3.0). */
static const uint8_t demo_gen_size_weights[DEMO_GEN_MEMBERS_MAX] = {10, 12, 16, 19, 16, 11, 8, 5, 3};
static const uint8_t demo_gen_size_weights_old[DEMO_GEN_MEMBERS_MAX] = {30, 24, 14, 10, 8, 6, 4, 2, 2};

/* ---- Generator state ---- */

struct demo_gen_date {
	int16_t y;
	int8_t m, d;
};

struct demo_gen_person {
	enum demo_gen_rel rel;
	enum demo_gen_sex sex;
	enum demo_gen_disability dis;
	enum demo_gen_bad bad;
	uint32_t bad_arg;                     /* which variant of the error */
	const char *given1, *given2, *family; /* static strings; given2 may be NULL */
	int age;                              /* on the reference date */
	struct demo_gen_date dob;
	bool extra;                         /* the likely duplicate added by --dup-rate */
	char nid[DEMO_GEN_NID_LEN + 1];     /* "" = none */
	char phone[DEMO_GEN_PHONE_LEN + 1]; /* "" = none */
};

struct demo_gen_household {
	uint32_t index; /* from 0 */
	unsigned village;
	enum demo_gen_locale locale;
	const char *language;
	size_t address_len;
	char address[64];
	unsigned n;
	unsigned under18; /* members under 18 as generated, before a duplicate joins (for CT-OVC) */
	struct demo_gen_person m[DEMO_GEN_MEMBERS_MAX];
};

/* The last adult with a national ID seen in a village: what a duplicate is copied from. */
struct demo_gen_record {
	bool set;
	enum demo_gen_sex sex;
	const char *given1, *given2, *family;
	int age;
	struct demo_gen_date dob;
	char nid[DEMO_GEN_NID_LEN + 1];
};

struct demo_gen_sink {
	FILE *f;
	size_t len;
	bool failed;
	int err_no;
	char buf[DEMO_GEN_SINK_CAP];
};

struct demo_gen {
	const struct demo_gen_opts *opts;
	/* Affine permutations k -> (a*k + b) mod space, a coprime with the space: unique values, no memory.
	 * Base members count up from 0 (id_next), duplicates from the top down (id_extra), so --dup-rate
	 * never shifts anyone else's number. */
	uint64_t id_a, id_b, phone_a, phone_b;
	uint32_t id_next, id_extra, phone_next, phone_extra;
	char districts[DEMO_GEN_DISTRICTS][DEMO_GEN_PLACE_MAX];
	char villages[DEMO_GEN_VILLAGES][DEMO_GEN_PLACE_MAX];
	struct demo_gen_record village_last[DEMO_GEN_VILLAGES];
	struct demo_gen_record last;
	struct demo_gen_sink sink;
};

/* ---- Small bounded text helpers ---- */

/* Appends s[0..n) to out[*len..cap); the callers' sizes are ours, so overflow is a bug. */
static void demo_gen_cat(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	HF_ASSERT(n <= cap - *len);
	memcpy(out + *len, s, n);
	*len += n;
}

static void demo_gen_cat_str(char *out, size_t cap, size_t *len, const char *s)
{
	demo_gen_cat(out, cap, len, s, strlen(s));
}

/* Decimal, zero-padded to width (<= 20). */
static void demo_gen_cat_uint(char *out, size_t cap, size_t *len, uint64_t v, unsigned width)
{
	char tmp[20];
	size_t n = 0;
	HF_ASSERT(width <= sizeof(tmp));
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	HF_ASSERT(n <= cap - *len);
	for (size_t i = 0; i < n; i++)
		out[(*len)++] = tmp[n - 1 - i];
}

/* "YYYY-MM-DD" from possibly impossible parts (bad rows print them as they are). */
static void demo_gen_cat_date(char *out, size_t cap, size_t *len, int y, int m, int d)
{
	demo_gen_cat_uint(out, cap, len, (uint64_t)y, 4);
	demo_gen_cat(out, cap, len, "-", 1);
	demo_gen_cat_uint(out, cap, len, (uint64_t)m, 2);
	demo_gen_cat(out, cap, len, "-", 1);
	demo_gen_cat_uint(out, cap, len, (uint64_t)d, 2);
}

/* ---- Output sink: 64 KB chunks to the FILE, CSV quoting ---- */

static void demo_gen_sink_flush(struct demo_gen_sink *s)
{
	if (s->len && !s->failed && fwrite(s->buf, 1, s->len, s->f) != s->len) {
		s->failed = true;
		s->err_no = errno;
	}
	s->len = 0;
}

static void demo_gen_sink_put(struct demo_gen_sink *s, const char *p, size_t n)
{
	if (n > DEMO_GEN_SINK_CAP - s->len) {
		demo_gen_sink_flush(s);
		if (n > DEMO_GEN_SINK_CAP) {
			if (!s->failed && fwrite(p, 1, n, s->f) != n) {
				s->failed = true;
				s->err_no = errno;
			}
			return;
		}
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static bool demo_gen_csv_needs_quotes(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == ',' || p[i] == '"' || p[i] == '\n' || p[i] == '\r')
			return true;
	return false;
}

/* One field, preceded by a comma unless it is the first of its row; RFC 4180 quoting when needed. */
static void demo_gen_sink_field(struct demo_gen_sink *s, const char *p, size_t n, bool first)
{
	if (!first)
		demo_gen_sink_put(s, ",", 1);
	if (!demo_gen_csv_needs_quotes(p, n)) {
		demo_gen_sink_put(s, p, n);
		return;
	}
	demo_gen_sink_put(s, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"') {
			demo_gen_sink_put(s, p + start, i + 1 - start); /* up to and including the quote */
			demo_gen_sink_put(s, "\"", 1);                  /* doubled */
			start = i + 1;
		}
	}
	demo_gen_sink_put(s, p + start, n - start);
	demo_gen_sink_put(s, "\"", 1);
}

static void demo_gen_sink_cstr(struct demo_gen_sink *s, const char *p)
{
	demo_gen_sink_field(s, p, strlen(p), false);
}

/* ---- Setup ---- */

static uint64_t demo_gen_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* A multiplier in [2, space) coprime with space, and an offset, both from the seed. */
static void demo_gen_perm_init(uint64_t seed, uint64_t salt, uint64_t space, uint64_t *a, uint64_t *b)
{
	uint64_t x = demo_gen_hash64(seed ^ salt);
	uint64_t m = 2 + demo_gen_splitmix_next(&x) % (space - 2);
	while (demo_gen_gcd(m, space) != 1)
		m = m + 1 < space ? m + 1 : 2;
	*a = m;
	*b = demo_gen_splitmix_next(&x) % space;
}

static void demo_gen_places_init(struct demo_gen *g)
{
	for (unsigned d = 0; d < DEMO_GEN_DISTRICTS; d++) {
		unsigned region = d / DEMO_GEN_DISTRICTS_PER_REGION, j = d % DEMO_GEN_DISTRICTS_PER_REGION;
		size_t len = 0;
		/* (region + j) mod 8 with j: a distinct pair for every district. */
		demo_gen_cat_str(g->districts[d], DEMO_GEN_PLACE_MAX - 1, &len,
				 demo_gen_district_a[(region + j) % HF_ARRAY_LEN(demo_gen_district_a)]);
		demo_gen_cat_str(g->districts[d], DEMO_GEN_PLACE_MAX - 1, &len, demo_gen_district_b[j]);
		g->districts[d][len] = '\0';
	}
	for (unsigned v = 0; v < DEMO_GEN_VILLAGES; v++) {
		/* 385 is coprime with 576, so this scatters the syllables and still names every village once. */
		unsigned p = (v * 385u + 17u) % DEMO_GEN_VILLAGES;
		size_t len = 0;
		demo_gen_cat_str(g->villages[v], DEMO_GEN_PLACE_MAX - 1, &len, demo_gen_village_a[p % 8]);
		demo_gen_cat_str(g->villages[v], DEMO_GEN_PLACE_MAX - 1, &len, demo_gen_village_b[(p / 8) % 8]);
		demo_gen_cat_str(g->villages[v], DEMO_GEN_PLACE_MAX - 1, &len, demo_gen_village_c[p / 64]);
		g->villages[v][len] = '\0';
	}
}

/* [A-Za-z0-9_-]{1,32}: with "-NNNNNNN" that is the importer's household_ref rule ([A-Za-z0-9_-]{1,40}), so
 * every generated file can be imported. */
static bool demo_gen_prefix_valid(const char *p)
{
	if (!p)
		return false;
	size_t n = strlen(p);
	if (n < 1 || n > DEMO_GEN_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool demo_gen_opts_valid(const struct demo_gen_opts *o)
{
	return o->households >= 1 && o->households <= DEMO_GEN_HOUSEHOLDS_MAX && o->bad_rate <= 100 &&
	       o->dup_rate <= 100 && demo_gen_prefix_valid(o->ref_prefix);
}

void demo_gen_opts_init(struct demo_gen_opts *o)
{
	o->households = 20;
	o->seed = 1;
	o->bad_rate = 0;
	o->dup_rate = 0;
	o->ref_prefix = "GEN";
}

/* ---- People ---- */

static bool demo_gen_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int demo_gen_month_days(int y, int m)
{
	static const int8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && demo_gen_leap(y) ? 29 : days[m - 1];
}

/* A birth date at which the person is exactly `age` on 2026-01-01. Dates given as "1 January" are
 * common for older people who do not know theirs, so some get YYYY-01-01 (of the later year). */
static struct demo_gen_date demo_gen_dob(struct demo_gen_rng *r, int age)
{
	if (age >= 50 && demo_gen_chance(r, 10))
		return (struct demo_gen_date){(int16_t)(DEMO_GEN_REF_YEAR - age), 1, 1};
	int y = DEMO_GEN_REF_YEAR - 1 - age;
	/* Any day but 1 January of that year: born on 1 January they would already be age + 1. */
	int doy = demo_gen_range(r, 1, demo_gen_leap(y) ? 365 : 364);
	int m = 1;
	while (doy >= demo_gen_month_days(y, m)) {
		doy -= demo_gen_month_days(y, m);
		m++;
	}
	return (struct demo_gen_date){(int16_t)y, (int8_t)m, (int8_t)(doy + 1)};
}

static void demo_gen_given(struct demo_gen_rng *r, enum demo_gen_locale loc, enum demo_gen_sex sex, const char **g1,
			   const char **g2)
{
	const struct demo_gen_locale_def *l = &demo_gen_locales[loc];
	struct demo_gen_names local = sex == DEMO_GEN_SEX_FEMALE ? l->female : l->male;
	struct demo_gen_names english = sex == DEMO_GEN_SEX_FEMALE ? demo_gen_english_female : demo_gen_english_male;
	unsigned roll = demo_gen_below(r, 100);
	*g2 = NULL;
	if (roll < l->english_only) {
		*g1 = demo_gen_pick(r, english);
	} else if (roll < (unsigned)l->english_only + l->english_plus_local) {
		*g1 = demo_gen_pick(r, english);
		*g2 = demo_gen_pick(r, local);
	} else {
		*g1 = demo_gen_pick(r, local);
	}
}

static void demo_gen_nid_format(uint64_t payload, char out[DEMO_GEN_NID_LEN + 1])
{
	size_t len = 0;
	demo_gen_cat_uint(out, DEMO_GEN_NID_LEN, &len, payload, DEMO_GEN_NID_LEN - 1);
	int check = hf_check_compute(HF_CHECK_LUHN, out, DEMO_GEN_NID_LEN - 1);
	HF_ASSERT(check >= '0' && check <= '9');
	out[len++] = (char)check;
	out[len] = '\0';
}

/* The ID at permutation position pos (0 .. DEMO_GEN_NID_SPACE-1). */
static void demo_gen_nid_at(const struct demo_gen *g, uint64_t pos, char out[DEMO_GEN_NID_LEN + 1])
{
	demo_gen_nid_format(DEMO_GEN_NID_BASE + (g->id_a * pos + g->id_b) % DEMO_GEN_NID_SPACE, out);
}

static void demo_gen_phone_at(const struct demo_gen *g, uint64_t pos, char out[DEMO_GEN_PHONE_LEN + 1])
{
	size_t len = 0;
	demo_gen_cat_str(out, DEMO_GEN_PHONE_LEN, &len, DEMO_GEN_PHONE_PREFIX);
	demo_gen_cat_uint(out, DEMO_GEN_PHONE_LEN, &len, (g->phone_a * pos + g->phone_b) % DEMO_GEN_PHONE_SPACE, 8);
	out[len] = '\0';
}

/* Base members take IDs from the bottom of the permutation, duplicates from the top; when they meet the
 * space is used up and the person gets none. */
static void demo_gen_nid_issue(struct demo_gen *g, bool extra, char out[DEMO_GEN_NID_LEN + 1])
{
	out[0] = '\0';
	if ((uint64_t)g->id_next + g->id_extra >= DEMO_GEN_NID_SPACE)
		return;
	if (extra)
		demo_gen_nid_at(g, DEMO_GEN_NID_SPACE - 1 - g->id_extra++, out);
	else
		demo_gen_nid_at(g, g->id_next++, out);
}

static void demo_gen_phone_issue(struct demo_gen *g, bool extra, char out[DEMO_GEN_PHONE_LEN + 1])
{
	out[0] = '\0';
	if ((uint64_t)g->phone_next + g->phone_extra >= DEMO_GEN_PHONE_SPACE)
		return;
	if (extra)
		demo_gen_phone_at(g, DEMO_GEN_PHONE_SPACE - 1 - g->phone_extra++, out);
	else
		demo_gen_phone_at(g, g->phone_next++, out);
}

/* Fills everything of a member but the relationship-specific age, sex and family name given here. */
static void demo_gen_person_fill(struct demo_gen *g, struct demo_gen_rng *r, struct demo_gen_person *p,
				 enum demo_gen_rel rel, enum demo_gen_sex sex, int age, enum demo_gen_locale loc,
				 const char *family)
{
	memset(p, 0, sizeof(*p));
	p->rel = rel;
	p->sex = sex;
	p->age = age;
	p->family = family;
	demo_gen_given(r, loc, sex, &p->given1, &p->given2);
	p->dob = demo_gen_dob(r, age);
	p->dis = DEMO_GEN_DIS_NONE;
	if (demo_gen_chance(r, age >= 60 ? 14 : 4))
		p->dis = (enum demo_gen_disability)(
			1 + demo_gen_weighted(r, demo_gen_dis_weights, HF_ARRAY_LEN(demo_gen_dis_weights)));
	if (age >= 18 && demo_gen_chance(r, 95))
		demo_gen_nid_issue(g, false, p->nid);
	if (age >= 18 && demo_gen_chance(r, 70))
		demo_gen_phone_issue(g, false, p->phone);
}

static enum demo_gen_sex demo_gen_sex_draw(struct demo_gen_rng *r, unsigned female_pct)
{
	return demo_gen_chance(r, female_pct) ? DEMO_GEN_SEX_FEMALE : DEMO_GEN_SEX_MALE;
}

/* Relationship of a further member of an ordinary (not skipped-generation) household. */
static enum demo_gen_rel demo_gen_rel_draw(struct demo_gen_rng *r, bool old, int parents_min_age, int head_age,
					   unsigned parents)
{
	uint8_t w[DEMO_GEN_REL_COUNT] = {0};
	w[DEMO_GEN_REL_CHILD] = old ? 40 : 76;
	w[DEMO_GEN_REL_GRANDCHILD] = parents_min_age >= 40 ? (old ? 45 : 7) : 0;
	w[DEMO_GEN_REL_PARENT] = head_age + 16 <= 100 && parents < 2 ? (old ? 1 : 4) : 0;
	w[DEMO_GEN_REL_SIBLING] = old ? 4 : 6;
	w[DEMO_GEN_REL_OTHER] = old ? 8 : 5;
	w[DEMO_GEN_REL_NONREL] = old ? 3 : 2;
	return (enum demo_gen_rel)demo_gen_weighted(r, w, DEMO_GEN_REL_COUNT);
}

static void demo_gen_household_fill(struct demo_gen *g, struct demo_gen_rng *r, struct demo_gen_household *hh,
				    uint32_t index)
{
	hh->index = index;
	hh->village = demo_gen_below(r, DEMO_GEN_VILLAGES);
	unsigned region = hh->village / (DEMO_GEN_DISTRICTS_PER_REGION * DEMO_GEN_VILLAGES_PER_DISTRICT);
	enum demo_gen_locale home = demo_gen_regions[region].locale;
	if (home == DEMO_GEN_LOC_MIXED || !demo_gen_chance(r, 75))
		home = (enum demo_gen_locale)demo_gen_below(r, DEMO_GEN_LOC_COUNT);
	hh->locale = home;
	const struct demo_gen_locale_def *l = &demo_gen_locales[home];
	unsigned roll = demo_gen_below(r, 100);
	hh->language = roll < l->pct[0] ? l->lang[0] : roll < (unsigned)l->pct[0] + l->pct[1] ? l->lang[1] : "en";
	const char *family = demo_gen_pick(r, l->family);

	/* Address: empty for about 12% (not known at registration). */
	hh->address_len = 0;
	unsigned kind = demo_gen_below(r, 100);
	if (kind >= 12) {
		size_t cap = sizeof(hh->address);
		const char *landmark = demo_gen_landmarks[demo_gen_below(r, HF_ARRAY_LEN(demo_gen_landmarks))];
		if (kind < 50) {
			demo_gen_cat_str(hh->address, cap, &hh->address_len, "Plot ");
			demo_gen_cat_uint(hh->address, cap, &hh->address_len, 1 + demo_gen_below(r, 250), 0);
		} else if (kind < 80) {
			char letter = (char)('A' + demo_gen_below(r, 4));
			demo_gen_cat_str(hh->address, cap, &hh->address_len, "House ");
			demo_gen_cat_uint(hh->address, cap, &hh->address_len, 1 + demo_gen_below(r, 60), 0);
			demo_gen_cat(hh->address, cap, &hh->address_len, &letter, 1);
		} else if (kind < 90) {
			landmark = NULL;
			demo_gen_cat_str(hh->address, cap, &hh->address_len, "P.O. Box ");
			demo_gen_cat_uint(hh->address, cap, &hh->address_len, 1 + demo_gen_below(r, 999), 0);
		} else {
			landmark = NULL;
			demo_gen_cat_str(hh->address, cap, &hh->address_len, "Plot ");
			demo_gen_cat_uint(hh->address, cap, &hh->address_len, 1 + demo_gen_below(r, 250), 0);
		}
		if (landmark) {
			demo_gen_cat_str(hh->address, cap, &hh->address_len, ", ");
			demo_gen_cat_str(hh->address, cap, &hh->address_len, landmark);
		}
	}

	/* 15% of heads are 65+; their households are smaller and more often skipped-generation. */
	bool old = demo_gen_chance(r, 15);
	unsigned n = 1 + (unsigned)demo_gen_weighted(r, old ? demo_gen_size_weights_old : demo_gen_size_weights,
						     DEMO_GEN_MEMBERS_MAX);
	int head_age;
	if (old) {
		unsigned a = demo_gen_below(r, 31), b = demo_gen_below(r, 31);
		head_age = 65 + (int)(a < b ? a : b); /* 65..95, skewed young */
	} else {
		head_age = 18 + (int)(demo_gen_below(r, 47) + demo_gen_below(r, 47)) / 2; /* 18..64, peak ~41 */
	}
	bool skipped = old && n >= 2 && demo_gen_chance(r, 45);
	enum demo_gen_sex head_sex = demo_gen_sex_draw(r, skipped ? 70 : old ? 55 : 35);
	demo_gen_person_fill(g, r, &hh->m[0], DEMO_GEN_REL_HEAD, head_sex, head_age, home, family);
	hh->n = 1;

	int parents_min_age = head_age;
	unsigned spouse_pct = skipped ? (n >= 3 ? 35 : 0) : (n >= 2 && head_age >= 20 ? (old ? 55 : 70) : 0);
	if (demo_gen_chance(r, spouse_pct)) {
		int age;
		if (head_sex == DEMO_GEN_SEX_MALE)
			age = demo_gen_chance(r, 85) ? head_age - demo_gen_range(r, 1, 12)
						     : head_age + demo_gen_range(r, 0, 4);
		else
			age = head_age + demo_gen_range(r, -2, 9);
		age = age < 18 ? 18 : age > 100 ? 100 : age;
		enum demo_gen_locale loc =
			demo_gen_chance(r, 85) ? home : (enum demo_gen_locale)demo_gen_below(r, DEMO_GEN_LOC_COUNT);
		const char *fam = demo_gen_chance(r, demo_gen_rel_share_family[DEMO_GEN_REL_SPOUSE])
					  ? family
					  : demo_gen_pick(r, demo_gen_locales[loc].family);
		enum demo_gen_sex sex = head_sex == DEMO_GEN_SEX_MALE ? DEMO_GEN_SEX_FEMALE : DEMO_GEN_SEX_MALE;
		demo_gen_person_fill(g, r, &hh->m[hh->n++], DEMO_GEN_REL_SPOUSE, sex, age, loc, fam);
		if (age < parents_min_age)
			parents_min_age = age;
	}

	unsigned parents = 0;
	enum demo_gen_sex first_parent_sex = DEMO_GEN_SEX_FEMALE;
	while (hh->n < n) {
		enum demo_gen_rel rel = skipped ? DEMO_GEN_REL_GRANDCHILD
						: demo_gen_rel_draw(r, old, parents_min_age, head_age, parents);
		enum demo_gen_sex sex = demo_gen_sex_draw(r, 50);
		enum demo_gen_locale loc = home;
		int age, hi, lo;
		switch (rel) {
		case DEMO_GEN_REL_CHILD:
			/* Born when both head and spouse were 16+, so the gap is at least 15 years to the day. */
			hi = parents_min_age - 16;
			if (!old && hi > 30)
				hi = 30;
			lo = hi - (old ? 30 : 24);
			age = demo_gen_range(r, lo < 0 ? 0 : lo, hi);
			break;
		case DEMO_GEN_REL_GRANDCHILD:
			hi = parents_min_age - 32;
			if (hi > (skipped ? 17 : 25))
				hi = skipped ? 17 : 25;
			HF_ASSERT(hi >= 0);
			age = demo_gen_range(r, 0, hi);
			break;
		case DEMO_GEN_REL_PARENT:
			hi = head_age + 40;
			age = demo_gen_range(r, head_age + 16, hi > 100 ? 100 : hi);
			if (parents == 0)
				sex = first_parent_sex = demo_gen_sex_draw(r, 60);
			else
				sex = first_parent_sex == DEMO_GEN_SEX_MALE ? DEMO_GEN_SEX_FEMALE : DEMO_GEN_SEX_MALE;
			parents++;
			break;
		case DEMO_GEN_REL_SIBLING:
			age = demo_gen_range(r, head_age - 15 < 10 ? 10 : head_age - 15,
					     head_age + 15 > 95 ? 95 : head_age + 15);
			break;
		case DEMO_GEN_REL_OTHER:
			age = demo_gen_range(r, 3, 80);
			break;
		case DEMO_GEN_REL_NONREL:
			age = demo_gen_range(r, 16, 60);
			if (demo_gen_chance(r, 30))
				loc = (enum demo_gen_locale)demo_gen_below(r, DEMO_GEN_LOC_COUNT);
			break;
		default:
			HF_ASSERT(!"relationship not drawn here");
			age = 0;
		}
		const char *fam = demo_gen_chance(r, demo_gen_rel_share_family[rel])
					  ? family
					  : demo_gen_pick(r, demo_gen_locales[loc].family);
		demo_gen_person_fill(g, r, &hh->m[hh->n++], rel, sex, age, loc, fam);
	}
	hh->under18 = 0;
	for (unsigned i = 0; i < hh->n; i++)
		hh->under18 += hh->m[i].age < 18;
}

/* ---- Deliberate faults: duplicates and bad rows, from the household's second stream ---- */

static void demo_gen_household_dup(struct demo_gen *g, struct demo_gen_rng *f, struct demo_gen_household *hh)
{
	/* Same village if an adult with an ID was registered there before, else the last one anywhere. */
	const struct demo_gen_record *rec = g->village_last[hh->village].set ? &g->village_last[hh->village] : &g->last;
	if (!rec->set)
		return;
	/* A 9-person household keeps its size: the duplicate takes member 9's place. */
	struct demo_gen_person *p = &hh->m[hh->n < DEMO_GEN_MEMBERS_MAX ? hh->n++ : DEMO_GEN_MEMBERS_MAX - 1];
	memset(p, 0, sizeof(*p));
	p->extra = true;
	p->rel = demo_gen_chance(f, 70) ? DEMO_GEN_REL_OTHER : DEMO_GEN_REL_NONREL;
	p->dis = DEMO_GEN_DIS_NONE;
	if (demo_gen_chance(f, 50)) {
		/* The same person registered again: name, sex and birth date copied, the ID missing or another. */
		p->sex = rec->sex;
		p->given1 = rec->given1;
		p->given2 = rec->given2;
		p->family = rec->family;
		p->age = rec->age;
		p->dob = rec->dob;
		if (demo_gen_chance(f, 50))
			demo_gen_nid_issue(g, true, p->nid);
	} else {
		/* Someone else registered under an ID already in use. */
		p->sex = demo_gen_sex_draw(f, 50);
		demo_gen_given(f, hh->locale, p->sex, &p->given1, &p->given2);
		p->family = demo_gen_pick(f, demo_gen_locales[hh->locale].family);
		p->age = demo_gen_range(f, 18, 70);
		p->dob = demo_gen_dob(f, p->age);
		memcpy(p->nid, rec->nid, sizeof(p->nid));
	}
	if (demo_gen_chance(f, 50))
		demo_gen_phone_issue(g, true, p->phone);
}

static void demo_gen_household_faults(struct demo_gen *g, struct demo_gen_rng *f, struct demo_gen_household *hh)
{
	if (demo_gen_chance(f, g->opts->dup_rate) && hh->index > 0)
		demo_gen_household_dup(g, f, hh);
	for (unsigned i = 0; i < hh->n; i++) {
		struct demo_gen_person *p = &hh->m[i];
		if (!demo_gen_chance(f, g->opts->bad_rate))
			continue;
		/* Only errors that stay single: a wrong Luhn digit needs an ID, a future date only on a minor
		 * who is not the head (on an adult an ID or the head's age would turn invalid too), "boss"
		 * never on the head (the household would lose its head). */
		enum demo_gen_bad can[DEMO_GEN_BAD_COUNT];
		size_t ncan = 0;
		if (p->nid[0])
			can[ncan++] = DEMO_GEN_BAD_LUHN;
		if (p->phone[0])
			can[ncan++] = DEMO_GEN_BAD_PHONE;
		can[ncan++] = DEMO_GEN_BAD_DATE;
		if (p->age < 18 && p->rel != DEMO_GEN_REL_HEAD)
			can[ncan++] = DEMO_GEN_BAD_FUTURE;
		can[ncan++] = DEMO_GEN_BAD_GIVEN_EMPTY;
		can[ncan++] = DEMO_GEN_BAD_SEX;
		if (p->rel != DEMO_GEN_REL_HEAD)
			can[ncan++] = DEMO_GEN_BAD_REL;
		p->bad = can[demo_gen_below(f, (unsigned)ncan)];
		p->bad_arg = (uint32_t)(demo_gen_rng_next(f) >> 32);
	}
}

/* Remembers this household's adults with an ID (as generated, before any bad-row change) for later
 * duplicates; the duplicate itself is never a source. */
static void demo_gen_household_remember(struct demo_gen *g, const struct demo_gen_household *hh)
{
	for (unsigned i = 0; i < hh->n; i++) {
		const struct demo_gen_person *p = &hh->m[i];
		if (p->extra || !p->nid[0] || p->age < 18)
			continue;
		struct demo_gen_record *rec = &g->village_last[hh->village];
		rec->set = true;
		rec->sex = p->sex;
		rec->given1 = p->given1;
		rec->given2 = p->given2;
		rec->family = p->family;
		rec->age = p->age;
		rec->dob = p->dob;
		memcpy(rec->nid, p->nid, sizeof(rec->nid));
		g->last = *rec;
	}
}

/* ---- Rows ---- */

static const char demo_gen_header[] = "household_ref,region,district,village,address,member_no,relationship,"
				      "given_name,family_name,sex,date_of_birth,national_id,phone,disability,"
				      "language,programme\n";

/* Per row, first that applies: OPCT (70+), PWSD-CT (a disability), CT-OVC (the head of a household with
 * 3+ members under 18, counted before any duplicate joined, so that --dup-rate leaves the head row alone). */
static const char *demo_gen_programme(const struct demo_gen_person *p, unsigned under18)
{
	if (p->age >= 70)
		return "OPCT";
	if (p->dis != DEMO_GEN_DIS_NONE)
		return "PWSD-CT";
	if (p->rel == DEMO_GEN_REL_HEAD && under18 >= 3)
		return "CT-OVC";
	return "";
}

static void demo_gen_household_write(struct demo_gen *g, const struct demo_gen_household *hh)
{
	struct demo_gen_sink *s = &g->sink;
	char ref[DEMO_GEN_PREFIX_MAX + 16];
	size_t ref_len = 0;
	demo_gen_cat_str(ref, sizeof(ref), &ref_len, g->opts->ref_prefix);
	demo_gen_cat(ref, sizeof(ref), &ref_len, "-", 1);
	demo_gen_cat_uint(ref, sizeof(ref), &ref_len, (uint64_t)hh->index + 1, 7);

	unsigned district = hh->village / DEMO_GEN_VILLAGES_PER_DISTRICT;
	unsigned region = district / DEMO_GEN_DISTRICTS_PER_REGION;

	for (unsigned i = 0; i < hh->n; i++) {
		const struct demo_gen_person *p = &hh->m[i];
		char tmp[64];
		size_t len = 0;

		demo_gen_sink_field(s, ref, ref_len, true);
		demo_gen_sink_cstr(s, demo_gen_regions[region].name);
		demo_gen_sink_cstr(s, g->districts[district]);
		demo_gen_sink_cstr(s, g->villages[hh->village]);
		demo_gen_sink_field(s, hh->address, hh->address_len, false);
		demo_gen_cat_uint(tmp, sizeof(tmp), &len, i + 1, 0);
		demo_gen_sink_field(s, tmp, len, false);
		demo_gen_sink_cstr(s, p->bad == DEMO_GEN_BAD_REL ? "boss" : demo_gen_rel_names[p->rel]);

		len = 0;
		if (p->bad != DEMO_GEN_BAD_GIVEN_EMPTY) {
			demo_gen_cat_str(tmp, sizeof(tmp), &len, p->given1);
			if (p->given2) {
				demo_gen_cat(tmp, sizeof(tmp), &len, " ", 1);
				demo_gen_cat_str(tmp, sizeof(tmp), &len, p->given2);
			}
		}
		demo_gen_sink_field(s, tmp, len, false);
		demo_gen_sink_cstr(s, p->family);
		demo_gen_sink_cstr(s, p->bad == DEMO_GEN_BAD_SEX ? "x" : demo_gen_sex_names[p->sex]);

		len = 0;
		if (p->bad == DEMO_GEN_BAD_DATE) {
			/* The real birth year with a day its month does not have. */
			static const int8_t md[][2] = {{2, 30}, {2, 31}, {4, 31}, {6, 31}, {9, 31}, {11, 31}};
			const int8_t *x = md[p->bad_arg % HF_ARRAY_LEN(md)];
			demo_gen_cat_date(tmp, sizeof(tmp), &len, p->dob.y, x[0], x[1]);
		} else if (p->bad == DEMO_GEN_BAD_FUTURE) {
			/* The wrong century (2118 for 2018): in the future whenever the file is imported, unlike a
			 * date just after 2026-01-01, which stops being one. */
			int y = p->dob.y + 100, d = p->dob.d;
			if (p->dob.m == 2 && d == 29 && !demo_gen_leap(y))
				d = 28;
			demo_gen_cat_date(tmp, sizeof(tmp), &len, y, p->dob.m, d);
		} else {
			demo_gen_cat_date(tmp, sizeof(tmp), &len, p->dob.y, p->dob.m, p->dob.d);
		}
		demo_gen_sink_field(s, tmp, len, false);

		len = 0;
		demo_gen_cat_str(tmp, sizeof(tmp), &len, p->nid);
		if (p->bad == DEMO_GEN_BAD_LUHN) {
			/* Adding 1..9 to the check digit never gives it back. */
			char *c = &tmp[DEMO_GEN_NID_LEN - 1];
			*c = (char)('0' + (*c - '0' + 1 + (int)(p->bad_arg % 9)) % 10);
		}
		demo_gen_sink_field(s, tmp, len, false);

		len = 0;
		if (p->bad == DEMO_GEN_BAD_PHONE) {
			/* What people write instead of +2547XXXXXXXX and no reading can repair: the country code
			 * without the plus, digits cut short, letters. (The local form 07XXXXXXXX is not here: the
			 * importer completes it with phone.country_code.) */
			switch (p->bad_arg % 3) {
			case 0:
				demo_gen_cat_str(tmp, sizeof(tmp), &len, p->phone + 1);
				break;
			case 1:
				demo_gen_cat(tmp, sizeof(tmp), &len, p->phone, 9);
				break;
			default:
				demo_gen_cat(tmp, sizeof(tmp), &len, "0", 1);
				demo_gen_cat(tmp, sizeof(tmp), &len, p->phone + 4, 3);
				demo_gen_cat(tmp, sizeof(tmp), &len, "ab", 2);
				break;
			}
		} else {
			demo_gen_cat_str(tmp, sizeof(tmp), &len, p->phone);
		}
		demo_gen_sink_field(s, tmp, len, false);

		demo_gen_sink_cstr(s, demo_gen_dis_names[p->dis]);
		demo_gen_sink_cstr(s, hh->language);
		demo_gen_sink_cstr(s, demo_gen_programme(p, hh->under18));
		demo_gen_sink_put(s, "\n", 1);
	}
}

hf_err demo_gen_write(FILE *out, const struct demo_gen_opts *o)
{
	if (!out || !o || !demo_gen_opts_valid(o))
		return HF_EINVAL;
	hf_err err = HF_OK;
	struct demo_gen *g = hf_xcalloc(1, sizeof(*g));
	g->opts = o;
	g->sink.f = out;
	demo_gen_perm_init(o->seed, 0x6e6174696f6e616cu, DEMO_GEN_NID_SPACE, &g->id_a, &g->id_b);
	demo_gen_perm_init(o->seed, 0x70686f6e65000000u, DEMO_GEN_PHONE_SPACE, &g->phone_a, &g->phone_b);
	demo_gen_places_init(g);

	demo_gen_sink_put(&g->sink, demo_gen_header, sizeof(demo_gen_header) - 1);
	for (uint32_t h = 0; h < o->households && !g->sink.failed; h++) {
		struct demo_gen_household hh;
		struct demo_gen_rng r, f;
		demo_gen_rng_seed(&r, o->seed, h, 0);
		demo_gen_rng_seed(&f, o->seed, h, 1);
		demo_gen_household_fill(g, &r, &hh, h);
		demo_gen_household_faults(g, &f, &hh);
		demo_gen_household_write(g, &hh);
		demo_gen_household_remember(g, &hh);
	}
	demo_gen_sink_flush(&g->sink);
	if (!g->sink.failed && fflush(out) != 0) {
		g->sink.failed = true;
		g->sink.err_no = errno;
	}
	if (g->sink.failed) {
		hf_log(HF_LOG_ERROR, "core.gen", "writing the generated registry failed errno=%d err=\"%s\"",
		       g->sink.err_no, strerror(g->sink.err_no));
		err = HF_EIO;
	}
	free(g);
	return err;
}

/* ---- Command line ---- */

static const char demo_gen_usage_text[] =
	"usage: hifadhi-core gen [--households N] [--seed S] [--bad-rate P] [--dup-rate P] [--ref-prefix STR]\n"
	"\n"
	"Writes a synthetic beneficiary registry as CSV to stdout, one row per individual. The same seed and\n"
	"options always give the same bytes; ages are as of 2026-01-01.\n"
	"\n"
	"  --households N    households to generate, 1..2000000 (default 20)\n"
	"  --seed S          PRNG seed, 0..18446744073709551615 (default 1)\n"
	"  --bad-rate P      percent of rows, 0..100, given exactly one validation error (default 0)\n"
	"  --dup-rate P      percent of households, 0..100, given a likely duplicate of an earlier\n"
	"                    individual (default 0)\n"
	"  --ref-prefix STR  household_ref prefix, 1..32 of A-Z a-z 0-9 _ - (default GEN)\n"
	"  --help            show this text\n";

enum demo_gen_optkey {
	DEMO_GEN_OPT_HOUSEHOLDS,
	DEMO_GEN_OPT_SEED,
	DEMO_GEN_OPT_BAD_RATE,
	DEMO_GEN_OPT_DUP_RATE,
	DEMO_GEN_OPT_REF_PREFIX,
	DEMO_GEN_OPT_HELP,
};

static const struct {
	const char *name;
	enum demo_gen_optkey key;
} demo_gen_optdefs[] = {
	{"households", DEMO_GEN_OPT_HOUSEHOLDS}, {"seed", DEMO_GEN_OPT_SEED},
	{"bad-rate", DEMO_GEN_OPT_BAD_RATE},     {"dup-rate", DEMO_GEN_OPT_DUP_RATE},
	{"ref-prefix", DEMO_GEN_OPT_REF_PREFIX}, {"help", DEMO_GEN_OPT_HELP},
};

/* Decimal digits only (strtoull alone would take spaces, a sign and wrap "-1"), within [min, max]. */
static bool demo_gen_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (s[0] < '0' || s[0] > '9')
		return false;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool demo_gen_parse_percent(const char *s, unsigned *out)
{
	if (s[0] < '0' || s[0] > '9')
		return false;
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 100)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Parses argv[1..argc) into out (defaults first). On a bad option writes one line saying what is wrong to
 * err and returns HF_EINVAL; out and out_help are written only on success. */
HF_MUST_CHECK static hf_err demo_gen_parse_args(int argc, char **argv, FILE *err, struct demo_gen_opts *out,
						bool *out_help)
{
	struct demo_gen_opts o;
	bool help = false;
	demo_gen_opts_init(&o);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "--", 2) != 0) {
			fprintf(err, "gen: unexpected argument \"%s\"\n", arg);
			return HF_EINVAL;
		}
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
		size_t d = 0;
		while (d < HF_ARRAY_LEN(demo_gen_optdefs) && !(strlen(demo_gen_optdefs[d].name) == name_len &&
							       memcmp(demo_gen_optdefs[d].name, name, name_len) == 0))
			d++;
		if (d == HF_ARRAY_LEN(demo_gen_optdefs)) {
			fprintf(err, "gen: unknown option \"%s\"\n", arg);
			return HF_EINVAL;
		}
		enum demo_gen_optkey key = demo_gen_optdefs[d].key;
		if (key == DEMO_GEN_OPT_HELP) {
			if (eq) {
				fprintf(err, "gen: --help takes no value\n");
				return HF_EINVAL;
			}
			help = true;
			continue;
		}
		const char *val;
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(err, "gen: --%s needs a value\n", demo_gen_optdefs[d].name);
			return HF_EINVAL;
		}
		uint64_t u = 0;
		bool ok = false;
		switch (key) {
		case DEMO_GEN_OPT_HOUSEHOLDS:
			ok = demo_gen_parse_u64(val, 1, DEMO_GEN_HOUSEHOLDS_MAX, &u);
			if (ok)
				o.households = (uint32_t)u;
			break;
		case DEMO_GEN_OPT_SEED:
			ok = demo_gen_parse_u64(val, 0, UINT64_MAX, &o.seed);
			break;
		case DEMO_GEN_OPT_BAD_RATE:
			ok = demo_gen_parse_percent(val, &o.bad_rate);
			break;
		case DEMO_GEN_OPT_DUP_RATE:
			ok = demo_gen_parse_percent(val, &o.dup_rate);
			break;
		case DEMO_GEN_OPT_REF_PREFIX:
			ok = demo_gen_prefix_valid(val);
			if (ok)
				o.ref_prefix = val;
			break;
		case DEMO_GEN_OPT_HELP:
			break;
		}
		if (!ok) {
			static const char *const expect[] = {
				[DEMO_GEN_OPT_HOUSEHOLDS] = "an integer 1..2000000",
				[DEMO_GEN_OPT_SEED] = "an integer 0..18446744073709551615",
				[DEMO_GEN_OPT_BAD_RATE] = "a percentage 0..100",
				[DEMO_GEN_OPT_DUP_RATE] = "a percentage 0..100",
				[DEMO_GEN_OPT_REF_PREFIX] = "1..32 of A-Z a-z 0-9 _ -",
			};
			fprintf(err, "gen: --%s must be %s, got \"%s\"\n", demo_gen_optdefs[d].name, expect[key], val);
			return HF_EINVAL;
		}
	}
	*out = o;
	*out_help = help;
	return HF_OK;
}

int demo_gen_main(int argc, char **argv)
{
	struct demo_gen_opts o;
	bool help = false;
	if (demo_gen_parse_args(argc, argv, stderr, &o, &help) != HF_OK) {
		fputs(demo_gen_usage_text, stderr);
		return 2;
	}
	if (help) {
		fputs(demo_gen_usage_text, stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	return demo_gen_write(stdout, &o) == HF_OK ? 0 : 1;
}
