/* db.c - MariaDB Connector/C adapter: connections, prepared statements, results, error mapping.
 *
 * The one file that includes mysql.h. Prepared statements are cached per connection by their SQL text, so
 * a hot lookup prepares once per pool thread. Results are fetched with every column as bytes (integers
 * as their decimal text) into one allocation per query, which keeps the interface small and the copy
 * cheap for the short rows this service reads.
 */
#include "hf_base.h"
#include "db.h"
#include "hf_buf.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <errno.h>
#include <pthread.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 48
#define MAX_COLS 64
#define MAX_PARAMS 65535

struct stmt_entry {
	char *sql;
	MYSQL_STMT *stmt;
	uint64_t last_use;
};

struct db {
	MYSQL *my;
	struct stmt_entry cache[STMT_CACHE];
	uint64_t tick;
	bool broken; /* a connection-level error happened: reconnect before the next use */
	bool in_tx;  /* between db_begin and commit/rollback */
	uint64_t tx_serial; /* counts db_begin calls: tells one transaction from the next */
	const struct db_conf *reconnect_conf; /* pool connections only: how to reconnect by ourselves */
	char conflict_key[65];
};

struct cell {
	size_t off; /* into data */
	size_t len;
	bool null;
};

struct db_rows {
	size_t nrows, ncols, cur; /* cur = index of the current row + 1 */
	struct cell *cells;       /* nrows * ncols */
	char *data;
	/* streaming mode: one row at a time */
	bool streaming;
};

static struct db_conf g_conf;
static char *g_strs[5];
/* Each pool thread's connection, closed by the key's destructor when libmicrohttpd ends the thread (so a
 * clean shutdown leaks nothing). t_db caches it for speed. */
static pthread_key_t g_conn_key;
static _Thread_local struct db *t_db;

static void conn_key_destroy(void *p)
{
	db_close(p);
	t_db = NULL;
	mysql_thread_end();
}

struct db_val db_str(const char *s)
{
	return s ? (struct db_val){DB_T_STR, 0, s, strlen(s)} : DB_NULLV;
}

struct db_val db_strn(const char *s, size_t n)
{
	return (struct db_val){DB_T_STR, 0, s, n};
}

struct db_val db_blob_or_null(const void *p, size_t n)
{
	return n ? (struct db_val){DB_T_BLOB, 0, p, n} : DB_NULLV;
}

int64_t db_new_id(void)
{
	int64_t ms = hf_now_ms() - 1704067200000LL; /* 2024-01-01T00:00:00Z */
	if (ms < 0)
		ms = 0;
	return (ms << 20) | (int64_t)hf_random_uniform(1u << 20);
}

hf_err db_global_init(const struct db_conf *conf)
{
	if (mysql_library_init(0, NULL, NULL))
		return HF_EINTERNAL;
	if (pthread_key_create(&g_conn_key, conn_key_destroy))
		return HF_EINTERNAL;
	g_conf = *conf;
	const char **fields[] = {&g_conf.socket, &g_conf.host, &g_conf.name, &g_conf.user, &g_conf.password};
	for (size_t i = 0; i < HF_ARRAY_LEN(fields); i++) {
		g_strs[i] = hf_xstrdup(*fields[i] ? *fields[i] : "");
		*fields[i] = g_strs[i];
	}
	return HF_OK;
}

void db_global_release(void)
{
	db_release_thread();
	pthread_key_delete(g_conn_key);
	for (size_t i = 0; i < HF_ARRAY_LEN(g_strs); i++) {
		free(g_strs[i]);
		g_strs[i] = NULL;
	}
	mysql_library_end();
}

static bool errno_is_retry(unsigned e)
{
	switch (e) {
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_COMMANDS_OUT_OF_SYNC:
	case ER_LOCK_DEADLOCK:
	case ER_LOCK_WAIT_TIMEOUT:
	case ER_SERVER_SHUTDOWN:
	case ER_CONNECTION_KILLED:
	case ER_QUERY_INTERRUPTED:
	case ER_CON_COUNT_ERROR:
	case ER_TOO_MANY_USER_CONNECTIONS:
	case 4031: /* disconnected for inactivity */
	case 1047: /* ER_UNKNOWN_COM_ERROR: Galera node not ready ("WSREP has not yet prepared node") */
		return true;
	default:
		return false;
	}
}

static bool errno_is_connection(unsigned e)
{
	return e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR || e == CR_SERVER_GONE_ERROR ||
	       e == CR_SERVER_LOST || e == CR_SERVER_LOST_EXTENDED || e == CR_COMMANDS_OUT_OF_SYNC ||
	       e == ER_SERVER_SHUTDOWN || e == ER_CONNECTION_KILLED || e == 4031;
}

/* Takes the key name out of "Duplicate entry '...' for key 'name'": the value part is dropped unread. */
static void keep_conflict_key(struct db *db, const char *msg)
{
	db->conflict_key[0] = '\0';
	const char *k = strstr(msg, "for key '");
	if (!k)
		return;
	k += 9;
	const char *end = strchr(k, '\'');
	if (!end)
		return;
	const char *dot = memchr(k, '.', (size_t)(end - k)); /* "table.key" in newer servers */
	if (dot)
		k = dot + 1;
	size_t n = (size_t)(end - k);
	if (n >= sizeof(db->conflict_key))
		n = sizeof(db->conflict_key) - 1;
	memcpy(db->conflict_key, k, n);
	db->conflict_key[n] = '\0';
}

/* Maps a MariaDB error to our code and logs it once. The server's message is logged only for errors that
 * cannot carry row values (a duplicate-key or constraint message can quote personal data). */
static hf_err map_error(struct db *db, unsigned e, const char *msg, const char *what)
{
	if (e == ER_DUP_ENTRY || e == ER_DUP_KEY) {
		keep_conflict_key(db, msg);
		hf_log(HF_LOG_INFO, "core.db", "msg=\"unique key conflict\" key=%s", db->conflict_key);
		return HF_ECONFLICT;
	}
	if (e == ER_NO_REFERENCED_ROW_2 || e == ER_ROW_IS_REFERENCED_2 || e == 4025 /* CHECK constraint */) {
		hf_log(HF_LOG_WARN, "core.db", "msg=\"constraint refused the write\" errno=%u what=%s", e, what);
		return HF_ECONFLICT;
	}
	if (errno_is_retry(e)) {
		if (errno_is_connection(e) || e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR)
			db->broken = true;
		hf_log(HF_LOG_WARN, "core.db", "msg=\"database unavailable, retry later\" errno=%u what=%s", e, what);
		return HF_EDB_RETRY;
	}
	hf_log(HF_LOG_ERROR, "core.db", "msg=\"database error\" errno=%u what=%s detail=\"%.200s\"", e, what,
	       e >= 2000 && e < 3000 ? msg : "(server message withheld)");
	return HF_EDB;
}

/* Connector/C leaves an error met while streaming rows on the connection, not the statement. */
static hf_err map_fetch_error(struct db *db, MYSQL_STMT *st)
{
	if (mysql_stmt_errno(st))
		return map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "fetch");
	return map_error(db, mysql_errno(db->my), mysql_error(db->my), "fetch");
}

static void stmt_cache_clear(struct db *db)
{
	for (size_t i = 0; i < STMT_CACHE; i++) {
		if (db->cache[i].stmt)
			mysql_stmt_close(db->cache[i].stmt);
		free(db->cache[i].sql);
		db->cache[i] = (struct stmt_entry){0};
	}
}

static hf_err connect_with(const struct db_conf *c, struct db *db)
{
	db->my = mysql_init(NULL);
	if (!db->my)
		return HF_EINTERNAL;
	unsigned ct = (unsigned)c->connect_timeout_s, rw = (unsigned)c->rw_timeout_s;
	mysql_optionsv(db->my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_optionsv(db->my, MYSQL_OPT_READ_TIMEOUT, &rw);
	mysql_optionsv(db->my, MYSQL_OPT_WRITE_TIMEOUT, &rw);
	mysql_optionsv(db->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/* Every session in UTC and strict: a bad value is an error, never a silent truncation. The longer
	 * GROUP_CONCAT lets the quality report list up to 100 ids of a duplicate group (default cap: 1 KiB). */
	mysql_optionsv(db->my, MYSQL_INIT_COMMAND, "SET time_zone='+00:00', group_concat_max_len=65536, sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'");
	bool use_socket = c->socket && c->socket[0];
	if (!mysql_real_connect(db->my, use_socket ? NULL : c->host, c->user, c->password, c->name,
				use_socket ? 0 : (unsigned)c->port, use_socket ? c->socket : NULL,
				c->multi_statements ? CLIENT_MULTI_STATEMENTS : 0)) {
		unsigned e = mysql_errno(db->my);
		hf_err err;
		if (e == ER_ACCESS_DENIED_ERROR || e == ER_BAD_DB_ERROR || e == ER_DBACCESS_DENIED_ERROR) {
			hf_log(HF_LOG_ERROR, "core.db", "msg=\"cannot log in to the database\" errno=%u detail=\"%.200s\"", e,
			       mysql_error(db->my));
			err = HF_EDB;
		} else {
			hf_log(HF_LOG_WARN, "core.db", "msg=\"cannot connect to the database\" errno=%u", e);
			err = HF_EDB_RETRY;
		}
		mysql_close(db->my);
		db->my = NULL;
		return err;
	}
	db->broken = false;
	return HF_OK;
}

hf_err db_open(const struct db_conf *conf, struct db **out)
{
	struct db *db = hf_xcalloc(1, sizeof(*db));
	hf_err err = connect_with(conf, db);
	if (err) {
		free(db);
		return err;
	}
	*out = db;
	return HF_OK;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	stmt_cache_clear(db);
	if (db->my)
		mysql_close(db->my);
	free(db);
}

hf_err db_acquire(struct db **out)
{
	if (t_db && t_db->broken) {
		db_close(t_db);
		t_db = NULL;
		pthread_setspecific(g_conn_key, NULL);
	}
	if (!t_db) {
		hf_err err = db_open(&g_conf, &t_db);
		if (err)
			return err;
		t_db->reconnect_conf = &g_conf;
		pthread_setspecific(g_conn_key, t_db);
	}
	*out = t_db;
	return HF_OK;
}

void db_release_thread(void)
{
	db_close(t_db);
	t_db = NULL;
	pthread_setspecific(g_conn_key, NULL);
}

static hf_err get_stmt(struct db *db, const char *sql, MYSQL_STMT **out)
{
	size_t free_slot = STMT_CACHE, lru = 0;
	db->tick++;
	for (size_t i = 0; i < STMT_CACHE; i++) {
		if (db->cache[i].sql && strcmp(db->cache[i].sql, sql) == 0) {
			db->cache[i].last_use = db->tick;
			*out = db->cache[i].stmt;
			return HF_OK;
		}
		if (!db->cache[i].sql && free_slot == STMT_CACHE)
			free_slot = i;
		if (db->cache[i].last_use < db->cache[lru].last_use)
			lru = i;
	}
	size_t slot = free_slot != STMT_CACHE ? free_slot : lru;
	if (db->cache[slot].stmt) {
		mysql_stmt_close(db->cache[slot].stmt);
		free(db->cache[slot].sql);
		db->cache[slot] = (struct stmt_entry){0};
	}
	MYSQL_STMT *st = mysql_stmt_init(db->my);
	if (!st)
		return HF_EINTERNAL;
	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql))) {
		hf_err err = map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "prepare");
		if (err == HF_EDB)
			hf_log(HF_LOG_ERROR, "core.db", "msg=\"prepare failed\" detail=\"%.300s\"", mysql_stmt_error(st));
		mysql_stmt_close(st);
		return err;
	}
	db->cache[slot] = (struct stmt_entry){hf_xstrdup(sql), st, db->tick};
	*out = st;
	return HF_OK;
}

/* A pool connection idle across a database restart fails on first use. When nothing can have taken
 * effect yet -- outside a transaction, for a statement that only reads -- reconnect and run it again, so
 * the first user after a restart does not get a 503 for a stale socket. Writes only run inside
 * transactions (db_tx), whose BEGIN gets the same treatment in db_begin. */
static bool reconnect(struct db *db)
{
	if (!db->reconnect_conf || db->in_tx)
		return false;
	stmt_cache_clear(db);
	if (db->my)
		mysql_close(db->my);
	db->my = NULL;
	if (connect_with(db->reconnect_conf, db))
		return false;
	hf_log(HF_LOG_INFO, "core.db", "msg=\"reconnected to the database\"");
	return true;
}

static hf_err bind_and_execute_once(struct db *db, const char *sql, const struct db_val *params, size_t n,
				    MYSQL_STMT **out);

static bool is_read(const char *sql)
{
	return strncmp(sql, "SELECT ", 7) == 0;
}

static hf_err bind_and_execute(struct db *db, const char *sql, const struct db_val *params, size_t n,
			       MYSQL_STMT **out)
{
	hf_err err = bind_and_execute_once(db, sql, params, n, out);
	if (err == HF_EDB_RETRY && db->broken && !db->in_tx && is_read(sql) && reconnect(db))
		err = bind_and_execute_once(db, sql, params, n, out);
	return err;
}

static hf_err bind_and_execute_once(struct db *db, const char *sql, const struct db_val *params, size_t n,
				    MYSQL_STMT **out)
{
	if (db->broken || !db->my)
		return HF_EDB_RETRY;
	HF_ASSERT(n <= MAX_PARAMS);
	MYSQL_STMT *st = NULL;
	hf_err err = get_stmt(db, sql, &st);
	if (err)
		return err;
	HF_ASSERT(mysql_stmt_param_count(st) == n);
	MYSQL_BIND *b = n ? hf_xcalloc(n, sizeof(MYSQL_BIND)) : NULL;
	long long *ints = n ? hf_xcalloc(n, sizeof(long long)) : NULL;
	char *nulls = n ? hf_xcalloc(n, 1) : NULL;
	for (size_t i = 0; i < n; i++) {
		switch (params[i].type) {
		case DB_T_NULL:
			b[i].buffer_type = MYSQL_TYPE_NULL;
			nulls[i] = 1;
			b[i].is_null = (my_bool *)&nulls[i];
			break;
		case DB_T_I64:
			ints[i] = params[i].i;
			b[i].buffer_type = MYSQL_TYPE_LONGLONG;
			b[i].buffer = &ints[i];
			break;
		case DB_T_STR:
			b[i].buffer_type = MYSQL_TYPE_STRING;
			b[i].buffer = (void *)params[i].p;
			b[i].buffer_length = (unsigned long)params[i].len;
			break;
		case DB_T_BLOB:
			b[i].buffer_type = MYSQL_TYPE_BLOB;
			b[i].buffer = (void *)params[i].p;
			b[i].buffer_length = (unsigned long)params[i].len;
			break;
		}
	}
	if (n && mysql_stmt_bind_param(st, b)) {
		err = map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "bind");
		goto out_free;
	}
	if (mysql_stmt_execute(st)) {
		err = map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "execute");
		goto out_free;
	}
	*out = st;
out_free:
	free(b);
	free(ints);
	free(nulls);
	return err;
}

hf_err db_exec(struct db *db, const char *sql, const struct db_val *params, size_t nparams, uint64_t *affected_out)
{
	MYSQL_STMT *st = NULL;
	hf_err err = bind_and_execute(db, sql, params, nparams, &st);
	if (err)
		return err;
	if (affected_out)
		*affected_out = (uint64_t)mysql_stmt_affected_rows(st);
	return HF_OK;
}

/* Binds every result column as bytes into buffers sized from the result's max lengths. */
static hf_err bind_result(struct db *db, MYSQL_STMT *st, size_t *ncols_out, MYSQL_BIND **binds_out,
			  unsigned long **lens_out, my_bool **nulls_out, bool streaming)
{
	MYSQL_RES *meta = mysql_stmt_result_metadata(st);
	if (!meta)
		return map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "metadata");
	size_t nc = mysql_num_fields(meta);
	HF_ASSERT(nc <= MAX_COLS);
	MYSQL_FIELD *f = mysql_fetch_fields(meta);
	MYSQL_BIND *b = hf_xcalloc(nc ? nc : 1, sizeof(MYSQL_BIND));
	unsigned long *lens = hf_xcalloc(nc ? nc : 1, sizeof(unsigned long));
	my_bool *nulls = hf_xcalloc(nc ? nc : 1, sizeof(my_bool));
	for (size_t i = 0; i < nc; i++) {
		/* Streaming has no max_length: size from the column definition, capped (rows here are short;
		 * larger values are re-fetched with mysql_stmt_fetch_column). */
		unsigned long cap = streaming ? f[i].length : f[i].max_length;
		if (cap > 65536)
			cap = 65536;
		b[i].buffer_type = MYSQL_TYPE_BLOB;
		b[i].buffer = hf_xmalloc(cap + 1);
		b[i].buffer_length = cap + 1;
		b[i].length = &lens[i];
		b[i].is_null = &nulls[i];
	}
	mysql_free_result(meta);
	if (nc && mysql_stmt_bind_result(st, b)) {
		for (size_t i = 0; i < nc; i++)
			free(b[i].buffer);
		free(b);
		free(lens);
		free(nulls);
		return map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "bind_result");
	}
	*ncols_out = nc;
	*binds_out = b;
	*lens_out = lens;
	*nulls_out = nulls;
	return HF_OK;
}

static void free_binds(MYSQL_BIND *b, size_t nc, unsigned long *lens, my_bool *nulls)
{
	for (size_t i = 0; i < nc; i++)
		free(b[i].buffer);
	free(b);
	free(lens);
	free(nulls);
}

/* Fetches one row; a column longer than its buffer is fetched whole into a temporary. */
static int fetch_row(MYSQL_STMT *st, MYSQL_BIND *b, size_t nc, unsigned long *lens, char **big)
{
	int rc = mysql_stmt_fetch(st);
	if (rc == MYSQL_DATA_TRUNCATED) {
		for (size_t i = 0; i < nc; i++) {
			free(big[i]);
			big[i] = NULL;
			if (lens[i] >= b[i].buffer_length) {
				MYSQL_BIND one = {0};
				unsigned long l = 0;
				big[i] = hf_xmalloc(lens[i] + 1);
				one.buffer_type = MYSQL_TYPE_BLOB;
				one.buffer = big[i];
				one.buffer_length = lens[i] + 1;
				one.length = &l;
				if (mysql_stmt_fetch_column(st, &one, (unsigned)i, 0))
					return 1;
			}
		}
		return 0;
	}
	if (rc == 0)
		for (size_t i = 0; i < nc; i++) {
			free(big[i]);
			big[i] = NULL;
		}
	return rc;
}

hf_err db_query(struct db *db, const char *sql, const struct db_val *params, size_t nparams, struct db_rows **out)
{
	MYSQL_STMT *st = NULL;
	hf_err err = bind_and_execute(db, sql, params, nparams, &st);
	if (err)
		return err;
	bool one = true;
	mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &one);
	if (mysql_stmt_store_result(st)) {
		err = map_error(db, mysql_stmt_errno(st), mysql_stmt_error(st), "store_result");
		mysql_stmt_free_result(st);
		return err;
	}
	size_t nc;
	MYSQL_BIND *b;
	unsigned long *lens;
	my_bool *nulls;
	err = bind_result(db, st, &nc, &b, &lens, &nulls, false);
	if (err) {
		mysql_stmt_free_result(st);
		return err;
	}
	size_t nrows = (size_t)mysql_stmt_num_rows(st);
	struct db_rows *r = hf_xcalloc(1, sizeof(*r));
	r->nrows = nrows;
	r->ncols = nc;
	r->cells = hf_xcalloc((nrows * nc) > 0 ? nrows * nc : 1, sizeof(struct cell));
	struct hf_buf data;
	hf_buf_init(&data, SIZE_MAX / 2);
	char *big[MAX_COLS] = {0};
	for (size_t row = 0; row < nrows; row++) {
		int rc = fetch_row(st, b, nc, lens, big);
		if (rc != 0) {
			err = rc == MYSQL_NO_DATA ? HF_EINTERNAL : map_fetch_error(db, st);
			break;
		}
		for (size_t c = 0; c < nc; c++) {
			struct cell *cell = &r->cells[row * nc + c];
			cell->null = nulls[c];
			cell->off = data.len;
			cell->len = nulls[c] ? 0 : lens[c];
			const char *src = big[c] ? big[c] : b[c].buffer;
			if (hf_buf_append(&data, src, cell->len) || hf_buf_append(&data, "", 1))
				HF_ASSERT(!"result buffer overflow");
		}
	}
	for (size_t c = 0; c < nc; c++)
		free(big[c]);
	free_binds(b, nc, lens, nulls);
	mysql_stmt_free_result(st);
	r->data = hf_buf_steal(&data);
	if (err) {
		db_rows_free(r);
		return err;
	}
	*out = r;
	return HF_OK;
}

hf_err db_query_i64(struct db *db, const char *sql, const struct db_val *params, size_t nparams, int64_t *out)
{
	struct db_rows *r = NULL;
	*out = 0;
	hf_err err = db_query(db, sql, params, nparams, &r);
	if (err)
		return err;
	if (db_rows_next(r) && !db_rows_null(r, 0))
		*out = db_rows_i64(r, 0);
	db_rows_free(r);
	return HF_OK;
}

hf_err db_stream(struct db *db, const char *sql, const struct db_val *params, size_t nparams, db_row_fn fn, void *ctx)
{
	MYSQL_STMT *st = NULL;
	hf_err err = bind_and_execute(db, sql, params, nparams, &st);
	if (err)
		return err;
	size_t nc;
	MYSQL_BIND *b;
	unsigned long *lens;
	my_bool *nulls;
	err = bind_result(db, st, &nc, &b, &lens, &nulls, true);
	if (err) {
		mysql_stmt_free_result(st);
		return err;
	}
	struct db_rows r = {.nrows = 1, .ncols = nc, .streaming = true};
	r.cells = hf_xcalloc(nc ? nc : 1, sizeof(struct cell));
	struct hf_buf data;
	hf_buf_init(&data, SIZE_MAX / 2);
	char *big[MAX_COLS] = {0};
	for (;;) {
		int rc = fetch_row(st, b, nc, lens, big);
		if (rc == MYSQL_NO_DATA)
			break;
		if (rc != 0) {
			err = map_fetch_error(db, st);
			break;
		}
		hf_buf_reset(&data);
		for (size_t c = 0; c < nc; c++) {
			r.cells[c].null = nulls[c];
			r.cells[c].off = data.len;
			r.cells[c].len = nulls[c] ? 0 : lens[c];
			const char *src = big[c] ? big[c] : b[c].buffer;
			if (hf_buf_append(&data, src, r.cells[c].len) || hf_buf_append(&data, "", 1))
				HF_ASSERT(!"row buffer overflow");
		}
		r.data = data.data;
		r.cur = 1;
		err = fn(ctx, &r);
		if (err)
			break;
	}
	for (size_t c = 0; c < nc; c++)
		free(big[c]);
	hf_buf_release(&data);
	free(r.cells);
	free_binds(b, nc, lens, nulls);
	mysql_stmt_free_result(st);
	return err;
}

hf_err db_exec_plain(struct db *db, const char *sql)
{
	if (db->broken || !db->my)
		return HF_EDB_RETRY;
	if (mysql_real_query(db->my, sql, (unsigned long)strlen(sql)))
		return map_error(db, mysql_errno(db->my), mysql_error(db->my), "query");
	/* Drain any result sets (multi-statement DDL files produce several). */
	do {
		MYSQL_RES *res = mysql_store_result(db->my);
		if (res)
			mysql_free_result(res);
		else if (mysql_field_count(db->my) != 0)
			return map_error(db, mysql_errno(db->my), mysql_error(db->my), "store");
	} while (mysql_next_result(db->my) == 0);
	if (mysql_errno(db->my))
		return map_error(db, mysql_errno(db->my), mysql_error(db->my), "next_result");
	return HF_OK;
}

bool db_rows_next(struct db_rows *r)
{
	if (r->streaming)
		return false;
	if (r->cur >= r->nrows)
		return false;
	r->cur++;
	return true;
}

size_t db_rows_count(const struct db_rows *r)
{
	return r->nrows;
}

static const struct cell *cell_at(const struct db_rows *r, size_t col)
{
	HF_ASSERT(r->cur >= 1 && r->cur <= r->nrows && col < r->ncols);
	return &r->cells[(r->streaming ? 0 : (r->cur - 1) * r->ncols) + col];
}

bool db_rows_null(const struct db_rows *r, size_t col)
{
	return cell_at(r, col)->null;
}

const char *db_rows_str(const struct db_rows *r, size_t col)
{
	const struct cell *c = cell_at(r, col);
	return c->null ? "" : r->data + c->off;
}

const void *db_rows_blob(const struct db_rows *r, size_t col, size_t *len_out)
{
	const struct cell *c = cell_at(r, col);
	*len_out = c->len;
	return c->null ? NULL : r->data + c->off;
}

int64_t db_rows_i64(const struct db_rows *r, size_t col)
{
	const struct cell *c = cell_at(r, col);
	if (c->null)
		return 0;
	int64_t v = 0;
	if (hf_parse_i64(r->data + c->off, INT64_MIN, INT64_MAX, &v)) {
		/* A DECIMAL or DATETIME read as number is our bug; unsigned ids fit int64 by construction. */
		HF_ASSERT(!"non-integer column read as integer");
	}
	return v;
}

void db_rows_free(struct db_rows *r)
{
	if (!r)
		return;
	free(r->cells);
	free(r->data);
	free(r);
}

hf_err db_begin(struct db *db)
{
	if ((db->broken || !db->my) && !reconnect(db))
		return HF_EDB_RETRY;
	if (mysql_autocommit(db->my, 0)) {
		hf_err err = map_error(db, mysql_errno(db->my), mysql_error(db->my), "begin");
		if (!(err == HF_EDB_RETRY && db->broken && reconnect(db)))
			return err;
		if (mysql_autocommit(db->my, 0))
			return map_error(db, mysql_errno(db->my), mysql_error(db->my), "begin");
	}
	db->in_tx = true;
	db->tx_serial++;
	return HF_OK;
}

hf_err db_commit(struct db *db)
{
	if (db->broken || !db->my) {
		db->in_tx = false;
		return HF_EDB_RETRY;
	}
	if (mysql_commit(db->my)) {
		hf_err err = map_error(db, mysql_errno(db->my), mysql_error(db->my), "commit");
		db_rollback(db);
		return err;
	}
	db->in_tx = false;
	mysql_autocommit(db->my, 1);
	return HF_OK;
}

void db_rollback(struct db *db)
{
	db->in_tx = false;
	if (db->broken || !db->my)
		return;
	mysql_rollback(db->my);
	mysql_autocommit(db->my, 1);
}

hf_err db_tx(struct db *db, db_tx_fn fn, void *ctx)
{
	hf_err err = HF_OK;
	for (int attempt = 0; attempt < 3; attempt++) {
		err = db_begin(db);
		if (err)
			return err;
		err = fn(db, ctx);
		if (!err)
			err = db_commit(db);
		else
			db_rollback(db);
		/* Only a deadlock on a live connection is retried here; a lost connection is the caller's 503,
		 * since we cannot know whether its COMMIT reached the server. */
		if (err != HF_EDB_RETRY || db->broken)
			return err;
		hf_log(HF_LOG_INFO, "core.db", "msg=\"transaction retried after a conflict\" attempt=%d", attempt + 1);
	}
	return err;
}

uint64_t db_tx_serial(const struct db *db)
{
	return db->tx_serial;
}

bool db_in_tx(const struct db *db)
{
	return db->in_tx;
}

const char *db_conflict_key(const struct db *db)
{
	return db->conflict_key;
}

bool db_alive(void)
{
	struct db *db;
	if (db_acquire(&db))
		return false;
	if (mysql_ping(db->my)) {
		db->broken = true;
		return false;
	}
	return true;
}
