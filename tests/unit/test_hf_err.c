/* test_hf_err.c - every error code has a log name, an HTTP status and a user-facing message.
 *
 * The table is append-only and read by logs, metrics and every API answer: a code added without its row
 * would reach a client as an empty message or a 0 status, so each one is checked here.
 */
#include "hf_base.h"
#include "hf_err.h"

#include <string.h>

#include "hf_test.h"

static bool is_log_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
			return false;
	return true;
}

static void test_every_code(void)
{
	for (int e = 0; e < HF_ERR_COUNT_; e++) {
		const char *name = hf_err_name((hf_err)e);
		const char *msg = hf_err_message((hf_err)e);
		int status = hf_err_http_status((hf_err)e);
		HF_CHECK_MSG(is_log_name(name) && strcmp(name, "unknown") != 0, "code %d name '%s'", e, name ? name : "(null)");
		HF_CHECK_MSG(status >= 200 && status <= 599, "code %d status %d", e, status);
		HF_CHECK_MSG(e == HF_OK || status >= 400, "error code %d answers %d", e, status);
		/* For a person: capitalised, and for an error a sentence ending with a full stop. */
		HF_CHECK_MSG(msg && msg[0] >= 'A' && msg[0] <= 'Z' && (e == HF_OK || msg[strlen(msg) - 1] == '.'),
			     "code %d message '%s'", e, msg ? msg : "(null)");
		for (int other = 0; other < e; other++)
			HF_CHECK_MSG(strcmp(name, hf_err_name((hf_err)other)) != 0, "codes %d and %d share name %s", other, e,
				     name);
	}
}

static void test_known_mappings(void)
{
	static const struct {
		hf_err e;
		const char *name;
		int status;
	} want[] = {
		{HF_OK, "ok", 200},
		{HF_EINVAL, "invalid", 400},
		{HF_ENOTFOUND, "not_found", 404},
		{HF_ECONFLICT, "conflict", 409},
		{HF_ETOOBIG, "too_big", 413},
		{HF_EAUTH, "auth", 401},
		{HF_EFORBIDDEN, "forbidden", 403},
		{HF_ETIMEOUT, "timeout", 504},
		{HF_EUPSTREAM, "upstream", 502},
		{HF_EDB, "db", 500},
		{HF_EDB_RETRY, "db_retry", 503},
		{HF_EDEVICE, "device", 500},
		{HF_EINTERNAL, "internal", 500},
		{HF_EIO, "io", 500},
		{HF_EMETHOD, "method", 405},
		{HF_ERATELIMIT, "rate_limited", 429},
		{HF_ELOCKED, "locked", 423},
	};
	HF_CHECK(HF_ARRAY_LEN(want) == HF_ERR_COUNT_);
	for (size_t i = 0; i < HF_ARRAY_LEN(want); i++) {
		HF_CHECK_MSG(strcmp(hf_err_name(want[i].e), want[i].name) == 0, "code %d is '%s'", (int)want[i].e,
			     hf_err_name(want[i].e));
		HF_CHECK_MSG(hf_err_http_status(want[i].e) == want[i].status, "code %d answers %d", (int)want[i].e,
			     hf_err_http_status(want[i].e));
	}
	/* The codes themselves never move: logs and metrics from older versions stay comparable. */
	HF_CHECK(HF_OK == 0 && HF_EINVAL == 1 && HF_EDB_RETRY == 10 && HF_EMETHOD == 14);
	/* A retryable database error tells the user nothing was changed. */
	HF_CHECK(strstr(hf_err_message(HF_EDB_RETRY), "nothing was changed") != NULL);
}

static void test_out_of_range(void)
{
	static const int bad[] = {HF_ERR_COUNT_, HF_ERR_COUNT_ + 1, -1, 1000000};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		hf_err e = (hf_err)bad[i];
		HF_CHECK(strcmp(hf_err_name(e), "unknown") == 0);
		HF_CHECK(hf_err_http_status(e) == 500);
		HF_CHECK(strcmp(hf_err_message(e), "Internal error.") == 0);
	}
}

int main(void)
{
	HF_TEST(test_every_code);
	HF_TEST(test_known_mappings);
	HF_TEST(test_out_of_range);
	return hf_test_summary();
}
