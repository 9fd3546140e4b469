/* import.c - CSV import of households and individuals: read, validate, batch, write.
 *
 * Speed is the requirement that shapes this file (a national registry is hundreds of thousands of
 * households, loaded on a district office box that also runs the database), so the work per row in the
 * database is kept to a few index probes and a share of a multi-row INSERT:
 * - The file is mapped and parsed twice with libcsv. The first pass only checks structure (header,
 *   quoting, field sizes) and counts records, so a malformed file is refused before anything is written
 *   and the progress line knows the total. It costs a few percent of the run.
 * - Two threads: a reader parses, validates, draws ids and numbers and seals (the CPU work, about a third
 *   of the total) while the calling thread, the only user of the connection, runs the lookups and
 *   INSERTs of the previous batch. Two batches alternate between them; see batch_handover.
 * - Rows are collected into batches of ~500 households. Per batch: one IN-list lookup each for existing
 *   households, existing individuals, national IDs already registered and freshly drawn numbers, then one
 *   transaction of multi-row INSERTs. IN lists are padded to a few fixed sizes and INSERTs use a few fixed
 *   row counts, so the db layer's statement cache holds every statement after the first batches.
 * - Resolved villages, programme codes, household_refs and national IDs seen are kept in hash maps for
 *   the run, keyed by a 16-byte keyed BLAKE2b digest (collisions are not a practical concern, and a digest
 *   of a national ID is what the database holds anyway).
 * - Ids are drawn per row before sealing (the associated data names the row) and checked for collisions
 *   within the batch: db_new_id has 20 random bits per millisecond, and a batch draws thousands of ids in a
 *   few milliseconds. Beneficiary and household numbers are checked against the database before the
 *   INSERT: with 9-digit numbers and hundreds of thousands already drawn, a 2,000-row batch would almost
 *   always hit one, and retrying whole batches would never converge.
 * Idempotency rests on ext_ref (unique in the schema): rows whose ext_ref exists are skipped, so a run that
 * stopped half way, or a file fixed after its report, can simply be run again.
 */
#include "hf_base.h"
#include "import.h"
#include "app.h"
#include "audit.h"
#include "hf_buf.h"
#include "hf_crypto.h"
#include "hf_json.h"
#include "hf_log.h"
#include "location.h"
#include "person.h"
#include "validate.h"

#include <csv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum col {
	C_HOUSEHOLD_REF,
	C_REGION,
	C_DISTRICT,
	C_VILLAGE,
	C_ADDRESS,
	C_MEMBER_NO,
	C_RELATIONSHIP,
	C_GIVEN_NAME,
	C_FAMILY_NAME,
	C_SEX,
	C_DATE_OF_BIRTH,
	C_NATIONAL_ID,
	C_PHONE,
	C_DISABILITY,
	C_LANGUAGE,
	C_PROGRAMME,
};

const char *const import_columns[IMPORT_NCOLUMNS] = {
	"household_ref", "region",	  "district",	   "village",	"address",    "member_no",
	"relationship",	 "given_name",	  "family_name",   "sex",	"date_of_birth", "national_id",
	"phone",	 "disability",	  "language",	   "programme",
};

static const bool col_optional[IMPORT_NCOLUMNS] = {
	[C_ADDRESS] = true, [C_NATIONAL_ID] = true, [C_PHONE] = true, [C_DISABILITY] = true, [C_PROGRAMME] = true,
};

#define BATCH_HOUSEHOLDS 500
#define IN_MAX 1024                /* largest IN list; lists are padded to 16, 128 or 1024 */
#define INSERT_CHUNK_MAX 256       /* rows per INSERT; chunks of 256, 64, 16, 4, 1 */
#define CSV_ENTRY_MAX (64 * 1024)  /* libcsv's field buffer; past it the file is refused */
#define PARSE_CHUNK (1024 * 1024)  /* bytes handed to libcsv at a time (checks for errors between) */
#define ADDRESS_MAX_CHARS 200
#define REF_MAX 40
#define WRITE_ATTEMPTS 5
#define NUMBER_ROUNDS 20
#define PROGRESS_EVERY_MS 500
#define ARENA_CHUNK (256 * 1024)
#define KEY_LEN 16
#define SCRATCH_VALS (INSERT_CHUNK_MAX * PERSON_INSERT_NPARAMS)

/* ---- a set / map of 16-byte keys (open addressing, linear probing) ---- */

struct kmap {
	uint8_t *keys; /* cap * KEY_LEN */
	int64_t *vals; /* cap, or NULL for a set */
	uint8_t *used;
	size_t cap, n;
};

static void kmap_init(struct kmap *m, size_t cap, bool with_vals)
{
	m->cap = cap;
	m->n = 0;
	m->keys = hf_xmalloc(cap * KEY_LEN);
	m->vals = with_vals ? hf_xmalloc(cap * sizeof(int64_t)) : NULL;
	m->used = hf_xcalloc(cap, 1);
}

static void kmap_release(struct kmap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	*m = (struct kmap){0};
}

static void kmap_clear(struct kmap *m)
{
	memset(m->used, 0, m->cap);
	m->n = 0;
}

static size_t kmap_slot(const struct kmap *m, const uint8_t *key)
{
	uint64_t a, b;
	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 31;
	size_t i = (size_t)h & (m->cap - 1);
	while (m->used[i] && memcmp(m->keys + i * KEY_LEN, key, KEY_LEN) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static bool kmap_get(const struct kmap *m, const uint8_t *key, int64_t *val)
{
	size_t i = kmap_slot(m, key);
	if (!m->used[i])
		return false;
	if (val)
		*val = m->vals ? m->vals[i] : 0;
	return true;
}

static void kmap_grow(struct kmap *m)
{
	struct kmap bigger;
	kmap_init(&bigger, m->cap * 2, m->vals != NULL);
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->used[i])
			continue;
		size_t j = kmap_slot(&bigger, m->keys + i * KEY_LEN);
		bigger.used[j] = 1;
		memcpy(bigger.keys + j * KEY_LEN, m->keys + i * KEY_LEN, KEY_LEN);
		if (m->vals)
			bigger.vals[j] = m->vals[i];
	}
	bigger.n = m->n;
	kmap_release(m);
	*m = bigger;
}

/* Adds key -> val; false (and nothing changed) when key is already there. */
static bool kmap_add(struct kmap *m, const uint8_t *key, int64_t val)
{
	if ((m->n + 1) * 10 > m->cap * 7)
		kmap_grow(m);
	size_t i = kmap_slot(m, key);
	if (m->used[i])
		return false;
	m->used[i] = 1;
	memcpy(m->keys + i * KEY_LEN, key, KEY_LEN);
	if (m->vals)
		m->vals[i] = val;
	m->n++;
	return true;
}

/* Digest of a string without ASCII case (the database compares these columns without case). */
static void key_of(const char *domain, const char *s, uint8_t out[KEY_LEN])
{
	char low[256];
	size_t n = strlen(s);
	if (n >= sizeof(low)) {
		hf_blind_index(g_app.keys, domain, (struct hf_str){s, n}, out);
		return;
	}
	for (size_t i = 0; i < n; i++)
		low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	hf_blind_index(g_app.keys, domain, (struct hf_str){low, n}, out);
}

static void key_of_i64(int64_t v, uint8_t out[KEY_LEN])
{
	memset(out, 0, KEY_LEN);
	memcpy(out, &v, sizeof(v));
}

static void key_of_number(const char *no, uint8_t out[KEY_LEN])
{
	memset(out, 0, KEY_LEN);
	memcpy(out, no, BENNO_LEN);
}

/* ---- per-batch bump allocator ---- */

struct achunk {
	struct achunk *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

struct arena {
	struct achunk *first, *cur;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	for (;;) {
		if (a->cur && a->cur->cap - a->cur->used >= n) {
			void *p = a->cur->data + a->cur->used;
			a->cur->used += n;
			return p;
		}
		if (a->cur && a->cur->next) {
			a->cur = a->cur->next;
			a->cur->used = 0;
			continue;
		}
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		struct achunk *c = hf_xmalloc(sizeof(*c) + cap);
		c->next = NULL;
		c->used = 0;
		c->cap = cap;
		if (a->cur)
			a->cur->next = c;
		else
			a->first = c;
		a->cur = c;
	}
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *arena_printf(struct arena *a, const char *fmt, ...) HF_PRINTF(2, 3);
static char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	HF_ASSERT(n >= 0);
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void arena_reset(struct arena *a)
{
	a->cur = a->first;
	if (a->cur)
		a->cur->used = 0;
}

static void arena_release(struct arena *a)
{
	for (struct achunk *c = a->first, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	a->first = a->cur = NULL;
}

/* ---- batches ---- */

enum rstate { R_GOOD, R_BAD, R_EXISTING };

struct rerr {
	struct rerr *next;
	const char *field;
	const char *reason;
};

struct irow {
	uint64_t recno;
	size_t hh;                      /* its household's index in the batch */
	const char *f[IMPORT_NCOLUMNS]; /* arena copies, "" when absent */
	const char *ext_ref;            /* NULL when household_ref or member_no is unusable */
	uint8_t ext_key[KEY_LEN];       /* key_of(ext_ref) */
	int prog;                       /* index into programmes, -1 = none */
	bool valid;                     /* passed every check made while reading */
	bool head;                      /* the relationship column says head */
	bool has_nid;
	uint8_t nid_bidx[HF_BIDX_LEN];
	struct rerr *perr, *perr_tail; /* found while reading */
	struct rerr *ferr, *ferr_tail; /* found while writing the batch (cleared when it is retried) */
	enum rstate state;
	bool sealed;
	struct person_row pr; /* id and ben_no drawn and sealed by the reader (see batch_preseal) */
};

struct ihh {
	const char *ref; /* as in its first row */
	bool ref_ok, nonconsecutive, too_many;
	size_t first, n;               /* its rows in the batch */
	uint64_t extra_first, extra_n; /* rows past IMPORT_HOUSEHOLD_MAX: reported, never kept */
	uint32_t members;              /* bit per member_no seen */
	int nheads;
	size_t head;    /* row index when nheads == 1 */
	uint8_t key[KEY_LEN];  /* key_of(ref) */
	uint8_t vkey[KEY_LEN]; /* key of the head row's region/district/village */
	int64_t new_id;        /* drawn by the reader; the address is sealed under it */
	int64_t sealed_village; /* the village in the members' duplicate keys as sealed (0 = not known then) */
	bool sealed;
	struct hf_buf addr_enc;
	/* while writing */
	bool exists, insert;
	int64_t id, village_id;
	char hh_no[BENNO_LEN + 1];
};

/* ~BATCH_HOUSEHOLDS households. Two of them alternate: the reader fills one while the writer writes the
 * other. Ownership passes under ictx.mu with `full`; no field is touched by both threads at once. */
struct ibatch {
	struct arena arena;
	struct irow *rows;
	size_t nrows, caprows;
	struct ihh *hhs;
	size_t nhh, caphh;
	struct kmap bids;  /* ids drawn for this batch */
	struct kmap bnums; /* numbers drawn for this batch */
	bool full;        /* handed to the writer */
	bool last;        /* the reader is done after this one */
	bool abort;       /* the reader failed: write nothing */
};

struct prog {
	int64_t id;
	bool household;
	char code[33];
};

struct enrol {
	int64_t id, prog_id, ind_id, hh_id;
	const char *code; /* borrowed from ictx.progs */
};

struct ictx {
	/* set before the threads start, read-only after */
	struct db *db;
	const char *actor;
	int64_t run_id; /* import_runs row of this run (named by the audit entries) */
	FILE *report, *progress;
	int colmap[IMPORT_ROW_FIELDS_MAX]; /* header field index -> column (-1 = none) */
	size_t header_fields;
	bool have_col[IMPORT_NCOLUMNS];
	struct kmap progmap;
	struct prog *progs;
	size_t nprogs;
	uint64_t total_rows;
	int64_t t0;

	/* handover between the reader and the writer */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ibatch batches[2];
	atomic_bool stop;      /* the writer failed: the reader stops */
	struct kmap villages;  /* village key -> id; the writer adds, the reader looks up */

	/* the reader (the main thread during the structure pass) */
	bool scanning;
	struct ibatch *rb;
	bool hh_open; /* rb->hhs[nhh-1] still takes rows */
	hf_err rerr;  /* the reader's own failure */
	struct hf_buf why; /* the reason a file is refused */
	uint64_t recno;    /* records completed so far */
	size_t nfields;
	char *rec;
	size_t rec_len;
	size_t off[IMPORT_ROW_FIELDS_MAX];
	uint64_t long_mask, nul_mask; /* field indexes over IMPORT_FIELD_MAX / holding a NUL */
	struct kmap seen_refs, seen_nids;
	struct hf_ferrs fe;
	uint64_t rows_read;

	/* the writer (the calling thread) */
	struct import_stats st;
	struct kmap bmap;
	struct enrol *enr;
	size_t nenr, capenr;
	size_t *ins_hh, *ins_rows; /* indexes of what the batch inserts */
	size_t nins_hh, nins_rows;
	size_t *todo, *taken; /* numbers to check against the database, and those found taken */
	size_t ntodo, ntaken;
	size_t capidx; /* of list, ins_hh, ins_rows, todo and taken */
	struct db_val *list;
	struct db_val *scratch;
	struct hf_buf sql;
	bool check_all_members, redraw_ids, redraw_numbers;
	uint64_t batch_enrolled;
	int64_t last_progress;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	*cap = n;
	return hf_xrealloc(p, n * size);
}

static void err_add(struct arena *a, struct rerr **head, struct rerr **tail, const char *field, const char *reason)
{
	struct rerr *e = arena_alloc(a, sizeof(*e));
	e->next = NULL;
	e->field = field;
	e->reason = reason;
	if (*tail)
		(*tail)->next = e;
	else
		*head = e;
	*tail = e;
}

/* A problem found while reading; field and reason must outlive the batch (literals or its arena). */
static void perr(struct ibatch *b, struct irow *r, const char *field, const char *reason)
{
	err_add(&b->arena, &r->perr, &r->perr_tail, field, reason);
	r->valid = false;
}

static void ferr(struct ibatch *b, struct irow *r, const char *field, const char *reason)
{
	err_add(&b->arena, &r->ferr, &r->ferr_tail, field, reason);
	r->state = R_BAD;
}

/* A row id not yet used in this batch. */
static int64_t batch_new_id(struct ibatch *b)
{
	for (;;) {
		int64_t id = db_new_id();
		uint8_t k[KEY_LEN];
		key_of_i64(id, k);
		if (kmap_add(&b->bids, k, 0))
			return id;
	}
}

static void batch_clear(struct ibatch *b)
{
	for (size_t i = 0; i < b->nrows; i++)
		if (b->rows[i].sealed)
			person_row_release(&b->rows[i].pr);
	for (size_t i = 0; i < b->nhh; i++)
		if (b->hhs[i].sealed)
			hf_buf_release(&b->hhs[i].addr_enc);
	b->nrows = b->nhh = 0;
	b->last = b->abort = false;
	arena_reset(&b->arena);
}

static void batch_release(struct ibatch *b)
{
	batch_clear(b);
	arena_release(&b->arena);
	free(b->rows);
	free(b->hhs);
	kmap_release(&b->bids);
	kmap_release(&b->bnums);
}

/* ---- report and progress ---- */

static void csv_cell(FILE *f, const char *s)
{
	size_t n = strlen(s);
	bool quote = n && (s[0] == ' ' || s[n - 1] == ' ' || strpbrk(s, ",\"\r\n") != NULL);
	if (!quote) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void report_line(struct ictx *c, uint64_t recno, const char *ref, const char *field, const char *reason)
{
	if (!c->report)
		return;
	fprintf(c->report, "%" PRIu64 ",", recno);
	csv_cell(c->report, ref);
	fputc(',', c->report);
	csv_cell(c->report, field);
	fputc(',', c->report);
	csv_cell(c->report, reason);
	fputc('\n', c->report);
}

static void fmt_secs(char *out, size_t n, double s)
{
	if (s < 100)
		snprintf(out, n, "%.1f s", s);
	else
		snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static uint64_t rows_done(const struct ictx *c)
{
	return c->st.individuals_inserted + c->st.skipped_existing + c->st.rejected_rows;
}

static void progress_show(struct ictx *c, bool force)
{
	if (!c->progress)
		return;
	int64_t now = hf_mono_ms();
	if (!force && now - c->last_progress < PROGRESS_EVERY_MS)
		return;
	c->last_progress = now;
	uint64_t done = rows_done(c);
	double secs = (double)(now - c->t0) / 1000.0;
	double rate = secs > 0 ? (double)done / secs : 0;
	uint64_t total = c->total_rows > done ? c->total_rows : done;
	char eta[32] = "-";
	if (rate > 0)
		fmt_secs(eta, sizeof(eta), (double)(total - done) / rate);
	fprintf(c->progress, "\rimport: %" PRIu64 "/%" PRIu64 " rows (%d%%), %.0f rows/s, ETA %s    ", done, total,
		total ? (int)(done * 100 / total) : 100, rate, eta);
	fflush(c->progress);
}

/* A whole-file refusal: on the report (as record recno) and the progress stream, and logged once. */
static void file_refuse(struct ictx *c, uint64_t recno)
{
	const char *why = hf_buf_cstr(&c->why);
	report_line(c, recno, "", "", why);
	if (c->progress)
		fprintf(c->progress, "import: the file was refused, nothing was imported: %s\n", why);
	hf_log(HF_LOG_WARN, "core.import", "msg=\"file refused\" record=%" PRIu64 " reason=\"%s\"", recno, why);
}

/* ---- programmes, villages, numbers ---- */

static hf_err programmes_load(struct ictx *c)
{
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db, "SELECT id, code, target FROM programmes WHERE active = 1", NULL, 0, &r);
	if (err)
		return err;
	c->progs = hf_xcalloc(db_rows_count(r) + 1, sizeof(*c->progs));
	while (db_rows_next(r)) {
		uint8_t k[KEY_LEN];
		key_of("import.prog", db_rows_str(r, 1), k);
		if (!kmap_add(&c->progmap, k, (int64_t)c->nprogs))
			continue;
		c->progs[c->nprogs].id = db_rows_i64(r, 0);
		c->progs[c->nprogs].household = strcmp(db_rows_str(r, 2), "household") == 0;
		hf_strlcpy(c->progs[c->nprogs].code, db_rows_str(r, 1), sizeof(c->progs[c->nprogs].code));
		c->nprogs++;
	}
	db_rows_free(r);
	return HF_OK;
}

static void village_key(const struct irow *head, uint8_t out[KEY_LEN])
{
	struct hf_buf k;
	hf_buf_init(&k, 4 * IMPORT_FIELD_MAX);
	hf_err err = hf_buf_appendf(&k, "%s\x1f%s\x1f%s", head->f[C_REGION], head->f[C_DISTRICT], head->f[C_VILLAGE]);
	HF_ASSERT(err == HF_OK); /* each part is capped at IMPORT_FIELD_MAX */
	key_of("import.loc", hf_buf_cstr(&k), out);
	hf_buf_release(&k);
}

/* The run's village cache; 0 when the village was not resolved yet. Either thread. */
static int64_t village_cached(struct ictx *c, const uint8_t key[KEY_LEN])
{
	int64_t id = 0;
	pthread_mutex_lock(&c->mu);
	if (!kmap_get(&c->villages, key, &id))
		id = 0;
	pthread_mutex_unlock(&c->mu);
	return id;
}

/* The writer: the village id of a household, created on first use. */
static hf_err village_of(struct ictx *c, const struct ihh *h, const struct irow *head, int64_t *out)
{
	int64_t id = village_cached(c, h->vkey);
	if (id) {
		*out = id;
		return HF_OK;
	}
	hf_err err = location_resolve(c->db, head->f[C_REGION], head->f[C_DISTRICT], head->f[C_VILLAGE], &id);
	if (err)
		return err;
	pthread_mutex_lock(&c->mu);
	kmap_add(&c->villages, h->vkey, id);
	pthread_mutex_unlock(&c->mu);
	*out = id;
	return HF_OK;
}

static void batch_new_number(struct ibatch *b, char out[BENNO_LEN + 1])
{
	for (;;) {
		numbers_new(out);
		uint8_t k[KEY_LEN];
		key_of_number(out, k);
		if (kmap_add(&b->bnums, k, 0))
			return;
	}
}

/* ---- batched lookups ---- */

static size_t in_class(size_t n)
{
	return n <= 16 ? 16 : n <= 128 ? 128 : IN_MAX;
}

typedef void (*in_row_fn)(struct ictx *c, struct ibatch *b, struct db_rows *r);

/* Runs prefix "?,?,...)" over vals[0..n) in chunks, each padded to a fixed size with its last value (a
 * repeated value in an IN list changes nothing), and hands every result row to fn. */
static hf_err query_in(struct ictx *c, struct ibatch *b, const char *prefix, const struct db_val *vals, size_t n,
		       in_row_fn fn)
{
	for (size_t at = 0; at < n; at += IN_MAX) {
		size_t k = n - at < IN_MAX ? n - at : IN_MAX;
		size_t cls = in_class(k);
		hf_buf_reset(&c->sql);
		hf_err err = hf_buf_append_str(&c->sql, prefix);
		for (size_t i = 0; !err && i < cls; i++)
			err = hf_buf_append(&c->sql, i ? ",?" : "?", i ? 2 : 1);
		if (!err)
			err = hf_buf_append(&c->sql, ")", 1);
		HF_ASSERT(err == HF_OK);
		for (size_t i = 0; i < cls; i++)
			c->scratch[i] = vals[at + (i < k ? i : k - 1)];
		struct db_rows *r = NULL;
		err = db_query(c->db, hf_buf_cstr(&c->sql), c->scratch, cls, &r);
		if (err)
			return err;
		while (db_rows_next(r))
			fn(c, b, r);
		db_rows_free(r);
	}
	return HF_OK;
}

static void on_household_exists(struct ictx *c, struct ibatch *b, struct db_rows *r)
{
	uint8_t k[KEY_LEN];
	int64_t i;
	key_of("import.ref", db_rows_str(r, 0), k);
	if (!kmap_get(&c->bmap, k, &i))
		return;
	b->hhs[i].exists = true;
	b->hhs[i].id = db_rows_i64(r, 1);
	b->hhs[i].village_id = db_rows_i64(r, 2);
}

static void on_individual_exists(struct ictx *c, struct ibatch *b, struct db_rows *r)
{
	uint8_t k[KEY_LEN];
	int64_t i;
	key_of("import.ref", db_rows_str(r, 0), k);
	if (kmap_get(&c->bmap, k, &i))
		b->rows[i].state = R_EXISTING;
}

static void on_nid_taken(struct ictx *c, struct ibatch *b, struct db_rows *r)
{
	size_t len = 0;
	const void *bidx = db_rows_blob(r, 0, &len);
	int64_t i;
	if (!bidx || len != HF_BIDX_LEN || !kmap_get(&c->bmap, bidx, &i))
		return;
	if (b->rows[i].state == R_GOOD)
		ferr(b, &b->rows[i], "national_id", "this national ID is already registered to someone else");
}

static void on_number_taken(struct ictx *c, struct ibatch *b, struct db_rows *r)
{
	(void)b;
	const char *no = db_rows_str(r, 0);
	uint8_t k[KEY_LEN];
	int64_t i;
	if (strlen(no) != BENNO_LEN)
		return;
	key_of_number(no, k);
	if (kmap_get(&c->bmap, k, &i))
		c->taken[c->ntaken++] = (size_t)i;
}

/* ---- reading ---- */

static bool ref_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > REF_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '_'))
			return false;
	}
	return true;
}

static int col_of_name(const char *name)
{
	for (int i = 0; i < IMPORT_NCOLUMNS; i++)
		if (strcmp(name, import_columns[i]) == 0)
			return i;
	return -1;
}

static void field_value(const struct ictx *c, size_t i, const char **out)
{
	*out = (c->long_mask | c->nul_mask) & (1ULL << i) ? "" : c->rec + c->off[i];
}

static void columns_list(struct hf_buf *b)
{
	for (size_t i = 0; i < IMPORT_NCOLUMNS; i++)
		hf_buf_note(b, "%s%s", i ? "," : "", import_columns[i]);
}

static bool header_parse(struct ictx *c)
{
	if (c->nfields > IMPORT_ROW_FIELDS_MAX) {
		hf_buf_note(&c->why, "the header row has more than %d columns", IMPORT_ROW_FIELDS_MAX);
		return false;
	}
	c->header_fields = c->nfields;
	for (size_t i = 0; i < c->nfields; i++) {
		const char *name;
		field_value(c, i, &name);
		int col = -1;
		for (int j = 0; j < IMPORT_NCOLUMNS && col < 0; j++)
			if (strcasecmp(name, import_columns[j]) == 0)
				col = j;
		/* The name is not echoed: when the header row is missing, the "name" is someone's data. */
		if (col < 0) {
			hf_buf_note(&c->why, "column %zu of the header row is not a known column (is the header row "
				    "missing?); the columns are: ", i + 1);
			columns_list(&c->why);
			return false;
		}
		if (c->have_col[col]) {
			hf_buf_note(&c->why, "column %s appears twice in the header row", import_columns[col]);
			return false;
		}
		c->have_col[col] = true;
		c->colmap[i] = col;
	}
	bool missing = false;
	for (size_t j = 0; j < IMPORT_NCOLUMNS; j++)
		if (!c->have_col[j] && !col_optional[j]) {
			hf_buf_note(&c->why, "%s%s", missing ? ", " : "required columns missing from the header row: ",
				    import_columns[j]);
			missing = true;
		}
	return !missing;
}

static struct ihh *household_start(struct ictx *c, const char *ref)
{
	struct ibatch *b = c->rb;
	b->hhs = grow(b->hhs, &b->caphh, b->nhh + 1, sizeof(*b->hhs));
	struct ihh *h = &b->hhs[b->nhh++];
	memset(h, 0, sizeof(*h));
	h->ref = arena_strndup(&b->arena, ref, strlen(ref));
	h->ref_ok = ref_valid(ref);
	h->first = b->nrows;
	key_of("import.ref", ref, h->key);
	h->nonconsecutive = !kmap_add(&c->seen_refs, h->key, 0);
	c->hh_open = true;
	return h;
}

/* Checks that need the whole household. */
static void household_finish(struct ictx *c, struct ihh *h)
{
	struct ibatch *b = c->rb;
	c->hh_open = false;
	const char *why = NULL;
	if (h->nonconsecutive)
		why = "household rows must be consecutive: this household_ref is also used on earlier rows";
	else if (h->too_many)
		why = "the household has more than 30 rows";
	else if (h->nheads == 0)
		why = "household has no head";
	else if (h->nheads > 1)
		why = arena_printf(&b->arena, "household has %d heads", h->nheads);
	if (why) {
		for (size_t i = h->first; i < h->first + h->n; i++)
			perr(b, &b->rows[i], "", why);
		return;
	}
	/* The household's place and address come from the head row; others may repeat them, not differ. */
	static const enum col shared[] = {C_REGION, C_DISTRICT, C_VILLAGE, C_ADDRESS};
	const struct irow *hr = &b->rows[h->head];
	for (size_t i = h->first; i < h->first + h->n; i++) {
		struct irow *r = &b->rows[i];
		if (i == h->head)
			continue;
		for (size_t k = 0; k < HF_ARRAY_LEN(shared); k++)
			if (r->f[shared[k]][0] && strcmp(r->f[shared[k]], hr->f[shared[k]]) != 0)
				perr(b, r, import_columns[shared[k]], "not the same as on the household's head row");
	}
}

static bool bad_cols_has(uint32_t mask, int col)
{
	return (mask >> col) & 1u;
}

static void row_check(struct ictx *c, struct ihh *h, struct irow *r, uint32_t bad_cols)
{
	struct ibatch *b = c->rb;
	struct vfail why;

	const char *ref = r->f[C_HOUSEHOLD_REF];
	if (!bad_cols_has(bad_cols, C_HOUSEHOLD_REF) && !h->ref_ok)
		perr(b, r, "household_ref",
		     ref[0] ? "a household_ref has 1 to 40 letters, digits, '-' or '_'" : "this field is required");

	int64_t member = 0;
	const char *m = r->f[C_MEMBER_NO];
	if (bad_cols_has(bad_cols, C_MEMBER_NO)) {
		member = 0;
	} else if (!m[0]) {
		perr(b, r, "member_no", "this field is required");
	} else if (hf_parse_i64(m, 1, IMPORT_HOUSEHOLD_MAX, &member) != HF_OK) {
		perr(b, r, "member_no", "member_no is a whole number from 1 to 30");
		member = 0;
	} else if (h->members & (1u << (member - 1))) {
		perr(b, r, "member_no", "another row of this household has the same member_no");
		member = 0;
	} else {
		h->members |= 1u << (member - 1);
	}

	r->head = strcmp(r->f[C_RELATIONSHIP], "head") == 0;
	if (r->head) {
		h->nheads++;
		h->head = (size_t)(r - b->rows);
	}

	static const enum col places[] = {C_REGION, C_DISTRICT, C_VILLAGE};
	for (size_t k = 0; k < HF_ARRAY_LEN(places); k++) {
		const char *v = r->f[places[k]];
		if (bad_cols_has(bad_cols, places[k]))
			continue;
		if (!v[0]) {
			if (r->head)
				perr(b, r, import_columns[places[k]], "this field is required on the head row");
		} else if (!validate_place_name(v, &why)) {
			perr(b, r, import_columns[places[k]], why.message);
		}
	}
	const char *addr = r->f[C_ADDRESS];
	if (addr[0] && !bad_cols_has(bad_cols, C_ADDRESS)) {
		if (!hf_utf8_valid_text(addr, strlen(addr)))
			perr(b, r, "address", "the address contains characters that are not text");
		else if (hf_utf8_len(addr) > ADDRESS_MAX_CHARS)
			perr(b, r, "address", "an address has at most 200 characters");
	}
	const char *prog = r->f[C_PROGRAMME];
	if (prog[0] && !bad_cols_has(bad_cols, C_PROGRAMME)) {
		uint8_t k[KEY_LEN];
		int64_t idx;
		key_of("import.prog", prog, k);
		if (kmap_get(&c->progmap, k, &idx))
			r->prog = (int)idx;
		else
			perr(b, r, "programme", "no active programme has this code");
	}

	struct person_in in = {
		.given_name = r->f[C_GIVEN_NAME],
		.family_name = r->f[C_FAMILY_NAME],
		.sex = r->f[C_SEX],
		.date_of_birth = r->f[C_DATE_OF_BIRTH],
		.national_id = r->f[C_NATIONAL_ID],
		.phone = r->f[C_PHONE],
		.relationship = r->f[C_RELATIONSHIP],
		.disability = r->f[C_DISABILITY],
		.language = r->f[C_LANGUAGE],
	};
	if (!person_validate(&in, "", true, &c->fe, &r->pr)) {
		size_t i;
		json_t *e;
		json_array_foreach(c->fe.list, i, e) {
			const char *field = json_string_value(json_object_get(e, "field"));
			const char *msg = json_string_value(json_object_get(e, "message"));
			int col = field ? col_of_name(field) : -1;
			if (col >= 0 && bad_cols_has(bad_cols, col))
				continue; /* already reported as too long / not text */
			if (!msg)
				msg = "invalid";
			perr(b, r, col >= 0 ? import_columns[col] : "", arena_strndup(&b->arena, msg, strlen(msg)));
		}
		json_array_clear(c->fe.list);
	}
	if (r->pr.nid[0]) {
		person_nid_bidx(g_app.keys, r->pr.nid, r->nid_bidx);
		if (!kmap_add(&c->seen_nids, r->nid_bidx, 0))
			perr(b, r, "national_id", "this national ID is also on an earlier row of the file");
		else
			r->has_nid = true;
	}
	if (h->ref_ok && !h->nonconsecutive && member > 0) {
		r->ext_ref = arena_printf(&b->arena, "%s/%d", h->ref, (int)member);
		key_of("import.ref", r->ext_ref, r->ext_key);
	}
}

static hf_err seal_address(struct ihh *h, int64_t id, const char *address)
{
	if (h->sealed)
		hf_buf_release(&h->addr_enc);
	hf_buf_init(&h->addr_enc, 4096);
	h->sealed = true;
	if (!address[0])
		return HF_OK;
	char ad[64];
	int n = snprintf(ad, sizeof(ad), "households.address:%lld", (long long)id);
	return hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, address, strlen(address), &h->addr_enc);
}

/* The CPU-heavy part of a batch, done by the reader while the writer waits on the database: ids, numbers
 * and sealing of every row that passed reading. A village seen before is taken from the run's cache; a
 * new one needs the database, so its members' duplicate key is sealed with village 0 and recomputed by
 * the writer. Rows the database later turns away were sealed for nothing; that costs less than making
 * the writer wait for it. */
static void batch_preseal(struct ictx *c, struct ibatch *b)
{
	kmap_clear(&b->bids);
	kmap_clear(&b->bnums);
	for (size_t i = 0; i < b->nhh; i++) {
		struct ihh *h = &b->hhs[i];
		h->new_id = batch_new_id(b);
		h->sealed_village = 0;
		if (h->nheads != 1)
			continue;
		const struct irow *hr = &b->rows[h->head];
		village_key(hr, h->vkey);
		h->sealed_village = village_cached(c, h->vkey);
		batch_new_number(b, h->hh_no);
		if (seal_address(h, h->new_id, hr->f[C_ADDRESS]) != HF_OK)
			HF_ASSERT(!"sealed address over 4 KiB: input caps are broken");
	}
	for (size_t j = 0; j < b->nrows; j++) {
		struct irow *r = &b->rows[j];
		if (!r->valid)
			continue;
		r->pr.id = batch_new_id(b);
		batch_new_number(b, r->pr.ben_no);
		person_seal(g_app.keys, &r->pr, b->hhs[r->hh].sealed_village);
		r->sealed = true;
	}
}

/* Hands the reader's batch to the writer and takes the other one once the writer is done with it. */
static void batch_handover(struct ictx *c, bool last, bool abort)
{
	struct ibatch *b = c->rb;
	b->last = last;
	b->abort = abort;
	if (!abort)
		batch_preseal(c, b);
	struct ibatch *other = b == &c->batches[0] ? &c->batches[1] : &c->batches[0];
	pthread_mutex_lock(&c->mu);
	b->full = true;
	pthread_cond_broadcast(&c->cv);
	while (other->full && !atomic_load(&c->stop))
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	c->rb = other;
}

static void record_data(struct ictx *c)
{
	c->rows_read++;
	uint64_t recno = c->recno + 1;
	const char *v[IMPORT_NCOLUMNS];
	for (size_t j = 0; j < IMPORT_NCOLUMNS; j++)
		v[j] = "";
	uint32_t bad = 0;
	for (size_t i = 0; i < c->nfields && i < c->header_fields; i++) {
		int col = c->colmap[i];
		field_value(c, i, &v[col]);
		if ((c->long_mask | c->nul_mask) & (1ULL << i))
			bad |= 1u << col;
	}
	const char *ref = v[C_HOUSEHOLD_REF];
	struct ihh *h = c->hh_open ? &c->rb->hhs[c->rb->nhh - 1] : NULL;
	if (!h || strcasecmp(ref, h->ref) != 0) {
		if (h) {
			household_finish(c, h);
			if (c->rb->nhh >= BATCH_HOUSEHOLDS)
				batch_handover(c, false, false);
		}
		h = household_start(c, ref);
	}
	struct ibatch *b = c->rb;
	if (h->n >= IMPORT_HOUSEHOLD_MAX) {
		if (!h->extra_n)
			h->extra_first = recno;
		h->extra_n++;
		h->too_many = true;
		return;
	}
	b->rows = grow(b->rows, &b->caprows, b->nrows + 1, sizeof(*b->rows));
	struct irow *r = &b->rows[b->nrows++];
	memset(r, 0, sizeof(*r));
	h->n++;
	r->recno = recno;
	r->hh = b->nhh - 1;
	r->valid = true;
	r->prog = -1;
	for (size_t j = 0; j < IMPORT_NCOLUMNS; j++)
		r->f[j] = v[j][0] ? arena_strndup(&b->arena, v[j], strlen(v[j])) : "";
	if (c->nfields != c->header_fields) {
		if (c->nfields > IMPORT_ROW_FIELDS_MAX)
			perr(b, r, "", "the row has more than 64 fields");
		else
			perr(b, r, "",
			     arena_printf(&b->arena, "the row has %zu fields, the header row has %zu", c->nfields,
					  c->header_fields));
		return;
	}
	for (int col = 0; col < IMPORT_NCOLUMNS; col++) {
		if (!bad_cols_has(bad, col))
			continue;
		bool too_long = false;
		for (size_t i = 0; i < c->header_fields; i++)
			if (c->colmap[i] == col && (c->long_mask & (1ULL << i)))
				too_long = true;
		perr(b, r, import_columns[col], too_long ? "longer than 1000 bytes" : "contains a NUL byte");
	}
	row_check(c, h, r, bad);
}

static void on_field(void *s, size_t len, void *data)
{
	struct ictx *c = data;
	size_t i = c->nfields++;
	if (i >= IMPORT_ROW_FIELDS_MAX)
		return;
	c->off[i] = c->rec_len;
	if (len > IMPORT_FIELD_MAX) {
		c->long_mask |= 1ULL << i;
		return;
	}
	if (memchr(s, '\0', len))
		c->nul_mask |= 1ULL << i;
	if (c->scanning && c->recno > 0)
		return; /* the structure pass keeps only the header */
	memcpy(c->rec + c->rec_len, s, len);
	c->rec[c->rec_len + len] = '\0';
	c->rec_len += len + 1;
}

static void on_record(int term, void *data)
{
	(void)term;
	struct ictx *c = data;
	if (!c->rerr && !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (c->recno == 0) {
			if (c->scanning && !header_parse(c))
				c->rerr = HF_EINVAL;
		} else if (!c->scanning) {
			record_data(c);
		}
	}
	c->recno++;
	c->nfields = 0;
	c->rec_len = 0;
	c->long_mask = c->nul_mask = 0;
}

/* libcsv grows its field buffer without limit; refusing past CSV_ENTRY_MAX makes csv_parse stop with
 * CSV_ENOMEM, so an unclosed quote in a 2 GiB file costs 64 KiB, not 2 GiB. */
static void *capped_realloc(void *p, size_t n)
{
	return n > CSV_ENTRY_MAX ? NULL : realloc(p, n);
}

static hf_err csv_refuse(struct ictx *c, struct csv_parser *p)
{
	if (csv_error(p) == CSV_ENOMEM)
		hf_buf_note(&c->why, "record %" PRIu64 " has a field longer than 64 KiB (a quote that is never closed?)",
			    c->recno + 1);
	else
		hf_buf_note(&c->why, "record %" PRIu64 " is not valid CSV: a quote inside an unquoted field, text after "
			    "a closing quote, or a quote that is never closed", c->recno + 1);
	return HF_EINVAL;
}

static hf_err parse_all(struct ictx *c, const char *data, size_t len)
{
	struct csv_parser p;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		return HF_EINTERNAL;
	csv_set_realloc_func(&p, capped_realloc);
	c->recno = 0;
	c->nfields = 0;
	c->rec_len = 0;
	c->long_mask = c->nul_mask = 0;
	hf_err err = HF_OK;
	for (size_t at = 0; at < len && !c->rerr && !atomic_load(&c->stop); at += PARSE_CHUNK) {
		size_t k = len - at < PARSE_CHUNK ? len - at : PARSE_CHUNK;
		if (csv_parse(&p, data + at, k, on_field, on_record, c) != k) {
			err = csv_refuse(c, &p);
			break;
		}
	}
	if (!err && !c->rerr && !atomic_load(&c->stop) && csv_fini(&p, on_field, on_record, c) != 0)
		err = csv_refuse(c, &p);
	csv_free(&p);
	return err ? err : c->rerr;
}

struct reader_args {
	struct ictx *c;
	const char *data;
	size_t len;
};

/* The reader thread: pass 2 over the file, handing over full batches; the last one says so. */
static void *reader_main(void *vargs)
{
	struct reader_args *a = vargs;
	struct ictx *c = a->c;
	hf_err err = parse_all(c, a->data, a->len);
	if (!err && c->hh_open)
		household_finish(c, &c->rb->hhs[c->rb->nhh - 1]);
	if (err)
		c->rerr = err;
	batch_handover(c, true, err != HF_OK || atomic_load(&c->stop));
	return NULL;
}

/* ---- writing a batch (the calling thread) ---- */

static void batch_reset_write(struct ictx *c, struct ibatch *b)
{
	for (size_t i = 0; i < b->nrows; i++) {
		struct irow *r = &b->rows[i];
		r->state = r->valid ? R_GOOD : R_BAD;
		r->ferr = r->ferr_tail = NULL;
	}
	for (size_t i = 0; i < b->nhh; i++) {
		struct ihh *h = &b->hhs[i];
		h->exists = h->insert = false;
		h->id = h->new_id;
		h->village_id = 0;
	}
	c->nenr = c->nins_hh = c->nins_rows = 0;
}

/* Which rows are already in, which clash with the database, and which households go in. */
static hf_err classify(struct ictx *c, struct ibatch *b)
{
	size_t n = 0;
	kmap_clear(&c->bmap);
	for (size_t i = 0; i < b->nhh; i++) {
		struct ihh *h = &b->hhs[i];
		if (!h->ref_ok || h->nonconsecutive)
			continue;
		if (kmap_add(&c->bmap, h->key, (int64_t)i))
			c->list[n++] = db_str(h->ref);
	}
	hf_err err = query_in(c, b, "SELECT ext_ref, id, location_id FROM households WHERE ext_ref IN (", c->list, n,
			      on_household_exists);
	if (err)
		return err;

	/* Individuals can only exist in a household that exists (both come from the same import), unless
	 * a write found otherwise: then every row is looked up. */
	n = 0;
	kmap_clear(&c->bmap);
	for (size_t i = 0; i < b->nhh; i++) {
		struct ihh *h = &b->hhs[i];
		if (!h->exists && !c->check_all_members)
			continue;
		for (size_t j = h->first; j < h->first + h->n; j++) {
			if (b->rows[j].ext_ref && kmap_add(&c->bmap, b->rows[j].ext_key, (int64_t)j))
				c->list[n++] = db_str(b->rows[j].ext_ref);
		}
	}
	err = query_in(c, b, "SELECT ext_ref FROM individuals WHERE ext_ref IN (", c->list, n, on_individual_exists);
	if (err)
		return err;

	n = 0;
	kmap_clear(&c->bmap);
	for (size_t j = 0; j < b->nrows; j++) {
		struct irow *r = &b->rows[j];
		if (r->state == R_GOOD && r->has_nid && kmap_add(&c->bmap, r->nid_bidx, (int64_t)j))
			c->list[n++] = DB_BLOB(r->nid_bidx, HF_BIDX_LEN);
	}
	err = query_in(c, b, "SELECT nid_bidx FROM individuals WHERE nid_bidx IN (", c->list, n, on_nid_taken);
	if (err)
		return err;

	for (size_t i = 0; i < b->nhh; i++) {
		struct ihh *h = &b->hhs[i];
		if (h->nonconsecutive || h->too_many || h->nheads != 1)
			continue; /* every row was rejected while reading (or is already in) */
		struct irow *hr = &b->rows[h->head];
		if (h->exists && hr->state == R_GOOD)
			ferr(b, hr, "", "the household is already registered with another head");
		bool head_ok = h->exists ? hr->state == R_EXISTING : hr->state == R_GOOD;
		if (!head_ok)
			for (size_t j = h->first; j < h->first + h->n; j++)
				if (b->rows[j].state == R_GOOD)
					ferr(b, &b->rows[j], "", "head row rejected");
		h->insert = !h->exists && hr->state == R_GOOD;
	}
	return HF_OK;
}

static char *number_slot(struct ictx *c, struct ibatch *b, bool households, size_t item)
{
	return households ? b->hhs[c->ins_hh[item]].hh_no : b->rows[c->ins_rows[item]].pr.ben_no;
}

/* Redraws the numbers the database already holds until none is taken. */
static hf_err numbers_check(struct ictx *c, struct ibatch *b, bool households)
{
	size_t count = households ? c->nins_hh : c->nins_rows;
	c->ntodo = count;
	for (size_t i = 0; i < count; i++)
		c->todo[i] = i;
	for (int round = 0; round < NUMBER_ROUNDS; round++) {
		if (c->ntodo == 0)
			return HF_OK;
		kmap_clear(&c->bmap);
		for (size_t i = 0; i < c->ntodo; i++) {
			uint8_t k[KEY_LEN];
			const char *no = number_slot(c, b, households, c->todo[i]);
			key_of_number(no, k);
			kmap_add(&c->bmap, k, (int64_t)c->todo[i]);
			c->list[i] = db_strn(no, BENNO_LEN);
		}
		c->ntaken = 0;
		hf_err err = query_in(c, b,
				      households ? "SELECT hh_no FROM households WHERE hh_no IN ("
						 : "SELECT ben_no FROM individuals WHERE ben_no IN (",
				      c->list, c->ntodo, on_number_taken);
		if (err)
			return err;
		for (size_t i = 0; i < c->ntaken; i++) {
			batch_new_number(b, number_slot(c, b, households, c->taken[i]));
			c->todo[i] = c->taken[i];
		}
		c->ntodo = c->ntaken;
	}
	hf_log(HF_LOG_ERROR, "core.import", "msg=\"could not draw free numbers: the number space is nearly full\"");
	return HF_ECONFLICT;
}

static void enrol_add(struct ictx *c, struct ibatch *b, size_t hh_first_enrol, const struct prog *p, int64_t ind_id,
		      int64_t hh_id)
{
	/* Several members may name the same household programme: one enrolment. */
	if (hh_id)
		for (size_t i = hh_first_enrol; i < c->nenr; i++)
			if (c->enr[i].prog_id == p->id && c->enr[i].hh_id == hh_id)
				return;
	c->enr = grow(c->enr, &c->capenr, c->nenr + 1, sizeof(*c->enr));
	c->enr[c->nenr++] = (struct enrol){batch_new_id(b), p->id, ind_id, hh_id, p->code};
}

/* Villages, the duplicate keys, free numbers and the lists of what goes in. Repeatable: a retried batch
 * draws numbers again after a number collision, and ids (sealing again) after an id collision. */
static hf_err prepare(struct ictx *c, struct ibatch *b)
{
	bool ids = c->redraw_ids, numbers = c->redraw_numbers;
	c->redraw_ids = c->redraw_numbers = false;
	c->nins_hh = c->nins_rows = c->nenr = 0;
	for (size_t i = 0; i < b->nhh; i++) {
		struct ihh *h = &b->hhs[i];
		if (h->insert) {
			const struct irow *hr = &b->rows[h->head];
			hf_err err = village_of(c, h, hr, &h->village_id);
			if (err)
				return err;
			if (ids) {
				h->id = h->new_id = batch_new_id(b);
				err = seal_address(h, h->id, hr->f[C_ADDRESS]);
				if (err)
					return err;
			}
			if (numbers)
				batch_new_number(b, h->hh_no);
			c->ins_hh[c->nins_hh++] = i;
		}
		size_t first_enrol = c->nenr;
		for (size_t j = h->first; j < h->first + h->n; j++) {
			struct irow *r = &b->rows[j];
			if (r->state != R_GOOD)
				continue;
			HF_ASSERT((h->insert || h->exists) && r->sealed);
			if (ids) {
				r->pr.id = batch_new_id(b);
				person_row_release(&r->pr);
				person_seal(g_app.keys, &r->pr, h->village_id);
			} else if (h->village_id != h->sealed_village) {
				person_dedup_bidx(g_app.keys, r->pr.given_name, r->pr.family_name, r->pr.dob, h->village_id,
						  r->pr.dedup_bidx);
			}
			if (numbers)
				batch_new_number(b, r->pr.ben_no);
			c->ins_rows[c->nins_rows++] = j;
			if (r->prog >= 0) {
				const struct prog *p = &c->progs[r->prog];
				enrol_add(c, b, first_enrol, p, p->household ? 0 : r->pr.id, p->household ? h->id : 0);
			}
		}
		if (ids)
			h->sealed_village = h->village_id;
	}
	hf_err err = numbers_check(c, b, true);
	if (!err)
		err = numbers_check(c, b, false);
	return err;
}

typedef void (*fill_fn)(struct ictx *c, struct ibatch *b, size_t item, struct db_val *out);

#define HH_INSERT                                                                                              \
	"INSERT INTO households (id, hh_no, ext_ref, location_id, address_enc, created_at, created_by, "       \
	"updated_at, updated_by) VALUES "
#define HH_ROW "(?,?,?,?,?,UTC_TIMESTAMP(3),?,UTC_TIMESTAMP(3),?)"
#define HH_NPARAMS 7
#define ENROL_INSERT                                                                                           \
	"INSERT IGNORE INTO enrolments (id, programme_id, programme_code, individual_id, household_id, status, " \
	"created_at, "                                                                                          \
	"created_by, updated_at, updated_by) VALUES "
#define ENROL_ROW "(?,?,?,?,?,'pending',UTC_TIMESTAMP(3),?,UTC_TIMESTAMP(3),?)"
#define ENROL_NPARAMS 7

static void fill_household(struct ictx *c, struct ibatch *b, size_t item, struct db_val *v)
{
	const struct ihh *h = &b->hhs[c->ins_hh[item]];
	v[0] = DB_I64(h->id);
	v[1] = db_str(h->hh_no);
	v[2] = db_str(h->ref);
	v[3] = DB_I64(h->village_id);
	v[4] = db_blob_or_null(h->addr_enc.data, h->addr_enc.len);
	v[5] = db_str(c->actor);
	v[6] = db_str(c->actor);
}

static void fill_individual(struct ictx *c, struct ibatch *b, size_t item, struct db_val *v)
{
	const struct irow *r = &b->rows[c->ins_rows[item]];
	person_insert_vals(&r->pr, b->hhs[r->hh].id, r->ext_ref, c->actor, v);
}

static void fill_enrolment(struct ictx *c, struct ibatch *b, size_t item, struct db_val *v)
{
	(void)b;
	const struct enrol *e = &c->enr[item];
	v[0] = DB_I64(e->id);
	v[1] = DB_I64(e->prog_id);
	v[2] = db_str(e->code);
	v[3] = e->ind_id ? DB_I64(e->ind_id) : DB_NULLV;
	v[4] = e->hh_id ? DB_I64(e->hh_id) : DB_NULLV;
	v[5] = db_str(c->actor);
	v[6] = db_str(c->actor);
}

/* Multi-row INSERTs of 256, 64, 16, 4 or 1 rows: few distinct statements, all cached once prepared. The
 * SQL is made of our constant placeholders only; every value is bound. */
static hf_err insert_chunks(struct ictx *c, struct ibatch *b, const char *head, const char *row, size_t per_row,
			    size_t n, fill_fn fill, uint64_t *affected)
{
	for (size_t at = 0; at < n;) {
		size_t k = INSERT_CHUNK_MAX;
		while (k > n - at)
			k /= 4;
		hf_buf_reset(&c->sql);
		hf_err err = hf_buf_append_str(&c->sql, head);
		for (size_t i = 0; !err && i < k; i++) {
			if (i)
				err = hf_buf_append(&c->sql, ",", 1);
			if (!err)
				err = hf_buf_append_str(&c->sql, row);
		}
		HF_ASSERT(err == HF_OK);
		for (size_t i = 0; i < k; i++)
			fill(c, b, at + i, c->scratch + i * per_row);
		uint64_t a = 0;
		err = db_exec(c->db, hf_buf_cstr(&c->sql), c->scratch, k * per_row, &a);
		if (err)
			return err;
		if (affected)
			*affected += a;
		at += k;
	}
	return HF_OK;
}

struct write_args {
	struct ictx *c;
	struct ibatch *b;
};

static hf_err batch_write(struct db *db, void *vargs)
{
	struct write_args *a = vargs;
	struct ictx *c = a->c;
	c->batch_enrolled = 0;
	hf_err err = insert_chunks(c, a->b, HH_INSERT, HH_ROW, HH_NPARAMS, c->nins_hh, fill_household, NULL);
	if (!err)
		err = insert_chunks(c, a->b, "INSERT INTO individuals (" PERSON_INSERT_COLUMNS ") VALUES ",
				    PERSON_INSERT_ROW, PERSON_INSERT_NPARAMS, c->nins_rows, fill_individual, NULL);
	if (!err)
		err = insert_chunks(c, a->b, ENROL_INSERT, ENROL_ROW, ENROL_NPARAMS, c->nenr, fill_enrolment,
				    &c->batch_enrolled);
	if (err || (c->nins_hh == 0 && c->nins_rows == 0 && c->nenr == 0))
		return err;
	/* One audit entry per batch, in the batch's transaction: counts and the run, never row contents. */
	json_t *d = json_pack("{s:I, s:I, s:I, s:I}", "run", (json_int_t)c->run_id, "households", (json_int_t)c->nins_hh,
			      "individuals", (json_int_t)c->nins_rows, "enrolments", (json_int_t)c->nenr);
	struct audit_actor who = {"cli", c->actor, "local", ""};
	struct audit_event ev = {"registry.import_batch", "import_run", "", "ok", NULL, NULL, d};
	char run[24];
	snprintf(run, sizeof(run), "%lld", (long long)c->run_id);
	ev.record = run;
	err = audit_append(db, &who, &ev);
	json_decref(d);
	return err;
}

static bool retry_key(struct ictx *c, const char *key)
{
	if (strcmp(key, "uq_households_ext_ref") == 0 || strcmp(key, "uq_individuals_ext_ref") == 0) {
		/* Someone else imported the same rows meanwhile: look everything up again. */
		c->check_all_members = true;
		return true;
	}
	if (strcmp(key, "PRIMARY") == 0) {
		c->redraw_ids = true;
		return true;
	}
	if (strcmp(key, "uq_households_no") == 0 || strcmp(key, "uq_individuals_ben_no") == 0) {
		c->redraw_numbers = true; /* drawn by someone else since we checked */
		return true;
	}
	return false;
}

static void batch_report(struct ictx *c, struct ibatch *b)
{
	for (size_t i = 0; i < b->nhh; i++) {
		const struct ihh *h = &b->hhs[i];
		const char *ref = h->ref_ok ? h->ref : "";
		for (size_t j = h->first; j < h->first + h->n; j++) {
			const struct irow *r = &b->rows[j];
			switch (r->state) {
			case R_GOOD:
				c->st.individuals_inserted++;
				break;
			case R_EXISTING:
				c->st.skipped_existing++;
				break;
			case R_BAD:
				c->st.rejected_rows++;
				HF_ASSERT(r->perr || r->ferr);
				for (const struct rerr *e = r->perr; e; e = e->next)
					report_line(c, r->recno, ref, e->field, e->reason);
				for (const struct rerr *e = r->ferr; e; e = e->next)
					report_line(c, r->recno, ref, e->field, e->reason);
				break;
			}
		}
		for (uint64_t k = 0; k < h->extra_n; k++)
			report_line(c, h->extra_first + k, ref, "", "the household has more than 30 rows");
		c->st.rejected_rows += h->extra_n;
		if (h->insert)
			c->st.households_inserted++;
	}
	c->st.enrolments += c->batch_enrolled;
}

/* The per-batch index arrays hold one entry per row at most. */
static void idx_reserve(struct ictx *c, size_t need)
{
	if (need <= c->capidx)
		return;
	size_t cap = c->capidx ? c->capidx : 1024;
	while (cap < need)
		cap *= 2;
	c->list = hf_xrealloc(c->list, cap * sizeof(*c->list));
	c->ins_hh = hf_xrealloc(c->ins_hh, cap * sizeof(size_t));
	c->ins_rows = hf_xrealloc(c->ins_rows, cap * sizeof(size_t));
	c->todo = hf_xrealloc(c->todo, cap * sizeof(size_t));
	c->taken = hf_xrealloc(c->taken, cap * sizeof(size_t));
	c->capidx = cap;
}

static hf_err batch_flush(struct ictx *c, struct ibatch *b)
{
	if (b->nhh == 0)
		return HF_OK;
	idx_reserve(c, b->nrows + 1);

	hf_err err = HF_OK;
	struct write_args wa = {c, b};
	for (int attempt = 1;; attempt++) {
		batch_reset_write(c, b);
		err = classify(c, b);
		if (!err)
			err = prepare(c, b);
		if (!err)
			err = db_tx(c->db, batch_write, &wa);
		if (err != HF_ECONFLICT || attempt >= WRITE_ATTEMPTS || !retry_key(c, db_conflict_key(c->db)))
			break;
		hf_log(HF_LOG_INFO, "core.import", "msg=\"batch retried after a unique key conflict\" key=%s attempt=%d",
		       db_conflict_key(c->db), attempt);
	}
	if (err) {
		hf_log(HF_LOG_ERROR, "core.import",
		       "msg=\"batch write failed; the rows before it are imported\" first_record=%" PRIu64 " err=%s",
		       b->nrows ? b->rows[0].recno : 0, hf_err_name(err));
		return err;
	}
	batch_report(c, b);
	progress_show(c, false);
	return HF_OK;
}

/* The writer's loop: takes the batches in turn until the last one; on failure tells the reader to stop. */
static hf_err write_all(struct ictx *c)
{
	hf_err err = HF_OK;
	for (size_t i = 0;; i ^= 1) {
		struct ibatch *b = &c->batches[i];
		pthread_mutex_lock(&c->mu);
		while (!b->full)
			pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
		bool last = b->last;
		if (b->abort)
			err = c->rerr ? c->rerr : HF_EINTERNAL;
		else
			err = batch_flush(c, b);
		batch_clear(b);
		pthread_mutex_lock(&c->mu);
		b->full = false;
		if (err)
			atomic_store(&c->stop, true);
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		if (err || last)
			return err;
	}
}

/* ---- the run ---- */

static hf_err run_record_start(struct ictx *c, int64_t run_id, const char *sha_hex)
{
	struct db_val v[] = {DB_I64(run_id), db_str(sha_hex), db_str(c->actor)};
	return db_exec(c->db,
		       "INSERT INTO import_runs (id, file_sha256, started_at, actor) VALUES (?, ?, UTC_TIMESTAMP(3), ?)", v,
		       HF_ARRAY_LEN(v), NULL);
}

static hf_err run_record_end(struct ictx *c, int64_t run_id, bool finished)
{
	struct db_val v[] = {DB_I64(finished),
			     DB_I64(c->st.rows),
			     DB_I64(c->st.individuals_inserted),
			     DB_I64(c->st.skipped_existing),
			     DB_I64(c->st.rejected_rows),
			     DB_I64(run_id)};
	return db_exec(c->db,
		       "UPDATE import_runs SET finished_at = IF(?, UTC_TIMESTAMP(3), NULL), rows_total = ?, "
		       "rows_inserted = ?, rows_skipped = ?, rows_rejected = ? WHERE id = ?",
		       v, HF_ARRAY_LEN(v), NULL);
}

static void summary_print(struct ictx *c, bool stopped)
{
	if (!c->progress)
		return;
	progress_show(c, true);
	double rate = c->st.seconds > 0 ? (double)rows_done(c) / c->st.seconds : 0;
	char t[32];
	fmt_secs(t, sizeof(t), c->st.seconds);
	fprintf(c->progress,
		"\nimport: %s in %s, %.0f rows/s\n"
		"  households inserted:         %10" PRIu64 "\n"
		"  individuals inserted:        %10" PRIu64 "\n"
		"  already imported (skipped):  %10" PRIu64 "\n"
		"  rows rejected:               %10" PRIu64 "%s\n"
		"  enrolments created:          %10" PRIu64 "\n",
		stopped ? "STOPPED by an error" : "finished", t, rate, c->st.households_inserted,
		c->st.individuals_inserted, c->st.skipped_existing, c->st.rejected_rows,
		c->st.rejected_rows ? "  (reasons in the report)" : "", c->st.enrolments);
	fflush(c->progress);
}

static void ctx_init(struct ictx *c, struct db *db, const char *actor, FILE *report, FILE *progress)
{
	c->db = db;
	c->actor = actor;
	c->report = report;
	c->progress = progress;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	atomic_init(&c->stop, false);
	hf_buf_init(&c->why, 1024);
	hf_buf_init(&c->sql, 64 * 1024);
	hf_ferrs_init(&c->fe);
	c->rec = hf_xmalloc(IMPORT_ROW_FIELDS_MAX * (IMPORT_FIELD_MAX + 1));
	c->scratch = hf_xmalloc(SCRATCH_VALS * sizeof(*c->scratch));
	kmap_init(&c->seen_refs, 1 << 16, false);
	kmap_init(&c->seen_nids, 1 << 16, false);
	kmap_init(&c->villages, 1 << 10, true);
	kmap_init(&c->progmap, 1 << 6, true);
	kmap_init(&c->bmap, 1 << 15, true);
	for (size_t i = 0; i < HF_ARRAY_LEN(c->batches); i++) {
		kmap_init(&c->batches[i].bids, 1 << 16, false);
		kmap_init(&c->batches[i].bnums, 1 << 16, false);
	}
	c->rb = &c->batches[0];
	for (size_t i = 0; i < IMPORT_ROW_FIELDS_MAX; i++)
		c->colmap[i] = -1;
}

static void ctx_release(struct ictx *c)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(c->batches); i++)
		batch_release(&c->batches[i]);
	hf_buf_release(&c->why);
	hf_buf_release(&c->sql);
	hf_ferrs_release(&c->fe);
	free(c->rec);
	free(c->scratch);
	free(c->enr);
	free(c->list);
	free(c->ins_hh);
	free(c->ins_rows);
	free(c->todo);
	free(c->taken);
	free(c->progs);
	struct kmap *maps[] = {&c->seen_refs, &c->seen_nids, &c->villages, &c->progmap, &c->bmap};
	for (size_t i = 0; i < HF_ARRAY_LEN(maps); i++)
		kmap_release(maps[i]);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}

/* Opens and maps the file; refuses what is not a readable regular file of a sane size. */
static hf_err file_map(struct ictx *c, const char *path, int *fd_out, void **map_out, size_t *size_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		hf_log(HF_LOG_ERROR, "core.import", "msg=\"cannot open the import file\" errno=%d", e);
		if (c->progress)
			fprintf(c->progress, "import: cannot open the file: %s\n", strerror(e));
		return HF_EIO;
	}
	*fd_out = fd;
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		hf_buf_note(&c->why, "not a regular file");
		file_refuse(c, 0);
		return HF_EINVAL;
	}
	if ((uint64_t)sb.st_size > IMPORT_FILE_MAX) {
		hf_buf_note(&c->why, "the file is larger than 2 GiB: split it at a household boundary");
		file_refuse(c, 0);
		return HF_ETOOBIG;
	}
	if (sb.st_size == 0) {
		hf_buf_note(&c->why, "the file is empty");
		file_refuse(c, 0);
		return HF_EINVAL;
	}
	void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		hf_log(HF_LOG_ERROR, "core.import", "msg=\"cannot map the import file\" errno=%d", errno);
		return HF_EIO;
	}
	madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
	*map_out = map;
	*size_out = (size_t)sb.st_size;
	return HF_OK;
}

hf_err import_run(struct db *db, const char *csv_path, const char *actor, FILE *report, FILE *progress,
		  struct import_stats *out)
{
	struct ictx *c = hf_xcalloc(1, sizeof(*c));
	ctx_init(c, db, actor, report, progress);
	c->t0 = hf_mono_ms();
	int fd = -1;
	void *map = NULL;
	size_t size = 0;
	int64_t run_id = 0;
	hf_err err = HF_OK;

	size_t alen = actor ? strlen(actor) : 0;
	if (alen < 1 || alen > 64 || !hf_utf8_valid_text(actor, alen)) {
		hf_log(HF_LOG_ERROR, "core.import", "msg=\"the actor must be 1-64 characters of text\"");
		err = HF_EINVAL;
		goto out;
	}
	if (report)
		fputs("row,household_ref,field,reason\n", report);
	err = file_map(c, csv_path, &fd, &map, &size);
	if (err)
		goto out;
	const char *data = map;
	size_t len = size;
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) { /* a BOM, as spreadsheets write */
		data += 3;
		len -= 3;
	}

	/* Pass 1: structure and the number of records, before anything is written. */
	c->scanning = true;
	err = parse_all(c, data, len);
	if (!err && c->recno == 0) {
		hf_buf_note(&c->why, "the file has no header row");
		err = HF_EINVAL;
	}
	if (err) {
		file_refuse(c, c->rerr ? 1 : c->recno + 1);
		goto out;
	}
	c->total_rows = c->recno - 1;

	err = programmes_load(c);
	if (err)
		goto out;
	uint8_t sha[32];
	char sha_hex[65];
	hf_sha256(map, size, sha);
	hf_hex(sha, sizeof(sha), sha_hex);
	run_id = db_new_id();
	c->run_id = run_id;
	err = run_record_start(c, run_id, sha_hex);
	if (err)
		goto out;
	hf_log(HF_LOG_INFO, "core.import", "msg=\"import started\" run=%lld rows=%" PRIu64 " bytes=%zu",
	       (long long)run_id, c->total_rows, size);

	/* Pass 2: a reader thread parses, validates and seals batches while this one writes them. */
	c->scanning = false;
	pthread_t reader;
	struct reader_args ra = {c, data, len};
	if (pthread_create(&reader, NULL, reader_main, &ra) != 0) {
		hf_log(HF_LOG_ERROR, "core.import", "msg=\"cannot start the reader thread\"");
		err = HF_EINTERNAL;
		goto out;
	}
	err = write_all(c);
	pthread_join(reader, NULL);
	c->st.rows = c->rows_read;
	if (c->rerr == HF_EINVAL && c->why.len) /* the file changed under us between the passes */
		file_refuse(c, c->recno + 1);
	if (report && (fflush(report) != 0 || ferror(report))) {
		hf_log(HF_LOG_ERROR, "core.import", "msg=\"cannot write the report\"");
		if (!err)
			err = HF_EIO;
	}
	c->st.seconds = (double)(hf_mono_ms() - c->t0) / 1000.0;
	hf_err end_err = run_record_end(c, run_id, err == HF_OK);
	if (!err)
		err = end_err;
	summary_print(c, err != HF_OK);
	hf_log(HF_LOG_INFO, "core.import",
	       "msg=\"import %s\" run=%lld rows=%" PRIu64 " households_inserted=%" PRIu64 " individuals_inserted=%" PRIu64
	       " skipped_existing=%" PRIu64 " rejected=%" PRIu64 " enrolments=%" PRIu64 " seconds=%.1f",
	       err ? "stopped" : "finished", (long long)run_id, c->st.rows, c->st.households_inserted,
	       c->st.individuals_inserted, c->st.skipped_existing, c->st.rejected_rows, c->st.enrolments,
	       c->st.seconds);
out:
	c->st.seconds = (double)(hf_mono_ms() - c->t0) / 1000.0;
	if (out)
		*out = c->st;
	if (map)
		munmap(map, size);
	if (fd >= 0)
		close(fd);
	ctx_release(c);
	free(c);
	return err;
}
