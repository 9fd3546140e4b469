/* ledger.c - the double-entry ledger (see ledger.h). */
#include "hf_base.h"
#include "ledger.h"
#include "hf_buf.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *prefix, *kind;
} KINDS[] = {{"external:", "external"}, {"fund:", "fund"},	   {"clearing:", "clearing"},
	     {"settlement:", "settlement"}, {"paid:", "paid"}, {"returned:", "returned"}};

static const char *kind_of(const char *code)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(KINDS); i++)
		if (strncmp(code, KINDS[i].prefix, strlen(KINDS[i].prefix)) == 0 && code[strlen(KINDS[i].prefix)])
			return KINDS[i].kind;
	return NULL;
}

/* Account ids never change and accounts are never deleted, so each thread keeps the ones it has seen
 * committed: the hot path (a callback's posting) then skips two lookups. An account this thread created
 * is not cached until a later transaction sees it again: the creating transaction may still roll back. */
#define ACC_CACHE 64
struct acc_entry {
	char code[LEDGER_CODE_MAX + 1], currency[4];
	int64_t id;
};
static _Thread_local struct acc_entry t_cache[ACC_CACHE];
static _Thread_local size_t t_ncache;
static _Thread_local struct {
	char code[LEDGER_CODE_MAX + 1];
	uint64_t serial;
} t_created[LEDGER_MAX_LEGS * 2];
static _Thread_local size_t t_ncreated;

static const struct acc_entry *cache_find(const char *code)
{
	for (size_t i = 0; i < t_ncache; i++)
		if (strcmp(t_cache[i].code, code) == 0)
			return &t_cache[i];
	return NULL;
}

static bool created_here(const struct db *db, const char *code)
{
	for (size_t i = 0; i < t_ncreated; i++)
		if (t_created[i].serial == db_tx_serial(db) && strcmp(t_created[i].code, code) == 0)
			return true;
	return false;
}

/* The account's id, created on first use. A locking read sees rows other transactions committed since
 * ours began, so two transactions creating the same account meet at the unique key, not in two rows. */
static hf_err account_id(struct db *db, const char *code, const char *currency, bool lock, int64_t *id)
{
	const char *kind = kind_of(code);
	if (!kind || strlen(code) > LEDGER_CODE_MAX)
		return HF_EINVAL;
	const struct acc_entry *hit = lock ? NULL : cache_find(code);
	if (hit) {
		*id = hit->id;
		return !currency || strcmp(hit->currency, currency) == 0 ? HF_OK : HF_EINVAL;
	}
	struct db_val v[] = {db_str(code)};
	for (int attempt = 0; attempt < 2; attempt++) {
		struct db_rows *r = NULL;
		hf_err err = db_query(db,
				      lock ? "SELECT id, currency FROM ledger_accounts WHERE code = ? FOR UPDATE"
					   : "SELECT id, currency FROM ledger_accounts WHERE code = ? LOCK IN SHARE MODE",
				      v, 1, &r);
		if (err)
			return err;
		if (db_rows_next(r)) {
			*id = db_rows_i64(r, 0);
			char cur[4];
			hf_strlcpy(cur, db_rows_str(r, 1), sizeof(cur));
			db_rows_free(r);
			if (!created_here(db, code) && !cache_find(code) && t_ncache < ACC_CACHE) {
				struct acc_entry *e = &t_cache[t_ncache++];
				hf_strlcpy(e->code, code, sizeof(e->code));
				hf_strlcpy(e->currency, cur, sizeof(e->currency));
				e->id = *id;
			}
			return !currency || strcmp(cur, currency) == 0 ? HF_OK : HF_EINVAL;
		}
		db_rows_free(r);
		if (!currency)
			return HF_ENOTFOUND;
		int64_t nid = db_new_id();
		struct db_val w[] = {DB_I64(nid), db_str(code), db_str(kind), db_str(currency)};
		err = db_exec(db,
			      "INSERT INTO ledger_accounts (id, code, kind, currency, created_at) VALUES (?, ?, ?, ?,"
			      " UTC_TIMESTAMP(3))",
			      w, 4, NULL);
		if (!err) {
			/* A slot of an earlier transaction is free again; a transaction creating more than the
			 * slots is not ours to make (a posting has at most LEDGER_MAX_LEGS accounts). */
			size_t k = 0;
			while (k < t_ncreated && t_created[k].serial == db_tx_serial(db))
				k++;
			if (k == HF_ARRAY_LEN(t_created))
				return HF_EINTERNAL;
			if (k == t_ncreated)
				t_ncreated++;
			hf_strlcpy(t_created[k].code, code, sizeof(t_created[k].code));
			t_created[k].serial = db_tx_serial(db);
			*id = nid;
			return HF_OK;
		}
		if (err != HF_ECONFLICT)
			return err;
		/* Created meanwhile (or an id drawn twice): read it again. */
	}
	return HF_EDB_RETRY;
}

static bool legs_ok(const struct ledger_posting *p)
{
	if (p->nlegs < 2 || p->nlegs > LEDGER_MAX_LEGS || !p->idem_key || !p->idem_key[0] ||
	    strlen(p->idem_key) > 100 || !p->currency || strlen(p->currency) != 3)
		return false;
	int64_t sum = 0;
	for (size_t i = 0; i < p->nlegs; i++) {
		int64_t a = p->legs[i].amount;
		if (a == 0 || a > INT64_MAX / 16 || a < -(INT64_MAX / 16))
			return false;
		sum += a;
	}
	return sum == 0;
}

static hf_err insert_posting(struct db *db, const struct ledger_posting *p, int64_t id)
{
	struct db_val v[] = {DB_I64(id),
			     db_str(p->idem_key),
			     db_str(p->kind),
			     p->cycle_id ? DB_I64(p->cycle_id) : DB_NULLV,
			     p->payment_id ? DB_I64(p->payment_id) : DB_NULLV,
			     db_str(p->memo),
			     db_str(p->actor ? p->actor : "system")};
	return db_exec(db,
		       "INSERT INTO ledger_postings (id, idem_key, kind, cycle_id, payment_id, memo, posted_at, posted_by)"
		       " VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?)",
		       v, HF_ARRAY_LEN(v), NULL);
}

hf_err ledger_post(struct db *db, const struct ledger_posting *p, bool *posted)
{
	*posted = false;
	if (!legs_ok(p))
		return HF_EINVAL;
	int64_t acc[LEDGER_MAX_LEGS];
	for (size_t i = 0; i < p->nlegs; i++) {
		hf_err err = account_id(db, p->legs[i].account, p->currency, false, &acc[i]);
		if (err)
			return err;
	}
	int64_t id = db_new_id();
	hf_err err = insert_posting(db, p, id);
	if (err == HF_ECONFLICT && strcmp(db_conflict_key(db), "uq_ledger_postings_idem") == 0)
		return HF_OK; /* posted before: nothing moves twice */
	if (err)
		return err;
	struct db_val v[LEDGER_MAX_LEGS * 5];
	size_t nv = 0;
	struct hf_buf sql;
	hf_buf_init(&sql, 1024);
	err = hf_buf_append_str(&sql, "INSERT INTO ledger_entries (id, posting_id, account_id, amount, currency) VALUES ");
	int64_t base = db_new_id();
	for (size_t i = 0; i < p->nlegs && !err; i++) {
		err = hf_buf_append_str(&sql, i ? ", (?, ?, ?, ?, ?)" : "(?, ?, ?, ?, ?)");
		v[nv++] = DB_I64(base + (int64_t)i);
		v[nv++] = DB_I64(id);
		v[nv++] = DB_I64(acc[i]);
		v[nv++] = DB_I64(p->legs[i].amount);
		v[nv++] = db_str(p->currency);
	}
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, nv, NULL);
	hf_buf_release(&sql);
	*posted = err == HF_OK;
	return err;
}

hf_err ledger_post_many(struct db *db, const struct ledger_posting *p, size_t n, size_t *nposted)
{
	*nposted = 0;
	if (n == 0)
		return HF_OK;
	/* The same accounts for every posting of a batch (one shape): resolved once. */
	int64_t acc[LEDGER_MAX_LEGS];
	for (size_t i = 0; i < n; i++)
		if (!legs_ok(&p[i]) || p[i].nlegs != p[0].nlegs || strcmp(p[i].currency, p[0].currency) != 0)
			return HF_EINVAL;
	for (size_t i = 0; i < p[0].nlegs; i++) {
		hf_err err = account_id(db, p[0].legs[i].account, p[0].currency, false, &acc[i]);
		if (err)
			return err;
	}
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < p[k].nlegs; i++)
			if (strcmp(p[k].legs[i].account, p[0].legs[i].account) != 0)
				return HF_EINVAL;
	/* Which keys exist already (the caller holds the payments' row locks, so none appears meanwhile). */
	bool *skip = hf_xcalloc(n, sizeof(*skip));
	struct hf_buf sql;
	hf_buf_init(&sql, 1024 * 1024);
	struct db_val *v = hf_xcalloc(n * (7 + 5 * LEDGER_MAX_LEGS), sizeof(*v));
	size_t nv = 0;
	hf_err err = hf_buf_append_str(&sql, "SELECT idem_key FROM ledger_postings WHERE idem_key IN (");
	for (size_t k = 0; k < n && !err; k++) {
		err = hf_buf_append_str(&sql, k ? ", ?" : "?");
		v[nv++] = db_str(p[k].idem_key);
	}
	err = err ? err : hf_buf_append_str(&sql, ")");
	struct db_rows *r = NULL;
	if (!err)
		err = db_query(db, hf_buf_cstr(&sql), v, nv, &r);
	while (!err && db_rows_next(r))
		for (size_t k = 0; k < n; k++)
			if (strcmp(p[k].idem_key, db_rows_str(r, 0)) == 0)
				skip[k] = true;
	db_rows_free(r);
	size_t fresh = 0;
	for (size_t k = 0; k < n; k++)
		fresh += !skip[k];
	if (err || fresh == 0)
		goto out;
	int64_t pbase = db_new_id(), ebase = db_new_id();
	hf_buf_reset(&sql);
	nv = 0;
	err = hf_buf_append_str(&sql, "INSERT INTO ledger_postings (id, idem_key, kind, cycle_id, payment_id, memo,"
				      " posted_at, posted_by) VALUES ");
	size_t j = 0;
	for (size_t k = 0; k < n && !err; k++) {
		if (skip[k])
			continue;
		err = hf_buf_append_str(&sql, j++ ? ", (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?)"
						  : "(?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?)");
		v[nv++] = DB_I64(pbase + (int64_t)k);
		v[nv++] = db_str(p[k].idem_key);
		v[nv++] = db_str(p[k].kind);
		v[nv++] = p[k].cycle_id ? DB_I64(p[k].cycle_id) : DB_NULLV;
		v[nv++] = p[k].payment_id ? DB_I64(p[k].payment_id) : DB_NULLV;
		v[nv++] = db_str(p[k].memo);
		v[nv++] = db_str(p[k].actor ? p[k].actor : "system");
	}
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, nv, NULL);
	if (err)
		goto out;
	hf_buf_reset(&sql);
	nv = 0;
	err = hf_buf_append_str(&sql, "INSERT INTO ledger_entries (id, posting_id, account_id, amount, currency) VALUES ");
	j = 0;
	for (size_t k = 0; k < n && !err; k++) {
		if (skip[k])
			continue;
		for (size_t i = 0; i < p[k].nlegs && !err; i++) {
			err = hf_buf_append_str(&sql, j ? ", (?, ?, ?, ?, ?)" : "(?, ?, ?, ?, ?)");
			v[nv++] = DB_I64(ebase + (int64_t)j++);
			v[nv++] = DB_I64(pbase + (int64_t)k);
			v[nv++] = DB_I64(acc[i]);
			v[nv++] = DB_I64(p[k].legs[i].amount);
			v[nv++] = db_str(p[k].currency);
		}
	}
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, nv, NULL);
	if (!err)
		*nposted = fresh;
out:
	hf_buf_release(&sql);
	free(v);
	free(skip);
	return err;
}

hf_err ledger_balance(struct db *db, const char *account, bool lock, int64_t *out)
{
	*out = 0;
	int64_t id = 0;
	hf_err err = account_id(db, account, NULL, lock, &id);
	if (err == HF_ENOTFOUND)
		return HF_OK;
	if (err)
		return err;
	struct db_val v[] = {DB_I64(id)};
	struct db_rows *r = NULL;
	err = db_query(db, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account_id = ?", v, 1, &r);
	if (!err && db_rows_next(r))
		*out = db_rows_i64(r, 0);
	db_rows_free(r);
	return err;
}

hf_err ledger_accounts(struct db *db, json_t **out)
{
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT a.code, a.kind, a.currency, COALESCE(SUM(e.amount), 0), COUNT(e.id) FROM ledger_accounts"
			      " a LEFT JOIN ledger_entries e ON e.account_id = a.id GROUP BY a.id ORDER BY a.code LIMIT 10000",
			      NULL, 0, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r))
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:I, s:I}", "code", db_rows_str(r, 0), "kind",
						       db_rows_str(r, 1), "currency", db_rows_str(r, 2), "balance",
						       (json_int_t)db_rows_i64(r, 3), "entries",
						       (json_int_t)db_rows_i64(r, 4)));
	db_rows_free(r);
	*out = json_pack("{s:o}", "items", items);
	return HF_OK;
}

/* One check: a query returning (what, count-or-amount) rows; each row is a problem. */
static hf_err check_rows(struct db *db, const char *name, const char *sql, json_t *problems)
{
	struct db_rows *r = NULL;
	hf_err err = db_query(db, sql, NULL, 0, &r);
	if (err)
		return err;
	while (db_rows_next(r))
		json_array_append_new(problems, json_pack("{s:s, s:s, s:I}", "check", name, "subject", db_rows_str(r, 0),
							  "value", (json_int_t)db_rows_i64(r, 1)));
	db_rows_free(r);
	return HF_OK;
}

hf_err ledger_check(struct db *db, bool *ok, json_t **report)
{
	*ok = false;
	json_t *problems = json_array();
	/* One snapshot for every check. */
	hf_err err = db_exec_plain(db, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
	static const struct {
		const char *name, *sql;
	} CHECKS[] = {
		{"posting_unbalanced",
		 "SELECT CAST(posting_id AS CHAR), SUM(amount) FROM ledger_entries GROUP BY posting_id HAVING SUM(amount)"
		 " <> 0 LIMIT 50"},
		{"posting_without_entries",
		 "SELECT CAST(p.id AS CHAR), 0 FROM ledger_postings p LEFT JOIN ledger_entries e ON e.posting_id = p.id"
		 " WHERE e.id IS NULL LIMIT 50"},
		{"currency_mismatch",
		 "SELECT CAST(e.posting_id AS CHAR), e.amount FROM ledger_entries e JOIN ledger_accounts a ON a.id ="
		 " e.account_id WHERE a.currency <> e.currency LIMIT 50"},
		{"fund_negative",
		 "SELECT a.code, SUM(e.amount) FROM ledger_accounts a JOIN ledger_entries e ON e.account_id = a.id WHERE"
		 " a.kind = 'fund' GROUP BY a.id HAVING SUM(e.amount) < 0"},
		{"paid_twice",
		 "SELECT CAST(payment_id AS CHAR), COUNT(*) FROM ledger_postings WHERE kind IN ('paid', 'collect') AND"
		 " payment_id IS NOT NULL GROUP BY payment_id HAVING COUNT(*) > 1 LIMIT 50"},
		{"paid_without_posting",
		 "SELECT CAST(p.id AS CHAR), p.amount FROM payments p LEFT JOIN ledger_postings l ON l.payment_id = p.id"
		 " AND l.kind IN ('paid', 'collect') WHERE p.status IN ('paid', 'collected') AND l.id IS NULL LIMIT 50"},
		{"posting_without_payment_status",
		 "SELECT CAST(p.id AS CHAR), p.amount FROM payments p JOIN ledger_postings l ON l.payment_id = p.id AND"
		 " l.kind IN ('paid', 'collect') WHERE p.status NOT IN ('paid', 'collected', 'reversed') LIMIT 50"},
		{"sent_without_posting",
		 "SELECT CAST(p.id AS CHAR), p.amount FROM payments p LEFT JOIN ledger_postings l ON l.payment_id = p.id"
		 " AND l.kind = 'send' WHERE p.status IN ('sending', 'pending', 'paid', 'failed') AND p.channel <> 'kiosk'"
		 " AND l.id IS NULL LIMIT 50"},
		{"cycle_clearing_mismatch",
		 /* An approved cycle's clearing account holds exactly what is neither sent nor settled. */
		 "SELECT c.code, COALESCE(b.bal, 0) - COALESCE(q.due, 0) FROM payment_cycles c LEFT JOIN (SELECT"
		 " SUBSTRING(a.code, 10) AS code, SUM(e.amount) AS bal FROM ledger_accounts a JOIN ledger_entries e ON"
		 " e.account_id = a.id WHERE a.kind = 'clearing' GROUP BY a.id) b ON b.code = c.code LEFT JOIN (SELECT"
		 " cycle_id, SUM(amount) AS due FROM payments WHERE status IN ('approved', 'available') GROUP BY"
		 " cycle_id) q ON q.cycle_id = c.id WHERE c.status = 'approved' AND COALESCE(b.bal, 0) <> COALESCE(q.due,"
		 " 0)"},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(CHECKS) && !err; i++)
		err = check_rows(db, CHECKS[i].name, CHECKS[i].sql, problems);
	struct db_rows *r = NULL;
	json_t *totals = json_object();
	if (!err)
		err = db_query(db,
			       "SELECT a.kind, a.currency, COALESCE(SUM(e.amount), 0) FROM ledger_accounts a LEFT JOIN"
			       " ledger_entries e ON e.account_id = a.id GROUP BY a.kind, a.currency ORDER BY 1, 2",
			       NULL, 0, &r);
	while (!err && db_rows_next(r)) {
		char k[32];
		snprintf(k, sizeof(k), "%s:%s", db_rows_str(r, 0), db_rows_str(r, 1));
		json_object_set_new(totals, k, json_integer(db_rows_i64(r, 2)));
	}
	db_rows_free(r);
	r = NULL;
	json_int_t postings = 0, entries = 0;
	if (!err)
		err = db_query(db, "SELECT (SELECT COUNT(*) FROM ledger_postings), (SELECT COUNT(*) FROM ledger_entries)",
			       NULL, 0, &r);
	if (!err && db_rows_next(r)) {
		postings = db_rows_i64(r, 0);
		entries = db_rows_i64(r, 1);
	}
	db_rows_free(r);
	db_rollback(db); /* read only: nothing to keep */
	if (err) {
		json_decref(problems);
		json_decref(totals);
		return err;
	}
	*ok = json_array_size(problems) == 0;
	*report = json_pack("{s:b, s:I, s:I, s:o, s:o}", "ok", *ok, "postings", postings, "entries", entries,
			    "balances_by_kind", totals, "problems", problems);
	return HF_OK;
}
