/* audit.h - the tamper-evident audit trail.
 *
 * Every write, login, failed login, staff read of personal data and export appends one entry, in the SAME
 * transaction as the change it records (audit_append) or, for refusals and reads that change nothing, in a
 * transaction of its own (audit_record). Entries form hash chains, one per stripe, so concurrent writers do
 * not queue on one row:
 *     hash = SHA-256(prev_hash || canonical(entry))      mac = BLAKE2b-256(key = audit-mac.key, hash)
 * and every audit.checkpoint_every entries a checkpoint (stripe, seq, hash) is signed with Ed25519
 * (audit-sign.key). The MAC key never reaches the database, so somebody with database access can neither
 * edit an entry nor insert one that verifies; deleting one breaks the chain. audit_verify re-walks
 * everything and names the first entry that does not hold.
 *
 * No personal data goes in: record is a number (ben_no, hh_no, username, kiosk number), before/after are
 * keyed digests of the record's JSON, detail is a small JSON object of non-personal facts.
 */
#ifndef HF_CORE_AUDIT_H
#define HF_CORE_AUDIT_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"
#include "hf_json.h"
#include "db.h"

/* Who did it. type: "staff", "service", "kiosk", "cli", "system" or "anonymous"; name: username,
 * "gateway", kiosk number, unix user... (<= 64 chars); source: numeric address or "local"; request_id may be
 * "" (CLI). */
struct audit_actor {
	const char *type;
	const char *name;
	const char *source;
	const char *request_id;
};

/* What happened. action: "individual.update", "auth.login", "individual.read", ... (<= 48 chars);
 * entity/record: what it touched ("individual" / ben_no; "" when nothing in particular; <= 24 / 64 chars);
 * outcome: "ok", "denied" or "failed"; before/after: the record's JSON (digested, never stored) or NULL;
 * detail: a JSON object of non-personal facts (field names changed, counts, reasons) or NULL (stored as
 * {}); a detail over 2000 bytes of compact JSON is stored as {"truncated":true}. NULL strings count as "";
 * source <= 45 chars, request_id <= 36. All borrowed for the call only. */
struct audit_event {
	const char *action;
	const char *entity;
	const char *record;
	const char *outcome;
	const json_t *before;
	const json_t *after;
	const json_t *detail;
};

/* Loads audit-mac.key and audit-sign.key from the crypto key dir and reads audit.* config. Call once at
 * start-up, after hf_crypto_init, before any thread appends. stripes 1..1024, checkpoint_every >= 1.
 * HF_EIO when a key file is missing (run keygen), HF_EINVAL when one is malformed, audit-sign.pub does not
 * match audit-sign.key or a number is out of range. The keys are loaded even when enabled is false (verify
 * and search still work); enabled = false turns audit_append and audit_record into no-ops, for the
 * audit-cost benchmark only, and logs a warning saying so. */
HF_MUST_CHECK hf_err audit_init(const char *key_dir, int stripes, int checkpoint_every, bool enabled);
/* Creates audit-mac.key and audit-sign.key (+ audit-sign.pub) in dir where missing; never overwrites.
 * Secrets 0600, the public key 0644, dir 0700. HF_EINVAL when audit-sign.pub exists without its key. */
HF_MUST_CHECK hf_err audit_keygen(const char *dir);
/* Wipes and frees the keys. audit_init may be called again afterwards. */
void audit_shutdown(void);
/* Whether audit_append records anything (audit.enabled). */
bool audit_enabled(void);

/* Appends inside the caller's open transaction (db_tx callback). On error the caller's transaction must
 * roll back: a change without its audit entry never commits. Each thread writes to its own stripe; the
 * stripe's head row stays locked until the caller's transaction ends, so keep those short. HF_EDB_RETRY
 * (deadlock, lost connection) is the caller's db_tx to retry; HF_EINTERNAL when a field breaks the limits
 * above (our bug: logged with the field's name, never its value) or audit_init was not called. */
HF_MUST_CHECK hf_err audit_append(struct db *db, const struct audit_actor *who, const struct audit_event *ev);
/* Appends in a transaction of its own (refusals, failed logins, reads). */
HF_MUST_CHECK hf_err audit_record(struct db *db, const struct audit_actor *who, const struct audit_event *ev);

/* Signs a checkpoint for every stripe whose newest entry is not yet covered (CLI "audit checkpoint", and
 * at shutdown), in one transaction of its own. A head that does not match its entry (or whose entry's MAC
 * is not valid) is not signed: it is logged, the other stripes are still signed, and HF_ECONFLICT is
 * returned so that the operator runs audit verify. */
HF_MUST_CHECK hf_err audit_checkpoint_all(struct db *db);

struct audit_verify_result {
	uint64_t entries, checkpoints, stripes;
	bool ok;
	/* the first problem found, in entry order: */
	int64_t bad_id;       /* entry id (0 when the problem is a missing entry: see bad_stripe/bad_seq) */
	int bad_stripe;
	int64_t bad_seq;
	char problem[200];    /* "entry 123 (stripe 2, seq 17) was edited: its MAC does not match", ... */
	uint64_t problems;    /* how many problems in all (the walk goes on after the first, to count) */
};
/* Walks every entry of every stripe: chain links, sequence gaps, MACs, heads and checkpoint signatures.
 * Reads one consistent snapshot (entries appended meanwhile are simply not seen) and streams the entries,
 * so memory stays flat however long the trail. "First" problem = the one at the smallest entry id (ids are
 * time-ordered); a missing entry is placed at the entry after the gap. Returns HF_OK whether or not the
 * trail holds (see res->ok); an error only when the walk could not be done (database, keys). */
HF_MUST_CHECK hf_err audit_verify(struct db *db, struct audit_verify_result *res);

/* API: GET /api/v1/audit?actor=&entity=&record=&action=&from=&to=&after=&limit= (auditors).
 * Newest first. actor/entity/record/action match exactly; from/to are "YYYY-MM-DD" (whole days, both
 * inclusive) or "YYYY-MM-DDTHH:MM:SSZ" (to the second, both inclusive), UTC; after is the previous page's
 * "next"; limit 1..registry.max_page (0 = 20). NULL or "" = no filter. Every bad value is added to fe and
 * HF_EINVAL returned. *out (owned) is {"items":[...], "limit":n, "next":"<id>"|absent}; an item has id
 * (string), stripe, seq, occurred_at ("...Z"), actor_type, actor, action, entity, record, outcome, source,
 * request_id, before_digest/after_digest (hex or null), detail (JSON) and hash (hex). */
struct audit_query {
	const char *actor, *entity, *record, *action, *from, *to, *after;
	int limit;
};
HF_MUST_CHECK hf_err audit_search(struct db *db, const struct audit_query *q, struct hf_ferrs *fe, json_t **out);

#endif
