/* dispatch.h - the outbound dispatcher: claims due messages from core's outbox (POST /outbox/claim, which
 * leases them), sends each through Kannel's sendsms with a dlr-url carrying the outbox id, GSM-7 when the
 * text allows it else UCS-2 (Kannel splits long texts into concatenated parts), at most rate_per_s, outside
 * quiet hours (during them only one-time PIN codes, which the person is waiting for, are claimed or sent),
 * retrying transient errors with backoff, and reports sent / delivered / failed back to core. Up to
 * `senders` sendsms are in flight at once; reports go to core in batches (POST /outbox/status), the
 * dispatcher's own sent again until core has them.
 *
 * Never twice: before a message goes to Kannel its id is written to a journal file ("S id"), after Kannel
 * took it "D id" (refused for good "F id", not taken "U id"; claimed "C id" before any of them; delivery
 * reports "A id", "Y id", "N id"). A write() survives kill -9 of the gateway, so after a crash at most one
 * message per sender is in doubt (written S, no end): it is reported sent, not sent again (Kannel may have
 * taken it; its delivery report settles it). The journal is emptied only when core has every report of
 * what it holds, and is read whole at start. Kannel's own duplicates after its crash recovery show up as a
 * second delivery report of a delivered message: counted (metric dlr_duplicates). One dispatcher per
 * deployment.
 *
 * Threads: dispatch_start and dispatch_stop from main (stop after the HTTP server has stopped: no callback
 * may be running); dispatch_dlr from any request thread; dispatch_stats from anywhere. */
#ifndef HF_GATEWAY_DISPATCH_H
#define HF_GATEWAY_DISPATCH_H

#include "hf_base.h"
#include "hf_err.h"

struct dispatch_conf {
	const char *sendsms_url; /* http://127.0.0.1:13013/cgi-bin/sendsms */
	const char *user, *password;
	const char *sender;      /* from: the short code */
	const char *smsc;        /* Kannel smsc-id to send through; "" = Kannel's routing */
	const char *dlr_base;    /* the gateway as Kannel sees it: http://127.0.0.1:8081 */
	long timeout_ms;         /* of one sendsms; no answer in time = in doubt (reported sent, not resent) */
	const char *journal;     /* journal file path */
	int batch;               /* messages claimed per call (1-500) */
	int senders;             /* sendsms in flight at once (1-32) */
	double rate_per_s;       /* link throughput */
	int quiet_from, quiet_to; /* hours (UTC) without SMS; equal = none */
	int idle_ms;             /* wait when nothing is due */
};

HF_MUST_CHECK hf_err dispatch_start(const struct dispatch_conf *c);
void dispatch_stop(void);
/* A delivery report from Kannel (GET /kannel/dlr?ref=&status=). While the dispatcher runs it is journaled
 * and queued for core (sent until core has it) and HF_OK returns at once; HF_EDB_RETRY (answer non-200 so
 * that Kannel sends it again) when it cannot be journaled or too many wait for core. Without a dispatcher
 * it goes to core before this returns: HF_ENOTFOUND for an id core does not know, HF_EDB_RETRY when core
 * cannot be reached. Any request thread. */
HF_MUST_CHECK hf_err dispatch_dlr(const char *ref, int status);

struct dispatch_stats {
	unsigned long long claimed, sent, failed, retried, in_doubt, dlr_delivered, dlr_failed, dlr_duplicates,
		dlr_unknown;
};
void dispatch_stats(struct dispatch_stats *out);

#endif
