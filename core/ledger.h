/* ledger.h - the double-entry ledger, in integer minor units.
 *
 * Accounts are named by code: "external:<CUR>" (money from outside: treasury, donors), "fund:<PROGRAMME>",
 * "clearing:<CYCLE>" (an approved payroll not yet paid out), "settlement:<PROVIDER>" (sent to a provider,
 * not yet confirmed), "paid:<PROGRAMME>" (reached beneficiaries), "returned:<PROGRAMME>" (failed, expired,
 * reversed). An account is created on first use with its kind from the prefix. Debits are positive,
 * credits negative; a posting's legs sum to zero in one currency. Balances are sums of entries: derived,
 * never stored. Every posting has an idempotency key: posting the same key twice posts nothing the second
 * time (and says so), which is what makes crashes, retries and duplicate callbacks harmless. */
#ifndef HF_CORE_LEDGER_H
#define HF_CORE_LEDGER_H

#include "db.h"
#include "hf_base.h"
#include "hf_err.h"
#include <jansson.h>

#define LEDGER_CODE_MAX 100
#define LEDGER_MAX_LEGS 8

struct ledger_leg {
	const char *account; /* account code */
	int64_t amount;      /* debit > 0, credit < 0 */
};

struct ledger_posting {
	const char *idem_key; /* unique per movement of money, e.g. "paid:<payment id>" */
	const char *kind;     /* funding, payroll, send, paid, failed, collect, expire, return, reverse */
	const char *currency;
	int64_t cycle_id, payment_id; /* 0 = none */
	const char *memo;             /* no personal data */
	const char *actor;
	const struct ledger_leg *legs;
	size_t nlegs;
};

/* Posts inside the caller's transaction. HF_EINVAL when the legs do not balance or an amount is zero;
 * *posted false (and HF_OK) when the idem_key was posted before. */
HF_MUST_CHECK hf_err ledger_post(struct db *db, const struct ledger_posting *p, bool *posted);
/* Many postings of the same shape in few statements (a payroll batch sent): legs[i*nlegs ..]. Postings
 * whose key exists are skipped; *nposted says how many were new. */
HF_MUST_CHECK hf_err ledger_post_many(struct db *db, const struct ledger_posting *p, size_t n, size_t *nposted);
/* The balance of an account (0 for an account never used). lock: SELECT ... FOR UPDATE on the account row,
 * so two transactions cannot both spend the same money. */
HF_MUST_CHECK hf_err ledger_balance(struct db *db, const char *account, bool lock, int64_t *out);
/* Proves the books: every posting balances, no fund is below zero, every payment's postings agree with
 * its status (paid once at most, nothing paid that was not sent). *ok false lists the problems. */
HF_MUST_CHECK hf_err ledger_check(struct db *db, bool *ok, json_t **report);
/* GET /ledger/accounts: every account with its balance. */
HF_MUST_CHECK hf_err ledger_accounts(struct db *db, json_t **out);

#endif
