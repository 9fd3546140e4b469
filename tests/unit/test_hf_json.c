/* test_hf_json.c - strict JSON bodies and typed reads that report every field error at once.
 *
 * What an API client sees when a form is wrong is the list of field errors, so these tests check the
 * codes and field paths in that list: bad syntax, bad UTF-8, duplicate keys and a non-object root are
 * refused whole; unknown fields are each named; getters say which field is missing, of the wrong type or
 * of the wrong length in characters (not bytes); and the list stays capped for hostile bodies.
 */
#include "hf_base.h"
#include "hf_json.h"

#include <string.h>

#include "hf_test.h"

/* The code and field of error i, or "" when absent. */
static const char *ferr_get(const struct hf_ferrs *fe, size_t i, const char *what)
{
	json_t *e = json_array_get(fe->list, i);
	const char *s = json_string_value(json_object_get(e, what));
	return s ? s : "";
}

static bool ferr_is(const struct hf_ferrs *fe, size_t i, const char *field, const char *code)
{
	return strcmp(ferr_get(fe, i, "field"), field) == 0 && strcmp(ferr_get(fe, i, "code"), code) == 0;
}

/* The whole list as "field/code field/code ...", to compare against and to print when it differs. */
static const char *ferrs_text(const struct hf_ferrs *fe)
{
	static char text[1024];
	struct hf_buf b;
	hf_buf_init(&b, sizeof(text) - 1);
	for (size_t i = 0; i < hf_ferrs_count(fe); i++)
		hf_buf_note(&b, "%s%s/%s", i ? " " : "", ferr_get(fe, i, "field"), ferr_get(fe, i, "code"));
	hf_strlcpy(text, hf_buf_cstr(&b), sizeof(text));
	hf_buf_release(&b);
	return text;
}

#define CHECK_FERRS(fe, want) HF_CHECK_MSG(strcmp(ferrs_text(fe), want) == 0, "errors: %s", ferrs_text(fe))

/* Parses body (length from strlen unless len is given), expecting a refusal with exactly one error at the
 * root and *out untouched; returns that error's code, or "(accepted)" / "(bad refusal)". Static storage. */
static const char *refusal(const char *body, size_t len)
{
	static char code[64];
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	json_t *out = (json_t *)&fe; /* a sentinel */
	hf_err e = hf_json_parse_object((struct hf_str){body, len ? len : strlen(body)}, &fe, &out);
	if (e == HF_OK)
		json_decref(out);
	if (e == HF_OK)
		hf_strlcpy(code, "(accepted)", sizeof(code));
	else if (e != HF_EINVAL || out != (json_t *)&fe || hf_ferrs_count(&fe) != 1 || ferr_get(&fe, 0, "field")[0] ||
		 !ferr_get(&fe, 0, "message")[0])
		hf_strlcpy(code, "(bad refusal)", sizeof(code));
	else
		hf_strlcpy(code, ferr_get(&fe, 0, "code"), sizeof(code));
	hf_ferrs_release(&fe);
	return code;
}

static bool parse_refused(const char *body, size_t len, const char *want)
{
	const char *got = refusal(body, len);
	return HF_CHECK_MSG(strcmp(got, want) == 0, "want %s, got %s", want, got);
}

static json_t *parse_ok(const char *body)
{
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	json_t *out = NULL;
	hf_err e = hf_json_parse_object(hf_str_from(body), &fe, &out);
	HF_CHECK_MSG(e == HF_OK && out && !hf_ferrs_any(&fe), "'%s' refused", body);
	hf_ferrs_release(&fe);
	return out;
}

static void test_parse_refusals(void)
{
	parse_refused("", 0, "empty_body");
	static const char *const malformed[] = {
		"{",
		"{\"a\":}",
		"{\"a\":1,}",
		"{'a':1}",
		"{\"a\":1} x",
		"{\"a\":1}{}",
		"{\"a\":01}",
		"{\"a\":NaN}",
		"{\"a\":\"unterminated}",
		"{\"a\":\"\\u0000\"}",  /* NUL inside a string */
		"{\"a\":\"\\ud800\"}",  /* lone surrogate escape */
		"{\"a\":99999999999999999999}",
		"{\"a\":1,\"a\":2}",    /* duplicate key */
		"{\"a\":{\"b\":1,\"b\":1}}",
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(malformed); i++)
		if (!parse_refused(malformed[i], 0, "malformed_json"))
			printf("# body: %s\n", malformed[i]);
	/* An embedded NUL byte in the body itself. */
	parse_refused("{\"a\":1}\0{}", 10, "malformed_json");

	/* Roots that are not an object. */
	parse_refused("[]", 0, "not_an_object");
	parse_refused("[{\"a\":1}]", 0, "not_an_object");
	/* jansson itself insists on an object or array at the root, so a scalar is a syntax error. */
	static const char *const scalars[] = {"1", "\"s\"", "null", "true"};
	for (size_t i = 0; i < HF_ARRAY_LEN(scalars); i++) {
		const char *code = refusal(scalars[i], 0);
		HF_CHECK_MSG(strcmp(code, "not_an_object") == 0 || strcmp(code, "malformed_json") == 0, "%s: %s",
			     scalars[i], code);
	}
}

static void test_parse_bad_utf8(void)
{
	static const char *const bad[] = {
		"{\"a\":\"\xff\"}",             /* never valid */
		"{\"a\":\"ab\xc3\"}",           /* truncated sequence */
		"{\"a\":\"\xc0\xaf\"}",         /* overlong '/' */
		"{\"a\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate */
		"{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
		"{\"\xfe\":1}",                 /* in a key */
		"{\"a\":1, \xff}",              /* between tokens */
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		if (!parse_refused(bad[i], 0, "malformed_json"))
			printf("# bad UTF-8 body %zu\n", i);
	json_t *ok = parse_ok("{\"name\":\"W\xc3\xa0nj\xc3\xaeru \xe1\x8a\xa0 \xf0\x9f\x98\x80\"}");
	json_decref(ok);
}

static void test_parse_depth(void)
{
	/* 16 levels are accepted, 17 are not. */
	char body[128];
	size_t n = 0;
	for (int i = 0; i < 15; i++) {
		memcpy(body + n, "{\"a\":", 5);
		n += 5;
	}
	memcpy(body + n, "{}", 2);
	n += 2;
	memset(body + n, '}', 15);
	n += 15;
	body[n] = '\0';
	json_t *v = parse_ok(body);
	json_decref(v);

	n = 0;
	for (int i = 0; i < 16; i++) {
		memcpy(body + n, "{\"a\":", 5);
		n += 5;
	}
	memcpy(body + n, "[]", 2);
	n += 2;
	memset(body + n, '}', 16);
	n += 16;
	body[n] = '\0';
	parse_refused(body, 0, "too_deep");

	/* A hostile body nesting far deeper than any parser stack should take is refused, not a crash. */
	static char deep[200001];
	deep[0] = '{';
	memcpy(deep + 1, "\"a\":", 4);
	memset(deep + 5, '[', sizeof(deep) - 6);
	deep[sizeof(deep) - 1] = '\0';
	const char *code = refusal(deep, 0);
	HF_CHECK_MSG(strcmp(code, "malformed_json") == 0 || strcmp(code, "too_deep") == 0, "got %s", code);
}

static void test_only_fields(void)
{
	json_t *obj = parse_ok("{\"name\":\"x\",\"nmae\":\"y\",\"phone\":\"1\",\"extra\":{}}");
	if (!obj)
		return;
	static const char *const allowed[] = {"name", "phone", NULL};
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	hf_json_only_fields(obj, allowed, "", &fe);
	/* Every unknown field is named, in the order of the body. */
	CHECK_FERRS(&fe, "nmae/unknown_field extra/unknown_field");
	hf_ferrs_release(&fe);

	/* Inside a nested object the path names it. */
	hf_ferrs_init(&fe);
	static const char *const none[] = {NULL};
	hf_json_only_fields(json_object_get(obj, "extra"), none, "members[2]", &fe);
	HF_CHECK(hf_ferrs_count(&fe) == 0);
	hf_json_only_fields(obj, allowed + 1, "members[2]", &fe);
	CHECK_FERRS(&fe, "members[2].name/unknown_field members[2].nmae/unknown_field members[2].extra/unknown_field");
	hf_ferrs_release(&fe);
	json_decref(obj);
}

static void test_get_str(void)
{
	json_t *obj = parse_ok("{\"name\":\"  Wanjiru Kamau \",\"num\":5,\"empty\":\"   \",\"nul\":null,"
			       "\"utf\":\"\xc3\x91\x61nd\xc3\xba\",\"emoji\":\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\","
			       "\"tab\":\"a\\tb\",\"c1\":\"a\\u0085b\",\"del\":\"a\\u007fb\",\"nl\":\"a\\nb\"}");
	if (!obj)
		return;
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	const char *s = NULL;

	/* Trimmed of surrounding spaces, inner spaces kept. */
	HF_CHECK(hf_json_get_str(obj, "", "name", true, 1, 13, &fe, &s) && s && strcmp(s, "Wanjiru Kamau") == 0);
	HF_CHECK(!hf_ferrs_any(&fe));
	/* The length bounds apply to the trimmed value. */
	HF_CHECK(!hf_json_get_str(obj, "", "name", true, 1, 12, &fe, &s));
	CHECK_FERRS(&fe, "name/length");

	/* Length is counted in characters: "Ñandú" is 5 characters in 7 bytes. */
	s = NULL;
	HF_CHECK(hf_json_get_str(obj, "", "utf", true, 5, 5, &fe, &s) && s && strlen(s) == 7);
	HF_CHECK(!hf_json_get_str(obj, "", "utf", true, 6, 10, &fe, &s));
	HF_CHECK(hf_json_get_str(obj, "", "emoji", true, 2, 2, &fe, &s));
	HF_CHECK(!hf_json_get_str(obj, "", "emoji", true, 0, 1, &fe, &s));
	CHECK_FERRS(&fe, "name/length utf/length emoji/length");
	hf_ferrs_release(&fe);

	/* Missing, null and blank. */
	hf_ferrs_init(&fe);
	s = "untouched";
	HF_CHECK(!hf_json_get_str(obj, "", "absent", true, 1, 10, &fe, &s));
	HF_CHECK(!hf_json_get_str(obj, "p", "nul", true, 1, 10, &fe, &s));
	HF_CHECK(!hf_json_get_str(obj, "", "empty", true, 1, 10, &fe, &s));
	HF_CHECK(strcmp(s, "untouched") == 0);
	CHECK_FERRS(&fe, "absent/required p.nul/required empty/required");
	hf_ferrs_release(&fe);

	/* Optional and missing: false, and no error recorded. */
	hf_ferrs_init(&fe);
	HF_CHECK(!hf_json_get_str(obj, "", "absent", false, 1, 10, &fe, &s));
	HF_CHECK(!hf_json_get_str(obj, "", "nul", false, 1, 10, &fe, &s));
	HF_CHECK(!hf_ferrs_any(&fe));

	/* Wrong type and control characters. */
	HF_CHECK(!hf_json_get_str(obj, "", "num", true, 0, 10, &fe, &s));
	HF_CHECK(ferr_is(&fe, 0, "num", "wrong_type"));
	static const char *const ctl[] = {"tab", "c1", "del", "nl"};
	for (size_t i = 0; i < HF_ARRAY_LEN(ctl); i++) {
		HF_CHECK_MSG(!hf_json_get_str(obj, "", ctl[i], true, 0, 10, &fe, &s), "%s accepted", ctl[i]);
		HF_CHECK_MSG(ferr_is(&fe, i + 1, ctl[i], "bad_characters"), "%s: code %s", ctl[i],
			     ferr_get(&fe, i + 1, "code"));
	}
	hf_ferrs_release(&fe);
	json_decref(obj);
}

static void test_get_int_bool(void)
{
	json_t *obj = parse_ok("{\"age\":30,\"neg\":-5,\"real\":30.0,\"str\":\"30\",\"big\":9223372036854775807,"
			       "\"t\":true,\"f\":false,\"one\":1,\"nul\":null}");
	if (!obj)
		return;
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	int64_t v = 0;
	HF_CHECK(hf_json_get_int(obj, "", "age", true, 0, 150, &fe, &v) && v == 30);
	HF_CHECK(hf_json_get_int(obj, "", "neg", true, -5, 5, &fe, &v) && v == -5);
	HF_CHECK(hf_json_get_int(obj, "", "big", true, INT64_MIN, INT64_MAX, &fe, &v) && v == INT64_MAX);
	HF_CHECK(!hf_ferrs_any(&fe));
	v = 77;
	HF_CHECK(!hf_json_get_int(obj, "", "age", true, 31, 150, &fe, &v));
	HF_CHECK(!hf_json_get_int(obj, "", "age", true, 0, 29, &fe, &v));
	HF_CHECK(!hf_json_get_int(obj, "", "real", true, 0, 150, &fe, &v));
	HF_CHECK(!hf_json_get_int(obj, "", "str", true, 0, 150, &fe, &v));
	HF_CHECK(!hf_json_get_int(obj, "", "missing", true, 0, 150, &fe, &v));
	HF_CHECK(!hf_json_get_int(obj, "", "missing", false, 0, 150, &fe, &v));
	HF_CHECK(v == 77);
	CHECK_FERRS(&fe, "age/out_of_range age/out_of_range real/wrong_type str/wrong_type missing/required");
	hf_ferrs_release(&fe);

	hf_ferrs_init(&fe);
	bool b = false;
	HF_CHECK(hf_json_get_bool(obj, "", "t", true, &fe, &b) && b);
	HF_CHECK(hf_json_get_bool(obj, "", "f", true, &fe, &b) && !b);
	b = true;
	HF_CHECK(!hf_json_get_bool(obj, "", "one", true, &fe, &b) && b);
	HF_CHECK(!hf_json_get_bool(obj, "", "str", true, &fe, &b));
	HF_CHECK(!hf_json_get_bool(obj, "x", "nul", true, &fe, &b));
	HF_CHECK(!hf_json_get_bool(obj, "", "nul", false, &fe, &b));
	CHECK_FERRS(&fe, "one/wrong_type str/wrong_type x.nul/required");
	hf_ferrs_release(&fe);
	json_decref(obj);
}

static void test_get_enum(void)
{
	json_t *obj = parse_ok("{\"sex\":\"female\",\"bad\":\"Female\",\"num\":1,\"sp\":\" female\"}");
	if (!obj)
		return;
	static const char *const sexes[] = {"female", "male", "unknown", NULL};
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	const char *s = NULL;
	/* On success *out is the caller's own string, safe to keep after the JSON is freed. */
	HF_CHECK(hf_json_get_enum(obj, "", "sex", true, sexes, &fe, &s) && s == sexes[0]);
	s = NULL;
	HF_CHECK(!hf_json_get_enum(obj, "", "bad", true, sexes, &fe, &s) && s == NULL);
	HF_CHECK(!hf_json_get_enum(obj, "", "sp", true, sexes, &fe, &s));
	HF_CHECK(!hf_json_get_enum(obj, "", "num", true, sexes, &fe, &s));
	HF_CHECK(!hf_json_get_enum(obj, "", "absent", true, sexes, &fe, &s));
	HF_CHECK(!hf_json_get_enum(obj, "", "absent", false, sexes, &fe, &s));
	CHECK_FERRS(&fe, "bad/not_allowed sp/not_allowed num/wrong_type absent/required");
	/* The message lists what is allowed. */
	HF_CHECK(strstr(ferr_get(&fe, 0, "message"), "female, male, unknown") != NULL);
	hf_ferrs_release(&fe);
	json_decref(obj);
}

static void test_ferrs_cap(void)
{
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	HF_CHECK(!hf_ferrs_any(&fe) && hf_ferrs_count(&fe) == 0);
	for (int i = 0; i < 150; i++)
		hf_ferrs_add(&fe, "f", "code", "error %d", i);
	HF_CHECK(hf_ferrs_count(&fe) == 100);
	HF_CHECK(strcmp(ferr_get(&fe, 99, "message"), "error 99") == 0);
	hf_ferrs_release(&fe);

	/* A body with hundreds of unknown fields still produces at most 100 errors. */
	struct hf_buf body;
	hf_buf_init(&body, 1 << 16);
	HF_CHECK(hf_buf_append_str(&body, "{") == HF_OK);
	for (int i = 0; i < 500; i++)
		HF_CHECK(hf_buf_appendf(&body, "%s\"f%d\":%d", i ? "," : "", i, i) == HF_OK);
	HF_CHECK(hf_buf_append_str(&body, "}") == HF_OK);
	json_t *obj = parse_ok(hf_buf_cstr(&body));
	hf_buf_release(&body);
	if (!obj)
		return;
	static const char *const allowed[] = {"name", NULL};
	hf_ferrs_init(&fe);
	hf_json_only_fields(obj, allowed, "", &fe);
	HF_CHECK(hf_ferrs_count(&fe) == 100);
	hf_ferrs_release(&fe);
	json_decref(obj);
}

static void test_unknown_field_long_name(void)
{
	/* A hostile client's field name longer than the error path: the error must still be reported. */
	struct hf_buf body;
	hf_buf_init(&body, 4096);
	HF_CHECK(hf_buf_append_str(&body, "{\"") == HF_OK);
	for (int i = 0; i < 300; i++)
		HF_CHECK(hf_buf_append_str(&body, "\xc3\xa9") == HF_OK); /* é */
	HF_CHECK(hf_buf_append_str(&body, "\":1}") == HF_OK);
	json_t *obj = parse_ok(hf_buf_cstr(&body));
	hf_buf_release(&body);
	if (!obj)
		return;
	static const char *const allowed[] = {"name", NULL};
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	hf_json_only_fields(obj, allowed, "", &fe);
	HF_CHECK_MSG(hf_ferrs_count(&fe) == 1, "%zu errors for one unknown field", hf_ferrs_count(&fe));
	HF_CHECK(strcmp(ferr_get(&fe, 0, "code"), "unknown_field") == 0);
	hf_ferrs_release(&fe);
	json_decref(obj);
}

static void test_dump_and_utf8(void)
{
	json_t *obj = parse_ok("{ \"a\" : [1, 2], \"b\" : \"\xc3\xa9\" }");
	if (obj) {
		struct hf_buf out;
		hf_buf_init(&out, 64);
		HF_CHECK(hf_json_dump(obj, &out) == HF_OK);
		HF_CHECK_MSG(strcmp(hf_buf_cstr(&out), "{\"a\":[1,2],\"b\":\"\xc3\xa9\"}") == 0, "got %s", hf_buf_cstr(&out));
		hf_buf_release(&out);
		hf_buf_init(&out, 10);
		HF_CHECK(hf_json_dump(obj, &out) == HF_ETOOBIG && out.len == 0);
		hf_buf_release(&out);
		json_decref(obj);
	}
	HF_CHECK(hf_utf8_len("") == 0);
	HF_CHECK(hf_utf8_len("abc") == 3);
	HF_CHECK(hf_utf8_len("\xc3\x91\x61nd\xc3\xba") == 5);
	HF_CHECK(hf_utf8_len("\xe1\x8a\xa0\xf0\x9f\x98\x80") == 2);

	HF_CHECK(hf_utf8_valid_text("Wanjiru", 7));
	HF_CHECK(hf_utf8_valid_text("\xc3\x91\x61nd\xc3\xba", 7));
	HF_CHECK(hf_utf8_valid_text("", 0));
	HF_CHECK(!hf_utf8_valid_text("a\tb", 3));
	HF_CHECK(!hf_utf8_valid_text("a\x7f", 2));
	HF_CHECK(!hf_utf8_valid_text("\xc2\x85", 2));     /* C1 control NEL */
	HF_CHECK(!hf_utf8_valid_text("\xc3", 1));         /* truncated */
	HF_CHECK(!hf_utf8_valid_text("\xc0\xaf", 2));     /* overlong */
	HF_CHECK(!hf_utf8_valid_text("\xe0\x80\xaf", 3)); /* overlong */
	HF_CHECK(!hf_utf8_valid_text("\xed\xa0\x80", 3)); /* surrogate */
	HF_CHECK(!hf_utf8_valid_text("\xf4\x90\x80\x80", 4));
	HF_CHECK(!hf_utf8_valid_text("\xf8\x88\x80\x80\x80", 5));
	HF_CHECK(!hf_utf8_valid_text("\x80", 1));
	/* Only n bytes are looked at. */
	HF_CHECK(hf_utf8_valid_text("ab\xff", 2));
}

int main(void)
{
	HF_TEST(test_parse_refusals);
	HF_TEST(test_parse_bad_utf8);
	HF_TEST(test_parse_depth);
	HF_TEST(test_only_fields);
	HF_TEST(test_get_str);
	HF_TEST(test_get_int_bool);
	HF_TEST(test_get_enum);
	HF_TEST(test_ferrs_cap);
	HF_TEST(test_unknown_field_long_name);
	HF_TEST(test_dump_and_utf8);
	return hf_test_summary();
}
