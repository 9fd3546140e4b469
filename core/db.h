/* db.h - the database layer: the only user of MYSQL* in Hifadhi.
 *
 * Every statement is prepared with bound parameters; SQL is never built from input. A connection is
 * either the calling thread's own (db_acquire, for the HTTP pool threads) or a dedicated one (db_open,
 * for CLI commands). Failures are mapped once, here: a server that is down, restarting or shedding a
 * deadlock gives HF_EDB_RETRY (the API answers 503 + Retry-After), a unique key gives HF_ECONFLICT with
 * the key's name available from db_conflict_key, anything else HF_EDB. After a connection-level error the
 * connection is dropped and the next db_acquire reconnects, so the service heals by itself.
 * Not thread-safe per connection: a struct db is used by one thread at a time.
 */
#ifndef HF_DB_H
#define HF_DB_H

#include "hf_base.h"
#include "hf_err.h"

struct db_conf {
	const char *socket; /* unix socket path; when empty, host:port over TCP */
	const char *host;
	int port;
	const char *name;
	const char *user;
	const char *password;
	int connect_timeout_s;
	int rw_timeout_s;
	bool multi_statements; /* migrations only: a .sql file holds several statements */
};

enum db_type { DB_T_NULL, DB_T_I64, DB_T_STR, DB_T_BLOB };

/* A bound parameter. Strings and blobs are borrowed for the duration of the call. */
struct db_val {
	enum db_type type;
	int64_t i;
	const void *p;
	size_t len;
};

#define DB_NULLV ((struct db_val){DB_T_NULL, 0, NULL, 0})
#define DB_I64(x) ((struct db_val){DB_T_I64, (int64_t)(x), NULL, 0})
#define DB_BLOB(ptr, n) ((struct db_val){DB_T_BLOB, 0, (ptr), (n)})
struct db_val db_str(const char *s); /* NULL gives SQL NULL */
struct db_val db_strn(const char *s, size_t n);
struct db_val db_blob_or_null(const void *p, size_t n); /* n == 0 gives SQL NULL */

struct db;
struct db_rows;

/* Process-wide: copies conf. Call once at startup before any thread uses the database. */
HF_MUST_CHECK hf_err db_global_init(const struct db_conf *conf);
void db_global_release(void);

/* The calling thread's connection, connecting if needed. Borrowed: do not close it. */
HF_MUST_CHECK hf_err db_acquire(struct db **out);
/* Closes the calling thread's connection, if any (call when a pool thread ends; optional). */
void db_release_thread(void);
/* A dedicated connection with explicit credentials (CLI commands, migrations). Owned: db_close it. */
HF_MUST_CHECK hf_err db_open(const struct db_conf *conf, struct db **out);
void db_close(struct db *db);

HF_MUST_CHECK hf_err db_exec(struct db *db, const char *sql, const struct db_val *params, size_t nparams,
			     uint64_t *affected_out);
/* Runs a query and buffers all its rows. *out is owned: db_rows_free. */
HF_MUST_CHECK hf_err db_query(struct db *db, const char *sql, const struct db_val *params, size_t nparams,
			      struct db_rows **out);
/* Runs a query for one number (a COUNT, an id): *out is the first column of the first row, 0 when there is
 * no row (or the value is NULL). */
HF_MUST_CHECK hf_err db_query_i64(struct db *db, const char *sql, const struct db_val *params, size_t nparams,
				  int64_t *out);
/* Runs a query and streams its rows to fn one at a time without buffering the result (large reports,
 * exports). fn returns HF_OK to go on; any other code stops and is returned. */
typedef hf_err (*db_row_fn)(void *ctx, struct db_rows *row);
HF_MUST_CHECK hf_err db_stream(struct db *db, const char *sql, const struct db_val *params, size_t nparams,
			       db_row_fn fn, void *ctx);
/* Runs a plain statement without parameters and without preparing it (DDL in migrations, BEGIN). */
HF_MUST_CHECK hf_err db_exec_plain(struct db *db, const char *sql);

bool db_rows_next(struct db_rows *r);
size_t db_rows_count(const struct db_rows *r);
bool db_rows_null(const struct db_rows *r, size_t col);
const char *db_rows_str(const struct db_rows *r, size_t col); /* "" for NULL; NUL-terminated */
const void *db_rows_blob(const struct db_rows *r, size_t col, size_t *len_out);
int64_t db_rows_i64(const struct db_rows *r, size_t col);
void db_rows_free(struct db_rows *r);

HF_MUST_CHECK hf_err db_begin(struct db *db);
HF_MUST_CHECK hf_err db_commit(struct db *db);
void db_rollback(struct db *db); /* best effort; the server rolls back on disconnect anyway */

/* Runs fn inside a transaction, retrying the whole of it up to 3 times on a deadlock or lock-wait
 * timeout (which InnoDB and Galera certification conflicts produce under contention). fn must be
 * repeatable: it may not keep effects outside the database. */
typedef hf_err (*db_tx_fn)(struct db *db, void *ctx);
HF_MUST_CHECK hf_err db_tx(struct db *db, db_tx_fn fn, void *ctx);

/* Whether db is inside db_begin/db_tx (its reads see the transaction's snapshot). */
bool db_in_tx(const struct db *db);
/* A number that changes with every transaction begun on db (to tell "this transaction" from later ones). */
uint64_t db_tx_serial(const struct db *db);

/* Name of the unique key that caused the last HF_ECONFLICT ("" if none). The value is never kept: MariaDB
 * puts it in its message, and it may be personal data. */
const char *db_conflict_key(const struct db *db);
/* Whether the server answers (SELECT 1), reconnecting the thread's connection if needed. */
bool db_alive(void);
/* A fresh 64-bit row id: milliseconds since 2024 in the high bits, 20 random low bits. Time-ordered so
 * InnoDB appends, random so concurrent instances do not collide in practice (a collision is a unique key
 * error, retried by the caller). */
int64_t db_new_id(void);

/* DATE_FORMAT pattern of the API's timestamps ("2026-11-28T19:30:00.000000Z"). */
#define DB_TS_FMT "'%Y-%m-%dT%H:%i:%s.%fZ'"

#endif
