/* main.c - hifadhi-core: the command line of the core service (serve, migrate, keygen, import, ...).
 *
 * Every command loads and validates the same config file first, so a mistake in it is found by the
 * first command an operator runs, not by the service at 3 a.m. getenv is allowed here and nowhere else.
 */
#include "hf_base.h"
#include "api.h"
#include "app.h"
#include "db.h"
#include "demo_gen.h"
#include "export.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_http.h"
#include "hf_log.h"
#include "import.h"
#include "migrate.h"
#include "quality.h"

#include <signal.h>
#include <stdio.h>
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
		"  config-check                  validate the config file and exit\n");
}

static hf_err load_config(const char *path, const char *const *ov, size_t nov, struct hf_config **out)
{
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	hf_err e = hf_config_load(core_config_decls, core_config_ndecls, path, ov, nov, out, &err);
	if (!e)
		e = app_rules_from_config(*out, &err);
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
	hf_err err = hf_keyring_load(hf_config_str(cfg, "crypto.key_dir"), (int)hf_config_int(cfg, "crypto.active_key_id"),
				     &g_app.keys);
	if (err)
		hf_log(HF_LOG_ERROR, "core.main", "msg=\"cannot load crypto keys (run keygen?)\" dir=%s err=%s",
		       hf_config_str(cfg, "crypto.key_dir"), hf_err_name(err));
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
	if (db_conf_from(cfg, false, &c, &pw))
		return 1;
	hf_err err = db_global_init(&c);
	wipe_release(&pw);
	if (err)
		return 1;

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
	if (!db_alive())
		hf_log(HF_LOG_WARN, "core.main", "msg=\"database not reachable yet; answering 503 until it is\"");
	int sig = 0;
	sigwait(&set, &sig);
	hf_log(HF_LOG_INFO, "core.main", "msg=\"stopping: finishing requests in progress\" signal=%d", sig);
	hf_http_stop(srv);
	hf_log(HF_LOG_INFO, "core.main", "msg=\"stopped\"");
	rc = 0;
out_db:
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
		hf_err err = export_run(db, out, location);
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
		if (err)
			fprintf(stderr, "hifadhi-core: keygen: cannot write keys in %s\n", hf_config_str(cfg, "crypto.key_dir"));
		rc = err ? 1 : 0;
	} else if (strcmp(cmd, "import") == 0) {
		rc = cmd_import(cfg, cargc, cargv);
	} else if (strcmp(cmd, "export") == 0) {
		rc = cmd_export(cfg, cargc, cargv);
	} else if (strcmp(cmd, "quality") == 0) {
		rc = cmd_quality(cfg, cargc, cargv);
	} else if (strcmp(cmd, "config-check") == 0) {
		fprintf(stderr, "hifadhi-core: config OK\n");
		rc = 0;
	} else {
		fprintf(stderr, "hifadhi-core: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = 2;
	}
	hf_keyring_free(g_app.keys);
	hf_config_free(cfg);
	return rc;
}
