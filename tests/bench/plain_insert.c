/* plain_insert.c - the import benchmark's baseline: the same CSV rows, stored the cheapest way.
 *
 * Reads a registry CSV (the import format, e.g. from `hifadhi-core gen`) with libcsv and inserts every data
 * row, unvalidated and unencrypted, into a plain table with one TEXT column per CSV column and an
 * AUTO_INCREMENT primary key (no other index), with multi-row INSERTs of ROWS_PER_INSERT rows, each
 * statement its own transaction (autocommit), over one connection. Empty fields are stored as NULL. This
 * is roughly the least work MariaDB can be asked to do to hold the same data, so `make bench` reports the
 * import's speed as a ratio to it.
 *
 * usage: plain_insert SOCKET USER PASSWORD_FILE DATABASE TABLE FILE.csv
 * The table is dropped and created first (not timed). Prints one line on stdout:
 *   plain_insert: rows=N seconds=S rows_per_s=R
 * where S is the time from opening the file to the last row committed. Exit 0 on success, 1 on any error.
 */
#include "hf_base.h"

#include <csv.h>
#include <errno.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOLS 16
#define ROWS_PER_INSERT 1000
#define READ_CHUNK (1 << 20)

static const char *const columns[NCOLS] = {
	"household_ref", "region",	  "district",	  "village",	"address",    "member_no",
	"relationship",	 "given_name",	  "family_name",  "sex",	"date_of_birth", "national_id",
	"phone",	 "disability",	  "language",	  "programme",
};

struct sqlbuf {
	char *p;
	size_t len, cap;
};

struct ctx {
	MYSQL *db;
	const char *table;
	struct sqlbuf sql;    /* the INSERT being built */
	size_t prefix_len;    /* length of "INSERT INTO t (...) VALUES " */
	size_t field;         /* fields seen in the current record */
	size_t rows_in_stmt;  /* rows in the INSERT being built */
	uint64_t records;     /* records seen, header included */
	uint64_t rows;        /* data rows inserted */
	bool header_ok;
	bool failed;
};

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "plain_insert: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static void sql_reserve(struct sqlbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1 << 16;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		die("out of memory", NULL);
	b->p = p;
	b->cap = cap;
}

static void sql_add(struct sqlbuf *b, const char *s, size_t n)
{
	sql_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sql_adds(struct sqlbuf *b, const char *s)
{
	sql_add(b, s, strlen(s));
}

static void exec_sql(MYSQL *db, const char *sql, size_t len)
{
	if (mysql_real_query(db, sql, (unsigned long)len) != 0)
		die("query failed", mysql_error(db));
}

static void flush_insert(struct ctx *c)
{
	if (c->rows_in_stmt == 0)
		return;
	exec_sql(c->db, c->sql.p, c->sql.len);
	c->rows += c->rows_in_stmt;
	c->rows_in_stmt = 0;
	c->sql.len = c->prefix_len;
	c->sql.p[c->sql.len] = '\0';
}

/* libcsv: one field of the current record. */
static void on_field(void *s, size_t len, void *data)
{
	struct ctx *c = data;
	if (c->failed)
		return;
	if (c->records == 0) { /* the header: check the columns are the ones we expect */
		if (c->field >= NCOLS || len != strlen(columns[c->field]) || memcmp(s, columns[c->field], len) != 0)
			c->failed = true;
		c->field++;
		return;
	}
	if (c->field >= NCOLS) {
		c->failed = true;
		return;
	}
	sql_adds(&c->sql, c->field == 0 ? (c->rows_in_stmt ? ",(" : "(") : ",");
	if (len == 0) {
		sql_adds(&c->sql, "NULL");
	} else {
		sql_reserve(&c->sql, 2 * len + 2);
		c->sql.p[c->sql.len++] = '\'';
		c->sql.len += mysql_real_escape_string(c->db, c->sql.p + c->sql.len, s, (unsigned long)len);
		c->sql.p[c->sql.len++] = '\'';
		c->sql.p[c->sql.len] = '\0';
	}
	c->field++;
}

/* libcsv: end of the current record. */
static void on_record(int term, void *data)
{
	(void)term;
	struct ctx *c = data;
	if (c->failed)
		return;
	if (c->field != NCOLS) {
		c->failed = true;
		return;
	}
	if (c->records == 0) {
		c->header_ok = true;
	} else {
		sql_adds(&c->sql, ")");
		if (++c->rows_in_stmt == ROWS_PER_INSERT)
			flush_insert(c);
	}
	c->records++;
	c->field = 0;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot open the password file", strerror(errno));
	char buf[256];
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0])
		die("empty password file", path);
	char *pw = strdup(buf);
	if (!pw)
		die("out of memory", NULL);
	return pw;
}

static bool plain_ident(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: plain_insert SOCKET USER PASSWORD_FILE DATABASE TABLE FILE.csv\n");
		return 2;
	}
	const char *sock = argv[1], *user = argv[2], *db_name = argv[4], *table = argv[5], *path = argv[6];
	if (!plain_ident(table))
		die("the table name must be [A-Za-z0-9_]{1,64}", table);
	char *pw = read_password(argv[3]);

	struct ctx c = {.table = table};
	c.db = mysql_init(NULL);
	if (!c.db)
		die("mysql_init failed", NULL);
	if (!mysql_real_connect(c.db, NULL, user, pw, db_name, 0, sock, 0))
		die("cannot connect", mysql_error(c.db));
	free(pw);
	if (mysql_set_character_set(c.db, "utf8mb4") != 0)
		die("cannot set the character set", mysql_error(c.db));

	/* The table: dropped and made afresh (not timed). */
	struct sqlbuf ddl = {0};
	sql_adds(&ddl, "DROP TABLE IF EXISTS `");
	sql_adds(&ddl, table);
	sql_adds(&ddl, "`");
	exec_sql(c.db, ddl.p, ddl.len);
	ddl.len = 0;
	sql_adds(&ddl, "CREATE TABLE `");
	sql_adds(&ddl, table);
	sql_adds(&ddl, "` (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY");
	for (size_t i = 0; i < NCOLS; i++) {
		sql_adds(&ddl, ", `");
		sql_adds(&ddl, columns[i]);
		sql_adds(&ddl, "` TEXT NULL");
	}
	sql_adds(&ddl, ") ENGINE=InnoDB");
	exec_sql(c.db, ddl.p, ddl.len);
	free(ddl.p);

	sql_adds(&c.sql, "INSERT INTO `");
	sql_adds(&c.sql, table);
	sql_adds(&c.sql, "` (");
	for (size_t i = 0; i < NCOLS; i++) {
		sql_adds(&c.sql, i ? ",`" : "`");
		sql_adds(&c.sql, columns[i]);
		sql_adds(&c.sql, "`");
	}
	sql_adds(&c.sql, ") VALUES ");
	c.prefix_len = c.sql.len;

	double t0 = mono_s();
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open the CSV file", strerror(errno));
	struct csv_parser p;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
		die("csv_init failed", NULL);
	char *buf = malloc(READ_CHUNK);
	if (!buf)
		die("out of memory", NULL);
	size_t n;
	while ((n = fread(buf, 1, READ_CHUNK, f)) > 0) {
		if (csv_parse(&p, buf, n, on_field, on_record, &c) != n)
			die("CSV syntax error", csv_strerror(csv_error(&p)));
		if (c.failed)
			break;
	}
	if (ferror(f))
		die("cannot read the CSV file", strerror(errno));
	if (!c.failed && csv_fini(&p, on_field, on_record, &c) != 0)
		die("CSV syntax error at the end", csv_strerror(csv_error(&p)));
	csv_free(&p);
	free(buf);
	fclose(f);
	if (c.failed || !c.header_ok) {
		fprintf(stderr, "plain_insert: record %llu: not the import format (%d columns expected: %s, ...)\n",
			(unsigned long long)c.records + 1, NCOLS, columns[0]);
		free(c.sql.p);
		mysql_close(c.db);
		return 1;
	}
	flush_insert(&c);
	double secs = mono_s() - t0;

	printf("plain_insert: rows=%llu seconds=%.3f rows_per_s=%.0f\n", (unsigned long long)c.rows, secs,
	       secs > 0 ? (double)c.rows / secs : 0.0);
	free(c.sql.p);
	mysql_close(c.db);
	return 0;
}
