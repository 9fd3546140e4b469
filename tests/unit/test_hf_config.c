/* test_hf_config.c - declared configuration: defaults, types, bounds, overrides and file:line errors.
 *
 * A typo in production config must stop startup with a message an operator can act on, naming the file
 * and line. These tests write real INI files into a private temporary directory and check both the
 * values a program would read and the exact place each error points at.
 */
#include "hf_base.h"
#include "hf_config.h"

#include <string.h>

#include "hf_test.h"

static const struct hf_cfg_decl decls[] = {
	{"http.port", HF_CFG_INT, "8080", 1, 65535, false, "TCP port"},
	{"http.bind", HF_CFG_STR, "127.0.0.1", 1, 15, false, "IPv4 address to bind"},
	{"http.threads", HF_CFG_INT, NULL, 1, 64, false, "worker threads"},
	{"db.name", HF_CFG_STR, NULL, 1, 64, true, "database name"},
	{"db.password_file", HF_CFG_STR, "", 0, 0, false, "file holding the password"},
	{"log.debug", HF_CFG_BOOL, "false", 0, 0, false, "debug logging"},
	{"log.offset", HF_CFG_INT, "0", -100, 100, false, "signed value"},
};

static char tmpdir[64];

/* Writes name in the temp dir and returns its path (static storage, valid until the next call). */
static const char *ini(const char *name, const char *text)
{
	static char path[256];
	hf_test_write_file(tmpdir, name, text, 0600, path, sizeof(path));
	return path;
}

/* Loads and expects failure; returns the error text (static storage). */
static const char *load_fails(const char *path, const char *const *ov, size_t nov)
{
	static char msg[1024];
	struct hf_buf err;
	hf_buf_init(&err, 1023);
	struct hf_config *cfg = NULL;
	hf_err e = hf_config_load(decls, HF_ARRAY_LEN(decls), path, ov, nov, &cfg, &err);
	HF_CHECK_MSG(e == HF_EINVAL, "load returned %d", (int)e);
	HF_CHECK(cfg == NULL);
	HF_CHECK(err.len > 0);
	if (!hf_strlcpy(msg, hf_buf_cstr(&err), sizeof(msg)))
		HF_CHECK(!"error text over 1023 bytes");
	hf_config_free(cfg);
	hf_buf_release(&err);
	return msg;
}

static struct hf_config *load_ok(const char *path, const char *const *ov, size_t nov)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	struct hf_config *cfg = NULL;
	hf_err e = hf_config_load(decls, HF_ARRAY_LEN(decls), path, ov, nov, &cfg, &err);
	HF_CHECK_MSG(e == HF_OK && cfg != NULL, "load failed: %s", hf_buf_cstr(&err));
	HF_CHECK(err.len == 0);
	hf_buf_release(&err);
	return cfg;
}

/* True when msg starts with "<path>:<line>: " and mentions needle. */
static bool error_at(const char *msg, const char *path, int line, const char *needle)
{
	char want[512];
	int n = snprintf(want, sizeof(want), "%s:%d: ", path, line);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(want));
	return strncmp(msg, want, (size_t)n) == 0 && strstr(msg, needle) != NULL;
}

static void test_defaults(void)
{
	static const char *const ov[] = {"db.name=hifadhi"};
	struct hf_config *cfg = load_ok(NULL, ov, 1);
	if (!cfg)
		return;
	HF_CHECK(hf_config_int(cfg, "http.port") == 8080);
	HF_CHECK(strcmp(hf_config_str(cfg, "http.bind"), "127.0.0.1") == 0);
	HF_CHECK(hf_config_int(cfg, "http.threads") == 0); /* no default, not set */
	HF_CHECK(strcmp(hf_config_str(cfg, "db.name"), "hifadhi") == 0);
	HF_CHECK(strcmp(hf_config_str(cfg, "db.password_file"), "") == 0);
	HF_CHECK(!hf_config_bool(cfg, "log.debug"));
	HF_CHECK(hf_config_int(cfg, "log.offset") == 0);
	hf_config_free(cfg);
	hf_config_free(NULL);
}

static void test_file_values_and_types(void)
{
	const char *path = ini("types.ini", "; Hifadhi core\n"
					    "[http]\n"
					    "port = 9090\n"
					    "bind = 10.0.0.1\n"
					    "threads=4\n"
					    "\n"
					    "[db]\n"
					    "name = hifadhi_test\n"
					    "password_file = /etc/hifadhi/db.pw\n"
					    "[log]\n"
					    "debug = yes\n"
					    "offset = -100\n");
	struct hf_config *cfg = load_ok(path, NULL, 0);
	if (!cfg)
		return;
	HF_CHECK(hf_config_int(cfg, "http.port") == 9090);
	HF_CHECK(strcmp(hf_config_str(cfg, "http.bind"), "10.0.0.1") == 0);
	HF_CHECK(hf_config_int(cfg, "http.threads") == 4);
	HF_CHECK(strcmp(hf_config_str(cfg, "db.name"), "hifadhi_test") == 0);
	HF_CHECK(strcmp(hf_config_str(cfg, "db.password_file"), "/etc/hifadhi/db.pw") == 0);
	HF_CHECK(hf_config_bool(cfg, "log.debug"));
	HF_CHECK(hf_config_int(cfg, "log.offset") == -100);
	hf_config_free(cfg);

	/* Every accepted spelling of a boolean. */
	static const struct {
		const char *text;
		bool want;
	} bools[] = {{"true", true}, {"yes", true}, {"1", true}, {"false", false}, {"no", false}, {"0", false}};
	for (size_t i = 0; i < HF_ARRAY_LEN(bools); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[db]\nname = x\n[log]\ndebug = %s\n", bools[i].text);
		cfg = load_ok(ini("bool.ini", text), NULL, 0);
		if (!cfg)
			continue;
		HF_CHECK_MSG(hf_config_bool(cfg, "log.debug") == bools[i].want, "debug = %s", bools[i].text);
		hf_config_free(cfg);
	}
}

static void test_bounds(void)
{
	static const struct {
		const char *line; /* the third line of the file, after "[db]\nname = x\n" */
		const char *key;
	} bad[] = {
		{"[http]\nport = 0", "http.port"},
		{"[http]\nport = 65536", "http.port"},
		{"[http]\nport = -1", "http.port"},
		{"[http]\nport = 80x", "http.port"},
		{"[http]\nport = 8.5", "http.port"},
		{"[http]\nport = 99999999999999999999", "http.port"},
		{"[http]\nthreads = 65", "http.threads"},
		{"[http]\nbind = 255.255.255.255x", "http.bind"}, /* 16 characters > 15 */
		{"[http]\nbind =", "http.bind"},                   /* empty < 1 */
		{"[log]\ndebug = maybe", "log.debug"},
		{"[log]\ndebug = TRUE", "log.debug"},
		{"[log]\noffset = 101", "log.offset"},
		{"[log]\noffset = -101", "log.offset"},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		char text[256];
		snprintf(text, sizeof(text), "[db]\nname = x\n%s\n", bad[i].line);
		const char *path = ini("bounds.ini", text);
		const char *msg = load_fails(path, NULL, 0);
		HF_CHECK_MSG(error_at(msg, path, 4, bad[i].key), "for '%s' got: %s", bad[i].line, msg);
	}
	/* A bad boolean is reported without meaningless integer bounds. */
	const char *path = ini("boolmsg.ini", "[db]\nname = x\n[log]\ndebug = maybe\n");
	const char *msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(error_at(msg, path, 4, "true or false") && strstr(msg, "[0, 0]") == NULL, "got: %s", msg);

	/* The limits themselves are in range. */
	struct hf_config *cfg = load_ok(ini("limits.ini", "[db]\nname = x\n[http]\nport = 65535\nbind = 123.123.123.123\n"),
					NULL, 0);
	if (cfg) {
		HF_CHECK(hf_config_int(cfg, "http.port") == 65535);
		hf_config_free(cfg);
	}
}

static void test_unknown_key(void)
{
	const char *path = ini("unknown.ini", "[db]\n"
					      "name = x\n"
					      "; a comment\n"
					      "[http]\n"
					      "prot = 8080\n"
					      "port = 8081\n");
	const char *msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(error_at(msg, path, 5, "http.prot"), "got: %s", msg);

	/* A key outside any section is unknown too (none is declared there). */
	path = ini("nosection.ini", "port = 1\n[db]\nname = x\n");
	msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(error_at(msg, path, 1, "port"), "got: %s", msg);

	/* So is a known name in the wrong section. */
	path = ini("section.ini", "[db]\nname = x\nport = 1\n");
	msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(error_at(msg, path, 3, "db.port"), "got: %s", msg);
}

static void test_syntax_error(void)
{
	const char *path = ini("syntax.ini", "[db]\nname = x\nthis line has no equals sign\n");
	const char *msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(strncmp(msg, path, strlen(path)) == 0 && strstr(msg, ":3: ") != NULL, "got: %s", msg);

	path = ini("section_syntax.ini", "[db\nname = x\n");
	msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(strstr(msg, ":1: ") != NULL, "got: %s", msg);
}

static void test_missing_file(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmpdir);
	const char *msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(strncmp(msg, path, strlen(path)) == 0, "got: %s", msg);
}

static void test_missing_required(void)
{
	const char *path = ini("required.ini", "[http]\nport = 8080\n");
	const char *msg = load_fails(path, NULL, 0);
	HF_CHECK_MSG(strstr(msg, path) != NULL && strstr(msg, "db.name") != NULL && strstr(msg, "missing") != NULL,
		     "got: %s", msg);
	/* An empty value does not satisfy a required key... */
	msg = load_fails(NULL, (const char *const[]){"db.name="}, 1);
	HF_CHECK_MSG(strstr(msg, "db.name") != NULL, "got: %s", msg);
	/* ...and neither does nothing at all. */
	msg = load_fails(NULL, NULL, 0);
	HF_CHECK_MSG(strstr(msg, "db.name") != NULL && strstr(msg, "missing") != NULL, "got: %s", msg);
}

static void test_overrides(void)
{
	const char *path = ini("over.ini", "[http]\nport = 9090\n[db]\nname = fromfile\n");
	static const char *const ov[] = {"http.port=9999", "db.name=a=b", "log.debug=true", "http.bind=10.1.1.1"};
	struct hf_config *cfg = load_ok(path, ov, HF_ARRAY_LEN(ov));
	if (!cfg)
		return;
	HF_CHECK(hf_config_int(cfg, "http.port") == 9999);
	HF_CHECK(strcmp(hf_config_str(cfg, "db.name"), "a=b") == 0); /* only the first '=' separates */
	HF_CHECK(hf_config_bool(cfg, "log.debug"));
	HF_CHECK(strcmp(hf_config_str(cfg, "http.bind"), "10.1.1.1") == 0);
	hf_config_free(cfg);

	/* The last of several overrides of one key wins. */
	static const char *const twice[] = {"http.port=1", "http.port=2"};
	cfg = load_ok(path, twice, 2);
	if (cfg) {
		HF_CHECK(hf_config_int(cfg, "http.port") == 2);
		hf_config_free(cfg);
	}
}

static void test_bad_overrides(void)
{
	const char *path = ini("base.ini", "[db]\nname = x\n");
	static const struct {
		const char *ov;
		const char *needle;
	} bad[] = {
		{"http.port", "http.port"},       /* no '=' */
		{"http.port=", "http.port"},      /* empty integer */
		{"http.port=70000", "http.port"}, /* out of range */
		{"http.prot=80", "http.prot"},    /* unknown */
		{"port=80", "port"},              /* no section */
		{"=80", "''"},                    /* no key at all */
		{"log.debug=on", "log.debug"},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		const char *msg = load_fails(path, &bad[i].ov, 1);
		HF_CHECK_MSG(strncmp(msg, "override", 8) == 0 && strstr(msg, bad[i].needle) != NULL, "'%s' gave: %s",
			     bad[i].ov, msg);
	}
}

static void test_file_read(void)
{
	char path[256];
	hf_test_write_file(tmpdir, "secret", "s3cr3t\r\n\n", 0600, path, sizeof(path));
	struct hf_buf b;
	HF_CHECK(hf_file_read(path, 64, true, &b) == HF_OK);
	HF_CHECK(b.len == 6 && strcmp(hf_buf_cstr(&b), "s3cr3t") == 0);
	hf_buf_release(&b);
	HF_CHECK(hf_file_read(path, 64, false, &b) == HF_OK);
	HF_CHECK(b.len == 9 && memcmp(b.data, "s3cr3t\r\n\n", 10) == 0);
	hf_buf_release(&b);
	/* The cap applies to the file, before any newline is stripped. */
	HF_CHECK(hf_file_read(path, 8, true, &b) == HF_ETOOBIG);
	HF_CHECK(hf_file_read(path, 9, true, &b) == HF_OK);
	hf_buf_release(&b);

	/* Bigger than one read chunk. */
	static char big[10000];
	memset(big, 'k', sizeof(big) - 1);
	hf_test_write_file(tmpdir, "big", big, 0600, path, sizeof(path));
	HF_CHECK(hf_file_read(path, sizeof(big) - 1, false, &b) == HF_OK);
	HF_CHECK(b.len == sizeof(big) - 1 && strcmp(hf_buf_cstr(&b), big) == 0);
	hf_buf_release(&b);
	HF_CHECK(hf_file_read(path, sizeof(big) - 2, false, &b) == HF_ETOOBIG);

	/* On every failure out is left empty, so a cleanup label may release it whatever happened. */
	snprintf(path, sizeof(path), "%s/absent", tmpdir);
	memset(&b, 0xA5, sizeof(b));
	HF_CHECK(hf_file_read(path, 64, true, &b) == HF_EIO);
	if (HF_CHECK_MSG(b.data == NULL && b.len == 0, "out left uninitialised when the file cannot be opened"))
		hf_buf_release(&b);
	/* A directory cannot be read as a file. */
	HF_CHECK(hf_file_read(tmpdir, 64, true, &b) == HF_EIO);
}

int main(void)
{
	hf_test_tmpdir(tmpdir, sizeof(tmpdir));
	HF_TEST(test_defaults);
	HF_TEST(test_file_values_and_types);
	HF_TEST(test_bounds);
	HF_TEST(test_unknown_key);
	HF_TEST(test_syntax_error);
	HF_TEST(test_missing_file);
	HF_TEST(test_missing_required);
	HF_TEST(test_overrides);
	HF_TEST(test_bad_overrides);
	HF_TEST(test_file_read);
	hf_test_rmtree(tmpdir);
	return hf_test_summary();
}
