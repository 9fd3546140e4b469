/* migrate.c - ordered schema migrations. */
#include "hf_base.h"
#include "migrate.h"
#include "hf_buf.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MIGRATIONS 1000
#define MAX_SQL_FILE (4 * 1024 * 1024)

static bool name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len < 10 || len > 120 || strcmp(n + len - 4, ".sql") != 0)
		return false;
	for (int i = 0; i < 4; i++)
		if (n[i] < '0' || n[i] > '9')
			return false;
	if (n[4] != '_')
		return false;
	for (size_t i = 5; i < len - 4; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

hf_err migrate_run(struct db *db, const char *sql_dir, int *applied_out)
{
	hf_err err = HF_OK;
	char *names[MAX_MIGRATIONS];
	size_t n = 0;
	int applied = 0;
	DIR *d = opendir(sql_dir);
	if (!d) {
		hf_log(HF_LOG_ERROR, "core.migrate", "msg=\"cannot open the migrations folder\" dir=%s", sql_dir);
		return HF_EIO;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!name_ok(e->d_name))
			continue;
		if (n == MAX_MIGRATIONS) {
			err = HF_ETOOBIG;
			break;
		}
		names[n++] = hf_xstrdup(e->d_name);
	}
	closedir(d);
	if (err)
		goto out_names;
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 1; i < n; i++) {
		if (strncmp(names[i], names[i - 1], 4) == 0) {
			hf_log(HF_LOG_ERROR, "core.migrate", "msg=\"two migrations share a number\" a=%s b=%s", names[i - 1],
			       names[i]);
			err = HF_EINVAL;
			goto out_names;
		}
	}
	err = db_exec_plain(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
				"version INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(120) NOT NULL, "
				"sha256 CHAR(64) NOT NULL, applied_at DATETIME(3) NOT NULL"
				") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
	if (err)
		goto out_names;

	for (size_t i = 0; i < n; i++) {
		char path[4096], hex[65];
		uint8_t digest[32];
		struct hf_buf sql;
		int64_t version = 0;
		char num[5] = {names[i][0], names[i][1], names[i][2], names[i][3], '\0'};
		if (hf_parse_i64(num, 0, 9999, &version)) {
			err = HF_EINTERNAL;
			goto out_names;
		}
		snprintf(path, sizeof(path), "%s/%s", sql_dir, names[i]);
		err = hf_file_read(path, MAX_SQL_FILE, false, &sql);
		if (err) {
			hf_log(HF_LOG_ERROR, "core.migrate", "msg=\"cannot read migration\" file=%s", names[i]);
			goto out_names;
		}
		hf_sha256(sql.data ? sql.data : "", sql.len, digest);
		hf_hex(digest, sizeof(digest), hex);

		struct db_rows *rows = NULL;
		struct db_val p[] = {DB_I64(version)};
		err = db_query(db, "SELECT sha256 FROM schema_migrations WHERE version = ?", p, 1, &rows);
		if (err) {
			hf_buf_release(&sql);
			goto out_names;
		}
		bool done = db_rows_next(rows);
		bool same = done && strcmp(db_rows_str(rows, 0), hex) == 0;
		db_rows_free(rows);
		if (done) {
			hf_buf_release(&sql);
			if (!same) {
				hf_log(HF_LOG_ERROR, "core.migrate",
				       "msg=\"an applied migration was edited; add a new migration instead\" file=%s", names[i]);
				err = HF_ECONFLICT;
				goto out_names;
			}
			continue;
		}
		hf_log(HF_LOG_INFO, "core.migrate", "msg=\"applying migration\" file=%s", names[i]);
		err = db_exec_plain(db, hf_buf_cstr(&sql));
		hf_buf_release(&sql);
		if (err) {
			hf_log(HF_LOG_ERROR, "core.migrate", "msg=\"migration failed; repair before re-running\" file=%s",
			       names[i]);
			goto out_names;
		}
		struct db_val ins[] = {DB_I64(version), db_str(names[i]), db_str(hex)};
		err = db_exec(db, "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?, ?, ?, UTC_TIMESTAMP(3))",
			      ins, 3, NULL);
		if (err)
			goto out_names;
		applied++;
	}
	*applied_out = applied;
out_names:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return err;
}

static bool ident_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

hf_err migrate_grants(struct db *db, const char *app_user, const char *hosts)
{
	/* GRANT takes no bound parameters: every name is checked against a strict character set first. */
	if (!ident_ok(app_user, strlen(app_user)))
		return HF_EINVAL;
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
			      " AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT IN ('audit_log', 'audit_checkpoints',"
			      " 'schema_migrations', 'ledger_postings', 'ledger_entries') ORDER BY TABLE_NAME",
			      NULL, 0, &r);
	if (err)
		return err;
	while (!err && db_rows_next(r)) {
		const char *table = db_rows_str(r, 0);
		if (!ident_ok(table, strlen(table))) {
			err = HF_EINVAL;
			break;
		}
		for (const char *h = hosts; *h && !err;) {
			const char *e = strchr(h, ',');
			size_t n = e ? (size_t)(e - h) : strlen(h);
			if (!ident_ok(h, n)) {
				err = HF_EINVAL;
				break;
			}
			char sql[320];
			snprintf(sql, sizeof(sql), "GRANT UPDATE, DELETE ON `%s` TO '%s'@'%.*s'", table, app_user, (int)n, h);
			err = db_exec_plain(db, sql);
			h += n + (e ? 1 : 0);
		}
	}
	db_rows_free(r);
	if (err)
		hf_log(HF_LOG_ERROR, "core.migrate", "msg=\"cannot grant the service account its table privileges\" err=%s",
		       hf_err_name(err));
	return err;
}
