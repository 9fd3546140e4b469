/* alert_rules.h - the discrepancy rules that look at the whole picture rather than one event: payments
 * pending too long, kiosk payments uncollected, payees no longer eligible after approval, one phone or
 * national ID paid several times in a cycle. Run by serve's housekeeping and `hifadhi-core alerts scan`. */
#ifndef HF_CORE_ALERT_RULES_H
#define HF_CORE_ALERT_RULES_H

#include "db.h"

/* The thresholds (payments.pending_alert_s, payments.uncollected_days). Call once at startup before any
 * scan; until then 3600 s and 7 days. Not thread-safe against a running scan. */
void alert_rules_configure(int pending_alert_s, int uncollected_days);

struct alert_scan_result {
	int raised;     /* new alerts */
	double seconds;
};
/* Runs every rule over the approved cycles as if at now_ms (ms since the epoch, UTC; tests and drills pass a
 * later time), raising one alert per finding through alerts_raise, which skips what was raised before: a
 * rerun raises nothing new. Each rule works in short transactions of its own (at most ALERT_RULES_BATCH
 * findings each), so a rule that fails leaves the others' alerts raised. Uses db from one thread.
 * HF_EDB / HF_EDB_RETRY from the database; res is filled in either way with what was raised. */
HF_MUST_CHECK hf_err alert_rules_scan(struct db *db, int64_t now_ms, struct alert_scan_result *res);

#endif
