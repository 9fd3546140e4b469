/* fuzz_json_body.c - libFuzzer target: API request bodies, from the raw bytes to the registry's rules.
 *
 * Every POST/PATCH body of the API goes hf_json_parse_object -> hf_json_only_fields -> typed getters ->
 * person_validate and the validators, in core/registry.c. This target runs exactly that code: the real
 * registry entry points, with a database connection that is down (a zeroed struct db: every statement
 * answers HF_EDB_RETRY, as after a lost connection). Validation all happens before the first statement, so
 * a body is either refused with field errors or reaches the database and stops there. For the endpoints
 * whose checks run inside the transaction callback (programmes, updates, enrolments) the callback is also
 * called directly with the down connection.
 *
 * Checked on every body and endpoint, besides "no crash, no leak, no undefined behaviour":
 * - HF_EINVAL comes with at least one field error, and a field error always means HF_EINVAL: a recorded
 *   problem never lets a write through, and a refusal never comes without saying what was wrong;
 * - the field error list (what the API sends under "fields") is at most 100 entries of three strings and
 *   serialises as JSON;
 * - an error on a member's field (other than "required") names a field that member actually gave;
 * - a member that passes person_validate seals, and each sealed field opens back to the validated value.
 *
 * Input: the request body, as bytes (any size; the HTTP layer caps bodies at http.max_body).
 */
#include "hf_base.h"

#include "../../core/core_config.c"
#include "../../core/db.c"
#include "../../core/location.c"
#include "../../core/person.c"
#include "../../core/validate.c"
#include "../../core/audit_chain.c"
#include "../../core/audit.c"
#include "../../core/registry.c"

#include "fuzz_common.h"
#include "hf_checkdigit.h"
#include "hf_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connection that is down: my == NULL and nothing to reconnect with. */
static struct db g_down_db;
/* A beneficiary / household number that passes numbers_valid, for the URL of update endpoints. */
static char g_number[BENNO_LEN + 1];

static void setup_once(void)
{
	if (g_number[0])
		return;
	memcpy(g_number, "12345678", 8);
	int c = hf_check_compute(HF_CHECK_DAMM, g_number, 8);
	HF_ASSERT(c >= '0' && c <= '9');
	g_number[8] = (char)c;
	g_number[9] = '\0';
	HF_ASSERT(numbers_valid(g_number));
}

static void check_ferrs(const struct hf_ferrs *fe)
{
	FUZZ_CHECK(json_is_array(fe->list) && hf_ferrs_count(fe) <= 100);
	size_t i;
	json_t *e;
	json_array_foreach(fe->list, i, e) {
		FUZZ_CHECK(json_is_object(e) && json_object_size(e) == 3);
		FUZZ_CHECK(json_is_string(json_object_get(e, "field")) && json_is_string(json_object_get(e, "code")) &&
			   json_is_string(json_object_get(e, "message")));
	}
	struct hf_buf out;
	hf_buf_init(&out, 1024 * 1024);
	FUZZ_CHECK(hf_json_dump(fe->list, &out) == HF_OK && out.len >= 2);
	hf_buf_release(&out);
}

/* The outcome of one endpoint on one body (rq->fe is then emptied for the next). */
static void check_outcome(struct reg_req *rq, hf_err err, json_t *out)
{
	FUZZ_CHECK(err == HF_EINVAL || err == HF_EDB_RETRY || err == HF_ENOTFOUND);
	FUZZ_CHECK((err == HF_EINVAL) == hf_ferrs_any(rq->fe));
	if (err == HF_ENOTFOUND)
		FUZZ_CHECK(rq->msg[0] != '\0');
	FUZZ_CHECK(out == NULL);
	check_ferrs(rq->fe);
	json_array_clear(rq->fe->list);
	rq->msg[0] = '\0';
}

/* An error about a member's field ("members[i].national_id") other than "required" is about a value that
 * member gave: a registrar is told to fix what is on the form, not a field left empty. */
static void check_member_paths(json_t *body, const struct hf_ferrs *fe)
{
	json_t *members = json_object_get(body, "members");
	size_t i;
	json_t *e;
	json_array_foreach(fe->list, i, e) {
		const char *field = json_string_value(json_object_get(e, "field"));
		const char *code = json_string_value(json_object_get(e, "code"));
		if (!field || !code || strncmp(field, "members[", 8) != 0 || strcmp(code, "required") == 0 ||
		    strcmp(code, "unknown_field") == 0)
			continue;
		char *end = NULL;
		unsigned long idx = strtoul(field + 8, &end, 10);
		if (!end || end[0] != ']' || end[1] != '.')
			continue;
		json_t *v = json_object_get(json_array_get(members, idx), end + 2);
		if (!v || json_is_null(v))
			fprintf(stderr, "fuzz: error %s on %s, a field this member did not give\n", code, field);
		FUZZ_CHECK(v && !json_is_null(v));
	}
}

/* A member as registry_household_create takes it, then sealed as hh_create_tx would and opened back. */
static void check_member_seal(json_t *m, struct reg_req *rq)
{
	if (!json_is_object(m))
		return;
	struct person_in in;
	struct person_row row;
	person_in_from_json(m, "m", rq, &in);
	bool ok = !hf_ferrs_any(rq->fe) && person_validate(&in, "m", true, rq->fe, &row);
	json_array_clear(rq->fe->list);
	if (!ok)
		return;
	row.id = 4242;
	person_seal(g_app.keys, &row, 7);
	static const char *const cols[] = {"given_name", "family_name", "dob", "national_id", "phone"};
	const struct hf_buf *enc[] = {&row.given_enc, &row.family_enc, &row.dob_enc, &row.nid_enc, &row.phone_enc};
	const char *plain[] = {row.given_name, row.family_name, row.dob, row.nid, row.phone};
	for (size_t i = 0; i < HF_ARRAY_LEN(cols); i++) {
		if (!plain[i] || !plain[i][0]) {
			FUZZ_CHECK(enc[i]->len == 0);
			continue;
		}
		struct hf_buf v;
		hf_buf_init(&v, 4096);
		FUZZ_CHECK(person_open_field(g_app.keys, row.id, cols[i], enc[i]->data, enc[i]->len, &v) == HF_OK);
		FUZZ_CHECK(v.len == strlen(plain[i]) && memcmp(hf_buf_cstr(&v), plain[i], v.len) == 0);
		hf_buf_release(&v);
	}
	person_row_release(&row);
}

static void run_endpoints(json_t *body, struct reg_req *rq)
{
	json_t *out = NULL;
	hf_err err;

	/* POST /households, and the members as its transaction would seal them. */
	err = registry_household_create(rq, body, &out);
	check_member_paths(body, rq->fe);
	check_outcome(rq, err, out);
	json_t *members = json_object_get(body, "members");
	if (json_is_array(members) && json_array_size(members) <= MAX_MEMBERS) {
		size_t i;
		json_t *m;
		json_array_foreach(members, i, m)
			check_member_seal(m, rq);
	}

	/* POST /households/{hh_no}/members */
	err = registry_household_add_member(rq, g_number, body, &out);
	check_outcome(rq, err, out);

	/* PATCH /households/{hh_no}: the entry point, then its transaction's checks. */
	err = registry_household_update(rq, g_number, body, &out);
	check_outcome(rq, err, out);
	struct hh_tx *ht = hf_xcalloc(1, sizeof(*ht));
	*ht = (struct hh_tx){.rq = rq, .body = body, .number = g_number};
	err = hh_update_tx(&g_down_db, ht);
	check_outcome(rq, err, ht->result);
	free(ht);

	/* PATCH /individuals/{ben_no} */
	err = registry_individual_update(rq, g_number, body, &out);
	check_outcome(rq, err, out);
	struct tx_call it = {rq, body, g_number, NULL};
	err = ind_update_tx(&g_down_db, &it);
	check_outcome(rq, err, it.result);

	/* POST /programmes and PATCH /programmes/{code} */
	err = registry_programme_create(rq, body, &out);
	check_outcome(rq, err, out);
	struct tx_call pt = {rq, body, NULL, NULL};
	err = prog_create_tx(&g_down_db, &pt);
	check_outcome(rq, err, pt.result);
	err = registry_programme_update(rq, "OPCT", body, &out);
	check_outcome(rq, err, out);
	pt = (struct tx_call){rq, body, "OPCT", NULL};
	err = prog_update_tx(&g_down_db, &pt);
	check_outcome(rq, err, pt.result);

	/* POST /enrolments and PATCH /enrolments/{id} */
	err = registry_enrolment_create(rq, body, &out);
	check_outcome(rq, err, out);
	struct tx_call et = {rq, body, NULL, NULL};
	err = enr_create_tx(&g_down_db, &et);
	check_outcome(rq, err, et.result);
	err = registry_enrolment_update(rq, "1", body, &out);
	check_outcome(rq, err, out);
	et = (struct tx_call){rq, body, "1", NULL};
	err = enr_update_tx(&g_down_db, &et);
	check_outcome(rq, err, et.result);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	setup_once();
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	json_t *body = NULL;
	hf_err err = hf_json_parse_object((struct hf_str){(const char *)data, size}, &fe, &body);
	if (err) {
		FUZZ_CHECK(err == HF_EINVAL && body == NULL && hf_ferrs_count(&fe) == 1);
		check_ferrs(&fe);
	} else {
		FUZZ_CHECK(json_is_object(body) && !hf_ferrs_any(&fe));
		struct reg_req rq = {.db = &g_down_db, .actor = "fuzz", .fe = &fe};
		run_endpoints(body, &rq);
		json_decref(body);
	}
	hf_ferrs_release(&fe);
	return 0;
}
