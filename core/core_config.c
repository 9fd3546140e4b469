/* core_config.c - every configuration key of hifadhi-core, declared once, and the rules built from them. */
#include "hf_base.h"
#include "app.h"

#include <string.h>

struct app g_app;

const struct hf_cfg_decl core_config_decls[] = {
	{"http.bind", HF_CFG_STR, "127.0.0.1", 7, 15, false, "numeric IPv4 address to listen on"},
	{"http.port", HF_CFG_INT, "8080", 1, 65535, false, "TCP port of the API"},
	{"http.threads", HF_CFG_INT, "4", 1, 256, false,
	 "request threads, each holding one DB connection; about 2 per CPU core (more only adds tail latency)"},
	{"http.max_body", HF_CFG_INT, "1048576", 1024, 16777216, false, "largest request body in bytes"},
	{"http.max_response", HF_CFG_INT, "16777216", 65536, 268435456, false, "largest response body in bytes"},
	{"http.conn_timeout_s", HF_CFG_INT, "30", 1, 3600, false, "idle connection timeout"},
	{"http.max_conns", HF_CFG_INT, "4096", 1, 100000, false, "simultaneous connections"},
	{"http.access_log", HF_CFG_BOOL, "true", 0, 0, false, "one log line per request"},
	{"db.socket", HF_CFG_STR, "", 0, 1024, false, "unix socket of MariaDB; empty = TCP host:port"},
	{"db.host", HF_CFG_STR, "127.0.0.1", 1, 255, false, "MariaDB host when no socket"},
	{"db.port", HF_CFG_INT, "3307", 1, 65535, false, "MariaDB port when no socket"},
	{"db.name", HF_CFG_STR, "hifadhi", 1, 64, false, "database name"},
	{"db.user", HF_CFG_STR, "hifadhi", 1, 80, false, "service account"},
	{"db.password_file", HF_CFG_STR, NULL, 1, 1024, true, "file holding the service account's password"},
	{"db.user_hosts", HF_CFG_STR, "localhost,127.0.0.1", 1, 200, false,
	 "hosts of the service account that migrate grants table privileges to (comma-separated)"},
	{"db.migrate_user", HF_CFG_STR, "hifadhi_admin", 1, 80, false, "account that applies migrations"},
	{"db.migrate_password_file", HF_CFG_STR, "", 0, 1024, false, "file holding the migration account's password"},
	{"db.connect_timeout_s", HF_CFG_INT, "3", 1, 60, false, "connect timeout"},
	{"db.rw_timeout_s", HF_CFG_INT, "10", 1, 600, false, "read/write timeout of one statement"},
	{"crypto.key_dir", HF_CFG_STR, NULL, 1, 1024, true, "folder of field-NN.key and bidx.key"},
	{"crypto.active_key_id", HF_CFG_INT, "1", 1, 255, false, "key id new values are sealed with"},
	{"log.level", HF_CFG_STR, "info", 4, 5, false, "debug, info, warn or error"},
	{"log.filter", HF_CFG_STR, "", 0, 63, false, "log only places starting with this"},
	{"paths.sql_dir", HF_CFG_STR, "sql", 1, 1024, false, "folder of NNNN_name.sql migrations"},
	{"national_id.min_length", HF_CFG_INT, "8", 1, 32, false, "shortest national ID"},
	{"national_id.max_length", HF_CFG_INT, "8", 1, 32, false, "longest national ID"},
	{"national_id.charset", HF_CFG_STR, "digits", 5, 6, false, "digits or alnum"},
	{"national_id.check", HF_CFG_STR, "luhn", 4, 8, false, "none, luhn, damm, verhoeff or mod11-2"},
	{"phone.country_code", HF_CFG_STR, "254", 0, 3, false, "calling code for numbers entered locally (0...)"},
	{"phone.min_digits", HF_CFG_INT, "10", 8, 15, false, "fewest digits of an E.164 number"},
	{"phone.max_digits", HF_CFG_INT, "12", 8, 15, false, "most digits of an E.164 number"},
	{"registry.languages", HF_CFG_STR, "sw,en,fr,so,luo,kik", 2, 200, false, "language codes accepted"},
	{"registry.min_birth_year", HF_CFG_INT, "1900", 1850, 2100, false, "earliest date of birth accepted"},
	{"registry.max_page", HF_CFG_INT, "100", 1, 1000, false, "largest page of search results"},
	{"registry.name_scan_max", HF_CFG_INT, "200000", 1000, 10000000, false,
	 "most records a name-fragment search decrypts before asking for a location"},
	{"quality.stale_days", HF_CFG_INT, "365", 1, 3650, false, "records not updated for this long are stale"},
	{"auth.idle_timeout_s", HF_CFG_INT, "1800", 2, 86400, false, "a staff session ends after this long unused"},
	{"auth.absolute_timeout_s", HF_CFG_INT, "43200", 5, 604800, false, "a staff session ends this long after login"},
	{"auth.max_failures", HF_CFG_INT, "10", 3, 100, false, "failed logins in a row that lock an account"},
	{"auth.lockout_s", HF_CFG_INT, "1800", 60, 86400, false, "how long a locked account stays locked"},
	{"auth.rate_address_burst", HF_CFG_INT, "30", 1, 100000, false, "login attempts one address may make at once"},
	{"auth.rate_address_per_min", HF_CFG_INT, "30", 1, 100000, false, "sustained login attempts per address"},
	{"auth.rate_account_burst", HF_CFG_INT, "10", 1, 1000, false, "login attempts on one account at once"},
	{"auth.rate_account_per_min", HF_CFG_INT, "10", 1, 1000, false, "sustained login attempts per account"},
	{"auth.mfa_issuer", HF_CFG_STR, "Hifadhi", 1, 40, false, "issuer name shown by authenticator apps"},
	{"auth.gateway_secret_file", HF_CFG_STR, "", 0, 1024, false,
	 "file holding the gateway's service credential (32+ chars); empty = no gateway access"},
	{"auth.trusted_proxy", HF_CFG_STR, "", 0, 15, false,
	 "address of the reverse proxy whose X-Forwarded-For names the client; empty = none"},
	{"kiosk.window_s", HF_CFG_INT, "300", 10, 3600, false, "signed kiosk requests older or newer than this are refused"},
	{"kiosk.enrol_max_failures", HF_CFG_INT, "5", 1, 100, false, "wrong codes that burn a kiosk enrolment code"},
	{"kiosk.enrol_ttl_s", HF_CFG_INT, "86400", 60, 2592000, false, "lifetime of a kiosk enrolment code"},
	{"workflow.dir", HF_CFG_STR, "deploy/workflows", 1, 1024, false,
	 "folder of the case workflows, one <case_type>.ini each (docs/workflows.md)"},
	{"eligibility.dir", HF_CFG_STR, "deploy/eligibility", 1, 1024, false,
	 "folder of the programmes' eligibility rules, one <PROGRAMME>.ini each (docs/eligibility.md)"},
	{"menus.dir", HF_CFG_STR, "menus", 1, 1024, false, "folder of the menus and SMS templates (menus/sms/<lang>.ini)"},
	{"payments.query_after_s", HF_CFG_INT, "60", 1, 86400, false,
	 "an unanswered or unconfirmed provider payment is queried this long after it was sent (then backing off)"},
	{"payments.pending_alert_s", HF_CFG_INT, "3600", 10, 604800, false,
	 "a payment still pending at the provider this long after sending raises an alert"},
	{"payments.uncollected_days", HF_CFG_INT, "7", 1, 365, false,
	 "a kiosk payment not collected this many days after pay_from raises an alert"},
	{"payments.send_threads", HF_CFG_INT, "8", 1, 64, false, "concurrent requests to payment providers"},
	{"payments.batch", HF_CFG_INT, "500", 1, 1000, false, "payments claimed per disbursement batch (one G2P envelope)"},
	{"payments.provider_timeout_ms", HF_CFG_INT, "10000", 100, 120000, false, "timeout of one provider request"},
	{"payments.callback_base", HF_CFG_STR, "http://127.0.0.1:8080", 8, 200, false,
	 "base URL providers call back (this service as the provider sees it)"},
	{"providers.b2c_name", HF_CFG_STR, "", 0, 32, false, "name of the mobile-money B2C provider; empty = none"},
	{"providers.b2c_url", HF_CFG_STR, "", 0, 300, false, "base URL of the B2C provider's API"},
	{"providers.b2c_secret_file", HF_CFG_STR, "", 0, 1024, false, "shared secret the B2C provider signs callbacks with"},
	{"providers.b2c_token_file", HF_CFG_STR, "", 0, 1024, false, "bearer token for requests to the B2C provider"},
	{"providers.g2p_name", HF_CFG_STR, "", 0, 32, false, "name of the G2P Connect provider; empty = none"},
	{"providers.g2p_url", HF_CFG_STR, "", 0, 300, false, "base URL of the G2P Connect disbursement API"},
	{"providers.g2p_public_key_file", HF_CFG_STR, "", 0, 1024, false,
	 "the G2P provider's Ed25519 public key (64 hex) that signs its callbacks"},
	{"providers.g2p_sender_id", HF_CFG_STR, "", 0, 64, false, "the G2P provider's sender_id in signed callbacks"},
	{"providers.g2p_token_file", HF_CFG_STR, "", 0, 1024, false, "bearer token for requests to the G2P provider"},
	{"providers.our_id", HF_CFG_STR, "hifadhi", 1, 64, false, "our sender_id and payer name towards providers"},
	{"audit.enabled", HF_CFG_BOOL, "true", 0, 0, false, "the audit trail; false ONLY for the audit-cost benchmark"},
	{"audit.stripes", HF_CFG_INT, "16", 1, 1024, false, "independent hash chains (concurrent writers)"},
	{"audit.checkpoint_every", HF_CFG_INT, "1000", 1, 1000000, false, "entries per stripe between signed checkpoints"},
};
const size_t core_config_ndecls = HF_ARRAY_LEN(core_config_decls);

hf_err app_rules_from_config(const struct hf_config *cfg, struct hf_buf *err)
{
	g_app.cfg = cfg;
	/* Read on every request: kept here rather than looked up in the config each time. */
	if (!hf_strlcpy(g_app.trusted_proxy, hf_config_str(cfg, "auth.trusted_proxy"), sizeof(g_app.trusted_proxy))) {
		hf_buf_note(err, "auth.trusted_proxy is longer than an IPv4 address");
		return HF_EINVAL;
	}
	g_app.kiosk_window_s = (int)hf_config_int(cfg, "kiosk.window_s");
	g_app.nid.min_len = (int)hf_config_int(cfg, "national_id.min_length");
	g_app.nid.max_len = (int)hf_config_int(cfg, "national_id.max_length");
	if (g_app.nid.min_len > g_app.nid.max_len) {
		hf_buf_note(err, "national_id.min_length is larger than national_id.max_length");
		return HF_EINVAL;
	}
	const char *cs = hf_config_str(cfg, "national_id.charset");
	if (strcmp(cs, "digits") && strcmp(cs, "alnum")) {
		hf_buf_note(err, "national_id.charset must be digits or alnum");
		return HF_EINVAL;
	}
	g_app.nid.alnum = strcmp(cs, "alnum") == 0;
	if (!hf_check_algo_parse(hf_config_str(cfg, "national_id.check"), &g_app.nid.check)) {
		hf_buf_note(err, "national_id.check must be none, luhn, damm, verhoeff or mod11-2");
		return HF_EINVAL;
	}
	/* mod11-2's check character may be X, so it needs letters; the others compute over digits only. */
	if (g_app.nid.check == HF_CHECK_MOD11_2 && !g_app.nid.alnum) {
		hf_buf_note(err, "national_id.check = mod11-2 needs national_id.charset = alnum (its check character can be X)");
		return HF_EINVAL;
	}
	if (g_app.nid.alnum && g_app.nid.check != HF_CHECK_NONE && g_app.nid.check != HF_CHECK_MOD11_2) {
		hf_buf_note(err, "national_id.check = luhn, damm or verhoeff works on digits only: use charset = digits");
		return HF_EINVAL;
	}
	const char *cc = hf_config_str(cfg, "phone.country_code");
	for (const char *p = cc; *p; p++)
		if (*p < '0' || *p > '9' || cc[0] == '0') {
			hf_buf_note(err, "phone.country_code must be digits not starting with 0");
			return HF_EINVAL;
		}
	hf_strlcpy(g_app.phone_cc, cc, sizeof(g_app.phone_cc));
	g_app.phone_min_digits = (int)hf_config_int(cfg, "phone.min_digits");
	g_app.phone_max_digits = (int)hf_config_int(cfg, "phone.max_digits");
	if (g_app.phone_min_digits > g_app.phone_max_digits) {
		hf_buf_note(err, "phone.min_digits is larger than phone.max_digits");
		return HF_EINVAL;
	}
	g_app.nlanguages = 0;
	const char *l = hf_config_str(cfg, "registry.languages");
	while (*l) {
		const char *end = strchr(l, ',');
		size_t n = end ? (size_t)(end - l) : strlen(l);
		if (n < 2 || n > 8 || g_app.nlanguages == APP_MAX_LANGUAGES) {
			hf_buf_note(err, "registry.languages: codes of 2-8 letters, at most %d", APP_MAX_LANGUAGES);
			return HF_EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			if (l[i] < 'a' || l[i] > 'z') {
				hf_buf_note(err, "registry.languages: codes are lower-case letters");
				return HF_EINVAL;
			}
		memcpy(g_app.languages[g_app.nlanguages], l, n);
		g_app.languages[g_app.nlanguages][n] = '\0';
		g_app.nlanguages++;
		l += n + (end ? 1 : 0);
	}
	g_app.min_birth_year = (int)hf_config_int(cfg, "registry.min_birth_year");
	g_app.max_page = (int)hf_config_int(cfg, "registry.max_page");
	g_app.name_scan_max = (int)hf_config_int(cfg, "registry.name_scan_max");
	g_app.stale_days = (int)hf_config_int(cfg, "quality.stale_days");
	return HF_OK;
}
