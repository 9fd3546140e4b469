/* main.c - hifadhi-core: the command line of the core service (serve, migrate, keygen, import, ...).
 *
 * Every command loads and validates the same config file first, so a mistake in it is found by the
 * first command an operator runs, not by the service at 3 a.m. getenv is allowed here and nowhere else.
 */
#include "hf_base.h"
#include "api.h"
#include "app.h"
#include "audit.h"
#include "auth.h"
#include "alert_rules.h"
#include "biometric.h"
#include "cases.h"
#include "disburse.h"
#include "hf_httpc.h"
#include "ledger.h"
#include "notices.h"
#include "payments.h"
#include "recon.h"
#include "db.h"
#include "demo_gen.h"
#include "export.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_http.h"
#include "hf_log.h"
#include "hf_qr.h"
#include "import.h"
#include "kiosk.h"
#include "migrate.h"
#include "quality.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hifadhi-core [-c CONFIG] [-o section.key=value]... COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  serve                         run the HTTP API until SIGTERM or SIGINT\n"
		"  migrate                       apply sql/NNNN_*.sql migrations not yet applied\n"
		"  keygen                        create missing crypto keys in crypto.key_dir (never overwrites)\n"
		"  import FILE.csv [--actor NAME] [--report OUT.csv]\n"
		"                                import households and members; rejected rows go to the report\n"
		"                                (default FILE.csv.rejected.csv)\n"
		"  export [--location PATH] [OUT.csv|-]\n"
		"                                export the registry as CSV (the import format)\n"
		"  quality [--stale-days N] [--json]\n"
		"                                data quality report: completeness, invalid values, duplicates\n"
		"  gen [--households N] [--seed S] [--bad-rate P] [--dup-rate P]\n"
		"                                synthetic registry CSV on stdout (needs no config)\n"
		"  user add NAME --role ROLE [--password-file F] [--phone P] [--language L] [--json]\n"
		"                                create a staff account with TOTP enrolled now (prints the QR code,\n"
		"                                the otpauth URI and recovery codes); password from F or stdin\n"
		"  user contact NAME [--phone P|none] [--language L]\n"
		"                                the phone and language used to SMS staff about their work\n"
		"  user list | disable NAME | enable NAME | reset-mfa NAME | reset-password NAME [--password-file F]\n"
		"                                recover and manage staff accounts (ends the account's sessions)\n"
		"  audit verify [--json]         check the whole audit trail; names the first entry tampered with\n"
		"  audit checkpoint              sign a checkpoint at the head of every audit stripe\n"
		"  ledger check                  prove the books: balanced postings, no fund below zero, paid once\n"
		"  alerts scan [--at T]          run the payment alert rules (pending, uncollected, ineligible, shared)\n"
		"  payments expire [--at T]      expire kiosk payments past their cycle's pay_until\n"
		"  payments disburse             one disbursement pass by hand (serve does it continuously)\n"
		"  reconcile CYCLE FILE.csv|-    match a provider statement against the cycle's ledger\n"
		"  cases export [--type T] [--all] [--with-text] [OUT.csv|-]\n"
		"                                cases as CSV for reports (open ones unless --all); confidential ones masked\n"
		"  cases sweep [--at YYYY-MM-DDTHH:MM:SSZ]\n"
		"                                escalate every open case whose SLA ran out (serve does it every 30 s)\n"
		"  config-check                  validate the config file, workflows and eligibility rules\n");
}

static hf_err load_config(const char *path, const char *const *ov, size_t nov, struct hf_config **out)
{
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	hf_err e = hf_config_load(core_config_decls, core_config_ndecls, path, ov, nov, out, &err);
	if (!e)
		e = app_rules_from_config(*out, &err);
	if (!e)
		alert_rules_configure((int)hf_config_int(*out, "payments.pending_alert_s"),
				      (int)hf_config_int(*out, "payments.uncollected_days"));
	if (e)
		fprintf(stderr, "hifadhi-core: config: %s\n", hf_buf_cstr(&err));
	hf_buf_release(&err);
	return e;
}

static hf_err read_secret(const char *path, struct hf_buf *out)
{
	hf_err err = hf_file_read(path, 1024, true, out);
	if (err)
		hf_log(HF_LOG_ERROR, "core.main", "msg=\"cannot read secret file\" path=%s err=%s", path, hf_err_name(err));
	return err;
}

/* Fills a db_conf for the service account (migrate = false) or the migration account. */
static hf_err db_conf_from(const struct hf_config *cfg, bool migrate, struct db_conf *c, struct hf_buf *password)
{
	const char *pwfile = hf_config_str(cfg, migrate ? "db.migrate_password_file" : "db.password_file");
	hf_err err = HF_OK;
	if (pwfile[0]) {
		err = read_secret(pwfile, password);
		if (err)
			return err;
	} else {
		hf_buf_init(password, 1);
	}
	*c = (struct db_conf){
		.socket = hf_config_str(cfg, "db.socket"),
		.host = hf_config_str(cfg, "db.host"),
		.port = (int)hf_config_int(cfg, "db.port"),
		.name = hf_config_str(cfg, "db.name"),
		.user = hf_config_str(cfg, migrate ? "db.migrate_user" : "db.user"),
		.password = hf_buf_cstr(password),
		.connect_timeout_s = (int)hf_config_int(cfg, "db.connect_timeout_s"),
		.rw_timeout_s = (int)hf_config_int(cfg, "db.rw_timeout_s"),
		.multi_statements = migrate,
	};
	return HF_OK;
}

static void wipe_release(struct hf_buf *b)
{
	if (b->data)
		memset(b->data, 0, b->cap);
	hf_buf_release(b);
}

static hf_err open_keys(const struct hf_config *cfg)
{
	const char *dir = hf_config_str(cfg, "crypto.key_dir");
	hf_err err = hf_keyring_load(dir, (int)hf_config_int(cfg, "crypto.active_key_id"), &g_app.keys);
	if (!err)
		err = audit_init(dir, (int)hf_config_int(cfg, "audit.stripes"), (int)hf_config_int(cfg, "audit.checkpoint_every"),
				 hf_config_bool(cfg, "audit.enabled"));
	if (err)
		hf_log(HF_LOG_ERROR, "core.main", "msg=\"cannot load crypto keys (run keygen?)\" dir=%s err=%s", dir,
		       hf_err_name(err));
	return err;
}

static int cmd_migrate(const struct hf_config *cfg)
{
	struct db_conf c;
	struct hf_buf pw;
	struct db *db = NULL;
	int applied = 0;
	hf_err err = db_conf_from(cfg, true, &c, &pw);
	if (err)
		return 1;
	err = db_open(&c, &db);
	wipe_release(&pw);
	if (err) {
		fprintf(stderr, "hifadhi-core: migrate: cannot connect to the database (%s)\n", hf_err_name(err));
		return 1;
	}
	err = migrate_run(db, hf_config_str(cfg, "paths.sql_dir"), &applied);
	if (!err)
		err = migrate_grants(db, hf_config_str(cfg, "db.user"), hf_config_str(cfg, "db.user_hosts"));
	db_close(db);
	if (err) {
		fprintf(stderr, "hifadhi-core: migrate failed (%s); see the log above\n", hf_err_name(err));
		return 1;
	}
	fprintf(stderr, "hifadhi-core: migrations applied: %d (schema up to date)\n", applied);
	return 0;
}

static volatile sig_atomic_t g_stop;

static int cmd_serve(const struct hf_config *cfg)
{
	int rc = 1;
	struct db_conf c;
	struct hf_buf pw;
	struct hf_http_server *srv = NULL;
	if (open_keys(cfg))
		return 1;
	/* Only the server uses the kiosk key (templates, allowances, receipt checks): CLI commands run without it. */
	if (biometric_keys_load(hf_config_str(cfg, "crypto.key_dir")))
		return 1;
	if (db_conf_from(cfg, false, &c, &pw))
		return 1;
	hf_err err = db_global_init(&c);
	wipe_release(&pw);
	if (err)
		return 1;
	if (auth_init(cfg)) {
		db_global_release();
		return 1;
	}
	kiosk_configure((int)hf_config_int(cfg, "kiosk.enrol_ttl_s"), (int)hf_config_int(cfg, "kiosk.enrol_max_failures"));
	{
		struct hf_buf werr;
		hf_buf_init(&werr, 2048);
		err = cases_init(cfg, &werr);
		if (!err)
			err = notices_init(cfg, &werr);
		if (!err)
			err = disburse_init(cfg, &werr);
		if (err)
			hf_log(HF_LOG_ERROR, "core.main",
			       "msg=\"cannot load workflows, eligibility rules, SMS templates or providers\" detail=\"%s\"",
			       hf_buf_cstr(&werr));
		hf_buf_release(&werr);
		if (err) {
			auth_shutdown();
			db_global_release();
			return 1;
		}
	}

	/* Signals are taken synchronously by this thread; the pool threads never see them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	api_init();
	struct hf_http_opts o = {
		.bind = hf_config_str(cfg, "http.bind"),
		.port = (int)hf_config_int(cfg, "http.port"),
		.threads = (int)hf_config_int(cfg, "http.threads"),
		.max_body = (size_t)hf_config_int(cfg, "http.max_body"),
		.max_resp = (size_t)hf_config_int(cfg, "http.max_response"),
		.conn_timeout_s = (int)hf_config_int(cfg, "http.conn_timeout_s"),
		.max_conns = (int)hf_config_int(cfg, "http.max_conns"),
		.log_place = "core.http",
		.access_log = hf_config_bool(cfg, "http.access_log"),
	};
	err = hf_http_start(&o, api_handle, NULL, &srv);
	if (err) {
		hf_log(HF_LOG_ERROR, "core.main", "msg=\"cannot listen\" bind=%s port=%d", o.bind, o.port);
		goto out_db;
	}
	hf_log(HF_LOG_INFO, "core.main", "msg=\"serving\" bind=%s port=%d threads=%d", o.bind, o.port, o.threads);
	if (disburse_start() != HF_OK)
		hf_log(HF_LOG_ERROR, "core.main", "msg=\"cannot start the disbursement threads\"");
	if (!db_alive())
		hf_log(HF_LOG_WARN, "core.main", "msg=\"database not reachable yet; answering 503 until it is\"");
	int sig = 0;
	for (unsigned ticks = 1;; ticks++) {
		/* Every 30 s: drop kiosk nonces past the replay window; every 5 minutes: sign the audit heads not
		 * yet covered (besides the checkpoint every audit.checkpoint_every entries), so a quiet stripe's
		 * newest entries wait at most 5 minutes for a signature. Several instances may both do it. */
		struct timespec tick = {30, 0};
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig > 0)
			break;
		struct db *hk = NULL;
		if (db_acquire(&hk) == HF_OK) {
			hf_err e = kiosk_prune_nonces(hk, (int)hf_config_int(cfg, "kiosk.window_s"));
			if (!e && ticks % 10 == 0)
				e = audit_checkpoint_all(hk);
			struct cases_sweep_result sr;
			if (!e)
				e = cases_sweep(hk, hf_now_ms(), &sr);
			if (!e && sr.escalated)
				hf_log(HF_LOG_INFO, "core.main", "msg=\"SLA sweep\" escalated=%llu staff_sms=%d seconds=%.3f",
				       (unsigned long long)sr.escalated, sr.staff_notified, sr.seconds);
			int expired = 0;
			if (!e)
				e = payments_expire(hk, hf_now_ms(), &expired);
			struct alert_scan_result ar;
			if (!e)
				e = alert_rules_scan(hk, hf_now_ms(), &ar);
			if (!e && (expired || ar.raised))
				hf_log(HF_LOG_INFO, "core.main", "msg=\"payments housekeeping\" expired=%d alerts=%d", expired,
				       ar.raised);
			if (e)
				hf_log(HF_LOG_WARN, "core.main", "msg=\"housekeeping failed; retried in 30 s\" err=%s", hf_err_name(e));
		}
	}
	hf_log(HF_LOG_INFO, "core.main", "msg=\"stopping: finishing requests in progress\" signal=%d", sig);
	hf_http_stop(srv);
	disburse_stop();
	struct db *last = NULL;
	if (db_acquire(&last) == HF_OK && audit_checkpoint_all(last) != HF_OK)
		hf_log(HF_LOG_WARN, "core.main", "msg=\"cannot sign the final audit checkpoints\"");
	hf_log(HF_LOG_INFO, "core.main", "msg=\"stopped\"");
	rc = 0;
out_db:
	disburse_shutdown();
	notices_shutdown();
	cases_shutdown();
	auth_shutdown();
	db_global_release();
	return rc;
}

static int with_cli_db(const struct hf_config *cfg, struct db **out)
{
	struct db_conf c;
	struct hf_buf pw;
	if (open_keys(cfg) || db_conf_from(cfg, false, &c, &pw))
		return 1;
	hf_err err = db_open(&c, out);
	wipe_release(&pw);
	if (err) {
		fprintf(stderr, "hifadhi-core: cannot connect to the database (%s)\n", hf_err_name(err));
		return 1;
	}
	return 0;
}

/* dir/name with 32 random bytes in hex (mode 0600) unless it exists: the gateway's service credential, the
 * seed of core's kiosk keys. */
static hf_err keygen_secret(const char *dir, const char *name)
{
	char path[1100];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return HF_EINVAL;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? HF_OK : HF_EIO;
	uint8_t raw[32];
	char hex[65];
	hf_random_bytes(raw, sizeof(raw));
	hf_hex(raw, sizeof(raw), hex);
	hex[64] = '\n';
	bool ok = write(fd, hex, 65) == 65;
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(hex, sizeof(hex));
	ok = close(fd) == 0 && ok;
	return ok ? HF_OK : HF_EIO;
}

/* The audit trail names the operating-system account that ran a CLI command. */
static struct audit_actor cli_actor(char name[65])
{
	struct passwd *pw = getpwuid(getuid());
	snprintf(name, 65, "%s", pw && pw->pw_name ? pw->pw_name : "unknown");
	return (struct audit_actor){"cli", name, "local", ""};
}

/* A password from a file or standard input: the first line, without its newline. */
static hf_err read_password(const char *file, struct hf_buf *out)
{
	hf_err err;
	if (file) {
		err = hf_file_read(file, 1024, true, out);
	} else {
		if (isatty(STDIN_FILENO))
			fprintf(stderr, "password (12-128 characters), then Enter: ");
		char line[1024];
		err = fgets(line, sizeof(line), stdin) ? hf_buf_append(out, line, strlen(line)) : HF_EIO;
		memset(line, 0, sizeof(line));
	}
	if (err)
		return err;
	size_t n = 0;
	while (n < out->len && out->data[n] != '\n' && out->data[n] != '\r')
		n++;
	out->len = n;
	return hf_buf_append(out, "", 1) == HF_OK ? (out->len--, HF_OK) : HF_ETOOBIG;
}

static void print_errors(const char *what, struct hf_ferrs *fe, const char *msg)
{
	if (msg && msg[0])
		fprintf(stderr, "hifadhi-core: %s: %s\n", what, msg);
	size_t i;
	json_t *e;
	json_array_foreach(fe->list, i, e)
		fprintf(stderr, "hifadhi-core: %s: %s: %s\n", what, json_string_value(json_object_get(e, "field")),
			json_string_value(json_object_get(e, "message")));
}

static int user_add_print(json_t *out, bool as_json)
{
	if (as_json) {
		char *t = json_dumps(out, JSON_INDENT(2));
		puts(t);
		free(t);
		return 0;
	}
	const char *uri = json_string_value(json_object_get(out, "otpauth_uri"));
	struct hf_buf qr;
	hf_buf_init(&qr, 64 * 1024);
	if (hf_qr_text(uri, &qr) == HF_OK)
		printf("Scan with an authenticator app (Google Authenticator, FreeOTP, Aegis...):\n\n%s\n", hf_buf_cstr(&qr));
	hf_buf_release(&qr);
	printf("account:        %s (%s)\n", json_string_value(json_object_get(out, "username")),
	       json_string_value(json_object_get(out, "role")));
	printf("otpauth URI:    %s\n", uri);
	printf("secret:         %s\n", json_string_value(json_object_get(out, "secret")));
	printf("recovery codes (each works once; keep them offline):\n");
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(out, "recovery_codes"), i, c)
		printf("  %s\n", json_string_value(c));
	return 0;
}

static int cmd_user(const struct hf_config *cfg, int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *sub = argv[1], *name = NULL, *role = NULL, *pwfile = NULL, *phone = NULL, *lang = NULL;
	bool as_json = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc)
			pwfile = argv[++i];
		else if (strcmp(argv[i], "--phone") == 0 && i + 1 < argc)
			phone = argv[++i];
		else if (strcmp(argv[i], "--language") == 0 && i + 1 < argc)
			lang = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (!name && argv[i][0] != '-')
			name = argv[i];
		else {
			fprintf(stderr, "hifadhi-core: user: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (strcmp(sub, "list") != 0 && !name) {
		fprintf(stderr, "hifadhi-core: user %s: name the account\n", sub);
		return 2;
	}
	struct db *db = NULL;
	if (with_cli_db(cfg, &db))
		return 1;
	char me[65];
	struct audit_actor who = cli_actor(me);
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	char msg[256] = "";
	json_t *out = NULL, *body = NULL;
	hf_err err = HF_OK;
	struct hf_buf pw;
	hf_buf_init(&pw, 1024);
	int rc = 1;
	if (strcmp(sub, "add") == 0 || strcmp(sub, "reset-password") == 0) {
		if (strcmp(sub, "add") == 0 && !role) {
			fprintf(stderr, "hifadhi-core: user add: --role is one of admin, registrar, case_worker, "
					"payment_officer, auditor, support\n");
			rc = 2;
			goto out;
		}
		err = read_password(pwfile, &pw);
		if (err) {
			fprintf(stderr, "hifadhi-core: user %s: cannot read the password\n", sub);
			goto out;
		}
		if (auth_init(cfg))
			goto out;
		body = strcmp(sub, "add") == 0
			       ? json_pack("{s:s, s:s, s:s}", "username", name, "role", role, "password", hf_buf_cstr(&pw))
			       : json_pack("{s:s}", "password", hf_buf_cstr(&pw));
		if (phone)
			json_object_set_new(body, "phone", json_string(phone));
		if (lang)
			json_object_set_new(body, "language", json_string(lang));
		err = strcmp(sub, "add") == 0 ? auth_user_create(db, &who, body, true, &fe, msg, sizeof(msg), &out)
					      : auth_user_update(db, &who, name, body, &fe, msg, sizeof(msg), &out);
		auth_shutdown();
	} else if (strcmp(sub, "contact") == 0) {
		body = json_object();
		if (phone)
			json_object_set_new(body, "phone", strcmp(phone, "none") == 0 ? json_null() : json_string(phone));
		if (lang)
			json_object_set_new(body, "language", json_string(lang));
		err = auth_user_update(db, &who, name, body, &fe, msg, sizeof(msg), &out);
	} else if (strcmp(sub, "list") == 0) {
		err = auth_user_list(db, &out);
		as_json = true;
	} else if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
		body = json_pack("{s:b}", "disabled", strcmp(sub, "disable") == 0);
		err = auth_user_update(db, &who, name, body, &fe, msg, sizeof(msg), &out);
	} else if (strcmp(sub, "reset-mfa") == 0) {
		err = auth_user_reset_mfa(db, &who, name, msg, sizeof(msg), &out);
	} else {
		fprintf(stderr, "hifadhi-core: user: unknown subcommand '%s'\n", sub);
		rc = 2;
		goto out;
	}
	if (err) {
		print_errors(sub, &fe, msg[0] ? msg : hf_err_message(err));
		rc = err == HF_EINVAL ? 2 : 1;
		goto out;
	}
	if (strcmp(sub, "add") == 0) {
		rc = user_add_print(out, as_json);
	} else {
		char *t = json_dumps(out, JSON_INDENT(2));
		puts(t);
		free(t);
		rc = 0;
	}
out:
	if (body) {
		json_t *p = json_object_get(body, "password");
		if (p)
			sodium_memzero((void *)json_string_value(p), json_string_length(p));
	}
	if (pw.data)
		sodium_memzero(pw.data, pw.cap);
	hf_buf_release(&pw);
	json_decref(body);
	json_decref(out);
	hf_ferrs_release(&fe);
	db_close(db);
	return rc;
}

static int cmd_audit(const struct hf_config *cfg, int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "verify") && strcmp(argv[1], "checkpoint"))) {
		usage(stderr);
		return 2;
	}
	bool as_json = argc > 2 && strcmp(argv[2], "--json") == 0;
	struct db *db = NULL;
	if (with_cli_db(cfg, &db))
		return 1;
	int rc = 1;
	if (strcmp(argv[1], "checkpoint") == 0) {
		hf_err err = audit_checkpoint_all(db);
		if (err)
			fprintf(stderr, "hifadhi-core: audit checkpoint failed (%s)\n", hf_err_name(err));
		rc = err ? 1 : 0;
	} else {
		struct audit_verify_result res;
		int64_t t0 = hf_mono_us();
		hf_err err = audit_verify(db, &res);
		double secs = (double)(hf_mono_us() - t0) / 1e6;
		if (err) {
			fprintf(stderr, "hifadhi-core: audit verify could not run (%s)\n", hf_err_name(err));
		} else if (as_json) {
			json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:f, s:s?, s:I, s:i, s:I}", "ok", res.ok, "entries",
					      (json_int_t)res.entries, "checkpoints", (json_int_t)res.checkpoints, "stripes",
					      (json_int_t)res.stripes, "seconds", secs, "problem", res.ok ? NULL : res.problem,
					      "bad_id", (json_int_t)res.bad_id, "bad_stripe", res.bad_stripe, "bad_seq",
					      (json_int_t)res.bad_seq);
			char *t = json_dumps(o, JSON_INDENT(2));
			puts(t);
			free(t);
			json_decref(o);
			rc = res.ok ? 0 : 3;
		} else {
			if (res.ok)
				printf("audit trail OK: %llu entries in %llu stripes, %llu signed checkpoints (%.2f s)\n",
				       (unsigned long long)res.entries, (unsigned long long)res.stripes,
				       (unsigned long long)res.checkpoints, secs);
			else
				printf("audit trail TAMPERED: %s\n(%llu entries checked in %.2f s)\n", res.problem,
				       (unsigned long long)res.entries, secs);
			rc = res.ok ? 0 : 3;
		}
	}
	db_close(db);
	return rc;
}

/* Loads the workflows and eligibility rules for a CLI command; says what is wrong with them. */
static int cases_load(const struct hf_config *cfg)
{
	struct hf_buf werr;
	hf_buf_init(&werr, 2048);
	hf_err err = cases_init(cfg, &werr);
	if (err)
		fprintf(stderr, "hifadhi-core: %s\n", hf_buf_cstr(&werr));
	hf_buf_release(&werr);
	return err ? 2 : 0;
}

/* cases export [--type T] [--all] [--with-text] [OUT.csv|-]: cases for reports, confidential ones masked. */
static int cases_export_cmd(const struct hf_config *cfg, int argc, char **argv)
{
	const char *type = NULL, *file = "-";
	bool all = false, with_text = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
			type = argv[++i];
		else if (strcmp(argv[i], "--all") == 0)
			all = true;
		else if (strcmp(argv[i], "--with-text") == 0)
			with_text = true;
		else if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
			file = argv[i];
		else {
			fprintf(stderr, "hifadhi-core: cases export: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (cases_load(cfg))
		return 2;
	struct db *db = NULL;
	int rc = with_cli_db(cfg, &db);
	FILE *out = NULL;
	if (!rc) {
		out = strcmp(file, "-") == 0 ? stdout : fopen(file, "w");
		if (!out) {
			fprintf(stderr, "hifadhi-core: cases export: cannot write %s\n", file);
			rc = 1;
		}
	}
	if (!rc) {
		/* Audited first, like every export: no audit, no export. */
		char me[65];
		struct audit_actor who = cli_actor(me);
		json_t *d = json_pack("{s:s?, s:b, s:b, s:s}", "type", type, "all", all, "with_text", with_text, "to",
				      out == stdout ? "stdout" : "file");
		struct audit_event ev = {"case.export", "case", "", "ok", NULL, NULL, d};
		hf_err err = audit_record(db, &who, &ev);
		json_decref(d);
		uint64_t rows = 0;
		if (!err)
			err = cases_export(db, out, type, all, with_text, &rows);
		if (err) {
			fprintf(stderr, "hifadhi-core: cases export failed (%s)\n", hf_err_name(err));
			rc = 1;
		} else {
			fprintf(stderr, "hifadhi-core: %llu cases exported\n", (unsigned long long)rows);
		}
	}
	if (out && out != stdout && fclose(out) != 0)
		rc = 1;
	if (db)
		db_close(db);
	cases_shutdown();
	return rc;
}

/* --at YYYY-MM-DDTHH:MM:SSZ: a command run as if at that moment (tests, drills). */
static int parse_at(const char *cmd, const char *arg, int64_t *now_ms)
{
	struct tm tm = {0};
	const char *end = strptime(arg, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		fprintf(stderr, "hifadhi-core: %s: --at wants YYYY-MM-DDTHH:MM:SSZ\n", cmd);
		return 2;
	}
	*now_ms = (int64_t)timegm(&tm) * 1000;
	return 0;
}

static void print_json(json_t *o)
{
	char *t = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	puts(t ? t : "{}");
	free(t);
}

/* ledger check: proves the books (exit 1 when they do not hold). */
static int cmd_ledger(const struct hf_config *cfg, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[1], "check") != 0) {
		usage(stderr);
		return 2;
	}
	struct db *db = NULL;
	if (with_cli_db(cfg, &db))
		return 1;
	bool ok = false;
	json_t *report = NULL;
	hf_err err = ledger_check(db, &ok, &report);
	db_close(db);
	if (err) {
		fprintf(stderr, "hifadhi-core: ledger check could not run (%s)\n", hf_err_name(err));
		return 1;
	}
	print_json(report);
	json_decref(report);
	fprintf(stderr, "hifadhi-core: %s\n", ok ? "the books balance" : "THE BOOKS DO NOT BALANCE: see problems");
	return ok ? 0 : 1;
}

/* alerts scan [--at T]: the whole-picture alert rules once; payments expire [--at T]; payments disburse. */
static int cmd_alerts(const struct hf_config *cfg, int argc, char **argv)
{
	int64_t now_ms = hf_now_ms();
	if (argc < 2 || strcmp(argv[1], "scan") != 0 || (argc != 2 && argc != 4) ||
	    (argc == 4 && (strcmp(argv[2], "--at") != 0 || parse_at("alerts scan", argv[3], &now_ms)))) {
		usage(stderr);
		return 2;
	}
	struct db *db = NULL;
	if (with_cli_db(cfg, &db))
		return 1;
	struct alert_scan_result res;
	hf_err err = alert_rules_scan(db, now_ms, &res);
	db_close(db);
	if (err) {
		fprintf(stderr, "hifadhi-core: alerts scan failed (%s)\n", hf_err_name(err));
		return 1;
	}
	printf("{\"raised\": %d, \"seconds\": %.3f}\n", res.raised, res.seconds);
	return 0;
}

static int cmd_payments(const struct hf_config *cfg, int argc, char **argv)
{
	int64_t now_ms = hf_now_ms();
	bool expire = argc >= 2 && strcmp(argv[1], "expire") == 0, disb = argc == 2 && strcmp(argv[1], "disburse") == 0;
	if ((!expire && !disb) || (expire && argc != 2 && argc != 4) ||
	    (expire && argc == 4 && (strcmp(argv[2], "--at") != 0 || parse_at("payments expire", argv[3], &now_ms)))) {
		usage(stderr);
		return 2;
	}
	struct db *db = NULL;
	if (with_cli_db(cfg, &db))
		return 1;
	hf_err err;
	if (expire) {
		int n = 0;
		err = payments_expire(db, now_ms, &n);
		if (!err)
			printf("{\"expired\": %d}\n", n);
	} else {
		struct hf_buf e;
		hf_buf_init(&e, 1024);
		err = disburse_init(cfg, &e);
		if (err)
			fprintf(stderr, "hifadhi-core: %s\n", hf_buf_cstr(&e));
		hf_buf_release(&e);
		int sent = 0, queried = 0;
		if (!err)
			err = disburse_pass(db, &sent, &queried);
		if (!err)
			printf("{\"sent\": %d, \"queried\": %d}\n", sent, queried);
		disburse_shutdown();
	}
	db_close(db);
	if (err)
		fprintf(stderr, "hifadhi-core: payments %s failed (%s)\n", argv[1], hf_err_name(err));
	return err ? 1 : 0;
}

/* reconcile CYCLE FILE.csv|- : a provider statement against the cycle's ledger. */
static int cmd_reconcile(const struct hf_config *cfg, int argc, char **argv)
{
	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	FILE *in = strcmp(argv[2], "-") == 0 ? stdin : fopen(argv[2], "re");
	if (!in) {
		fprintf(stderr, "hifadhi-core: reconcile: cannot open %s\n", argv[2]);
		return 2;
	}
	struct db *db = NULL;
	int rc = 1;
	if (!with_cli_db(cfg, &db)) {
		char me[65];
		struct audit_actor who = cli_actor(me);
		json_t *report = NULL;
		hf_err err = recon_run_file(db, &who, argv[1], in, &report);
		if (err) {
			fprintf(stderr, "hifadhi-core: reconcile failed (%s)\n", hf_err_name(err));
			rc = err == HF_EINVAL || err == HF_ENOTFOUND ? 2 : 1;
		} else {
			print_json(report);
			rc = 0;
		}
		json_decref(report);
		db_close(db);
	}
	if (in != stdin)
		fclose(in);
	return rc;
}

/* cases sweep [--at YYYY-MM-DDTHH:MM:SSZ]: one SLA sweep now (or as if at that moment: tests, drills). */
static int cmd_cases(const struct hf_config *cfg, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "export") == 0)
		return cases_export_cmd(cfg, argc, argv);
	if (argc < 2 || strcmp(argv[1], "sweep") != 0) {
		usage(stderr);
		return 2;
	}
	int64_t now_ms = hf_now_ms();
	if (argc == 4 && strcmp(argv[2], "--at") == 0) {
		if (parse_at("cases sweep", argv[3], &now_ms))
			return 2;
	} else if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (cases_load(cfg))
		return 2;
	struct db *db = NULL;
	int rc = 1;
	if (!with_cli_db(cfg, &db)) {
		struct cases_sweep_result res;
		hf_err err = cases_sweep(db, now_ms, &res);
		if (err)
			fprintf(stderr, "hifadhi-core: cases sweep failed (%s)\n", hf_err_name(err));
		else
			printf("{\"checked\": %llu, \"escalated\": %llu, \"staff_notified\": %d, \"seconds\": %.3f}\n",
			       (unsigned long long)res.checked, (unsigned long long)res.escalated, res.staff_notified,
			       res.seconds);
		rc = err ? 1 : 0;
		db_close(db);
	}
	cases_shutdown();
	return rc;
}

static int cmd_import(const struct hf_config *cfg, int argc, char **argv)
{
	const char *file = NULL, *actor = "cli:import", *report_path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--actor") == 0 && i + 1 < argc)
			actor = argv[++i];
		else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc)
			report_path = argv[++i];
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	char def_report[4096];
	if (!report_path) {
		snprintf(def_report, sizeof(def_report), "%s.rejected.csv", file);
		report_path = def_report;
	}
	FILE *report = fopen(report_path, "w");
	if (!report) {
		fprintf(stderr, "hifadhi-core: import: cannot write the report %s\n", report_path);
		return 1;
	}
	struct db *db = NULL;
	if (with_cli_db(cfg, &db)) {
		fclose(report);
		return 1;
	}
	struct import_stats st = {0};
	hf_err err = import_run(db, file, actor, report, stderr, &st);
	db_close(db);
	fclose(report);
	if (err) {
		fprintf(stderr, "hifadhi-core: import stopped (%s): %s\n", hf_err_name(err),
			err == HF_EINVAL ? "the file is not an import file; nothing was imported"
					 : "rows committed before the stop stay imported; fix the cause and run it again");
		return 1;
	}
	fprintf(stderr, "hifadhi-core: rejected rows (if any) are listed in %s\n", report_path);
	return 0;
}

static int cmd_export(const struct hf_config *cfg, int argc, char **argv)
{
	const char *location = NULL, *file = "-";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--location") == 0 && i + 1 < argc)
			location = argv[++i];
		else if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
			file = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	FILE *out = strcmp(file, "-") == 0 ? stdout : fopen(file, "w");
	if (!out) {
		fprintf(stderr, "hifadhi-core: export: cannot write %s\n", file);
		return 1;
	}
	struct db *db = NULL;
	int rc = with_cli_db(cfg, &db);
	if (!rc) {
		/* Audited first: an export that fails half-way has still shown data. No audit, no export. */
		char me[65];
		struct audit_actor who = cli_actor(me);
		json_t *d = json_pack("{s:s?, s:s}", "location", location, "to", out == stdout ? "stdout" : "file");
		struct audit_event ev = {"registry.export", "registry", "", "ok", NULL, NULL, d};
		hf_err err = audit_record(db, &who, &ev);
		json_decref(d);
		if (err)
			fprintf(stderr, "hifadhi-core: export refused: cannot write its audit entry (%s)\n", hf_err_name(err));
		else
			err = export_run(db, out, location);
		if (err) {
			fprintf(stderr, "hifadhi-core: export failed: %s\n", hf_err_message(err));
			rc = 1;
		}
		db_close(db);
	}
	if (out != stdout && fclose(out) != 0)
		rc = 1;
	else if (out == stdout && fflush(stdout) != 0)
		rc = 1;
	return rc;
}

static int cmd_quality(const struct hf_config *cfg, int argc, char **argv)
{
	int64_t stale = hf_config_int(cfg, "quality.stale_days");
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stale-days") == 0 && i + 1 < argc) {
			if (hf_parse_i64(argv[++i], 1, 3650, &stale)) {
				fprintf(stderr, "hifadhi-core: --stale-days takes 1..3650\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else {
			usage(stderr);
			return 2;
		}
	}
	struct db *db = NULL;
	if (with_cli_db(cfg, &db))
		return 1;
	json_t *report = NULL;
	hf_err err = quality_report(db, (int)stale, &report);
	db_close(db);
	if (err) {
		fprintf(stderr, "hifadhi-core: quality report failed: %s\n", hf_err_message(err));
		return 1;
	}
	if (as_json)
		json_dumpf(report, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	else
		quality_print(report, stdout);
	json_decref(report);
	return 0;
}

int main(int argc, char **argv)
{
	hf_httpc_global_init(); /* before any thread: libcurl's global state */
	const char *config_path = NULL;
	const char *overrides[MAX_OVERRIDES];
	size_t nov = 0;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			if (nov == MAX_OVERRIDES) {
				fprintf(stderr, "hifadhi-core: too many -o options\n");
				return 2;
			}
			overrides[nov++] = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	int cargc = argc - i;
	char **cargv = argv + i;
	if (strcmp(cmd, "gen") == 0)
		return demo_gen_main(cargc, cargv);
	if (!config_path)
		config_path = getenv("HIFADHI_CONFIG");

	if (hf_crypto_init()) {
		fprintf(stderr, "hifadhi-core: libsodium failed to initialise\n");
		return 1;
	}
	struct hf_config *cfg = NULL;
	if (load_config(config_path, overrides, nov, &cfg))
		return 2;
	enum hf_log_level lvl;
	if (!hf_log_level_parse(hf_config_str(cfg, "log.level"), &lvl)) {
		fprintf(stderr, "hifadhi-core: config: log.level must be debug, info, warn or error\n");
		hf_config_free(cfg);
		return 2;
	}
	hf_log_set_level(lvl);
	hf_log_set_filter(hf_config_str(cfg, "log.filter"));

	int rc;
	if (strcmp(cmd, "serve") == 0) {
		rc = cmd_serve(cfg);
	} else if (strcmp(cmd, "migrate") == 0) {
		rc = cmd_migrate(cfg);
	} else if (strcmp(cmd, "keygen") == 0) {
		hf_err err = hf_keyring_generate(hf_config_str(cfg, "crypto.key_dir"));
		if (!err)
			err = audit_keygen(hf_config_str(cfg, "crypto.key_dir"));
		if (!err)
			err = keygen_secret(hf_config_str(cfg, "crypto.key_dir"), "gateway.secret");
		if (!err) /* the seed of core's kiosk keys (core/biometric.h) */
			err = keygen_secret(hf_config_str(cfg, "crypto.key_dir"), BIOMETRIC_KEY_FILE);
		if (err)
			fprintf(stderr, "hifadhi-core: keygen: cannot write keys in %s\n", hf_config_str(cfg, "crypto.key_dir"));
		rc = err ? 1 : 0;
	} else if (strcmp(cmd, "import") == 0) {
		rc = cmd_import(cfg, cargc, cargv);
	} else if (strcmp(cmd, "export") == 0) {
		rc = cmd_export(cfg, cargc, cargv);
	} else if (strcmp(cmd, "quality") == 0) {
		rc = cmd_quality(cfg, cargc, cargv);
	} else if (strcmp(cmd, "user") == 0) {
		rc = cmd_user(cfg, cargc, cargv);
	} else if (strcmp(cmd, "audit") == 0) {
		rc = cmd_audit(cfg, cargc, cargv);
	} else if (strcmp(cmd, "config-check") == 0) {
		struct hf_buf werr;
		hf_buf_init(&werr, 2048);
		if (cases_init(cfg, &werr) || notices_init(cfg, &werr) || disburse_init(cfg, &werr)) {
			fprintf(stderr, "hifadhi-core: %s\n", hf_buf_cstr(&werr));
			rc = 2;
		} else {
			fprintf(stderr, "hifadhi-core: config OK (workflows, eligibility rules, SMS templates and providers"
					" too)\n");
			rc = 0;
		}
		disburse_shutdown();
		notices_shutdown();
		cases_shutdown();
		hf_buf_release(&werr);
	} else if (strcmp(cmd, "cases") == 0) {
		rc = cmd_cases(cfg, cargc, cargv);
	} else if (strcmp(cmd, "ledger") == 0) {
		rc = cmd_ledger(cfg, cargc, cargv);
	} else if (strcmp(cmd, "alerts") == 0) {
		rc = cmd_alerts(cfg, cargc, cargv);
	} else if (strcmp(cmd, "payments") == 0) {
		rc = cmd_payments(cfg, cargc, cargv);
	} else if (strcmp(cmd, "reconcile") == 0) {
		rc = cmd_reconcile(cfg, cargc, cargv);
	} else {
		fprintf(stderr, "hifadhi-core: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = 2;
	}
	audit_shutdown();
	biometric_keys_free();
	hf_keyring_free(g_app.keys);
	hf_config_free(cfg);
	return rc;
}
