/* queue.h - the kiosk's store-and-forward queue for when core cannot be reached.
 *
 * Events (a collection made offline under an allowance, a grievance, a tamper alert...) are JSON texts
 * with a unique id. Each is appended to one file as a record sealed with XChaCha20-Poly1305 under the
 * queue key (32 bytes, a file readable by the daemon only), associated data = the record's header (magic,
 * sequence number, length), and the file is fsync'd before queue_append returns: an event the kiosk said
 * was stored survives a crash or power cut. A record is: magic, sequence number, length, header CRC, nonce,
 * ciphertext+tag.
 *
 * Replay: queue_peek returns the oldest events not yet acknowledged; after core has answered for them
 * (applied, or already seen: core is idempotent on the event id), queue_ack records the highest sequence
 * number done in a small side file (written to a temporary, fsync'd, renamed). An event is therefore
 * sent at least once and applied exactly once (core refuses the second copy by id). When every record is
 * acknowledged the file is compacted (rewritten empty, atomically).
 *
 * Damage: a torn last record (a crash mid-append) is cut off at open and counted; a record that fails
 * authentication or has a bad header is moved aside as a whole file (QUEUE_PATH.corrupt-N), reported by
 * queue_open in *damaged, and the queue starts empty: corrupted data is never replayed, and never silently
 * lost (it stays on disk for an operator). The queue is capped (QUEUE_MAX_EVENTS / QUEUE_MAX_BYTES): a full
 * queue refuses with HF_ETOOBIG and the caller must not do the thing it could not record.
 *
 * Not thread-safe: the daemon's main loop owns it. One process at a time: queue_open takes an flock on
 * QUEUE_PATH.lock and fails with HF_EIO while another process holds it. The file format and the crash-safety
 * reasoning are described at the top of queue.c.
 */
#ifndef KIOSK_QUEUE_H
#define KIOSK_QUEUE_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define QUEUE_KEY_LEN 32
#define QUEUE_EVENT_MAX (16 * 1024)	/* bytes of one event's JSON */
#define QUEUE_MAX_EVENTS 20000
#define QUEUE_MAX_BYTES (64L * 1024 * 1024)

struct queue;

struct queue_damage {
	int torn_tail;		/* 0 or 1: a partly written last record was cut off */
	int corrupt_files;	/* 0 or 1: the file failed authentication and was moved aside */
	char moved_to[256];	/* where, when corrupt_files */
};

/* Opens (creating) the queue at path with the key. HF_EIO when the file cannot be opened or written (or
 * is locked by another process). damaged (may be NULL) is always filled: damage is repaired, not an error.
 * An ack file that fails authentication is moved aside too (logged): events are then sent again, which
 * core's idempotence on event ids makes harmless. */
HF_MUST_CHECK hf_err queue_open(const char *path, const uint8_t key[QUEUE_KEY_LEN], struct queue **out,
				struct queue_damage *damaged);
void queue_close(struct queue *q);

/* Seals, appends and fsyncs one event (a JSON text of at most QUEUE_EVENT_MAX bytes). *seq_out gets its
 * sequence number. HF_ETOOBIG when the queue is full or the event too long; HF_EINVAL for an empty event
 * or one containing a NUL byte; HF_EIO on a write error (nothing half-written remains: the file is truncated
 * back; if even that fails, every later append is refused with HF_EIO). */
HF_MUST_CHECK hf_err queue_append(struct queue *q, const char *json, size_t len, uint64_t *seq_out);

/* Events not yet acknowledged, oldest first. */
size_t queue_depth(const struct queue *q);
/* Age in seconds of the oldest unacknowledged event (0 when empty). */
int64_t queue_oldest_age_s(const struct queue *q);

/* Visits up to max unacknowledged events, oldest first: fn gets each one's sequence number and JSON
 * (NUL-terminated, valid during the call; fn must not call queue functions). Returns how many were visited
 * (fewer than available only if a record became unreadable since open, which is logged). */
typedef void (*queue_visit_fn)(void *ud, uint64_t seq, const char *json, size_t len);
size_t queue_peek(struct queue *q, size_t max, queue_visit_fn fn, void *ud);

/* Marks every event up to and including seq as done (durably). Compacts when nothing is left (or when a
 * large acknowledged prefix is more than half the file). An seq already acknowledged is HF_OK; one never
 * handed out is HF_EINVAL; HF_EIO when the ack file cannot be written. */
HF_MUST_CHECK hf_err queue_ack(struct queue *q, uint64_t seq);

/* A new random queue key (64 hex digits and a newline), written to path with mode 0600 unless it exists
 * (never replacing one); then read into key. HF_EINVAL when the file is not a regular file readable by its
 * owner only, or does not hold a key; HF_EIO when it cannot be read or written. */
HF_MUST_CHECK hf_err queue_key_load_or_create(const char *path, uint8_t key[QUEUE_KEY_LEN]);

#endif
