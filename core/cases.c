/* cases.c - tracked cases: lodging, workflow transitions, maker-checker, notes, queues, SLA sweeps, outbox. */
#include "hf_base.h"
#include "cases.h"
#include "outbox.h"
#include "app.h"
#include "audit.h"
#include "eligibility.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "person.h"
#include "registry.h"
#include "validate.h"
#include "workflow.h"

#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS_FMT "'%Y-%m-%dT%H:%i:%s.%fZ'"
#define TEXT_MAX 4000   /* characters of a summary or note */
#define DATA_MAX 8000   /* bytes of a case's data JSON */
/* A case shows its first 200 events (the SQL below). */
#define SWEEP_BATCH 1000

static struct {
	struct wf_set *wf;
	struct elig_set *elig;
} C;

hf_err cases_init(const struct hf_config *cfg, struct hf_buf *err)
{
	hf_err e = wf_load_dir(hf_config_str(cfg, "workflow.dir"), auth_role_names, &C.wf, err);
	if (!e)
		e = elig_load_dir(hf_config_str(cfg, "eligibility.dir"), &C.elig, err);
	return e;
}

void cases_shutdown(void)
{
	wf_free(C.wf);
	elig_free(C.elig);
	C.wf = NULL;
	C.elig = NULL;
}


static const char *role_of(const struct principal *p)
{
	if (p->kind == PRINCIPAL_STAFF)
		return auth_role_names[p->role];
	return p->kind == PRINCIPAL_SERVICE ? "gateway" : p->kind == PRINCIPAL_KIOSK ? "kiosk" : "anonymous";
}

/* ------------------------------------------------------------------ sealing */

static hf_err seal_text(const char *table_col, int64_t id, const char *text, struct hf_buf *out)
{
	char ad[96];
	int n = snprintf(ad, sizeof(ad), "%s:%lld", table_col, (long long)id);
	return hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, text, strlen(text), out);
}

/* Opens a sealed text column; NULL column gives NULL. */
static json_t *open_text(const char *table_col, int64_t id, const struct db_rows *r, size_t col, bool as_json)
{
	if (db_rows_null(r, col))
		return json_null();
	size_t n = 0;
	const void *p = db_rows_blob(r, col, &n);
	char ad[96];
	int k = snprintf(ad, sizeof(ad), "%s:%lld", table_col, (long long)id);
	struct hf_buf plain;
	hf_buf_init(&plain, 64 * 1024);
	json_t *v = NULL;
	if (hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)k}, p, n, &plain) == HF_OK) {
		if (as_json)
			v = json_loadb(plain.data ? plain.data : "", plain.len, 0, NULL);
		else
			v = json_stringn(plain.data ? plain.data : "", plain.len);
	} else {
		hf_log(HF_LOG_ERROR, "core.cases", "msg=\"a sealed case field does not open\" field=%s id=%lld", table_col,
		       (long long)id);
	}
	if (plain.data)
		memset(plain.data, 0, plain.cap);
	hf_buf_release(&plain);
	return v ? v : json_string("(unreadable)");
}

/* ------------------------------------------------------------------ subjects and the outbox */

struct subject {
	int64_t individual_id, household_id, location_id, contact_id; /* contact: who gets SMS */
	char ben_no[BENNO_LEN + 1], hh_no[BENNO_LEN + 1];
	char district[330];
};

/* Resolves ben_no or hh_no into ids, the location and the person to text (the individual, or the head). */
static hf_err subject_find(struct db *db, const char *ben_no, const char *hh_no, struct subject *s)
{
	memset(s, 0, sizeof(*s));
	struct db_rows *r = NULL;
	hf_err err;
	if (ben_no) {
		struct db_val v[] = {db_str(ben_no)};
		err = db_query(db,
			       "SELECT i.id, h.id, h.location_id, h.hh_no, l.path FROM individuals i LEFT JOIN households h"
			       " ON h.id = i.household_id LEFT JOIN locations l ON l.id = h.location_id WHERE i.ben_no = ?",
			       v, 1, &r);
	} else {
		struct db_val v[] = {db_str(hh_no)};
		err = db_query(db,
			       "SELECT (SELECT id FROM individuals WHERE household_id = h.id AND head_marker = 1), h.id,"
			       " h.location_id, h.hh_no, l.path FROM households h JOIN locations l ON l.id = h.location_id"
			       " WHERE h.hh_no = ?",
			       v, 1, &r);
	}
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	s->individual_id = ben_no ? db_rows_i64(r, 0) : 0;
	s->contact_id = db_rows_null(r, 0) ? 0 : db_rows_i64(r, 0);
	s->household_id = db_rows_null(r, 1) ? 0 : db_rows_i64(r, 1);
	s->location_id = db_rows_null(r, 2) ? 0 : db_rows_i64(r, 2);
	hf_strlcpy(s->hh_no, db_rows_str(r, 3), sizeof(s->hh_no));
	if (ben_no)
		hf_strlcpy(s->ben_no, ben_no, sizeof(s->ben_no));
	/* Teams work per district: "Region/District" of "Region/District/Village". */
	hf_strlcpy(s->district, db_rows_str(r, 4), sizeof(s->district));
	char *slash = strrchr(s->district, '/');
	if (slash && strchr(s->district, '/') != slash)
		*slash = '\0';
	db_rows_free(r);
	return HF_OK;
}

/* ------------------------------------------------------------------ loading a case */

struct case_row {
	int64_t id, individual_id, household_id, location_id, version;
	char ref[BENNO_LEN + 1], type[20], category[33], state[33], team[101], assigned_role[21], assigned_to[73];
	bool confidential, is_open, breached;
	int64_t state_since_ms, due_ms, at_risk_ms, escalations;
};

#define CASE_COLS                                                                                             \
	"c.id, c.ref, c.case_type, c.category, c.state, c.individual_id, c.household_id, c.location_id,"       \
	" c.confidential, c.is_open, c.sla_breached, COALESCE(c.team, ''), COALESCE(c.assigned_role, ''),"       \
	" COALESCE(c.assigned_to, ''), c.version, UNIX_TIMESTAMP(c.state_since) * 1000,"                        \
	" COALESCE(UNIX_TIMESTAMP(c.sla_due_at) * 1000, 0), COALESCE(UNIX_TIMESTAMP(c.sla_at_risk_at) * 1000, 0),"  \
	" c.escalations"

static void case_row_read(struct db_rows *r, struct case_row *k)
{
	memset(k, 0, sizeof(*k));
	k->id = db_rows_i64(r, 0);
	hf_strlcpy(k->ref, db_rows_str(r, 1), sizeof(k->ref));
	hf_strlcpy(k->type, db_rows_str(r, 2), sizeof(k->type));
	hf_strlcpy(k->category, db_rows_str(r, 3), sizeof(k->category));
	hf_strlcpy(k->state, db_rows_str(r, 4), sizeof(k->state));
	k->individual_id = db_rows_null(r, 5) ? 0 : db_rows_i64(r, 5);
	k->household_id = db_rows_null(r, 6) ? 0 : db_rows_i64(r, 6);
	k->location_id = db_rows_null(r, 7) ? 0 : db_rows_i64(r, 7);
	k->confidential = db_rows_i64(r, 8) != 0;
	k->is_open = db_rows_i64(r, 9) != 0;
	k->breached = db_rows_i64(r, 10) != 0;
	hf_strlcpy(k->team, db_rows_str(r, 11), sizeof(k->team));
	hf_strlcpy(k->assigned_role, db_rows_str(r, 12), sizeof(k->assigned_role));
	hf_strlcpy(k->assigned_to, db_rows_str(r, 13), sizeof(k->assigned_to));
	k->version = db_rows_i64(r, 14);
	k->state_since_ms = (int64_t)strtod(db_rows_str(r, 15), NULL);
	k->due_ms = (int64_t)strtod(db_rows_str(r, 16), NULL);
	k->at_risk_ms = (int64_t)strtod(db_rows_str(r, 17), NULL);
	k->escalations = db_rows_i64(r, 18);
}

static hf_err case_load(struct db *db, const char *ref, bool for_update, struct case_row *k)
{
	if (!numbers_valid(ref))
		return HF_ENOTFOUND;
	struct db_val v[] = {db_str(ref)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      for_update ? "SELECT " CASE_COLS " FROM cases c WHERE c.ref = ? FOR UPDATE"
					 : "SELECT " CASE_COLS " FROM cases c WHERE c.ref = ?",
			      v, 1, &r);
	if (err)
		return err;
	err = db_rows_next(r) ? HF_OK : HF_ENOTFOUND;
	if (!err)
		case_row_read(r, k);
	db_rows_free(r);
	return err;
}

static const char *sla_state(const struct case_row *k, int64_t now_ms)
{
	if (!k->is_open || !k->due_ms)
		return "none";
	if (k->breached || now_ms >= k->due_ms)
		return "breached";
	return now_ms >= k->at_risk_ms ? "at_risk" : "on_track";
}

static int role_index(const struct principal *p)
{
	return p->kind == PRINCIPAL_STAFF ? p->role : WF_ROLE_NONE;
}

/* Whether the caller sees a confidential case's contents (the beneficiary's channels see its state only). */
static bool may_see(const struct svc_call *c, const struct case_row *k)
{
	const struct wf_def *d = wf_find(C.wf, k->type);
	return !k->confidential || (d && wf_category_visible_to(d, k->category, role_index(c->p)) &&
				    c->p->kind == PRINCIPAL_STAFF);
}

/* Locks a case the caller is about to change. A confidential case the caller may not act on is "not found":
 * it is not even acknowledged. */
static hf_err case_lock_for(struct db *db, const struct svc_call *c, const char *ref, struct case_row *k,
			    const struct wf_def **d_out)
{
	hf_err err = case_load(db, ref, true, k);
	if (err)
		return err;
	const struct wf_def *d = wf_find(C.wf, k->type);
	if (!d || !wf_category_visible_to(d, k->category, role_index(c->p)))
		return HF_ENOTFOUND;
	*d_out = d;
	return HF_OK;
}

static hf_err event_add(struct db *db, int64_t case_id, const char *kind, const char *transition, const char *from,
			const char *to, const char *actor, const char *note)
{
	int64_t id = db_new_id();
	struct hf_buf sealed;
	hf_buf_init(&sealed, 16 * 1024);
	hf_err err = note && note[0] ? seal_text("case_events.note", id, note, &sealed) : HF_OK;
	if (!err) {
		struct db_val v[] = {DB_I64(id),   DB_I64(case_id), db_str(kind),	 db_str(transition),
				     db_str(from), db_str(to),	    db_str(actor), db_blob_or_null(sealed.data, sealed.len)};
		err = db_exec(db,
			      "INSERT INTO case_events (id, case_id, kind, transition, from_state, to_state, actor, at, note_enc)"
			      " VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?)",
			      v, HF_ARRAY_LEN(v), NULL);
	}
	hf_buf_release(&sealed);
	return err;
}

static json_t *case_json(struct svc_call *c, struct db_rows *r, const struct case_row *k, int64_t now_ms)
{
	bool see = may_see(c, k);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "ref", k->ref, "type", k->type, "category",
			      see ? k->category : "confidential", "state", k->state, "open", k->is_open, "confidential",
			      k->confidential);
	json_object_set_new(o, "sla", json_pack("{s:s, s:b, s:I}", "state", sla_state(k, now_ms), "breached", k->breached,
						"escalations", (json_int_t)k->escalations));
	if (k->due_ms) {
		char due[40];
		time_t t = (time_t)(k->due_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(due, sizeof(due), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(json_object_get(o, "sla"), "due_at", json_string(due));
	}
	/* Columns after CASE_COLS: channel, ben_no, hh_no, programme, payment_ref, summary_enc, data_enc,
	 * eligibility, created_at, created_by, updated_at. */
	size_t b = 19;
	json_object_set_new(o, "channel", json_string(db_rows_str(r, b)));
	json_object_set_new(o, "ben_no", db_rows_null(r, b + 1) ? json_null() : json_string(db_rows_str(r, b + 1)));
	json_object_set_new(o, "hh_no", db_rows_null(r, b + 2) ? json_null() : json_string(db_rows_str(r, b + 2)));
	json_object_set_new(o, "programme", db_rows_null(r, b + 3) ? json_null() : json_string(db_rows_str(r, b + 3)));
	json_object_set_new(o, "payment_ref", db_rows_null(r, b + 4) ? json_null() : json_string(db_rows_str(r, b + 4)));
	json_object_set_new(o, "summary", see ? open_text("cases.summary", k->id, r, b + 5, false) : json_string("***"));
	json_object_set_new(o, "data", see ? open_text("cases.data", k->id, r, b + 6, true) : json_string("***"));
	json_t *elig = db_rows_null(r, b + 7) ? NULL : json_loads(db_rows_str(r, b + 7), 0, NULL);
	json_object_set_new(o, "eligibility", elig ? elig : json_null());
	json_object_set_new(o, "team", k->team[0] ? json_string(k->team) : json_null());
	json_object_set_new(o, "assigned_role", k->assigned_role[0] ? json_string(k->assigned_role) : json_null());
	json_object_set_new(o, "assigned_to", k->assigned_to[0] ? json_string(k->assigned_to) : json_null());
	json_object_set_new(o, "version", json_integer(k->version));
	json_object_set_new(o, "created_at", json_string(db_rows_str(r, b + 8)));
	json_object_set_new(o, "created_by", json_string(db_rows_str(r, b + 9)));
	json_object_set_new(o, "updated_at", json_string(db_rows_str(r, b + 10)));
	return o;
}

#define CASE_FULL_COLS                                                                                        \
	CASE_COLS ", c.channel, i.ben_no, h.hh_no, c.programme_code, c.payment_ref, c.summary_enc, c.data_enc,"  \
		  " c.eligibility, DATE_FORMAT(c.created_at, " TS_FMT "), c.created_by,"                  \
		  " DATE_FORMAT(c.updated_at, " TS_FMT ")"
#define CASE_FULL_FROM                                                                                        \
	" FROM cases c LEFT JOIN individuals i ON i.id = c.individual_id LEFT JOIN households h ON h.id ="      \
	" c.household_id"

static hf_err case_read_json(struct svc_call *c, const char *ref, bool with_events, json_t **out)
{
	struct db_val v[] = {db_str(ref)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db, "SELECT " CASE_FULL_COLS CASE_FULL_FROM " WHERE c.ref = ?", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	struct case_row k;
	case_row_read(r, &k);
	json_t *o = case_json(c, r, &k, hf_now_ms());
	db_rows_free(r);
	if (with_events) {
		bool see = may_see(c, &k);
		struct db_val w[] = {DB_I64(k.id)};
		err = db_query(c->db,
			       "SELECT id, kind, transition, from_state, to_state, actor, DATE_FORMAT(at, " TS_FMT "), note_enc"
			       " FROM case_events WHERE case_id = ? ORDER BY at, id LIMIT 200",
			       w, 1, &r);
		if (err) {
			json_decref(o);
			return err;
		}
		json_t *ev = json_array();
		while (db_rows_next(r)) {
			json_t *e = json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s}", "kind", db_rows_str(r, 1), "transition",
					      db_rows_null(r, 2) ? NULL : db_rows_str(r, 2), "from",
					      db_rows_null(r, 3) ? NULL : db_rows_str(r, 3), "to",
					      db_rows_null(r, 4) ? NULL : db_rows_str(r, 4), "actor", db_rows_str(r, 5), "at",
					      db_rows_str(r, 6));
			if (!db_rows_null(r, 7))
				json_object_set_new(e, "note", see ? open_text("case_events.note", db_rows_i64(r, 0), r, 7, false)
								   : json_string("***"));
			json_array_append_new(ev, e);
		}
		db_rows_free(r);
		json_object_set_new(o, "events", ev);
		/* What the caller may do next. */
		json_t *next = json_array();
		const struct wf_def *d = wf_find(C.wf, k.type);
		const struct wf_state *st = d ? wf_state_find(d, k.state) : NULL;
		if (k.is_open && st && c->p->kind == PRINCIPAL_STAFF && may_see(c, &k))
			for (const struct wf_transition *t = wf_transition_next(d, st, c->p->role, NULL); t;
			     t = wf_transition_next(d, st, c->p->role, t))
				json_array_append_new(next, json_string(t->name));
		json_object_set_new(o, "transitions_available", next);
		struct db_val pv[] = {DB_I64(k.id)};
		err = db_query(c->db,
			       "SELECT transition, maker, DATE_FORMAT(made_at, " TS_FMT ") FROM case_approvals"
			       " WHERE pending_case = ?",
			       pv, 1, &r);
		if (err) {
			json_decref(o);
			return err;
		}
		json_t *att = json_array();
		{
			struct db_rows *ar = NULL;
			err = db_query(c->db,
				       "SELECT id, content_type, size, DATE_FORMAT(added_at, " TS_FMT "), added_by FROM case_attachments"
				       " WHERE case_id = ? ORDER BY id LIMIT 100",
				       pv, 1, &ar);
			while (!err && db_rows_next(ar))
				json_array_append_new(att, json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", db_rows_str(ar, 0),
								     "content_type", db_rows_str(ar, 1), "size",
								     (json_int_t)db_rows_i64(ar, 2), "added_at",
								     db_rows_str(ar, 3), "added_by", db_rows_str(ar, 4)));
			db_rows_free(ar);
		}
		if (err) {
			json_decref(att);
			db_rows_free(r);
			json_decref(o);
			return err;
		}
		json_object_set_new(o, "attachments", see ? att : (json_decref(att), json_array()));
		json_object_set_new(o, "pending_approval",
				    db_rows_next(r) ? json_pack("{s:s, s:s, s:s}", "transition", db_rows_str(r, 0), "maker",
								db_rows_str(r, 1), "made_at", db_rows_str(r, 2))
						    : json_null());
		db_rows_free(r);
	}
	*out = o;
	return HF_OK;
}

/* ------------------------------------------------------------------ actions */

/* Everything a transition (or the creation) needs while it runs its actions. */
struct act_ctx {
	struct svc_call *c;
	const struct wf_def *d;
	struct case_row *k;
	const char *actor;
	const struct audit_actor *who;
	json_t *detail; /* what the actions did, for the audit entry and the answer */
};

static hf_err act_sms(struct act_ctx *a, const char *tmpl)
{
	int64_t contact = a->k->individual_id;
	if (!contact && a->k->household_id) {
		struct db_val v[] = {DB_I64(a->k->household_id)};
		hf_err err = db_query_i64(a->c->db, "SELECT id FROM individuals WHERE household_id = ? AND head_marker = 1",
					  v, 1, &contact);
		if (err)
			return err;
	}
	json_t *params = json_pack("{s:s, s:s, s:s}", "ref", a->k->ref, "state", a->k->state, "type", a->k->type);
	bool queued = false;
	hf_err err = outbox_to_person(a->c->db, a->k->id, contact, tmpl, params, &queued);
	json_decref(params);
	if (!err)
		json_array_append_new(json_object_get(a->detail, "sms"),
				      json_pack("{s:s, s:b}", "template", tmpl, "queued", queued));
	return err;
}

static hf_err act_assign(struct act_ctx *a, const struct wf_action *act)
{
	int role = act->kind == WF_ACT_ASSIGN_ROLE ? act->role : WF_ROLE_NONE;
	if (a->k->confidential && wf_confidential_role(a->d) != WF_ROLE_NONE)
		role = wf_confidential_role(a->d); /* confidential cases go to the confidential role only */
	char team[101] = "";
	if (act->kind == WF_ACT_ASSIGN_TEAM) {
		/* The team of the beneficiary's district for this case type: "Region/District:grievance". */
		const char *district = "";
		struct db_rows *r = NULL;
		if (a->k->location_id) {
			struct db_val v[] = {DB_I64(a->k->location_id)};
			hf_err err = db_query(a->c->db, "SELECT path FROM locations WHERE id = ?", v, 1, &r);
			if (err)
				return err;
			if (db_rows_next(r))
				district = db_rows_str(r, 0);
		}
		char path[330];
		hf_strlcpy(path, district, sizeof(path));
		char *last = strrchr(path, '/');
		if (last && strchr(path, '/') != last)
			*last = '\0';
		/* The team: the workflow's team for the category ([teams]), else the case type. */
		const char *unit = wf_team(a->d, a->k->category);
		snprintf(team, sizeof(team), "%.60s:%s", path[0] ? path : "national", unit ? unit : a->k->type);
		db_rows_free(r);
	}
	const char *role_name = role >= 0 ? auth_role_names[role] : NULL;
	/* A case given to a team or a role leaves whoever personally held it. */
	struct db_val v[] = {db_str(team[0] ? team : NULL), db_str(role_name), DB_I64(a->k->id)};
	hf_err err = db_exec(a->c->db,
			     "UPDATE cases SET team = COALESCE(?, team), assigned_role = COALESCE(?, assigned_role),"
			     " assigned_to = NULL WHERE id = ?",
			     v, HF_ARRAY_LEN(v), NULL);
	if (!err) {
		if (team[0])
			hf_strlcpy(a->k->team, team, sizeof(a->k->team));
		if (role_name)
			hf_strlcpy(a->k->assigned_role, role_name, sizeof(a->k->assigned_role));
		json_object_set_new(a->detail, "assigned", json_pack("{s:s?, s:s?}", "team", team[0] ? team : NULL,
								      "role", role_name));
	}
	return err;
}

/* change_request: applies the requested change to the registry, with the registry's own validation, history
 * and audit, in this transaction:
 *   phone and other personal fields: data.change = {"phone": "+254..."} (the fields of PATCH /individuals);
 *   address: data.change = {"address": "...", "location": {...}} on the household (PATCH /households);
 *   death: every open enrolment of the person becomes "deceased" (no data needed).
 *   member_added: data.change = the new member's fields (as POST /households/{hh_no}/members);
 *   member_removed / head_of_household: data.change.ben_no names the member (default: the case's person);
 *     the head cannot leave; the old head becomes data.change.previous_head_relationship (other_relative). */
static hf_err act_apply_change(struct act_ctx *a, json_t *data)
{
	struct svc_call *c = a->c;
	const char *cat = a->k->category;
	struct reg_req rq = {.db = c->db, .actor = a->actor, .who = a->who, .fe = c->fe};
	char reason[64];
	snprintf(reason, sizeof(reason), "change request %s", a->k->ref);
	json_t *change = json_object_get(data, "change");
	hf_err err = HF_OK;
	json_t *res = NULL;
	if (strcmp(cat, "death") == 0) {
		if (!a->k->individual_id) {
			svc_say(c, "a death is recorded for an individual (ben_no)");
			return HF_ECONFLICT;
		}
		struct db_val v[] = {DB_I64(a->k->individual_id)};
		struct db_rows *r = NULL;
		err = db_query(c->db, "SELECT id, status, version FROM enrolments WHERE individual_id = ?", v, 1, &r);
		if (err)
			return err;
		size_t changed = 0;
		while (!err && db_rows_next(r)) {
			if (!registry_status_transition_ok(db_rows_str(r, 1), "deceased"))
				continue;
			char id[24];
			hf_strlcpy(id, db_rows_str(r, 0), sizeof(id));
			json_t *body = json_pack("{s:s, s:s, s:I}", "status", "deceased", "reason", reason, "version",
						 (json_int_t)db_rows_i64(r, 2));
			rq.action = "enrolment.update";
			rq.entity = "enrolment";
			err = registry_enrolment_update_in_tx(&rq, id, body, &res);
			json_decref(body);
			json_decref(res);
			res = NULL;
			json_decref(rq.audit_before);
			rq.audit_before = NULL;
			changed++;
		}
		db_rows_free(r);
		if (!err)
			json_object_set_new(a->detail, "applied", json_pack("{s:s, s:I}", "change", "death", "enrolments",
									    (json_int_t)changed));
		return err;
	}
	if (strcmp(cat, "member_added") == 0 || strcmp(cat, "member_removed") == 0 ||
	    strcmp(cat, "head_of_household") == 0) {
		/* The household's shape: data.change holds the new member's fields, or names (ben_no) the member
		 * who leaves / becomes head (default: the individual the case is about). */
		if (!a->k->household_id) {
			svc_say(c, "this change request names no household");
			return HF_ECONFLICT;
		}
		struct db_val v[] = {DB_I64(a->k->individual_id), DB_I64(a->k->household_id)};
		struct db_rows *r = NULL;
		err = db_query(c->db,
			       "SELECT h.hh_no, (SELECT ben_no FROM individuals WHERE id = ?) FROM households h WHERE h.id = ?",
			       v, 2, &r);
		if (err)
			return err;
		if (!db_rows_next(r)) {
			db_rows_free(r);
			return HF_ENOTFOUND;
		}
		char hh_no[BENNO_LEN + 1], member[BENNO_LEN + 1];
		hf_strlcpy(hh_no, db_rows_str(r, 0), sizeof(hh_no));
		hf_strlcpy(member, db_rows_str(r, 1), sizeof(member));
		db_rows_free(r);
		json_t *body = json_is_object(change) ? json_deep_copy(change) : json_object();
		json_object_set_new(body, "reason", json_string(reason));
		if (strcmp(cat, "member_added") != 0 && !json_object_get(body, "ben_no") && member[0])
			json_object_set_new(body, "ben_no", json_string(member));
		rq.action = "household.update";
		rq.entity = "household";
		err = strcmp(cat, "member_added") == 0	  ? registry_household_add_member_in_tx(&rq, hh_no, body, &res)
		      : strcmp(cat, "member_removed") == 0 ? registry_household_remove_member_in_tx(&rq, hh_no, body, &res)
							   : registry_household_change_head_in_tx(&rq, hh_no, body, &res);
		json_decref(body);
		json_decref(res);
		json_decref(rq.audit_before);
		if (err == HF_ECONFLICT || err == HF_EINVAL)
			svc_say(c, "the requested change cannot be applied: %s", rq.msg[0] ? rq.msg : "see the field errors");
		if (!err)
			json_object_set_new(a->detail, "applied", json_pack("{s:s}", "change", cat));
		return err;
	}
	if (!json_is_object(change)) {
		svc_say(c, "the change request holds no change to apply (data.change)");
		return HF_ECONFLICT;
	}
	bool household = strcmp(cat, "address") == 0;
	int64_t row = household ? a->k->household_id : a->k->individual_id;
	if (!row) {
		svc_say(c, "this change request names no %s to change", household ? "household" : "individual");
		return HF_ECONFLICT;
	}
	struct db_val v[] = {DB_I64(row)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       household ? "SELECT hh_no, version FROM households WHERE id = ?"
				 : "SELECT ben_no, version FROM individuals WHERE id = ?",
		       v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	char number[BENNO_LEN + 1];
	hf_strlcpy(number, db_rows_str(r, 0), sizeof(number));
	int64_t version = db_rows_i64(r, 1);
	db_rows_free(r);
	json_t *body = json_deep_copy(change);
	json_object_set_new(body, "reason", json_string(reason));
	json_object_set_new(body, "version", json_integer(version));
	rq.action = household ? "household.update" : "individual.update";
	rq.entity = household ? "household" : "individual";
	err = household ? registry_household_update_in_tx(&rq, number, body, &res)
			: registry_individual_update_in_tx(&rq, number, body, &res);
	json_decref(body);
	json_decref(res);
	json_decref(rq.audit_before);
	if (err == HF_ECONFLICT || err == HF_EINVAL)
		svc_say(c, "the requested change cannot be applied: %s", rq.msg[0] ? rq.msg : "see the field errors");
	if (!err)
		json_object_set_new(a->detail, "applied", json_pack("{s:s}", "change", cat));
	return err;
}

/* application: runs the programme's eligibility rules over the household and the application form. */
static hf_err act_eligibility(struct act_ctx *a, json_t *data, const char *programme);

static hf_err actions_run(struct act_ctx *a, const struct wf_actions *acts, json_t *data, const char *programme)
{
	hf_err err = HF_OK;
	for (size_t i = 0; i < acts->n && !err; i++) {
		const struct wf_action *act = &acts->a[i];
		switch (act->kind) {
		case WF_ACT_SMS:
			err = act_sms(a, act->name);
			break;
		case WF_ACT_ASSIGN_TEAM:
		case WF_ACT_ASSIGN_ROLE:
			err = act_assign(a, act);
			break;
		case WF_ACT_APPLY_CHANGE:
			err = act_apply_change(a, data);
			break;
		case WF_ACT_ELIGIBILITY:
			err = act_eligibility(a, data, programme);
			break;
		case WF_ACT_CLOSE: {
			struct db_val v[] = {DB_I64(a->k->id)};
			err = db_exec(a->c->db, "UPDATE cases SET is_open = 0, sla_due_at = NULL, sla_at_risk_at = NULL"
						" WHERE id = ?",
				      v, 1, NULL);
			a->k->is_open = false;
			break;
		}
		}
	}
	return err;
}

/* Sets the case's state and restarts its SLA clock there (unless it stays where it is). */
static hf_err state_enter(struct db *db, struct case_row *k, const struct wf_state *st, bool restart)
{
	int64_t now_s = hf_now_ms() / 1000;
	int64_t due = restart ? wf_sla_due_s(st, now_s) : k->due_ms / 1000;
	int64_t risk = restart ? wf_sla_at_risk_s(st, now_s) : k->at_risk_ms / 1000;
	struct db_val v[] = {db_str(st->name), DB_I64(restart), DB_I64(due),  DB_I64(due),
			     DB_I64(risk),     DB_I64(risk),    DB_I64(restart), DB_I64(k->id)};
	hf_err err = db_exec(db,
			     "UPDATE cases SET state = ?, state_since = IF(?, UTC_TIMESTAMP(3), state_since),"
			     " sla_due_at = IF(? = 0, NULL, FROM_UNIXTIME(?)), sla_at_risk_at = IF(? = 0, NULL, FROM_UNIXTIME(?)),"
			     " sla_breached = IF(?, 0, sla_breached), version = version + 1, updated_at = UTC_TIMESTAMP(3)"
			     " WHERE id = ?",
			     v, HF_ARRAY_LEN(v), NULL);
	if (!err) {
		hf_strlcpy(k->state, st->name, sizeof(k->state));
		k->due_ms = due * 1000;
		k->at_risk_ms = risk * 1000;
		if (restart)
			k->breached = false;
	}
	return err;
}

/* ------------------------------------------------------------------ lodging a case */

static const char *const CASE_TYPES[] = {"application", "grievance", "change_request", "feedback", NULL};
static const char *const CHANNELS[] = {"ussd", "sms", "kiosk", "staff", "api", NULL};

struct create_tx {
	struct svc_call *c;
	const struct wf_def *d;
	const char *type, *category, *channel, *summary, *payment_ref, *programme;
	json_t *data;
	struct subject s;
	bool has_subject;
	uint8_t dup_key[HF_BIDX_LEN];
	bool use_dup;
	/* out */
	char ref[BENNO_LEN + 1];
	bool linked;
	json_t *detail;
};

static hf_err create_body(struct db *db, void *vctx)
{
	struct create_tx *t = vctx;
	struct svc_call *c = t->c;
	t->linked = false;
	json_decref(t->detail);
	t->detail = json_pack("{s:[]}", "sms");
	/* A repeat of an open grievance (same person, category and payment, within the window) is linked. */
	if (t->use_dup) {
		struct db_val v[] = {DB_BLOB(t->dup_key, HF_BIDX_LEN), DB_I64(wf_duplicate_window_hours(t->d))};
		struct db_rows *r = NULL;
		hf_err err = db_query(db,
				      "SELECT " CASE_COLS " FROM cases c WHERE c.dup_key = ? AND c.is_open = 1 AND c.created_at >"
				      " UTC_TIMESTAMP(3) - INTERVAL ? HOUR ORDER BY c.created_at LIMIT 1 FOR UPDATE",
				      v, 2, &r);
		if (err)
			return err;
		if (db_rows_next(r)) {
			struct case_row k;
			case_row_read(r, &k);
			db_rows_free(r);
			hf_strlcpy(t->ref, k.ref, sizeof(t->ref));
			t->linked = true;
			err = event_add(db, k.id, "linked", NULL, NULL, NULL, c->p->actor, NULL);
			struct act_ctx a = {c, t->d, &k, c->p->actor, &c->p->audit, t->detail};
			if (!err)
				err = act_sms(&a, "grievance_duplicate");
			if (err)
				return err;
			json_t *d = json_pack("{s:s, s:b}", "channel", t->channel, "linked", 1);
			struct audit_event ev = {"case.link", "case", k.ref, "ok", NULL, NULL, d};
			err = audit_append(db, &c->p->audit, &ev);
			json_decref(d);
			return err;
		}
		db_rows_free(r);
	}
	const struct wf_state *st = wf_initial(t->d);
	int64_t id = db_new_id();
	numbers_new(t->ref);
	struct hf_buf sum, dat;
	hf_buf_init(&sum, 16 * 1024);
	hf_buf_init(&dat, 16 * 1024);
	hf_err err = t->summary ? seal_text("cases.summary", id, t->summary, &sum) : HF_OK;
	char *dtext = t->data ? json_dumps(t->data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!err && dtext)
		err = seal_text("cases.data", id, dtext, &dat);
	if (dtext) {
		memset(dtext, 0, strlen(dtext));
		free(dtext);
	}
	int64_t now_s = hf_now_ms() / 1000;
	int64_t due = wf_sla_due_s(st, now_s), risk = wf_sla_at_risk_s(st, now_s);
	bool confidential = wf_category_confidential(t->d, t->category);
	if (!err) {
		struct db_val v[] = {DB_I64(id),
				     db_str(t->ref),
				     db_str(t->type),
				     db_str(t->category),
				     db_str(st->name),
				     DB_I64(due),
				     DB_I64(due),
				     DB_I64(risk),
				     DB_I64(risk),
				     db_str(t->channel),
				     t->s.individual_id ? DB_I64(t->s.individual_id) : DB_NULLV,
				     t->s.household_id ? DB_I64(t->s.household_id) : DB_NULLV,
				     db_str(t->programme),
				     db_str(t->payment_ref),
				     t->s.location_id ? DB_I64(t->s.location_id) : DB_NULLV,
				     DB_I64(confidential),
				     db_blob_or_null(sum.data, sum.len),
				     db_blob_or_null(dat.data, dat.len),
				     t->use_dup ? DB_BLOB(t->dup_key, HF_BIDX_LEN) : DB_NULLV,
				     db_str(c->p->actor),
				     db_str(c->p->actor)};
		err = db_exec(db,
			      "INSERT INTO cases (id, ref, case_type, category, state, state_since, sla_due_at, sla_at_risk_at,"
			      " channel, individual_id, household_id, programme_code, payment_ref, location_id, confidential,"
			      " summary_enc, data_enc, dup_key, created_at, created_by, updated_at, updated_by) VALUES (?, ?,"
			      " ?, ?, ?, UTC_TIMESTAMP(3), IF(? = 0, NULL, FROM_UNIXTIME(?)), IF(? = 0, NULL, FROM_UNIXTIME(?)),"
			      " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?, UTC_TIMESTAMP(3), ?)",
			      v, HF_ARRAY_LEN(v), NULL);
	}
	hf_buf_release(&sum);
	hf_buf_release(&dat);
	if (!err)
		err = event_add(db, id, "created", NULL, NULL, st->name, c->p->actor, NULL);
	if (err)
		return err;
	struct case_row k = {.id = id, .individual_id = t->s.individual_id, .household_id = t->s.household_id,
			     .location_id = t->s.location_id, .confidential = confidential, .is_open = true,
			     .due_ms = due * 1000, .at_risk_ms = risk * 1000};
	hf_strlcpy(k.ref, t->ref, sizeof(k.ref));
	hf_strlcpy(k.type, t->type, sizeof(k.type));
	hf_strlcpy(k.category, t->category, sizeof(k.category));
	hf_strlcpy(k.state, st->name, sizeof(k.state));
	struct act_ctx a = {c, t->d, &k, c->p->actor, &c->p->audit, t->detail};
	err = actions_run(&a, wf_initial_actions(t->d), t->data, t->programme);
	if (err)
		return err;
	json_object_set_new(t->detail, "channel", json_string(t->channel));
	json_object_set_new(t->detail, "category", json_string(confidential ? "confidential" : t->category));
	struct audit_event ev = {"case.create", "case", t->ref, "ok", NULL, NULL, t->detail};
	return audit_append(db, &c->p->audit, &ev);
}

hf_err cases_create(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"type",	"category", "ben_no",	   "hh_no",	"channel",
					      "summary", "data",	    "payment_ref", "programme", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct create_tx t = {.c = c};
	(void)hf_json_get_enum(body, "", "type", true, CASE_TYPES, c->fe, &t.type);
	(void)hf_json_get_enum(body, "", "channel", false, CHANNELS, c->fe, &t.channel);
	const char *ben_no = NULL, *hh_no = NULL;
	(void)hf_json_get_str(body, "", "ben_no", false, BENNO_LEN, BENNO_LEN, c->fe, &ben_no);
	(void)hf_json_get_str(body, "", "hh_no", false, BENNO_LEN, BENNO_LEN, c->fe, &hh_no);
	(void)hf_json_get_str(body, "", "category", false, 1, 32, c->fe, &t.category);
	(void)hf_json_get_str(body, "", "summary", false, 0, TEXT_MAX, c->fe, &t.summary);
	(void)hf_json_get_str(body, "", "payment_ref", false, 1, 64, c->fe, &t.payment_ref);
	(void)hf_json_get_str(body, "", "programme", false, 2, 32, c->fe, &t.programme);
	t.data = json_object_get(body, "data");
	if (t.data && !json_is_object(t.data))
		hf_ferrs_add(c->fe, "data", "wrong_type", "must be an object");
	if (t.data) {
		char *dt = json_dumps(t.data, JSON_COMPACT);
		if (dt && strlen(dt) > DATA_MAX)
			hf_ferrs_add(c->fe, "data", "too_long", "at most %d bytes", DATA_MAX);
		free(dt);
	}
	if (ben_no && hh_no)
		hf_ferrs_add(c->fe, "hh_no", "conflict", "name the individual (ben_no) or the household (hh_no), not both");
	/* The beneficiary's own channels speak for themselves: the gateway and kiosks lodge for a known person,
	 * on their channel. */
	if (c->p->kind == PRINCIPAL_KIOSK)
		t.channel = "kiosk";
	else if (!t.channel)
		t.channel = c->p->kind == PRINCIPAL_STAFF ? "staff" : "api";
	/* Anonymous grievances come by USSD or SMS from phones the programme does not know, or from a person
	 * without a beneficiary number at a kiosk; everything else from the channels names the beneficiary. */
	bool anonymous_ok = (c->p->kind == PRINCIPAL_SERVICE || c->p->kind == PRINCIPAL_KIOSK) && t.type &&
			    strcmp(t.type, "grievance") == 0;
	if (c->p->kind != PRINCIPAL_STAFF && !ben_no && !anonymous_ok)
		hf_ferrs_add(c->fe, "ben_no", "required", "the gateway and kiosks lodge cases for a beneficiary (ben_no)");
	/* The channels lodge grievances and feedback; the gateway also a beneficiary's new phone number. */
	bool phone_change = c->p->kind == PRINCIPAL_SERVICE && t.type && strcmp(t.type, "change_request") == 0 &&
			    t.category && strcmp(t.category, "phone") == 0;
	if (c->p->kind != PRINCIPAL_STAFF && t.type && strcmp(t.type, "grievance") != 0 && strcmp(t.type, "feedback") != 0 &&
	    !phone_change)
		hf_ferrs_add(c->fe, "type", "not_allowed",
			     "the gateway and kiosks lodge grievances and feedback (and the gateway a new phone number)");
	if (t.type) {
		t.d = wf_find(C.wf, t.type);
		if (!t.d) {
			hf_ferrs_add(c->fe, "type", "not_offered", "this deployment has no workflow for %s cases", t.type);
		} else if (wf_category_count(t.d) > 0) {
			if (!t.category)
				hf_ferrs_add(c->fe, "category", "required", "required for %s cases", t.type);
			else if (!wf_category_allowed(t.d, t.category))
				hf_ferrs_add(c->fe, "category", "unknown", "not a category of %s cases", t.type);
		} else if (t.category) {
			hf_ferrs_add(c->fe, "category", "not_allowed", "%s cases have no categories", t.type);
		}
	}
	if (t.type && strcmp(t.type, "application") == 0 && !t.programme)
		hf_ferrs_add(c->fe, "programme", "required", "an application is for a programme");
	if (t.type && strcmp(t.type, "grievance") != 0 && !ben_no && !hh_no)
		hf_ferrs_add(c->fe, "ben_no", "required", "only grievances may be anonymous");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (!t.category)
		t.category = "general";
	if (ben_no || hh_no) {
		hf_err err = subject_find(c->db, ben_no, hh_no, &t.s);
		if (err == HF_ENOTFOUND) {
			hf_ferrs_add(c->fe, ben_no ? "ben_no" : "hh_no", "not_found", "no such beneficiary or household");
			return HF_EINVAL;
		}
		if (err)
			return err;
		t.has_subject = true;
	}
	if (t.programme) {
		struct db_val v[] = {db_str(t.programme)};
		struct db_rows *r = NULL;
		hf_err err = db_query(c->db, "SELECT 1 FROM programmes WHERE code = ?", v, 1, &r);
		if (err)
			return err;
		bool found = db_rows_next(r);
		db_rows_free(r);
		if (!found) {
			hf_ferrs_add(c->fe, "programme", "not_found", "no such programme");
			return HF_EINVAL;
		}
	}
	if (wf_duplicate_window_hours(t.d) > 0 && t.has_subject) {
		char key[200];
		int n = snprintf(key, sizeof(key), "%lld|%lld|%s|%s", (long long)t.s.individual_id,
				 (long long)t.s.household_id, t.category, t.payment_ref ? t.payment_ref : "");
		hf_blind_index(g_app.keys, "case_dup", (struct hf_str){key, (size_t)n}, t.dup_key);
		t.use_dup = true;
	}
	hf_err err = db_tx(c->db, create_body, &t);
	for (int i = 0; i < 2 && err == HF_ECONFLICT && (!strcmp(db_conflict_key(c->db), "uq_cases_ref") ||
							 !strcmp(db_conflict_key(c->db), "PRIMARY")); i++)
		err = db_tx(c->db, create_body, &t); /* a random reference or id drawn twice: draw again */
	if (!err)
		err = case_read_json(c, t.ref, false, out);
	if (!err) {
		json_object_set_new(*out, "linked", json_boolean(t.linked));
		json_object_set_new(*out, "actions", json_incref(t.detail));
		if (t.linked) {
			c->status = 200;
			json_object_set_new(*out, "message",
					    json_string("an open case already covers this complaint; its reference is given"));
		}
	}
	json_decref(t.detail);
	return err;
}

hf_err cases_get(struct svc_call *c, const char *ref, const char *owner_ben_no, json_t **out)
{
	struct case_row k;
	hf_err err = case_load(c->db, ref, false, &k);
	if (!err && c->p->kind != PRINCIPAL_STAFF) {
		/* The beneficiary's channels see only the beneficiary's own cases; anything else is "not found". */
		char own[BENNO_LEN + 1] = "";
		if (k.individual_id) {
			struct db_val v[] = {DB_I64(k.individual_id)};
			struct db_rows *r = NULL;
			err = db_query(c->db, "SELECT ben_no FROM individuals WHERE id = ?", v, 1, &r);
			if (!err && db_rows_next(r))
				hf_strlcpy(own, db_rows_str(r, 0), sizeof(own));
			db_rows_free(r);
		}
		if (!err && (!owner_ben_no || !own[0] || strcmp(own, owner_ben_no) != 0))
			err = HF_ENOTFOUND;
	}
	if (err == HF_ENOTFOUND)
		svc_say(c, "no case with this reference%s", c->p->kind == PRINCIPAL_STAFF ? "" : " for this beneficiary");
	if (err)
		return err;
	err = case_read_json(c, ref, c->p->kind == PRINCIPAL_STAFF, out);
	if (!err && c->p->kind != PRINCIPAL_STAFF) {
		/* What a beneficiary is told: reference, type, state and dates; no staff names or notes. */
		static const char *const keep[] = {"ref", "type", "category", "state", "open", "sla", "created_at",
						   "updated_at", NULL};
		json_t *o = json_object();
		for (size_t i = 0; keep[i]; i++)
			json_object_set(o, keep[i], json_object_get(*out, keep[i]));
		json_decref(*out);
		*out = o;
	}
	return err;
}

/* ------------------------------------------------------------------ transitions and maker-checker */

struct fields {
	const char *note, *category, *decision, *reason, *assignee;
};

static void fields_read(json_t *body, struct hf_ferrs *fe, struct fields *f)
{
	memset(f, 0, sizeof(*f));
	(void)hf_json_get_str(body, "", "note", false, 1, TEXT_MAX, fe, &f->note);
	(void)hf_json_get_str(body, "", "category", false, 1, 32, fe, &f->category);
	(void)hf_json_get_str(body, "", "decision", false, 1, 64, fe, &f->decision);
	(void)hf_json_get_str(body, "", "reason", false, 1, 500, fe, &f->reason);
	(void)hf_json_get_str(body, "", "assignee", false, 3, 64, fe, &f->assignee);
}

struct move_tx {
	struct svc_call *c;
	const char *ref;
	const char *transition;
	json_t *body; /* the request's fields (the maker's, when a checker approves) */
	int64_t version;
	bool approving; /* the checker's approval of a pending request */
	bool approve;
	const char *check_note;
	/* out */
	bool pending;
	json_t *detail;
};

static hf_err move_apply(struct db *db, struct move_tx *t, struct case_row *k, const struct wf_def *d,
			 const struct wf_transition *tr, const struct fields *f, const char *actor,
			 const struct audit_actor *who)
{
	struct svc_call *c = t->c;
	const struct wf_state *from = wf_state_find(d, k->state);
	hf_err err = HF_OK;
	if (f->category) {
		struct db_val v[] = {db_str(f->category), DB_I64(wf_category_confidential(d, f->category)), DB_I64(k->id)};
		err = db_exec(db, "UPDATE cases SET category = ?, confidential = ? WHERE id = ?", v, 3, NULL);
		hf_strlcpy(k->category, f->category, sizeof(k->category));
		k->confidential = wf_category_confidential(d, f->category);
	}
	if (!err && f->assignee) {
		struct db_val v[] = {db_str(f->assignee), DB_I64(k->id)};
		err = db_exec(db, "UPDATE cases SET assigned_to = ? WHERE id = ?", v, 2, NULL);
	}
	/* The history's note: "decision: X; reason: Y; <note>", with only the parts given. */
	char note[TEXT_MAX + 600] = "";
	const char *parts[][2] = {{"decision: ", f->decision}, {"reason: ", f->reason}, {"", f->note}};
	size_t used = 0;
	for (size_t i = 0; i < HF_ARRAY_LEN(parts); i++) {
		if (!parts[i][1])
			continue;
		int n = snprintf(note + used, sizeof(note) - used, "%s%s%s", used ? "; " : "", parts[i][0], parts[i][1]);
		if (n < 0 || (size_t)n >= sizeof(note) - used)
			break;
		used += (size_t)n;
	}
	if (!err)
		err = state_enter(db, k, tr->to, tr->to != from);
	if (!err)
		err = event_add(db, k->id, "transition", tr->name, from->name, tr->to->name, actor, note);
	if (err)
		return err;
	/* The case's data (requested change, application form) for the actions. */
	json_t *data = NULL;
	char programme[33] = "";
	{
		struct db_val v[] = {DB_I64(k->id)};
		struct db_rows *r = NULL;
		err = db_query(db, "SELECT data_enc, COALESCE(programme_code, '') FROM cases WHERE id = ?", v, 1, &r);
		if (err)
			return err;
		if (db_rows_next(r)) {
			data = open_text("cases.data", k->id, r, 0, true);
			hf_strlcpy(programme, db_rows_str(r, 1), sizeof(programme));
		}
		db_rows_free(r);
	}
	struct act_ctx a = {c, d, k, actor, who, t->detail};
	err = actions_run(&a, &tr->actions, data, programme[0] ? programme : NULL);
	json_decref(data);
	if (err)
		return err;
	json_object_set_new(t->detail, "transition", json_string(tr->name));
	json_object_set_new(t->detail, "from", json_string(from->name));
	json_object_set_new(t->detail, "to", json_string(tr->to->name));
	struct audit_event ev = {"case.transition", "case", k->ref, "ok", NULL, NULL, t->detail};
	return audit_append(db, who, &ev);
}

static hf_err move_body(struct db *db, void *vctx)
{
	struct move_tx *t = vctx;
	struct svc_call *c = t->c;
	t->pending = false;
	json_decref(t->detail);
	t->detail = json_pack("{s:[]}", "sms");
	struct case_row k;
	const struct wf_def *d = NULL;
	hf_err err = case_lock_for(db, c, t->ref, &k, &d);
	if (err)
		return err;
	int role = role_index(c->p);
	if (t->approving) {
		struct db_val v[] = {DB_I64(k.id)};
		struct db_rows *r = NULL;
		err = db_query(db, "SELECT id, transition, maker, fields_enc FROM case_approvals WHERE pending_case = ? FOR UPDATE",
			       v, 1, &r);
		if (err)
			return err;
		if (!db_rows_next(r)) {
			db_rows_free(r);
			svc_say(c, "nothing is waiting for approval on this case");
			return HF_ECONFLICT;
		}
		int64_t aid = db_rows_i64(r, 0);
		char tname[WF_NAME_MAX + 1], maker[73];
		hf_strlcpy(tname, db_rows_str(r, 1), sizeof(tname));
		hf_strlcpy(maker, db_rows_str(r, 2), sizeof(maker));
		json_t *fields = open_text("case_approvals.fields", aid, r, 3, true);
		db_rows_free(r);
		const struct wf_transition *tr = wf_transition_find(d, tname);
		if (!tr || !wf_transition_allows(tr, role)) {
			json_decref(fields);
			svc_say(c, "your role may not approve %s", tname);
			return HF_EFORBIDDEN;
		}
		if (strcmp(maker, c->p->actor) == 0) {
			json_decref(fields);
			svc_say(c, "a second, different person must approve what you requested");
			return HF_EFORBIDDEN;
		}
		struct db_val u[] = {db_str(t->approve ? "approved" : "rejected"), db_str(c->p->actor), DB_I64(aid)};
		err = db_exec(db,
			      "UPDATE case_approvals SET status = ?, checker = ?, checked_at = UTC_TIMESTAMP(3), pending_case = NULL"
			      " WHERE id = ?",
			      u, 3, NULL);
		if (!err)
			err = event_add(db, k.id, t->approve ? "approved" : "rejected", tname, k.state, NULL, c->p->actor,
					t->check_note);
		if (!err && t->approve) {
			struct fields f;
			struct hf_ferrs scratch;
			hf_ferrs_init(&scratch);
			fields_read(json_is_object(fields) ? fields : NULL, &scratch, &f);
			/* The move is the maker's, approved by the checker: both are in the history. */
			err = move_apply(db, t, &k, d, tr, &f, c->p->actor, &c->p->audit);
			hf_ferrs_release(&scratch);
		} else if (!err) {
			json_object_set_new(t->detail, "rejected", json_string(tname));
			struct audit_event ev = {"case.approval_rejected", "case", k.ref, "ok", NULL, NULL, t->detail};
			err = audit_append(db, &c->p->audit, &ev);
		}
		json_decref(fields);
		return err;
	}
	if (t->version && t->version != k.version) {
		svc_say(c, "the case was changed by someone else; reload it and try again");
		return HF_ECONFLICT;
	}
	if (!k.is_open) {
		svc_say(c, "the case is closed (%s)", k.state);
		return HF_ECONFLICT;
	}
	const struct wf_transition *tr = wf_transition_find(d, t->transition);
	const struct wf_state *st = wf_state_find(d, k.state);
	if (!tr) {
		hf_ferrs_add(c->fe, "transition", "unknown", "%s cases have no transition %s", k.type, t->transition);
		return HF_EINVAL;
	}
	if (!st || !wf_transition_starts_at(tr, st)) {
		svc_say(c, "%s is not possible from state %s", tr->name, k.state);
		return HF_ECONFLICT;
	}
	if (!wf_transition_allows(tr, role)) {
		svc_say(c, "the role %s may not %s", role_of(c->p), tr->name);
		return HF_EFORBIDDEN;
	}
	struct fields f;
	fields_read(t->body, c->fe, &f);
	static const enum wf_field all[] = {WF_FIELD_NOTE, WF_FIELD_CATEGORY, WF_FIELD_DECISION, WF_FIELD_REASON,
					    WF_FIELD_ASSIGNEE};
	const char *given[] = {f.note, f.category, f.decision, f.reason, f.assignee};
	for (size_t i = 0; i < HF_ARRAY_LEN(all); i++)
		if (wf_transition_requires(tr, all[i]) && !given[i])
			hf_ferrs_add(c->fe, wf_field_name(all[i]), "required", "%s needs a %s", tr->name, wf_field_name(all[i]));
	if (f.category && !wf_category_allowed(d, f.category))
		hf_ferrs_add(c->fe, "category", "unknown", "not a category of %s cases", k.type);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (tr->maker_checker) {
		int64_t aid = db_new_id();
		struct hf_buf sealed;
		hf_buf_init(&sealed, 16 * 1024);
		char *ftext = json_dumps(t->body, JSON_COMPACT | JSON_SORT_KEYS);
		err = seal_text("case_approvals.fields", aid, ftext, &sealed);
		memset(ftext, 0, strlen(ftext));
		free(ftext);
		if (!err) {
			struct db_val v[] = {DB_I64(aid), DB_I64(k.id), DB_I64(k.id), db_str(tr->name),
					     DB_BLOB(sealed.data, sealed.len), db_str(c->p->actor)};
			err = db_exec(db,
				      "INSERT INTO case_approvals (id, case_id, pending_case, transition, fields_enc, maker, made_at)"
				      " VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3))",
				      v, HF_ARRAY_LEN(v), NULL);
		}
		hf_buf_release(&sealed);
		if (err == HF_ECONFLICT) {
			svc_say(c, "another request on this case is already waiting for approval");
			return err;
		}
		if (!err)
			err = event_add(db, k.id, "approval_requested", tr->name, k.state, tr->to->name, c->p->actor, f.note);
		if (err)
			return err;
		t->pending = true;
		json_object_set_new(t->detail, "requested", json_string(tr->name));
		struct audit_event ev = {"case.approval_requested", "case", k.ref, "ok", NULL, NULL, t->detail};
		return audit_append(db, &c->p->audit, &ev);
	}
	return move_apply(db, t, &k, d, tr, &f, c->p->actor, &c->p->audit);
}

/* Runs a transition or an approval and answers the case as it now is, with what the actions did. */
static hf_err move_run(struct svc_call *c, struct move_tx *t, json_t **out)
{
	if (!numbers_valid(t->ref)) {
		svc_say(c, "no case with this reference");
		return HF_ENOTFOUND;
	}
	hf_err err = db_tx(c->db, move_body, t);
	if (err == HF_ENOTFOUND && !c->msg[0])
		svc_say(c, "no case with this reference");
	if (err == HF_EFORBIDDEN) {
		/* The workflow refused this person (wrong role, approving their own request): audited like any
		 * refusal at the door, with the reason in our own words. */
		json_t *d = json_pack("{s:s, s:s}", "reason", c->msg, "transition",
				      t->approving ? "(approval)" : t->transition ? t->transition : "");
		struct audit_event ev = {t->approving ? "case.approve" : "case.transition", "case", t->ref, "denied", NULL,
					 NULL, d};
		hf_err e = audit_record(c->db, &c->p->audit, &ev);
		json_decref(d);
		if (e)
			hf_log(HF_LOG_ERROR, "core.cases", "msg=\"cannot audit a refused transition\" err=%s", hf_err_name(e));
	}
	if (!err) {
		err = case_read_json(c, t->ref, true, out);
		if (!err) {
			json_object_set_new(*out, "actions", json_incref(t->detail));
			if (t->pending)
				c->status = 202;
		}
	}
	json_decref(t->detail);
	return err;
}

hf_err cases_transition(struct svc_call *c, const char *ref, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"transition", "note", "category", "decision", "reason", "assignee",
					      "version", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct move_tx t = {.c = c, .ref = ref, .body = body};
	(void)hf_json_get_str(body, "", "transition", true, 1, WF_NAME_MAX, c->fe, &t.transition);
	(void)hf_json_get_int(body, "", "version", false, 1, INT32_MAX, c->fe, &t.version);
	return hf_ferrs_any(c->fe) ? HF_EINVAL : move_run(c, &t, out);
}

hf_err cases_approve(struct svc_call *c, const char *ref, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"approve", "note", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct move_tx t = {.c = c, .ref = ref, .approving = true};
	(void)hf_json_get_bool(body, "", "approve", true, c->fe, &t.approve);
	(void)hf_json_get_str(body, "", "note", false, 1, TEXT_MAX, c->fe, &t.check_note);
	return hf_ferrs_any(c->fe) ? HF_EINVAL : move_run(c, &t, out);
}

struct note_tx {
	struct svc_call *c;
	const char *ref, *text;
};

static hf_err note_body(struct db *db, void *vctx)
{
	struct note_tx *t = vctx;
	struct case_row k;
	const struct wf_def *d = NULL;
	hf_err err = case_lock_for(db, t->c, t->ref, &k, &d);
	if (err)
		return err;
	err = event_add(db, k.id, "note", NULL, NULL, NULL, t->c->p->actor, t->text);
	struct db_val v[] = {db_str(t->c->p->actor), DB_I64(k.id)};
	if (!err)
		err = db_exec(db, "UPDATE cases SET updated_at = UTC_TIMESTAMP(3), updated_by = ?, version = version + 1"
				  " WHERE id = ?",
			      v, 2, NULL);
	if (err)
		return err;
	struct audit_event ev = {"case.note", "case", k.ref, "ok", NULL, NULL, NULL};
	return audit_append(db, &t->c->p->audit, &ev);
}

hf_err cases_note(struct svc_call *c, const char *ref, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"text", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct note_tx t = {c, ref, NULL};
	(void)hf_json_get_str(body, "", "text", true, 1, TEXT_MAX, c->fe, &t.text);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = numbers_valid(ref) ? db_tx(c->db, note_body, &t) : HF_ENOTFOUND;
	if (err == HF_ENOTFOUND)
		svc_say(c, "no case with this reference");
	if (!err)
		err = case_read_json(c, ref, true, out);
	return err;
}

/* ------------------------------------------------------------------ eligibility */

static hf_err act_eligibility(struct act_ctx *a, json_t *data, const char *programme)
{
	if (!programme || !elig_has(C.elig, programme)) {
		json_object_set_new(a->detail, "eligibility", json_string("no rules for this programme: manual decision"));
		return HF_OK;
	}
	struct elig_vars *v = elig_vars_new();
	hf_err err = HF_OK;
	/* What the registry knows of the household, under the names docs/eligibility.md lists. */
	if (a->k->household_id) {
		struct db_val q[] = {DB_I64(a->k->household_id)};
		struct db_rows *r = NULL;
		err = db_query(a->c->db,
			       "SELECT COUNT(*), SUM(disability <> 'none'), MAX(IF(head_marker = 1, YEAR(UTC_TIMESTAMP()) -"
			       " birth_year, NULL)), MAX(IF(head_marker = 1, sex, NULL)), SUM(YEAR(UTC_TIMESTAMP()) - birth_year"
			       " < 18), SUM(YEAR(UTC_TIMESTAMP()) - birth_year >= 60) FROM individuals WHERE household_id = ?",
			       q, 1, &r);
		if (!err && db_rows_next(r)) {
			static const char *const num_names[] = {"household_size", "disabled_members", "age_of_head"};
			for (size_t i = 0; i < 3 && !err; i++)
				if (!db_rows_null(r, i))
					err = elig_vars_num(v, num_names[i], strtod(db_rows_str(r, i), NULL));
			if (!err && !db_rows_null(r, 3))
				err = elig_vars_str(v, "sex_of_head", db_rows_str(r, 3));
			if (!err && !db_rows_null(r, 4))
				err = elig_vars_num(v, "children", strtod(db_rows_str(r, 4), NULL));
			if (!err && !db_rows_null(r, 5))
				err = elig_vars_num(v, "older_members", strtod(db_rows_str(r, 5), NULL));
		}
		db_rows_free(r);
	}
	/* The application form: its numbers, yes/no answers and words, by name; the registry's values win. */
	json_t *form = json_object_get(data, "form");
	const char *key;
	json_t *val;
	json_object_foreach(form, key, val) {
		if (err)
			break;
		hf_err e = HF_OK;
		if (json_is_number(val))
			e = elig_vars_num(v, key, json_number_value(val));
		else if (json_is_boolean(val))
			e = elig_vars_num(v, key, json_is_true(val) ? 1 : 0);
		else if (json_is_string(val))
			e = elig_vars_str(v, key, json_string_value(val));
		(void)e; /* a bad or repeated name, a text too long, too many answers: that answer is left out, and a
			  * rule that needs it says so ("missing") instead of deciding */
	}
	enum elig_outcome outcome = ELIG_NEEDS_REVIEW;
	json_t *explain = NULL;
	if (!err)
		err = elig_evaluate(C.elig, programme, v, &outcome, &explain);
	elig_vars_free(v);
	if (err)
		return err;
	char *text = json_dumps(explain, JSON_COMPACT);
	struct db_val u[] = {db_str(text), DB_I64(a->k->id)};
	err = db_exec(a->c->db, "UPDATE cases SET eligibility = ? WHERE id = ?", u, 2, NULL);
	free(text);
	json_decref(explain);
	if (!err)
		json_object_set_new(a->detail, "eligibility", json_string(elig_outcome_name(outcome)));
	return err;
}

/* ------------------------------------------------------------------ queues */

/* The SLA state, from the stored moments: the same rule as a case's own "sla" (sla_state). */
#define SLA_EXPR                                                                                               \
	"IF(c.sla_due_at IS NULL, 'none', IF(c.sla_breached = 1 OR c.sla_due_at <= UTC_TIMESTAMP(3), 'breached',"  \
	" IF(c.sla_at_risk_at <= UTC_TIMESTAMP(3), 'at_risk', 'on_track')))"

hf_err cases_list(struct svc_call *c, const struct cases_query *q, json_t **out)
{
	static const char *const queues[] = {"mine", "team", "all", NULL};
	static const char *const slas[] = {"on_track", "at_risk", "breached", "none", NULL};
	const char *queue = q->queue ? q->queue : "all";
	bool ok = true;
	for (size_t i = 0; ok && queues[i]; i++)
		ok = strcmp(queue, queues[i]) != 0;
	if (ok)
		hf_ferrs_add(c->fe, "queue", "unknown", "mine, team or all");
	bool sla_ok = !q->sla;
	for (size_t i = 0; q->sla && slas[i]; i++)
		sla_ok = sla_ok || strcmp(q->sla, slas[i]) == 0;
	if (!sla_ok)
		hf_ferrs_add(c->fe, "sla", "unknown", "on_track, at_risk, breached or none");
	bool type_ok = !q->type;
	for (size_t i = 0; q->type && CASE_TYPES[i]; i++)
		type_ok = type_ok || strcmp(q->type, CASE_TYPES[i]) == 0;
	if (!type_ok)
		hf_ferrs_add(c->fe, "type", "unknown", "application, grievance, change_request or feedback");
	int64_t after = 0;
	if (q->after && hf_parse_i64(q->after, 0, INT64_MAX, &after))
		hf_ferrs_add(c->fe, "after", "bad_value", "a cursor from a previous page");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	struct hf_buf where;
	hf_buf_init(&where, 4096);
	struct db_val v[12];
	size_t nv = 0;
	HF_ASSERT(hf_buf_append_str(&where, " WHERE c.is_open = 1") == HF_OK);
	if (strcmp(queue, "mine") == 0) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.assigned_to = ?") == HF_OK);
		v[nv++] = db_str(c->p->name);
	} else if (strcmp(queue, "team") == 0) {
		/* The caller's role's pool: cases assigned to the role and to nobody in particular. */
		HF_ASSERT(hf_buf_append_str(&where, " AND c.assigned_role = ? AND c.assigned_to IS NULL") == HF_OK);
		v[nv++] = db_str(role_of(c->p));
	}
	if (q->type) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.case_type = ?") == HF_OK);
		v[nv++] = db_str(q->type);
	}
	if (q->state) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.state = ?") == HF_OK);
		v[nv++] = db_str(q->state);
	}
	if (q->location) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.location_id IN (SELECT id FROM locations WHERE path = ? OR path"
						    " LIKE CONCAT(?, '/%'))") == HF_OK);
		v[nv++] = db_str(q->location);
		v[nv++] = db_str(q->location);
	}
	if (q->older_than_days > 0) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.created_at < UTC_TIMESTAMP(3) - INTERVAL ? DAY") == HF_OK);
		v[nv++] = DB_I64(q->older_than_days);
	}
	/* Counts of the whole selection, per SLA state. */
	struct hf_buf sql;
	hf_buf_init(&sql, 8192);
	/* SQL text only ever from constants here: every value is a bound parameter in v. */
	hf_err err = hf_buf_append_str(&sql, "SELECT " SLA_EXPR ", COUNT(*) FROM cases c");
	if (!err)
		err = hf_buf_append_str(&sql, hf_buf_cstr(&where));
	if (!err)
		err = hf_buf_append_str(&sql, " GROUP BY 1");
	struct db_rows *r = NULL;
	if (!err)
		err = db_query(c->db, hf_buf_cstr(&sql), v, nv, &r);
	json_t *counts = json_pack("{s:i, s:i, s:i, s:i, s:i}", "total", 0, "on_track", 0, "at_risk", 0, "breached", 0,
				   "none", 0);
	if (!err) {
		json_int_t total = 0;
		while (db_rows_next(r)) {
			json_int_t n = db_rows_i64(r, 1);
			json_object_set_new(counts, db_rows_str(r, 0), json_integer(n));
			total += n;
		}
		json_object_set_new(counts, "total", json_integer(total));
		db_rows_free(r);
	}
	if (q->sla) {
		err = err ? err : hf_buf_append_str(&where, " AND " SLA_EXPR " = ?");
		v[nv++] = db_str(q->sla);
	}
	if (after) {
		err = err ? err : hf_buf_append_str(&where, " AND c.id > ?");
		v[nv++] = DB_I64(after);
	}
	hf_buf_reset(&sql);
	/* The column list holds DATE_FORMAT patterns: appended as it is, not as a format. */
	if (!err)
		err = hf_buf_append_str(&sql, "SELECT " CASE_FULL_COLS CASE_FULL_FROM);
	if (!err)
		err = hf_buf_append_str(&sql, hf_buf_cstr(&where));
	if (!err)
		err = hf_buf_appendf(&sql, " ORDER BY c.id LIMIT %d", q->limit);
	if (!err)
		err = db_query(c->db, hf_buf_cstr(&sql), v, nv, &r);
	hf_buf_release(&sql);
	hf_buf_release(&where);
	if (err) {
		json_decref(counts);
		return err;
	}
	json_t *items = json_array();
	char next[24] = "";
	int64_t now = hf_now_ms();
	while (db_rows_next(r)) {
		struct case_row k;
		case_row_read(r, &k);
		json_t *o = case_json(c, r, &k, now);
		json_object_del(o, "data"); /* listings carry no forms: open the case for them */
		json_array_append_new(items, o);
		snprintf(next, sizeof(next), "%lld", (long long)k.id);
	}
	db_rows_free(r);
	*out = json_pack("{s:o, s:o, s:i, s:s?}", "items", items, "counts", counts, "limit", q->limit, "next",
			 json_array_size(items) >= (size_t)q->limit ? next : NULL);
	return HF_OK;
}

/* ------------------------------------------------------------------ the dashboard */

/* Runs one grouped count over the selection and hands each row to add(). */
static hf_err dash_query(struct svc_call *c, const char *select, const char *where, const char *group,
			 const struct db_val *v, size_t nv, struct db_rows **r)
{
	struct hf_buf sql;
	hf_buf_init(&sql, 4096);
	/* SQL text from constants only; values are bound. */
	hf_err err = hf_buf_append_str(&sql, select);
	if (!err)
		err = hf_buf_append_str(&sql, " FROM cases c LEFT JOIN locations l ON l.id = c.location_id");
	if (!err)
		err = hf_buf_append_str(&sql, where);
	if (!err)
		err = hf_buf_append_str(&sql, group);
	if (!err)
		err = db_query(c->db, hf_buf_cstr(&sql), v, nv, r);
	hf_buf_release(&sql);
	return err;
}

static void dash_add(json_t *obj, const char *key, const char *sub, json_int_t n)
{
	json_t *o = json_object_get(obj, key);
	if (!o) {
		o = json_object();
		json_object_set_new(obj, key, o);
	}
	json_t *old = json_object_get(o, sub);
	json_object_set_new(o, sub, json_integer((old ? json_integer_value(old) : 0) + n));
}

hf_err cases_dashboard(struct svc_call *c, const char *type, const char *location, json_t **out)
{
	if (type && !wf_find(C.wf, type)) {
		hf_ferrs_add(c->fe, "type", "unknown", "no such case type");
		return HF_EINVAL;
	}
	struct hf_buf where;
	hf_buf_init(&where, 1024);
	struct db_val v[3];
	size_t nv = 0;
	HF_ASSERT(hf_buf_append_str(&where, " WHERE 1 = 1") == HF_OK);
	if (type) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.case_type = ?") == HF_OK);
		v[nv++] = db_str(type);
	}
	if (location) {
		HF_ASSERT(hf_buf_append_str(&where, " AND c.location_id IN (SELECT id FROM locations WHERE path = ? OR path"
						    " LIKE CONCAT(?, '/%'))") == HF_OK);
		v[nv++] = db_str(location);
		v[nv++] = db_str(location);
	}
	json_t *open = json_object(), *by_state = json_object(), *by_category = json_object(), *by_district = json_object();
	json_t *ages = json_pack("{s:i, s:i, s:i, s:i}", "under_1_day", 0, "1_to_7_days", 0, "7_to_30_days", 0,
				 "over_30_days", 0);
	json_t *flow = json_object();
	struct db_rows *r = NULL;
	/* Open cases per type and SLA state. */
	hf_err err = dash_query(c, "SELECT c.case_type, " SLA_EXPR ", COUNT(*)", hf_buf_cstr(&where),
				" AND c.is_open = 1 GROUP BY 1, 2", v, nv, &r);
	while (!err && db_rows_next(r))
		dash_add(open, db_rows_str(r, 0), db_rows_str(r, 1), db_rows_i64(r, 2));
	db_rows_free(r);
	r = NULL;
	/* Open cases per type and state. */
	if (!err)
		err = dash_query(c, "SELECT c.case_type, c.state, COUNT(*)", hf_buf_cstr(&where),
				 " AND c.is_open = 1 GROUP BY 1, 2", v, nv, &r);
	while (!err && db_rows_next(r))
		dash_add(by_state, db_rows_str(r, 0), db_rows_str(r, 1), db_rows_i64(r, 2));
	db_rows_free(r);
	r = NULL;
	/* Open cases per type and category: a confidential category is named only to those who may see it. */
	if (!err)
		err = dash_query(c, "SELECT c.case_type, c.category, c.confidential, COUNT(*)", hf_buf_cstr(&where),
				 " AND c.is_open = 1 GROUP BY 1, 2, 3", v, nv, &r);
	while (!err && db_rows_next(r)) {
		const struct wf_def *d = wf_find(C.wf, db_rows_str(r, 0));
		bool see = db_rows_i64(r, 2) == 0 ||
			   (d && wf_category_visible_to(d, db_rows_str(r, 1), role_index(c->p)));
		dash_add(by_category, db_rows_str(r, 0), see ? db_rows_str(r, 1) : "confidential", db_rows_i64(r, 3));
	}
	db_rows_free(r);
	r = NULL;
	/* Open cases per district (Region/District), the 50 busiest. */
	if (!err)
		err = dash_query(c,
				 "SELECT SUBSTRING_INDEX(COALESCE(l.path, '(none)'), '/', 2), COUNT(*)", hf_buf_cstr(&where),
				 " AND c.is_open = 1 GROUP BY 1 ORDER BY 2 DESC LIMIT 50", v, nv, &r);
	while (!err && db_rows_next(r))
		dash_add(by_district, db_rows_str(r, 0), "open", db_rows_i64(r, 1));
	db_rows_free(r);
	r = NULL;
	/* How old the open cases are. */
	if (!err)
		err = dash_query(c,
				 "SELECT CASE WHEN c.created_at > UTC_TIMESTAMP(3) - INTERVAL 1 DAY THEN 'under_1_day'"
				 " WHEN c.created_at > UTC_TIMESTAMP(3) - INTERVAL 7 DAY THEN '1_to_7_days'"
				 " WHEN c.created_at > UTC_TIMESTAMP(3) - INTERVAL 30 DAY THEN '7_to_30_days'"
				 " ELSE 'over_30_days' END, COUNT(*)",
				 hf_buf_cstr(&where), " AND c.is_open = 1 GROUP BY 1", v, nv, &r);
	while (!err && db_rows_next(r))
		json_object_set_new(ages, db_rows_str(r, 0), json_integer(db_rows_i64(r, 1)));
	db_rows_free(r);
	r = NULL;
	/* Opened and closed in the last 7 and 30 days, and how long the closed ones took (a closed case's
	 * state_since is when it closed). */
	if (!err)
		err = dash_query(c,
				 "SELECT c.case_type,"
				 " SUM(c.created_at > UTC_TIMESTAMP(3) - INTERVAL 7 DAY),"
				 " SUM(c.created_at > UTC_TIMESTAMP(3) - INTERVAL 30 DAY),"
				 " SUM(c.is_open = 0 AND c.state_since > UTC_TIMESTAMP(3) - INTERVAL 7 DAY),"
				 " SUM(c.is_open = 0 AND c.state_since > UTC_TIMESTAMP(3) - INTERVAL 30 DAY),"
				 " AVG(IF(c.is_open = 0 AND c.state_since > UTC_TIMESTAMP(3) - INTERVAL 30 DAY,"
				 " TIMESTAMPDIFF(SECOND, c.created_at, c.state_since), NULL)) / 86400,"
				 " SUM(c.is_open = 0 AND c.state_since > UTC_TIMESTAMP(3) - INTERVAL 30 DAY AND c.sla_breached = 1)",
				 hf_buf_cstr(&where),
				 " AND (c.is_open = 1 OR c.state_since > UTC_TIMESTAMP(3) - INTERVAL 30 DAY OR c.created_at >"
				 " UTC_TIMESTAMP(3) - INTERVAL 30 DAY) GROUP BY 1",
				 v, nv, &r);
	while (!err && db_rows_next(r)) {
		json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:o, s:I}", "opened_7d", (json_int_t)db_rows_i64(r, 1),
				      "opened_30d", (json_int_t)db_rows_i64(r, 2), "closed_7d", (json_int_t)db_rows_i64(r, 3),
				      "closed_30d", (json_int_t)db_rows_i64(r, 4), "avg_days_to_close_30d",
				      db_rows_null(r, 5) ? json_null() : json_real(round(strtod(db_rows_str(r, 5), NULL) * 10) / 10),
				      "closed_late_30d", (json_int_t)db_rows_i64(r, 6));
		json_object_set_new(flow, db_rows_str(r, 0), o);
	}
	db_rows_free(r);
	hf_buf_release(&where);
	if (err) {
		json_decref(open);
		json_decref(by_state);
		json_decref(by_category);
		json_decref(by_district);
		json_decref(ages);
		json_decref(flow);
		return err;
	}
	*out = json_pack("{s:s?, s:s?, s:o, s:o, s:o, s:o, s:o, s:o}", "type", type, "location", location, "open_by_sla",
			 open, "open_by_state", by_state, "open_by_category", by_category, "open_by_district",
			 by_district, "open_age", ages, "flow", flow);
	return HF_OK;
}

/* ------------------------------------------------------------------ the SLA sweeper */

struct sweep_case {
	int64_t id;
	char type[20], state[33];
};

struct sweep_tx {
	int64_t now_s;
	struct sweep_case *batch; /* SWEEP_BATCH */
	size_t n;
	uint64_t escalated;
	uint64_t to_role[ROLE_COUNT_]; /* this batch's reassignments per role */
};

/* Appends "?, ?, ..., ?" (n placeholders). */
static hf_err placeholders(struct hf_buf *b, size_t n, const char *one)
{
	hf_err err = HF_OK;
	for (size_t i = 0; i < n && !err; i++)
		err = hf_buf_appendf(b, "%s%s", i ? ", " : "", one);
	return err;
}

static const struct audit_actor SWEEPER = {"system", "sla-sweeper", "local", ""};

/* Escalates one batch of overdue cases in one short transaction. Most states just reassign on breach:
 * those go set-wise (one UPDATE per target role, one multi-row INSERT of events). A state whose workflow
 * names a breach transition has the engine take it, case by case, with its actions. */
static hf_err sweep_body(struct db *db, void *vctx)
{
	struct sweep_tx *t = vctx;
	t->escalated = 0;
	t->n = 0;
	memset(t->to_role, 0, sizeof(t->to_role));
	struct db_val q[] = {DB_I64(t->now_s)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT id, case_type, state FROM cases WHERE is_open = 1 AND sla_breached = 0 AND sla_due_at <="
			      " FROM_UNIXTIME(?) ORDER BY sla_due_at LIMIT 1000 FOR UPDATE",
			      q, 1, &r);
	if (err)
		return err;
	while (t->n < SWEEP_BATCH && db_rows_next(r)) {
		struct sweep_case *k = &t->batch[t->n++];
		k->id = db_rows_i64(r, 0);
		hf_strlcpy(k->type, db_rows_str(r, 1), sizeof(k->type));
		hf_strlcpy(k->state, db_rows_str(r, 2), sizeof(k->state));
	}
	db_rows_free(r);
	if (t->n == 0)
		return HF_OK;
	/* Targets: index into role names, or WF_ROLE_NONE (flag only); -100 = the state has a breach transition. */
	int *target = hf_xcalloc(t->n, sizeof(*target));
	for (size_t i = 0; i < t->n; i++) {
		const struct wf_def *d = wf_find(C.wf, t->batch[i].type);
		const struct wf_state *st = d ? wf_state_find(d, t->batch[i].state) : NULL;
		target[i] = !st ? WF_ROLE_NONE : wf_breach_transition(d, st) ? -100 : st->escalate_to;
	}
	struct hf_buf sql;
	hf_buf_init(&sql, 64 * 1024);
	struct db_val *v = hf_xcalloc(t->n * 4 + 2, sizeof(*v));
	for (int role = WF_ROLE_NONE; role < ROLE_COUNT_ && !err; role++) {
		size_t nv = 0;
		v[nv++] = db_str(role >= 0 ? auth_role_names[role] : NULL);
		for (size_t i = 0; i < t->n; i++)
			if (target[i] == role)
				v[nv++] = DB_I64(t->batch[i].id);
		if (nv == 1)
			continue;
		if (role >= 0)
			t->to_role[role] += nv - 1;
		hf_buf_reset(&sql);
		err = hf_buf_append_str(&sql, "UPDATE cases SET sla_breached = 1, escalations = escalations + 1, assigned_role ="
					      " COALESCE(?, assigned_role), assigned_to = NULL, updated_at = UTC_TIMESTAMP(3),"
					      " updated_by = 'system' WHERE id IN (");
		if (!err)
			err = placeholders(&sql, nv - 1, "?");
		if (!err)
			err = hf_buf_append_str(&sql, ")");
		if (!err)
			err = db_exec(db, hf_buf_cstr(&sql), v, nv, NULL);
	}
	/* One event per case, in one statement. */
	if (!err) {
		size_t nv = 0;
		hf_buf_reset(&sql);
		err = hf_buf_append_str(&sql, "INSERT INTO case_events (id, case_id, kind, from_state, actor, at) VALUES ");
		/* Consecutive ids from one random start: a thousand independent draws in one millisecond would
		 * collide among themselves about every other batch. */
		int64_t base = db_new_id();
		for (size_t i = 0; i < t->n && !err; i++) {
			v[nv++] = DB_I64(base + (int64_t)i);
			v[nv++] = DB_I64(t->batch[i].id);
			v[nv++] = db_str(t->batch[i].state);
			err = hf_buf_append_str(&sql, i ? ", (?, ?, 'escalation', ?, 'system', UTC_TIMESTAMP(3))"
							: "(?, ?, 'escalation', ?, 'system', UTC_TIMESTAMP(3))");
		}
		if (!err)
			err = db_exec(db, hf_buf_cstr(&sql), v, nv, NULL);
	}
	hf_buf_release(&sql);
	free(v);
	/* States with a breach transition: the engine takes it, with its actions (SMS, reassignment). */
	for (size_t i = 0; i < t->n && !err; i++) {
		if (target[i] != -100)
			continue;
		struct db_val w[] = {DB_I64(t->batch[i].id)};
		err = db_exec(db, "UPDATE cases SET sla_breached = 1, escalations = escalations + 1 WHERE id = ?", w, 1, NULL);
		if (err)
			break;
		err = db_query(db, "SELECT " CASE_COLS " FROM cases c WHERE c.id = ?", w, 1, &r);
		if (err)
			break;
		struct case_row k;
		bool found = db_rows_next(r);
		if (found)
			case_row_read(r, &k);
		db_rows_free(r);
		if (!found)
			continue;
		const struct wf_def *d = wf_find(C.wf, k.type);
		const struct wf_transition *tr = wf_breach_transition(d, wf_state_find(d, k.state));
		struct principal p = {.kind = PRINCIPAL_NONE};
		hf_strlcpy(p.name, "sla-sweeper", sizeof(p.name));
		hf_strlcpy(p.actor, "system", sizeof(p.actor));
		p.audit = SWEEPER;
		char msg[256] = "";
		struct hf_ferrs fe;
		hf_ferrs_init(&fe);
		struct svc_call cc = {db, &p, &fe, msg, sizeof(msg), 0};
		struct move_tx mt = {.c = &cc, .detail = json_pack("{s:[]}", "sms")};
		struct fields f = {.note = "escalated: the time allowed in this state ran out", .reason = "SLA breached",
				   .decision = "escalated"};
		err = move_apply(db, &mt, &k, d, tr, &f, "system", &SWEEPER);
		json_decref(mt.detail);
		hf_ferrs_release(&fe);
	}
	free(target);
	if (err)
		return err;
	t->escalated = t->n;
	json_t *d = json_pack("{s:I, s:s, s:s}", "escalated", (json_int_t)t->n, "first_case", "", "last_case", "");
	char first[24], last[24];
	snprintf(first, sizeof(first), "%lld", (long long)t->batch[0].id);
	snprintf(last, sizeof(last), "%lld", (long long)t->batch[t->n - 1].id);
	json_object_set_new(d, "first_case", json_string(first));
	json_object_set_new(d, "last_case", json_string(last));
	struct audit_event ev = {"case.sla_escalation", "case", "", "ok", NULL, NULL, d};
	err = audit_append(db, &SWEEPER, &ev);
	json_decref(d);
	return err;
}

struct notify_tx {
	const char *role;
	uint64_t count;
	int n;
};

static hf_err notify_body(struct db *db, void *vctx)
{
	struct notify_tx *t = vctx;
	json_t *params = json_pack("{s:I, s:s}", "count", (json_int_t)t->count, "role", t->role);
	hf_err err = outbox_to_role(db, t->role, "staff_cases_escalated", params, &t->n);
	json_decref(params);
	return err;
}

hf_err cases_sweep(struct db *db, int64_t now_ms, struct cases_sweep_result *res)
{
	memset(res, 0, sizeof(*res));
	int64_t t0 = hf_mono_us();
	struct sweep_tx t = {.now_s = now_ms / 1000};
	t.batch = hf_xcalloc(SWEEP_BATCH, sizeof(*t.batch));
	hf_err err = HF_OK;
	uint64_t to_role[ROLE_COUNT_] = {0};
	/* Batch after batch until nothing overdue is left; escalated cases leave the index range, so each batch
	 * reads only what it escalates. Bounded, in case something keeps coming back. */
	for (int rounds = 0; rounds < 100000; rounds++) {
		err = db_tx(db, sweep_body, &t);
		for (int i = 0; i < 3 && err == HF_ECONFLICT && strcmp(db_conflict_key(db), "PRIMARY") == 0; i++)
			err = db_tx(db, sweep_body, &t); /* an id drawn twice: the batch again, with new ids */
		if (err || t.n == 0)
			break;
		res->checked += t.n;
		res->escalated += t.escalated;
		for (int i = 0; i < ROLE_COUNT_; i++)
			to_role[i] += t.to_role[i];
	}
	free(t.batch);
	for (int i = 0; i < ROLE_COUNT_ && !err; i++) {
		if (!to_role[i])
			continue;
		struct notify_tx nt = {auth_role_names[i], to_role[i], 0};
		err = db_tx(db, notify_body, &nt);
		res->staff_notified += nt.n;
	}
	res->seconds = (double)(hf_mono_us() - t0) / 1e6;
	return err;
}

/* ------------------------------------------------------------------ attachments */

static const char *const ATTACHMENT_TYPES[] = {"image/jpeg", "image/png", "application/pdf", "text/plain", NULL};

struct attach_tx {
	struct svc_call *c;
	const char *ref, *filename, *content_type;
	const uint8_t *content;
	size_t len;
	char sha[65];
	int64_t id;
};

static hf_err attach_body(struct db *db, void *vctx)
{
	struct attach_tx *t = vctx;
	struct case_row k;
	const struct wf_def *d = NULL;
	hf_err err = case_lock_for(db, t->c, t->ref, &k, &d);
	if (err)
		return err;
	t->id = db_new_id();
	char ad[96];
	int n = snprintf(ad, sizeof(ad), "case_attachments.content:%lld", (long long)t->id);
	struct hf_buf name, body;
	hf_buf_init(&name, 1024);
	hf_buf_init(&body, CASES_ATTACHMENT_MAX + 1024);
	err = seal_text("case_attachments.filename", t->id, t->filename, &name);
	if (!err)
		err = hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, t->content, t->len, &body);
	if (!err) {
		struct db_val v[] = {DB_I64(t->id),	      DB_I64(k.id),	 DB_BLOB(name.data, name.len),
				     db_str(t->content_type), DB_I64(t->len), db_str(t->sha),
				     DB_BLOB(body.data, body.len), db_str(t->c->p->actor)};
		err = db_exec(db,
			      "INSERT INTO case_attachments (id, case_id, filename_enc, content_type, size, sha256, content_enc,"
			      " added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3))",
			      v, HF_ARRAY_LEN(v), NULL);
	}
	hf_buf_release(&name);
	hf_buf_release(&body);
	if (!err)
		err = event_add(db, k.id, "note", NULL, NULL, NULL, t->c->p->actor, "attachment added");
	if (err)
		return err;
	json_t *detail = json_pack("{s:s, s:I}", "content_type", t->content_type, "size", (json_int_t)t->len);
	struct audit_event ev = {"case.attach", "case", k.ref, "ok", NULL, NULL, detail};
	err = audit_append(db, &t->c->p->audit, &ev);
	json_decref(detail);
	return err;
}

hf_err cases_attach(struct svc_call *c, const char *ref, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"filename", "content_type", "content_base64", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct attach_tx t = {.c = c, .ref = ref};
	const char *b64 = NULL;
	(void)hf_json_get_str(body, "", "filename", true, 1, 100, c->fe, &t.filename);
	(void)hf_json_get_enum(body, "", "content_type", true, ATTACHMENT_TYPES, c->fe, &t.content_type);
	json_t *jb = json_object_get(body, "content_base64");
	if (!json_is_string(jb))
		hf_ferrs_add(c->fe, "content_base64", "required", "the file's content, base64-encoded");
	else
		b64 = json_string_value(jb);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	size_t b64len = strlen(b64);
	uint8_t *bin = hf_xmalloc(b64len / 4 * 3 + 3);
	size_t len = 0;
	if (sodium_base642bin(bin, b64len / 4 * 3 + 3, b64, b64len, " \r\n", &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len == 0)
		hf_ferrs_add(c->fe, "content_base64", "bad_value", "not base64, or empty");
	else if (len > CASES_ATTACHMENT_MAX)
		hf_ferrs_add(c->fe, "content_base64", "too_big", "at most %d bytes", CASES_ATTACHMENT_MAX);
	hf_err err = HF_OK;
	if (hf_ferrs_any(c->fe)) {
		err = HF_EINVAL;
	} else {
		uint8_t digest[32];
		hf_sha256(bin, len, digest);
		hf_hex(digest, sizeof(digest), t.sha);
		t.content = bin;
		t.len = len;
		err = numbers_valid(ref) ? db_tx(c->db, attach_body, &t) : HF_ENOTFOUND;
		if (err == HF_ENOTFOUND)
			svc_say(c, "no case with this reference");
	}
	sodium_memzero(bin, b64len / 4 * 3 + 3);
	free(bin);
	if (!err) {
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)t.id);
		*out = json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", id, "filename", t.filename, "content_type",
				 t.content_type, "size", (json_int_t)t.len, "sha256", t.sha);
	}
	return err;
}

hf_err cases_attachment_get(struct svc_call *c, const char *ref, const char *id, json_t **out)
{
	struct case_row k;
	int64_t aid = 0;
	hf_err err = hf_parse_i64(id, 1, INT64_MAX, &aid) ? HF_ENOTFOUND : case_load(c->db, ref, false, &k);
	if (!err && !may_see(c, &k))
		err = HF_ENOTFOUND;
	struct db_rows *r = NULL;
	if (!err) {
		struct db_val v[] = {DB_I64(aid), DB_I64(k.id)};
		err = db_query(c->db,
			       "SELECT id, filename_enc, content_type, size, sha256, content_enc FROM case_attachments"
			       " WHERE id = ? AND case_id = ?",
			       v, 2, &r);
		if (!err && !db_rows_next(r))
			err = HF_ENOTFOUND;
	}
	if (err == HF_ENOTFOUND)
		svc_say(c, "no such attachment on this case");
	if (err) {
		db_rows_free(r);
		return err;
	}
	json_t *name = open_text("case_attachments.filename", aid, r, 1, false);
	size_t n = 0;
	const void *sealed = db_rows_blob(r, 5, &n);
	char ad[96];
	int adn = snprintf(ad, sizeof(ad), "case_attachments.content:%lld", (long long)aid);
	struct hf_buf plain;
	hf_buf_init(&plain, CASES_ATTACHMENT_MAX + 16);
	err = hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)adn}, sealed, n, &plain);
	if (!err) {
		size_t cap = sodium_base64_encoded_len(plain.len, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = hf_xmalloc(cap);
		sodium_bin2base64(b64, cap, plain.data ? plain.data : (const void *)"", plain.len,
				  sodium_base64_VARIANT_ORIGINAL);
		*out = json_pack("{s:s, s:o, s:s, s:I, s:s, s:s}", "id", id, "filename", name, "content_type",
				 db_rows_str(r, 2), "size", (json_int_t)db_rows_i64(r, 3), "sha256", db_rows_str(r, 4),
				 "content_base64", b64);
		name = NULL;
		free(b64);
	}
	json_decref(name);
	if (plain.data)
		sodium_memzero(plain.data, plain.cap);
	hf_buf_release(&plain);
	db_rows_free(r);
	return err;
}

/* ------------------------------------------------------------------ export */

struct export_ctx {
	FILE *out;
	bool with_text;
	uint64_t rows;
	struct hf_buf line;
	int64_t now_ms;
};

static hf_err export_row(void *vctx, struct db_rows *r)
{
	struct export_ctx *x = vctx;
	struct case_row k;
	case_row_read(r, &k);
	hf_buf_reset(&x->line);
	size_t b = 19; /* the columns after CASE_COLS, as in case_json */
	char esc[24], due[40] = "";
	snprintf(esc, sizeof(esc), "%lld", (long long)k.escalations);
	if (k.due_ms) {
		time_t t = (time_t)(k.due_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(due, sizeof(due), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	const char *cells[] = {k.ref,
			       k.type,
			       k.confidential ? "confidential" : k.category,
			       k.state,
			       k.is_open ? "open" : "closed",
			       sla_state(&k, x->now_ms),
			       due,
			       esc,
			       db_rows_str(r, b),
			       db_rows_str(r, b + 1),
			       db_rows_str(r, b + 2),
			       db_rows_str(r, b + 3),
			       db_rows_str(r, b + 4),
			       k.team,
			       k.assigned_role,
			       k.assigned_to,
			       db_rows_str(r, b + 8),
			       db_rows_str(r, b + 10)};
	hf_err err = HF_OK;
	for (size_t i = 0; i < HF_ARRAY_LEN(cells) && !err; i++)
		err = hf_buf_csv_cell(&x->line, cells[i], strlen(cells[i]), i == 0);
	if (!err && x->with_text) {
		json_t *sum = k.confidential ? json_string("***") : open_text("cases.summary", k.id, r, b + 5, false);
		const char *txt = json_is_string(sum) ? json_string_value(sum) : "";
		err = hf_buf_csv_cell(&x->line, txt, strlen(txt), false);
		json_decref(sum);
	}
	if (!err)
		err = hf_buf_append(&x->line, "\n", 1);
	if (!err && fwrite(x->line.data, 1, x->line.len, x->out) != x->line.len)
		err = HF_EIO;
	if (x->line.data)
		memset(x->line.data, 0, x->line.len);
	x->rows++;
	return err;
}

hf_err cases_export(struct db *db, FILE *out, const char *type, bool all, bool with_text, uint64_t *rows_out)
{
	struct export_ctx x = {.out = out, .with_text = with_text, .now_ms = hf_now_ms()};
	hf_buf_init(&x.line, 64 * 1024);
	const char *header = "ref,type,category,state,open,sla,due_at,escalations,channel,ben_no,hh_no,programme,"
			     "payment_ref,team,assigned_role,assigned_to,created_at,updated_at";
	if (fprintf(out, "%s%s\n", header, with_text ? ",summary" : "") < 0) {
		hf_buf_release(&x.line);
		return HF_EIO;
	}
	struct db_val v[] = {DB_I64(all), db_str(type), db_str(type)};
	hf_err err = db_stream(db,
			       "SELECT " CASE_FULL_COLS CASE_FULL_FROM " WHERE (? OR c.is_open = 1) AND (? IS NULL OR"
			       " c.case_type = ?) ORDER BY c.id",
			       v, HF_ARRAY_LEN(v), export_row, &x);
	hf_buf_release(&x.line);
	*rows_out = x.rows;
	return err;
}
