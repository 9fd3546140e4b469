/* test_validate.c - the point-of-entry rules of core/validate.c and the config that shapes them.
 *
 * Uses the real config declarations (core/core_config.c): the rules under test are the ones a default
 * deployment runs, and a change of default shows up here.
 */
#include "hf_base.h"

#include "../../core/core_config.c"
#include "../../core/validate.c"
#include "hf_test.h"

#include <string.h>

static struct hf_config *cfg;

static void load_rules(const char *const *ov, size_t n)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	hf_config_free(cfg);
	cfg = NULL;
	HF_CHECK(hf_config_load(core_config_decls, core_config_ndecls, NULL, ov, n, &cfg, &err) == HF_OK);
	HF_CHECK_MSG(app_rules_from_config(cfg, &err) == HF_OK, "%s", hf_buf_cstr(&err));
	hf_buf_release(&err);
}

static const char *const base_ov[] = {"db.password_file=/dev/null", "crypto.key_dir=/tmp"};

static void test_national_id(void)
{
	char out[NID_MAX + 1];
	struct vfail why;
	load_rules(base_ov, 2);
	HF_CHECK(validate_national_id("12345674", out, &why) && strcmp(out, "12345674") == 0);
	HF_CHECK(validate_national_id(" 1234-5674 ", out, &why) && strcmp(out, "12345674") == 0);
	HF_CHECK(!validate_national_id("12345675", out, &why) && strcmp(why.code, "check_digit") == 0);
	HF_CHECK(!validate_national_id("1234567", out, &why) && strcmp(why.code, "length") == 0);
	HF_CHECK(!validate_national_id("1234567A", out, &why) && strcmp(why.code, "bad_characters") == 0);
	HF_CHECK(!validate_national_id("123456789012345678901234567890123456", out, &why));

	/* A country with alphanumeric IDs and no check digit: letters pass, never called a "check digit". */
	const char *alnum[] = {"db.password_file=/dev/null", "crypto.key_dir=/tmp", "national_id.charset=alnum",
			       "national_id.check=none", "national_id.min_length=6", "national_id.max_length=10"};
	load_rules(alnum, HF_ARRAY_LEN(alnum));
	HF_CHECK(validate_national_id("ab12cd", out, &why) && strcmp(out, "AB12CD") == 0);
	/* mod11-2 (ISO 7064) with its X check character. */
	const char *mod11[] = {"db.password_file=/dev/null", "crypto.key_dir=/tmp", "national_id.charset=alnum",
			       "national_id.check=mod11-2", "national_id.min_length=4", "national_id.max_length=18"};
	load_rules(mod11, HF_ARRAY_LEN(mod11));
	HF_CHECK(validate_national_id("079x", out, &why));
	HF_CHECK(!validate_national_id("0791", out, &why));
	load_rules(base_ov, 2);
}

static void test_phone(void)
{
	char out[PHONE_MAX + 1];
	struct vfail why;
	HF_CHECK(validate_phone("+254712345678", out, &why) && strcmp(out, "+254712345678") == 0);
	HF_CHECK(validate_phone("0712 345 678", out, &why) && strcmp(out, "+254712345678") == 0);
	HF_CHECK(validate_phone("+254-712-345-678", out, &why) && strcmp(out, "+254712345678") == 0);
	HF_CHECK(!validate_phone("254712345678", out, &why) && strcmp(why.code, "not_e164") == 0);
	HF_CHECK(!validate_phone("+0712345678", out, &why));
	HF_CHECK(!validate_phone("0712ab", out, &why) && strcmp(why.code, "bad_characters") == 0);
	HF_CHECK(!validate_phone("+2547123", out, &why) && strcmp(why.code, "length") == 0);
	HF_CHECK(!validate_phone("+25471234567890123", out, &why));
	HF_CHECK(!validate_phone("", out, &why));
}

static void test_dates(void)
{
	int y = 0;
	struct vfail why;
	HF_CHECK(validate_birth_date("1948-03-12", &y, &why) && y == 1948);
	HF_CHECK(validate_birth_date("2000-02-29", &y, &why));
	HF_CHECK(!validate_birth_date("1900-02-29", &y, &why) && strcmp(why.code, "bad_date") == 0);
	HF_CHECK(!validate_birth_date("2023-02-30", &y, &why));
	HF_CHECK(!validate_birth_date("2023-13-01", &y, &why));
	HF_CHECK(!validate_birth_date("23-01-01", &y, &why));
	HF_CHECK(!validate_birth_date("2023/01/01", &y, &why));
	HF_CHECK(!validate_birth_date("9999-01-01", &y, &why) && strcmp(why.code, "in_future") == 0);
	HF_CHECK(!validate_birth_date("1850-01-01", &y, &why) && strcmp(why.code, "too_old") == 0);
}

static void test_names_and_places(void)
{
	struct vfail why;
	HF_CHECK(validate_person_name("Wanjiru", &why));
	HF_CHECK(validate_person_name("N'Dri Kouassi-Yao", &why));
	HF_CHECK(validate_person_name("Ḥasan", &why));
	HF_CHECK(validate_person_name("አበበ", &why));
	HF_CHECK(!validate_person_name("W4njiru", &why) && strcmp(why.code, "bad_characters") == 0);
	HF_CHECK(!validate_person_name("Robert'); DROP TABLE", &why));
	HF_CHECK(!validate_person_name("---", &why));
	HF_CHECK(!validate_person_name("", &why));
	char long_name[300];
	memset(long_name, 'a', 101);
	long_name[101] = '\0';
	HF_CHECK(!validate_person_name(long_name, &why) && strcmp(why.code, "length") == 0);
	HF_CHECK(validate_place_name("Soweto East", &why));
	HF_CHECK(!validate_place_name("Kib/ra", &why));
	HF_CHECK(validate_language("sw") && validate_language("kik") && validate_language("fr") && !validate_language("de"));
}

static void test_duplicate_keys(void)
{
	struct hf_buf a, b;
	hf_buf_init(&a, 256);
	hf_buf_init(&b, 256);
	validate_name_norm("  Mary-Anne  O'Neil ", &a);
	HF_CHECK(strcmp(hf_buf_cstr(&a), "mary anne o neil") == 0);
	hf_buf_reset(&a);
	validate_phonetic_key("Mohamed", "Abdi", &a);
	validate_phonetic_key("Abdi", "Muhammad", &b);
	HF_CHECK_MSG(strcmp(hf_buf_cstr(&a), hf_buf_cstr(&b)) == 0, "%s vs %s", hf_buf_cstr(&a), hf_buf_cstr(&b));
	hf_buf_reset(&b);
	validate_phonetic_key("Wanjiru", "Kamau", &b);
	HF_CHECK(strcmp(hf_buf_cstr(&a), hf_buf_cstr(&b)) != 0);
	hf_buf_release(&a);
	hf_buf_release(&b);
}

static void test_numbers(void)
{
	char n[BENNO_LEN + 1];
	int distinct = 0;
	char first[BENNO_LEN + 1] = "";
	for (int i = 0; i < 2000; i++) {
		numbers_new(n);
		HF_CHECK(strlen(n) == BENNO_LEN && n[0] != '0' && numbers_valid(n));
		if (i == 0)
			memcpy(first, n, sizeof(first));
		else if (strcmp(first, n) != 0)
			distinct++;
		/* every single-digit typo and every swap of neighbours is refused */
		for (int k = 0; k < BENNO_LEN; k++) {
			char t[BENNO_LEN + 1];
			memcpy(t, n, sizeof(t));
			t[k] = (char)('0' + (t[k] - '0' + 1 + i % 9) % 10);
			if (!(k == 0 && t[0] == '0'))
				HF_CHECK(!numbers_valid(t));
			if (k + 1 < BENNO_LEN && n[k] != n[k + 1]) {
				memcpy(t, n, sizeof(t));
				t[k] = n[k + 1];
				t[k + 1] = n[k];
				HF_CHECK(!numbers_valid(t));
			}
		}
	}
	HF_CHECK(distinct > 1990);
	HF_CHECK(!numbers_valid("12345678") && !numbers_valid("1234567890") && !numbers_valid("abcdefghi"));
}

static void test_config_combinations(void)
{
	struct hf_buf err;
	struct hf_config *c = NULL;
	const char *bad[] = {"db.password_file=/dev/null", "crypto.key_dir=/tmp", "national_id.check=mod11-2"};
	hf_buf_init(&err, 1024);
	HF_CHECK(hf_config_load(core_config_decls, core_config_ndecls, NULL, bad, 3, &c, &err) == HF_OK);
	HF_CHECK(app_rules_from_config(c, &err) == HF_EINVAL && strstr(hf_buf_cstr(&err), "alnum"));
	hf_config_free(c);
	hf_buf_release(&err);
	load_rules(base_ov, 2);
}

int main(void)
{
	HF_CHECK(hf_crypto_init() == HF_OK);
	HF_TEST(test_national_id);
	HF_TEST(test_phone);
	HF_TEST(test_dates);
	HF_TEST(test_names_and_places);
	HF_TEST(test_duplicate_keys);
	HF_TEST(test_numbers);
	HF_TEST(test_config_combinations);
	hf_config_free(cfg);
	return hf_test_summary();
}
