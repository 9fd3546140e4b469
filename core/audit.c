/* audit.c - the tamper-evident audit trail: appending entries, checkpoints, verification and search.
 *
 * The cryptography and the exact bytes hashed live in audit_chain.c; this file is the part that talks to
 * the database. Appending is on the hot path of every write, so it costs two statements in the normal
 * case: each thread keeps its stripe's head (seq, hash) in a thread-local cache and advances it with a
 * compare-and-set UPDATE whose WHERE clause names the head it expects. The cache is never trusted for
 * correctness: when it is stale (first use, another instance or thread used the stripe, or an earlier
 * transaction rolled back after advancing it) the UPDATE changes no row and the head is read again under
 * a row lock. The head row stays locked until the caller's transaction ends, which is what serialises a
 * stripe; with one stripe per pool thread, writers rarely wait on each other.
 */
#include "hf_base.h"
#include "audit.h"
#include "app.h"
#include "audit_chain.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DETAIL_MAX 2000            /* audit_log.detail VARCHAR(2000); we keep to bytes, which is stricter */
#define CANON_MAX (64 * 1024)      /* canonical entry: far above what the columns can hold */
#define STRIPES_MAX 1024
#define ID_RETRIES 3               /* fresh ids after a primary-key collision (see db_new_id) */
#define SEARCH_DEFAULT_LIMIT 20
#define TS_SQL_FMT "'%Y-%m-%d %H:%i:%s.%f'" /* = AUDIT_TS_LEN characters, as audit_chain_now writes them */

static const uint8_t ZERO_HASH[AUDIT_HASH_LEN];

static struct {
	struct audit_chain_keys *keys;
	unsigned stripes;
	uint64_t checkpoint_every;
	bool enabled;
	unsigned generation; /* bumped by audit_init: threads then pick their stripe again */
} g_audit;
static atomic_uint g_next_stripe;
/* Stripes whose head row this process has seen committed: they skip head_create's extra read. */
static atomic_bool g_head_seen[STRIPES_MAX];

/* This thread's stripe, and what it last wrote there (valid when t_head_known). */
static _Thread_local unsigned t_generation;
static _Thread_local unsigned t_stripe;
static _Thread_local bool t_head_known;
static _Thread_local uint64_t t_head_seq;
static _Thread_local uint8_t t_head_hash[AUDIT_HASH_LEN];

hf_err audit_keygen(const char *dir)
{
	return audit_chain_keygen(dir);
}

hf_err audit_init(const char *key_dir, int stripes, int checkpoint_every, bool enabled)
{
	if (stripes < 1 || stripes > STRIPES_MAX || checkpoint_every < 1) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit settings out of range\" stripes=%d checkpoint_every=%d",
		       stripes, checkpoint_every);
		return HF_EINVAL;
	}
	struct audit_chain_keys *keys = NULL;
	hf_err err = audit_chain_keys_load(key_dir, &keys);
	if (err)
		return err;
	audit_shutdown();
	g_audit.keys = keys;
	g_audit.stripes = (unsigned)stripes;
	g_audit.checkpoint_every = (uint64_t)checkpoint_every;
	g_audit.enabled = enabled;
	g_audit.generation++;
	/* A random start, so that instances of a cluster begin on different stripes. */
	atomic_store(&g_next_stripe, hf_random_uniform((uint32_t)stripes));
	for (size_t i = 0; i < STRIPES_MAX; i++)
		atomic_store(&g_head_seen[i], false);
	if (!enabled)
		hf_log(HF_LOG_WARN, "core.audit",
		       "msg=\"AUDIT TRAIL DISABLED (audit.enabled = false): changes, logins and reads are NOT recorded;"
		       " this setting exists for the audit-cost benchmark and must never be used in production\"");
	else
		hf_log(HF_LOG_DEBUG, "core.audit", "msg=\"audit trail ready\" stripes=%d checkpoint_every=%d key_id=%s",
		       stripes, checkpoint_every, audit_chain_key_id(keys));
	return HF_OK;
}

void audit_shutdown(void)
{
	audit_chain_keys_free(g_audit.keys);
	g_audit.keys = NULL;
	g_audit.enabled = false;
}

bool audit_enabled(void)
{
	return g_audit.enabled;
}

/* ------------------------------------------------------------------ helpers */

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* A whole column of decimal digits as an unsigned number (rows read back are checked, never asserted). */
static bool row_u64(const struct db_rows *r, size_t col, uint64_t *out)
{
	size_t n = 0;
	const char *s = db_rows_blob(r, col, &n);
	if (!s || n == 0 || n > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static struct hf_str row_str(const struct db_rows *r, size_t col)
{
	size_t n = 0;
	const char *p = db_rows_blob(r, col, &n);
	return (struct hf_str){p ? p : "", p ? n : 0};
}

/* A BINARY(32) column: NULL when SQL NULL or not 32 bytes long. */
static const uint8_t *row_hash(const struct db_rows *r, size_t col)
{
	size_t n = 0;
	const void *p = db_rows_blob(r, col, &n);
	return p && n == AUDIT_HASH_LEN ? p : NULL;
}

static void json_set_hex(json_t *o, const char *key, const uint8_t *bin, size_t n)
{
	char hex[2 * 64 + 1];
	if (!bin) {
		json_object_set_new(o, key, json_null());
		return;
	}
	HF_ASSERT(n <= 64);
	hf_hex(bin, n, hex);
	json_object_set_new(o, key, json_string(hex));
}

/* ------------------------------------------------------------------ append */

/* One entry being appended: the fields as they will be stored, and the chain values once known. */
struct pending {
	struct audit_entry e;
	char occurred_at[AUDIT_TS_LEN + 1];
	uint8_t before[AUDIT_HASH_LEN], after[AUDIT_HASH_LEN];
	char *detail; /* owned (json_dumps), or NULL for "{}" */
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN], mac[AUDIT_HASH_LEN];
	struct hf_buf scratch;
};

static bool one_of(const char *s, const char *const *values)
{
	for (size_t i = 0; values[i]; i++)
		if (strcmp(s, values[i]) == 0)
			return true;
	return false;
}

/* Checks one text field against its column: valid text and at most max characters (and, since MariaDB
 * hands back exactly the bytes we stored, what we hash is what verify will read). Our caller's bug if
 * not: logged by field name, never by value. */
static bool field_ok(const char *field, const char *s, size_t min, size_t max, struct hf_str *out)
{
	size_t n = strlen(s);
	if (n < min || (n && !hf_utf8_valid_text(s, n)) || hf_utf8_len(s) > max) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit entry field empty, too long or not text\" field=%s bytes=%zu",
		       field, n);
		return false;
	}
	*out = (struct hf_str){s, n};
	return true;
}

/* Keyed digest of a record's JSON; the text (personal data) is wiped once digested. */
static hf_err digest_json(const json_t *v, const char *domain, uint8_t out[AUDIT_HASH_LEN])
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!text) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot serialise the record to digest\" domain=%s", domain);
		return HF_EINTERNAL;
	}
	audit_chain_digest(g_audit.keys, domain, text, strlen(text), out);
	wipe_free(text);
	return HF_OK;
}

static hf_err pending_prepare(const struct audit_actor *who, const struct audit_event *ev, struct pending *p)
{
	static const char *const actor_types[] = {"staff", "service", "kiosk", "cli", "system", "anonymous", NULL};
	static const char *const outcomes[] = {"ok", "denied", "failed", NULL};
	struct audit_entry *e = &p->e;
	hf_buf_init(&p->scratch, CANON_MAX);
	const char *type = who->type ? who->type : "";
	const char *outcome = ev->outcome ? ev->outcome : "";
	if (!one_of(type, actor_types) || !one_of(outcome, outcomes)) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit entry with an unknown actor type or outcome\" type_ok=%d"
		       " outcome_ok=%d", one_of(type, actor_types), one_of(outcome, outcomes));
		return HF_EINTERNAL;
	}
	e->actor_type = hf_str_from(type);
	e->outcome = hf_str_from(outcome);
	bool ok = field_ok("actor", who->name ? who->name : "", 0, 64, &e->actor);
	ok = field_ok("source", who->source ? who->source : "", 0, 45, &e->source) && ok;
	ok = field_ok("request_id", who->request_id ? who->request_id : "", 0, 36, &e->request_id) && ok;
	ok = field_ok("action", ev->action ? ev->action : "", 1, 48, &e->action) && ok;
	ok = field_ok("entity", ev->entity ? ev->entity : "", 0, 24, &e->entity) && ok;
	ok = field_ok("record", ev->record ? ev->record : "", 0, 64, &e->record) && ok;
	if (!ok)
		return HF_EINTERNAL;

	hf_err err = HF_OK;
	if (ev->before) {
		err = digest_json(ev->before, "audit.record", p->before);
		e->before_digest = p->before;
	}
	if (!err && ev->after) {
		err = digest_json(ev->after, "audit.record", p->after);
		e->after_digest = p->after;
	}
	if (err)
		return err;
	if (ev->detail) {
		if (!json_is_object(ev->detail)) {
			hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit detail is not a JSON object\" action=%s", ev->action);
			return HF_EINTERNAL;
		}
		p->detail = json_dumps(ev->detail, JSON_COMPACT | JSON_SORT_KEYS);
		if (!p->detail) {
			hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot serialise audit detail\" action=%s", ev->action);
			return HF_EINTERNAL;
		}
		size_t n = strlen(p->detail);
		/* Over the column: keep the entry (the event happened) and say that the detail was cut. */
		if (n > DETAIL_MAX || !hf_utf8_valid_text(p->detail, n)) {
			hf_log(HF_LOG_WARN, "core.audit",
			       "msg=\"audit detail too long or not text, stored as truncated\" action=%s bytes=%zu", ev->action, n);
			wipe_free(p->detail);
			p->detail = hf_xstrdup("{\"truncated\":true}");
		}
	}
	e->detail = hf_str_from(p->detail ? p->detail : "{}");
	e->id = (uint64_t)db_new_id();
	audit_chain_now(p->occurred_at);
	e->occurred_at = (struct hf_str){p->occurred_at, AUDIT_TS_LEN};
	return HF_OK;
}

static void pending_release(struct pending *p)
{
	hf_buf_release(&p->scratch);
	wipe_free(p->detail);
	p->detail = NULL;
}

/* Links the entry after (prev_seq, prev_hash): seq, hash and mac. */
static hf_err pending_link(struct pending *p, uint64_t prev_seq, const uint8_t prev_hash[AUDIT_HASH_LEN])
{
	p->e.seq = prev_seq + 1;
	memcpy(p->prev, prev_hash, AUDIT_HASH_LEN);
	hf_err err = audit_chain_hash(p->prev, &p->e, &p->scratch, p->hash);
	if (err) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit entry over the canonical size cap\"");
		return err;
	}
	audit_chain_mac(g_audit.keys, p->hash, p->mac);
	return HF_OK;
}

#define SQL_HEAD_CAS "UPDATE audit_heads SET seq = ?, hash = ? WHERE stripe = ? AND seq = ? AND hash = ?"

/* Moves the stripe's head from (from_seq, from_hash) to the entry's (seq, hash), only if it is still
 * there. *moved is false when the head was elsewhere. */
static hf_err head_cas(struct db *db, const struct pending *p, uint64_t from_seq,
		       const uint8_t from_hash[AUDIT_HASH_LEN], bool *moved)
{
	uint64_t n = 0;
	struct db_val v[] = {DB_I64(p->e.seq), DB_BLOB(p->hash, AUDIT_HASH_LEN), DB_I64(p->e.stripe), DB_I64(from_seq),
			     DB_BLOB(from_hash, AUDIT_HASH_LEN)};
	hf_err err = db_exec(db, SQL_HEAD_CAS, v, HF_ARRAY_LEN(v), &n);
	if (err)
		return err;
	*moved = n == 1;
	return HF_OK;
}

/* Creates the stripe's head at (0, zeros) unless it is there already. A locking read of a missing row
 * would take a gap lock, and two transactions creating different stripes in the same gap would then
 * deadlock on each other's gap lock (they did, every time, when several threads started on fresh
 * stripes). So: a plain snapshot read, and a plain INSERT whose duplicate-key error means it exists. */
static hf_err head_create(struct db *db, unsigned stripe, bool *created)
{
	struct db_val key[] = {DB_I64(stripe)};
	struct db_rows *r = NULL;
	*created = false;
	hf_err err = db_query(db, "SELECT 1 FROM audit_heads WHERE stripe = ?", key, 1, &r);
	if (err)
		return err;
	bool there = db_rows_next(r);
	db_rows_free(r);
	if (there) {
		atomic_store(&g_head_seen[stripe], true);
		return HF_OK;
	}
	struct db_val v[] = {DB_I64(stripe), DB_BLOB(ZERO_HASH, AUDIT_HASH_LEN)};
	err = db_exec(db, "INSERT INTO audit_heads (stripe, seq, hash) VALUES (?, 0, ?)", v, HF_ARRAY_LEN(v), NULL);
	if (err == HF_ECONFLICT) /* created by another transaction (we waited for its commit) */
		return HF_OK;
	*created = !err;
	return err;
}

/* Reads the stripe's head and locks it until the transaction ends, creating it at (0, zeros) the first
 * time the stripe is used. */
static hf_err head_lock(struct db *db, unsigned stripe, uint64_t *seq, uint8_t hash[AUDIT_HASH_LEN])
{
	struct db_val key[] = {DB_I64(stripe)};
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!atomic_load(&g_head_seen[stripe])) {
			bool created = false;
			hf_err err = head_create(db, stripe, &created);
			if (err)
				return err;
			if (created) { /* ours, and locked by our INSERT until the transaction ends */
				*seq = 0;
				memcpy(hash, ZERO_HASH, AUDIT_HASH_LEN);
				return HF_OK;
			}
		}
		struct db_rows *r = NULL;
		hf_err err = db_query(db, "SELECT seq, hash FROM audit_heads WHERE stripe = ? FOR UPDATE", key, 1, &r);
		if (err)
			return err;
		if (!db_rows_next(r)) { /* deleted since we saw it: create it again (verify will tell) */
			db_rows_free(r);
			atomic_store(&g_head_seen[stripe], false);
			continue;
		}
		atomic_store(&g_head_seen[stripe], true);
		const uint8_t *h = row_hash(r, 1);
		uint64_t s = 0;
		bool ok = h && row_u64(r, 0, &s) && s < INT64_MAX;
		if (ok) {
			*seq = s;
			memcpy(hash, h, AUDIT_HASH_LEN);
		}
		db_rows_free(r);
		if (!ok) {
			hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit head row unreadable: run audit verify\" stripe=%u", stripe);
			return HF_EINTERNAL;
		}
		return HF_OK;
	}
	hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit head neither readable nor creatable\" stripe=%u", stripe);
	return HF_EINTERNAL;
}

/* Advances the head to a new entry: the cached head first (one statement), else the locked real one. */
static hf_err head_advance(struct db *db, struct pending *p)
{
	bool moved = false;
	hf_err err;
	if (t_head_known) {
		err = pending_link(p, t_head_seq, t_head_hash);
		if (!err)
			err = head_cas(db, p, t_head_seq, t_head_hash, &moved);
		if (err || moved)
			return err;
	}
	uint64_t seq = 0;
	uint8_t hash[AUDIT_HASH_LEN];
	err = head_lock(db, p->e.stripe, &seq, hash);
	if (!err)
		err = pending_link(p, seq, hash);
	if (!err)
		err = head_cas(db, p, seq, hash, &moved);
	if (!err && !moved) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"locked audit head changed under us\" stripe=%u", p->e.stripe);
		err = HF_EINTERNAL;
	}
	return err;
}

static hf_err entry_insert(struct db *db, const struct pending *p)
{
	const struct audit_entry *e = &p->e;
	struct db_val v[] = {
		DB_I64(e->id),
		DB_I64(e->stripe),
		DB_I64(e->seq),
		db_strn(e->occurred_at.ptr, e->occurred_at.len),
		db_strn(e->actor_type.ptr, e->actor_type.len),
		db_strn(e->actor.ptr, e->actor.len),
		db_strn(e->action.ptr, e->action.len),
		db_strn(e->entity.ptr, e->entity.len),
		db_strn(e->record.ptr, e->record.len),
		db_strn(e->outcome.ptr, e->outcome.len),
		db_strn(e->source.ptr, e->source.len),
		db_strn(e->request_id.ptr, e->request_id.len),
		db_blob_or_null(e->before_digest, e->before_digest ? AUDIT_HASH_LEN : 0),
		db_blob_or_null(e->after_digest, e->after_digest ? AUDIT_HASH_LEN : 0),
		db_strn(e->detail.ptr, e->detail.len),
		DB_BLOB(p->prev, AUDIT_HASH_LEN),
		DB_BLOB(p->hash, AUDIT_HASH_LEN),
		DB_BLOB(p->mac, AUDIT_HASH_LEN),
	};
	return db_exec(db,
		       "INSERT INTO audit_log (id, stripe, seq, occurred_at, actor_type, actor, action, entity, record,"
		       " outcome, source, request_id, before_digest, after_digest, detail, prev_hash, hash, mac)"
		       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		       v, HF_ARRAY_LEN(v), NULL);
}

/* Inserts the row; on an id collision (two ids drawn in the same millisecond with the same 20 random
 * bits) draws a new id, which changes the hash, and moves the head, still locked by us, to it. */
static hf_err entry_store(struct db *db, struct pending *p)
{
	for (int attempt = 0;; attempt++) {
		hf_err err = entry_insert(db, p);
		if (err != HF_ECONFLICT)
			return err;
		if (strcmp(db_conflict_key(db), "uq_audit_id") != 0 || attempt + 1 == ID_RETRIES) {
			/* PRIMARY (stripe, seq): rows exist past the head, written behind the application's back. */
			hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot append: the stripe has entries past its head;"
			       " run audit verify\" stripe=%u seq=%llu key=%s", p->e.stripe, (unsigned long long)p->e.seq,
			       db_conflict_key(db));
			return HF_EINTERNAL;
		}
		uint8_t old_hash[AUDIT_HASH_LEN], prev[AUDIT_HASH_LEN];
		memcpy(old_hash, p->hash, AUDIT_HASH_LEN);
		memcpy(prev, p->prev, AUDIT_HASH_LEN);
		p->e.id = (uint64_t)db_new_id();
		bool moved = false;
		err = pending_link(p, p->e.seq - 1, prev);
		if (!err)
			err = head_cas(db, p, p->e.seq, old_hash, &moved);
		if (!err && !moved)
			err = HF_EINTERNAL;
		if (err)
			return err;
	}
}

static hf_err checkpoint_insert(struct db *db, unsigned stripe, uint64_t seq, const uint8_t hash[AUDIT_HASH_LEN])
{
	uint8_t sig[AUDIT_SIG_LEN];
	char ts[AUDIT_TS_LEN + 1];
	audit_chain_checkpoint_sign(g_audit.keys, stripe, seq, hash, sig);
	audit_chain_now(ts);
	hf_err err = HF_OK;
	for (int attempt = 0; attempt < ID_RETRIES; attempt++) {
		struct db_val v[] = {DB_I64(db_new_id()),	       DB_I64(stripe), DB_I64(seq), DB_BLOB(hash, AUDIT_HASH_LEN),
				     db_strn(ts, AUDIT_TS_LEN), db_str(audit_chain_key_id(g_audit.keys)),
				     DB_BLOB(sig, AUDIT_SIG_LEN)};
		err = db_exec(db,
			      "INSERT INTO audit_checkpoints (id, stripe, seq, hash, signed_at, key_id, signature)"
			      " VALUES (?, ?, ?, ?, ?, ?, ?)",
			      v, HF_ARRAY_LEN(v), NULL);
		if (err != HF_ECONFLICT || strcmp(db_conflict_key(db), "PRIMARY") != 0)
			break;
	}
	return err;
}

static unsigned thread_stripe(void)
{
	if (t_generation != g_audit.generation) {
		t_generation = g_audit.generation;
		t_stripe = atomic_fetch_add(&g_next_stripe, 1) % g_audit.stripes;
		t_head_known = false;
	}
	return t_stripe;
}

hf_err audit_append(struct db *db, const struct audit_actor *who, const struct audit_event *ev)
{
	HF_ASSERT(db && who && ev);
	if (!g_audit.enabled)
		return HF_OK;
	if (!g_audit.keys) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit_append before audit_init\"");
		return HF_EINTERNAL;
	}
	struct pending p = {0};
	hf_err err = pending_prepare(who, ev, &p);
	if (err)
		goto out_release;
	p.e.stripe = thread_stripe();
	err = head_advance(db, &p);
	if (!err)
		err = entry_store(db, &p);
	if (!err && p.e.seq % g_audit.checkpoint_every == 0)
		err = checkpoint_insert(db, p.e.stripe, p.e.seq, p.hash);
out_release:
	/* Remember the head we wrote even though the caller may still roll back: the next compare-and-set
	 * then finds nothing and reloads. After an error, reload at once. */
	t_head_known = !err;
	if (!err) {
		t_head_seq = p.e.seq;
		memcpy(t_head_hash, p.hash, AUDIT_HASH_LEN);
	}
	pending_release(&p);
	return err;
}

struct record_call {
	const struct audit_actor *who;
	const struct audit_event *ev;
};

static hf_err record_tx(struct db *db, void *ctx)
{
	struct record_call *c = ctx;
	return audit_append(db, c->who, c->ev);
}

hf_err audit_record(struct db *db, const struct audit_actor *who, const struct audit_event *ev)
{
	if (!g_audit.enabled)
		return HF_OK;
	struct record_call c = {who, ev};
	return db_tx(db, record_tx, &c);
}

/* ------------------------------------------------------------------ checkpoints */

struct checkpoint_all_call {
	int signed_n, skipped;
};

static hf_err checkpoint_all_tx(struct db *db, void *ctx)
{
	struct checkpoint_all_call *c = ctx;
	struct db_rows *r = NULL;
	c->signed_n = c->skipped = 0;
	/* Heads without a checkpoint at their seq, with their entry: we sign only an entry we made. */
	hf_err err = db_query(db,
			      "SELECT h.stripe, h.seq, h.hash, l.hash, l.mac FROM audit_heads h"
			      " LEFT JOIN audit_log l ON l.stripe = h.stripe AND l.seq = h.seq"
			      " LEFT JOIN audit_checkpoints c ON c.stripe = h.stripe AND c.seq = h.seq"
			      " WHERE h.seq > 0 AND c.id IS NULL ORDER BY h.stripe",
			      NULL, 0, &r);
	if (err)
		return err;
	while (!err && db_rows_next(r)) {
		uint64_t stripe = 0, seq = 0;
		const uint8_t *head = row_hash(r, 2), *hash = row_hash(r, 3), *mac = row_hash(r, 4);
		bool ok = row_u64(r, 0, &stripe) && stripe <= 0xFFFF && row_u64(r, 1, &seq) && head && hash && mac &&
			  memcmp(head, hash, AUDIT_HASH_LEN) == 0 && audit_chain_mac_ok(g_audit.keys, hash, mac);
		if (!ok) {
			hf_log(HF_LOG_ERROR, "core.audit", "msg=\"not signing a checkpoint: the head does not match a valid"
			       " entry; run audit verify\" stripe=%llu seq=%llu", (unsigned long long)stripe,
			       (unsigned long long)seq);
			c->skipped++;
			continue;
		}
		err = checkpoint_insert(db, (unsigned)stripe, seq, hash);
		if (err == HF_ECONFLICT) /* signed meanwhile by another instance or an append */
			err = HF_OK;
		else if (!err)
			c->signed_n++;
	}
	db_rows_free(r);
	return err;
}

hf_err audit_checkpoint_all(struct db *db)
{
	if (!g_audit.keys) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit_checkpoint_all before audit_init\"");
		return HF_EINTERNAL;
	}
	struct checkpoint_all_call c = {0};
	hf_err err = db_tx(db, checkpoint_all_tx, &c);
	if (err)
		return err;
	hf_log(HF_LOG_INFO, "core.audit", "msg=\"audit checkpoints signed\" signed=%d skipped=%d key_id=%s", c.signed_n,
	       c.skipped, audit_chain_key_id(g_audit.keys));
	return c.skipped ? HF_ECONFLICT : HF_OK;
}

/* ------------------------------------------------------------------ verify */

struct vhead {
	unsigned stripe;
	uint64_t seq;
	uint8_t hash[AUDIT_HASH_LEN];
};

struct vstate {
	struct audit_verify_result *res;
	uint64_t best; /* order of the reported problem: the id of the entry it is placed at */
	struct vhead *heads;
	size_t nheads, heads_cap, hi;
	/* the stripe being walked */
	bool in_stripe;
	unsigned stripe;
	const struct vhead *head; /* its head, or NULL */
	uint64_t last_seq, last_id;
	uint8_t last_hash[AUDIT_HASH_LEN];
	struct hf_buf scratch;
};

static void problem(struct vstate *v, uint64_t order, uint64_t bad_id, unsigned stripe, uint64_t seq, const char *fmt,
		    ...) HF_PRINTF(6, 7);
static void problem(struct vstate *v, uint64_t order, uint64_t bad_id, unsigned stripe, uint64_t seq, const char *fmt,
		    ...)
{
	struct audit_verify_result *res = v->res;
	res->problems++;
	res->ok = false;
	if (order >= v->best) /* ties: the one found first stays */
		return;
	v->best = order;
	res->bad_id = (int64_t)bad_id;
	res->bad_stripe = (int)stripe;
	res->bad_seq = (int64_t)seq;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->problem, sizeof(res->problem), fmt, ap);
	va_end(ap);
}

static hf_err load_head(void *ctx, struct db_rows *r)
{
	struct vstate *v = ctx;
	uint64_t stripe = 0, seq = 0;
	const uint8_t *h = row_hash(r, 2);
	if (!row_u64(r, 0, &stripe) || stripe > 0xFFFF || !row_u64(r, 1, &seq) || !h) {
		problem(v, 0, 0, 0, 0, "a head row is unreadable: the audit_heads table was tampered with");
		return HF_OK;
	}
	if (v->nheads == v->heads_cap) {
		v->heads_cap = v->heads_cap ? 2 * v->heads_cap : 64;
		v->heads = hf_xrealloc(v->heads, v->heads_cap * sizeof(*v->heads));
	}
	struct vhead *x = &v->heads[v->nheads++];
	x->stripe = (unsigned)stripe;
	x->seq = seq;
	memcpy(x->hash, h, AUDIT_HASH_LEN);
	return HF_OK;
}

/* A head whose stripe has no entry at all. */
static void head_without_entries(struct vstate *v, const struct vhead *h)
{
	if (h->seq == 0)
		return;
	problem(v, 0, 0, h->stripe, 1,
		"stripe %u has no entries but its head says seq %llu: all its entries were deleted", h->stripe,
		(unsigned long long)h->seq);
}

static void stripe_begin(struct vstate *v, unsigned stripe)
{
	while (v->hi < v->nheads && v->heads[v->hi].stripe < stripe)
		head_without_entries(v, &v->heads[v->hi++]);
	v->head = v->hi < v->nheads && v->heads[v->hi].stripe == stripe ? &v->heads[v->hi++] : NULL;
	v->in_stripe = true;
	v->stripe = stripe;
	v->last_seq = 0;
	v->last_id = 0;
	memcpy(v->last_hash, ZERO_HASH, AUDIT_HASH_LEN);
	v->res->stripes++;
}

/* The walked stripe's end against its head. Placed at the stripe's last entry (what went missing after
 * it came later; what was added has its own MAC problems). */
static void stripe_end(struct vstate *v)
{
	const struct vhead *h = v->head;
	unsigned s = v->stripe;
	unsigned long long last = v->last_seq;
	if (!h)
		problem(v, v->last_id, 0, s, v->last_seq + 1,
			"stripe %u has entries up to seq %llu but no head: its head row was deleted", s, last);
	else if (h->seq > v->last_seq)
		problem(v, v->last_id, 0, s, v->last_seq + 1,
			"stripe %u ends at seq %llu but its head says %llu: entries were deleted at the end (missing from"
			" seq %llu)", s, last, (unsigned long long)h->seq, last + 1);
	else if (h->seq < v->last_seq)
		problem(v, v->last_id, 0, s, h->seq + 1,
			"stripe %u has entries up to seq %llu but its head says %llu: entries were added behind the"
			" application's back", s, last, (unsigned long long)h->seq);
	else if (memcmp(h->hash, v->last_hash, AUDIT_HASH_LEN) != 0)
		problem(v, v->last_id, v->last_id, s, v->last_seq,
			"stripe %u: its head does not match its last entry %llu (seq %llu): the end of the chain was"
			" replaced", s, (unsigned long long)v->last_id, last);
	v->in_stripe = false;
}

/* One checkpoint with the entry it names (streamed after the entries: memory stays flat however many
 * checkpoints there are). Placed at that entry; one naming a missing entry after every entry problem,
 * since the gap itself is reported where it is. */
static hf_err verify_checkpoint(void *ctx, struct db_rows *r)
{
	struct vstate *v = ctx;
	uint64_t stripe64 = 0, seq = 0, id = 0;
	size_t siglen = 0;
	const uint8_t *hash = row_hash(r, 2), *entry_hash = row_hash(r, 6);
	const uint8_t *sig = db_rows_blob(r, 3, &siglen);
	v->res->checkpoints++;
	if (!row_u64(r, 0, &stripe64) || stripe64 > 0xFFFF || !row_u64(r, 1, &seq) || !hash) {
		problem(v, UINT64_MAX, 0, 0, 0, "a checkpoint row is unreadable: the audit_checkpoints table was altered");
		return HF_OK;
	}
	unsigned stripe = (unsigned)stripe64;
	unsigned long long q = seq;
	bool has_entry = !db_rows_null(r, 5) && row_u64(r, 5, &id);
	uint64_t order = has_entry ? id : UINT64_MAX;
	/* The key id, shown in the problem text: our own format, else left out. */
	struct hf_str kid = row_str(r, 4);
	char key_id[AUDIT_KEY_ID_LEN + 1] = "?";
	if (kid.len == AUDIT_KEY_ID_LEN && strspn(kid.ptr, "0123456789abcdef") >= AUDIT_KEY_ID_LEN) {
		memcpy(key_id, kid.ptr, AUDIT_KEY_ID_LEN);
		key_id[AUDIT_KEY_ID_LEN] = '\0';
	}
	if (!sig || siglen != AUDIT_SIG_LEN ||
	    !audit_chain_checkpoint_ok(audit_chain_public_key(g_audit.keys), stripe, seq, hash, sig))
		problem(v, order, has_entry ? id : 0, stripe, seq,
			"checkpoint of stripe %u at seq %llu (entry %llu) has an invalid signature (key %s;"
			" audit-sign.pub is %s)", stripe, q, (unsigned long long)id, key_id, audit_chain_key_id(g_audit.keys));
	else if (!has_entry)
		problem(v, order, 0, stripe, seq,
			"the checkpoint of stripe %u at seq %llu names an entry that does not exist: it was deleted", stripe, q);
	else if (!entry_hash || memcmp(entry_hash, hash, AUDIT_HASH_LEN) != 0)
		problem(v, order, id, stripe, seq,
			"entry %llu (stripe %u, seq %llu) differs from its signed checkpoint: the chain was rewritten after"
			" it was signed", (unsigned long long)id, stripe, q);
	return HF_OK;
}

static hf_err verify_row(void *ctx, struct db_rows *r)
{
	struct vstate *v = ctx;
	uint64_t id = 0, stripe64 = 0, seq = 0;
	v->res->entries++;
	if (!row_u64(r, 0, &id) || !row_u64(r, 1, &stripe64) || stripe64 > 0xFFFF || !row_u64(r, 2, &seq)) {
		problem(v, 0, 0, 0, 0, "an entry is unreadable (id, stripe or seq): the audit_log table was altered");
		return HF_OK;
	}
	unsigned stripe = (unsigned)stripe64;
	if (!v->in_stripe || stripe != v->stripe) {
		if (v->in_stripe)
			stripe_end(v);
		stripe_begin(v, stripe);
	}
	unsigned long long i = id, q = seq;
	const uint8_t *prev = row_hash(r, 15), *hash = row_hash(r, 16), *mac = row_hash(r, 17);
	size_t blen = 0, alen = 0;
	const uint8_t *before = db_rows_blob(r, 12, &blen), *after = db_rows_blob(r, 13, &alen);
	struct audit_entry e = {
		.id = id,
		.stripe = stripe,
		.seq = seq,
		.occurred_at = row_str(r, 3),
		.actor_type = row_str(r, 4),
		.actor = row_str(r, 5),
		.action = row_str(r, 6),
		.entity = row_str(r, 7),
		.record = row_str(r, 8),
		.outcome = row_str(r, 9),
		.source = row_str(r, 10),
		.request_id = row_str(r, 11),
		.before_digest = before,
		.after_digest = after,
		.detail = row_str(r, 14),
	};
	bool linked = true;
	if (seq != v->last_seq + 1) {
		/* ORDER BY stripe, seq over a unique key: seq only ever jumps forward. */
		unsigned long long first = v->last_seq + 1;
		if (seq == first + 1)
			problem(v, id, 0, stripe, first, "stripe %u seq %llu is missing (deleted) before entry %llu", stripe,
				first, i);
		else
			problem(v, id, 0, stripe, first, "stripe %u seq %llu to %llu are missing (deleted) before entry %llu",
				stripe, first, q - 1, i);
		linked = false;
	}
	uint8_t calc[AUDIT_HASH_LEN];
	if (!prev || !hash || !mac || (before && blen != AUDIT_HASH_LEN) || (after && alen != AUDIT_HASH_LEN) ||
	    audit_chain_hash(prev, &e, &v->scratch, calc) != HF_OK || memcmp(calc, hash, AUDIT_HASH_LEN) != 0)
		problem(v, id, id, stripe, seq,
			"entry %llu (stripe %u, seq %llu) was edited: its content no longer matches its hash", i, stripe, q);
	else if (!audit_chain_mac_ok(g_audit.keys, hash, mac))
		problem(v, id, id, stripe, seq,
			"entry %llu (stripe %u, seq %llu) was inserted behind the application's back: its MAC is not valid",
			i, stripe, q);
	else if (linked && memcmp(prev, v->last_hash, AUDIT_HASH_LEN) != 0)
		problem(v, id, id, stripe, seq,
			"entry %llu (stripe %u, seq %llu) does not link to entry %llu before it: the chain was rewritten", i,
			stripe, q, (unsigned long long)v->last_id);
	v->last_seq = seq;
	v->last_id = id;
	memcpy(v->last_hash, hash ? hash : ZERO_HASH, AUDIT_HASH_LEN);
	return HF_OK;
}

static hf_err verify_walk(struct db *db, struct vstate *v)
{
	hf_err err = db_stream(db, "SELECT stripe, seq, hash FROM audit_heads ORDER BY stripe", NULL, 0, load_head, v);
	if (err)
		return err;
	/* One pass in chain order: the table is clustered by (stripe, seq), so this reads each page once. */
	err = db_stream(db,
			"SELECT id, stripe, seq, DATE_FORMAT(occurred_at, " TS_SQL_FMT "), actor_type, actor, action,"
			" entity, record, outcome, source, request_id, before_digest, after_digest, detail, prev_hash,"
			" hash, mac FROM audit_log ORDER BY stripe, seq",
			NULL, 0, verify_row, v);
	if (err)
		return err;
	if (v->in_stripe)
		stripe_end(v);
	while (v->hi < v->nheads)
		head_without_entries(v, &v->heads[v->hi++]);
	return db_stream(db,
			 "SELECT c.stripe, c.seq, c.hash, c.signature, c.key_id, l.id, l.hash FROM audit_checkpoints c"
			 " LEFT JOIN audit_log l ON l.stripe = c.stripe AND l.seq = c.seq ORDER BY c.stripe, c.seq",
			 NULL, 0, verify_checkpoint, v);
}

hf_err audit_verify(struct db *db, struct audit_verify_result *res)
{
	if (!g_audit.keys) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit_verify before audit_init\"");
		return HF_EINTERNAL;
	}
	struct audit_verify_result r = {.ok = true};
	struct vstate v = {.res = &r, .best = UINT64_MAX};
	hf_buf_init(&v.scratch, CANON_MAX);
	/* Heads, checkpoints and entries from one snapshot: appends running meanwhile must not look like
	 * entries added behind the head's back. */
	hf_err err = db_begin(db);
	if (err)
		goto out_free;
	err = db_exec_plain(db, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
	if (!err)
		err = db_exec_plain(db, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
	if (!err)
		err = verify_walk(db, &v);
	db_rollback(db);
	if (!err) {
		if (r.ok)
			hf_log(HF_LOG_INFO, "core.audit", "msg=\"audit trail verified\" entries=%llu stripes=%llu checkpoints=%llu",
			       (unsigned long long)r.entries, (unsigned long long)r.stripes,
			       (unsigned long long)r.checkpoints);
		else
			hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit trail does not verify\" problems=%llu first=\"%s\"",
			       (unsigned long long)r.problems, r.problem);
		*res = r;
	}
out_free:
	hf_buf_release(&v.scratch);
	free(v.heads);
	return err;
}

/* ------------------------------------------------------------------ search */

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) into seconds since the epoch; *whole_day says which. */
static bool when_parse(const char *s, time_t *out, bool *whole_day)
{
	size_t n = strlen(s);
	static const char date_shape[] = "dddd-dd-dd", ts_shape[] = "dddd-dd-ddTdd:dd:ddZ";
	const char *shape = n == sizeof(date_shape) - 1 ? date_shape : n == sizeof(ts_shape) - 1 ? ts_shape : NULL;
	if (!shape)
		return false;
	int num[6] = {0};
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (shape[i] == 'd') {
			if (s[i] < '0' || s[i] > '9')
				return false;
			num[k] = num[k] * 10 + (s[i] - '0');
		} else {
			if (s[i] != shape[i])
				return false;
			if (k < 5 && shape[i] != 'Z')
				k++;
		}
	}
	struct tm tm = {.tm_year = num[0] - 1900, .tm_mon = num[1] - 1, .tm_mday = num[2],
			.tm_hour = num[3], .tm_min = num[4], .tm_sec = num[5]};
	if (num[0] < 1970 || num[1] < 1 || num[1] > 12 || num[2] < 1 || num[3] > 23 || num[4] > 59 || num[5] > 59)
		return false;
	time_t t = timegm(&tm);
	struct tm back;
	/* timegm normalises 2025-02-30 to March 2: refuse instead. */
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != num[2] || back.tm_mon != num[1] - 1)
		return false;
	*out = t;
	*whole_day = shape == date_shape;
	return true;
}

static void when_sql(time_t t, char out[20])
{
	struct tm tm;
	HF_ASSERT(gmtime_r(&t, &tm) != NULL);
	HF_ASSERT(strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm) == 19);
}

static json_t *search_item(const struct db_rows *r)
{
	uint64_t stripe = 0, seq = 0;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(db_rows_str(r, 0)));
	json_object_set_new(o, "stripe", json_integer(row_u64(r, 1, &stripe) ? (json_int_t)stripe : -1));
	json_object_set_new(o, "seq", json_integer(row_u64(r, 2, &seq) && seq <= INT64_MAX ? (json_int_t)seq : -1));
	static const char *const text[] = {"occurred_at", "actor_type", "actor", "action", "entity",
					   "record",	  "outcome",	"source", "request_id"};
	for (size_t i = 0; i < HF_ARRAY_LEN(text); i++) {
		json_t *s = json_string(db_rows_str(r, 3 + i));
		json_object_set_new(o, text[i], s ? s : json_null()); /* NULL: not UTF-8 (a tampered row) */
	}
	json_set_hex(o, "before_digest", row_hash(r, 12), AUDIT_HASH_LEN);
	json_set_hex(o, "after_digest", row_hash(r, 13), AUDIT_HASH_LEN);
	json_t *detail = json_loads(db_rows_str(r, 14), 0, NULL);
	json_object_set_new(o, "detail", detail ? detail : json_null());
	json_set_hex(o, "hash", row_hash(r, 15), AUDIT_HASH_LEN);
	return o;
}

/* Our SQL is built from constants only, within a fixed cap: overflow is our bug. */
static void search_sql(struct hf_buf *b, const char *s)
{
	HF_ASSERT(hf_buf_append_str(b, s) == HF_OK);
}

hf_err audit_search(struct db *db, const struct audit_query *q, struct hf_ferrs *fe, json_t **out)
{
	static const struct {
		const char *name, *column;
		size_t max;
	} exact[] = {{"actor", "actor", 64}, {"entity", "entity", 24}, {"record", "record", 64}, {"action", "action", 48}};
	const char *values[] = {q->actor, q->entity, q->record, q->action};
	int max = g_app.max_page > 0 ? g_app.max_page : 100;
	int limit = q->limit ? q->limit : (max < SEARCH_DEFAULT_LIMIT ? max : SEARCH_DEFAULT_LIMIT);
	if (q->limit < 0 || q->limit > max)
		hf_ferrs_add(fe, "limit", "out_of_range", "must be 1 to %d", max);
	for (size_t i = 0; i < HF_ARRAY_LEN(exact); i++) {
		const char *s = values[i];
		if (s && s[0] && (!hf_utf8_valid_text(s, strlen(s)) || hf_utf8_len(s) > exact[i].max))
			hf_ferrs_add(fe, exact[i].name, "bad_value", "at most %zu characters of text", exact[i].max);
	}
	int64_t after = 0;
	if (q->after && q->after[0] && hf_parse_i64(q->after, 1, INT64_MAX, &after))
		hf_ferrs_add(fe, "after", "bad_value", "use the \"next\" value of the previous page");
	time_t from = 0, to = 0;
	bool from_day = false, to_day = false;
	bool has_from = q->from && q->from[0], has_to = q->to && q->to[0];
	if (has_from && !when_parse(q->from, &from, &from_day))
		hf_ferrs_add(fe, "from", "bad_format", "a UTC date YYYY-MM-DD or time YYYY-MM-DDTHH:MM:SSZ");
	if (has_to && !when_parse(q->to, &to, &to_day))
		hf_ferrs_add(fe, "to", "bad_format", "a UTC date YYYY-MM-DD or time YYYY-MM-DDTHH:MM:SSZ");
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	/* "to" is inclusive: the whole day, or the whole second. */
	if (has_to)
		to += to_day ? 86400 : 1;
	if (has_from && has_to && to <= from) {
		hf_ferrs_add(fe, "to", "out_of_range", "must not be before from");
		return HF_EINVAL;
	}

	struct hf_buf sql;
	hf_buf_init(&sql, 2048);
	struct db_val v[8];
	size_t nv = 0;
	char from_s[20], to_s[20], lim[16];
	search_sql(&sql, "SELECT id, stripe, seq, DATE_FORMAT(occurred_at, '%Y-%m-%dT%H:%i:%s.%fZ'), actor_type, actor,"
			 " action, entity, record, outcome, source, request_id, before_digest, after_digest, detail, hash"
			 " FROM audit_log WHERE 1 = 1");
	if (after) {
		search_sql(&sql, " AND id < ?");
		v[nv++] = DB_I64(after);
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(exact); i++)
		if (values[i] && values[i][0]) {
			search_sql(&sql, " AND ");
			search_sql(&sql, exact[i].column);
			search_sql(&sql, " = ?");
			v[nv++] = db_str(values[i]);
		}
	if (has_from) {
		when_sql(from, from_s);
		search_sql(&sql, " AND occurred_at >= ?");
		v[nv++] = db_str(from_s);
	}
	if (has_to) {
		when_sql(to, to_s);
		search_sql(&sql, " AND occurred_at < ?");
		v[nv++] = db_str(to_s);
	}
	snprintf(lim, sizeof(lim), "%d", limit);
	search_sql(&sql, " ORDER BY id DESC LIMIT ");
	search_sql(&sql, lim);
	struct db_rows *r = NULL;
	hf_err err = db_query(db, hf_buf_cstr(&sql), v, nv, &r);
	hf_buf_release(&sql);
	if (err)
		return err;
	json_t *items = json_array();
	char next[24] = "";
	while (db_rows_next(r)) {
		json_array_append_new(items, search_item(r));
		hf_strlcpy(next, db_rows_str(r, 0), sizeof(next));
	}
	db_rows_free(r);
	*out = json_pack("{s:o, s:i, s:s?}", "items", items, "limit", limit, "next",
			 json_array_size(items) >= (size_t)limit ? next : NULL);
	HF_ASSERT(*out != NULL);
	return HF_OK;
}
