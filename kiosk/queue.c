/* queue.c - the kiosk's encrypted, fsync'd, append-only store-and-forward queue (see queue.h).
 *
 * Files, all next to PATH:
 *   PATH         records, appended and fdatasync'd one by one:
 *                  magic "HFQ1" | seq u64 LE | len u32 LE | hcrc u32 LE | nonce[24] | ciphertext+tag[len]
 *                the plaintext is the append time (u64 LE, ms since the epoch, so the age of the oldest
 *                event survives a restart) then the event's JSON; the associated data is the record's first
 *                16 bytes (magic, seq, len), so a record cannot be renumbered, resized or moved. hcrc (CRC-32
 *                of those 16 bytes) tells a torn last record (a good header whose body runs past the end
 *                of the file) from a damaged length, which must not pass for a torn tail and have the
 *                good records after it cut off.
 *   PATH.ack     the highest sequence number acknowledged and the next one to hand out, sealed under the
 *                same key; replaced whole (PATH.ack.tmp, fsync, rename, fsync of the directory).
 *   PATH.lock    an flock held while the queue is open: two daemons appending to one file would
 *                interleave records.
 *   PATH.tmp     compaction's new file before it is renamed over PATH.
 *
 * Crash safety, step by step:
 * - append: one pwrite at the end, then fdatasync (it flushes the new size too); queue_append returns only
 *   after both. A crash before that leaves at most a partial last record, which open cuts off (torn tail);
 *   a failed write is truncated back at once, so later records never follow garbage.
 * - ack: the new ack file is complete and durable before the rename makes it current, and the rename is
 *   made durable by the directory fsync; until then the old ack file stands, so at worst a few events are
 *   sent again, which core refuses by event id.
 * - compaction: only acknowledged records (a prefix of the file) are dropped; the unacknowledged rest is
 *   copied byte for byte (records stay valid: their associated data does not depend on the offset) into
 *   PATH.tmp, fsync'd, renamed over PATH, and the directory fsync'd. A crash leaves the old file or the new
 *   one, never a mix. If the directory cannot be synced after the rename, appends are refused from then
 *   on (HF_EIO): an event written into a file whose name might revert would be lost.
 * - sequence numbers: the ack file keeps the next number, so a compacted (empty) file does not restart
 *   them; at open the next number is the larger of that and the last record's + 1, and after a file was
 *   moved aside it is above every number that file used. Only when the ack file itself is damaged and the
 *   queue file empty can numbering restart (logged). Records are checked to follow one another (seq + 1)
 *   when the file is read, so a record dropped from the middle, or records copied in from another file,
 *   count as corruption; for the same reason a new record always follows the file's last one (see load()
 *   for the one case, damage, where the ack file counts records the file no longer has).
 */
#include "hf_base.h"
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_log.h"

#define PLACE "kiosk.queue"

#define REC_MAGIC "HFQ1"
#define REC_AD_LEN 16 /* magic, seq, len */
#define REC_CRC_LEN 4
#define REC_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define REC_NONCE_AT (REC_AD_LEN + REC_CRC_LEN)
#define REC_HDR_LEN (REC_NONCE_AT + REC_NONCE_LEN)
#define REC_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define REC_TS_LEN 8
#define REC_LEN_MIN (REC_TS_LEN + 1 + REC_TAG_LEN)
#define REC_LEN_MAX (REC_TS_LEN + QUEUE_EVENT_MAX + REC_TAG_LEN)

#define ACK_MAGIC "HFQA"
#define ACK_BODY_LEN 16 /* acked u64, next u64 */
#define ACK_FILE_LEN (4 + REC_NONCE_LEN + ACK_BODY_LEN + REC_TAG_LEN)

#define ASIDE_MAX 999

/* Caps, as variables so that the unit test (which #includes this file) can lower them instead of
 * appending 20,000 fsync'd events. */
static size_t queue_max_events = QUEUE_MAX_EVENTS;
static int64_t queue_max_bytes = QUEUE_MAX_BYTES;
/* An acknowledged prefix at least this big, and at least half the file, is dropped even though events
 * remain: a link that never quite drains must not grow the file up to the cap. */
static int64_t queue_compact_min_bytes = 1024 * 1024;

struct rec {
	uint64_t seq;
	int64_t ts_ms;
	int64_t off;
	uint32_t len; /* ciphertext + tag */
};

struct queue {
	char *path, *ack_path, *tmp_path, *ack_tmp_path, *dir;
	int fd;
	int lock_fd;
	uint8_t *key;	/* sodium_malloc'd */
	uint8_t *plain; /* sodium_malloc'd, REC_LEN_MAX + 1: one event in clear, wiped after use */
	uint8_t *io;	/* one sealed record */
	uint64_t acked;
	uint64_t next_seq;
	int64_t size;
	struct rec *recs; /* unacknowledged records: recs[head .. count) */
	size_t head, count, cap;
	bool broken;
};

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int k = 0; k < 8; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int k = 3; k >= 0; k--)
		v = (v << 8) | p[k];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int k = 7; k >= 0; k--)
		v = (v << 8) | p[k];
	return v;
}

static char *path_with(const char *path, const char *suffix)
{
	size_t n = strlen(path) + strlen(suffix) + 1;
	char *s = hf_xmalloc(n);
	snprintf(s, n, "%s%s", path, suffix);
	return s;
}

/* The directory holding path (owned): what must be fsync'd for a new name in it to last. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return hf_xstrdup(".");
	return slash == path ? hf_xstrdup("/") : hf_xstrndup(path, (size_t)(slash - path));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (p[k])
			return false;
	return true;
}

static hf_err pread_all(int fd, void *buf, size_t n, int64_t off)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return HF_EIO;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return HF_OK;
}

static hf_err pwrite_all(int fd, const void *buf, size_t n, int64_t off)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return HF_EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return HF_OK;
}

/* Makes a rename or a new file in dir durable. */
static hf_err dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return HF_EIO;
	int rc = fsync(fd);
	close(fd);
	return rc == 0 ? HF_OK : HF_EIO;
}

/* Renames path to path.corrupt-N (first free N) without ever replacing an earlier one: what was moved
 * aside is evidence for an operator. */
static hf_err move_aside(const char *path, const char *dir, char *moved_to, size_t moved_cap)
{
	for (int n = 1; n <= ASIDE_MAX; n++) {
		char aside[4096];
		int k = snprintf(aside, sizeof(aside), "%s.corrupt-%d", path, n);
		if (k < 0 || (size_t)k >= sizeof(aside))
			return HF_EIO;
		if (renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE) == 0) {
			if (moved_to)
				hf_strlcpy(moved_to, aside, moved_cap);
			return dir_sync(dir);
		}
		if (errno != EEXIST)
			return HF_EIO;
	}
	return HF_EIO;
}

static void rec_push(struct queue *q, struct rec r)
{
	if (q->count == q->cap) {
		/* Reuse the space of records already acknowledged before growing. */
		if (q->head > 0) {
			memmove(q->recs, q->recs + q->head, (q->count - q->head) * sizeof(*q->recs));
			q->count -= q->head;
			q->head = 0;
		}
		if (q->count == q->cap) {
			q->cap = q->cap ? 2 * q->cap : 64;
			q->recs = hf_xrealloc(q->recs, q->cap * sizeof(*q->recs));
		}
	}
	q->recs[q->count++] = r;
}

size_t queue_depth(const struct queue *q)
{
	return q->count - q->head;
}

/* ---- records --------------------------------------------------------------------------------------- */

/* CRC-32 (IEEE 802.3), bit by bit: it covers 16 header bytes per record, so speed does not matter. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t k = 0; k < n; k++) {
		c ^= p[k];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

/* Writes magic, seq, len (the associated data) and their CRC: the first REC_NONCE_AT bytes of a record. */
static void rec_head(uint8_t head[REC_NONCE_AT], uint64_t seq, uint32_t len)
{
	memcpy(head, REC_MAGIC, 4);
	put_u64(head + 4, seq);
	put_u32(head + 12, len);
	put_u32(head + REC_AD_LEN, crc32_ieee(head, REC_AD_LEN));
}

/* Reads and opens the record at r into q->plain (time, JSON, NUL). */
static hf_err rec_open(struct queue *q, const struct rec *r)
{
	size_t total = REC_HDR_LEN + r->len;
	hf_err err = pread_all(q->fd, q->io, total, r->off);
	if (err)
		return err;
	uint8_t head[REC_NONCE_AT];
	rec_head(head, r->seq, r->len);
	unsigned long long plain_len = 0;
	if (memcmp(q->io, head, REC_NONCE_AT) != 0 ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(q->plain, &plain_len, NULL, q->io + REC_HDR_LEN, r->len, head,
						       REC_AD_LEN, q->io + REC_NONCE_AT, q->key) != 0)
		return HF_EINVAL;
	q->plain[plain_len] = '\0';
	return HF_OK;
}

/* ---- the ack file ---------------------------------------------------------------------------------- */

static hf_err ack_write(struct queue *q, uint64_t acked, uint64_t next)
{
	uint8_t file[ACK_FILE_LEN], body[ACK_BODY_LEN];
	memcpy(file, ACK_MAGIC, 4);
	randombytes_buf(file + 4, REC_NONCE_LEN);
	put_u64(body, acked);
	put_u64(body + 8, next);
	crypto_aead_xchacha20poly1305_ietf_encrypt(file + 4 + REC_NONCE_LEN, NULL, body, sizeof(body), file, 4, NULL,
						   file + 4, q->key);
	hf_err err = HF_EIO;
	int fd = open(q->ack_tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (pwrite_all(fd, file, sizeof(file), 0) != HF_OK || fsync(fd) != 0) {
		close(fd);
		goto fail;
	}
	if (close(fd) != 0 || rename(q->ack_tmp_path, q->ack_path) != 0)
		goto fail;
	/* After the rename the new file is current for every reader; only its durability is in question, and
	 * an ack that reverts after a crash only means events sent again. */
	err = dir_sync(q->dir);
	if (err)
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot sync the queue directory after an ack\" errno=%d", errno);
	return err;
fail:
	hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot write the queue ack file\" errno=%d", errno);
	unlink(q->ack_tmp_path);
	return err;
}

/* Reads PATH.ack. A missing file is a new queue; a damaged one (or one sealed under another key) is moved
 * aside and the queue starts from "nothing acknowledged": every event still in the file is sent again and
 * core, idempotent on event ids, applies none twice. */
static hf_err ack_load(struct queue *q)
{
	q->acked = 0;
	q->next_seq = 1;
	int fd = open(q->ack_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? HF_OK : HF_EIO;
	uint8_t file[ACK_FILE_LEN + 1], body[ACK_BODY_LEN];
	ssize_t n = read(fd, file, sizeof(file));
	close(fd);
	bool ok = n == ACK_FILE_LEN && memcmp(file, ACK_MAGIC, 4) == 0 &&
		  crypto_aead_xchacha20poly1305_ietf_decrypt(body, NULL, NULL, file + 4 + REC_NONCE_LEN,
							     ACK_BODY_LEN + REC_TAG_LEN, file, 4, file + 4, q->key) == 0;
	if (ok) {
		uint64_t acked = get_u64(body), next = get_u64(body + 8);
		ok = next >= 1 && acked < next && next < UINT64_MAX / 2;
		if (ok) {
			q->acked = acked;
			q->next_seq = next;
			return HF_OK;
		}
	}
	char moved[4096] = "";
	hf_err err = move_aside(q->ack_path, q->dir, moved, sizeof(moved));
	hf_log(HF_LOG_ERROR, PLACE,
	       "msg=\"queue ack file damaged or under another key; events will be sent again\" moved_to=%s",
	       err ? "(could not move)" : moved);
	return err;
}

/* ---- compaction ------------------------------------------------------------------------------------ */

static hf_err compact(struct queue *q)
{
	int64_t from = queue_depth(q) ? q->recs[q->head].off : q->size;
	int64_t keep = q->size - from;
	hf_err err = HF_EIO;
	int fd = open(q->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	for (int64_t at = 0; at < keep;) {
		size_t chunk = (size_t)(keep - at < (int64_t)REC_HDR_LEN + REC_LEN_MAX ? keep - at : REC_HDR_LEN + REC_LEN_MAX);
		if (pread_all(q->fd, q->io, chunk, from + at) != HF_OK || pwrite_all(fd, q->io, chunk, at) != HF_OK)
			goto fail_fd;
		at += (int64_t)chunk;
	}
	if (fsync(fd) != 0 || rename(q->tmp_path, q->path) != 0)
		goto fail_fd;
	/* From here the new file is PATH: use it whatever happens next. */
	close(q->fd);
	q->fd = fd;
	q->size = keep;
	for (size_t k = q->head; k < q->count; k++)
		q->recs[k].off -= from;
	err = dir_sync(q->dir);
	if (err) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot sync the queue directory after compaction; appends refused\" errno=%d",
		       errno);
		q->broken = true;
	}
	return err;
fail_fd:
	close(fd);
fail:
	hf_log(HF_LOG_ERROR, PLACE, "msg=\"queue compaction failed; the old file stays\" errno=%d", errno);
	unlink(q->tmp_path);
	return err;
}

/* ---- open: scan, cut, move aside ------------------------------------------------------------------- */

enum scan_end { SCAN_CLEAN, SCAN_TORN, SCAN_CORRUPT };

/* Walks the plausible headers from off on (where a damaged record starts) to find the highest sequence
 * number the damaged file used. */
static void headers_max_seq(struct queue *q, int64_t off, int64_t size, uint64_t *max_seq)
{
	uint8_t hdr[REC_HDR_LEN];
	while (size - off >= REC_HDR_LEN && pread_all(q->fd, hdr, sizeof(hdr), off) == HF_OK) {
		uint64_t seq = get_u64(hdr + 4);
		uint32_t len = get_u32(hdr + 12);
		if (memcmp(hdr, REC_MAGIC, 4) != 0 || get_u32(hdr + REC_AD_LEN) != crc32_ieee(hdr, REC_AD_LEN) ||
		    len > REC_LEN_MAX || seq >= UINT64_MAX / 2)
			return;
		if (seq > *max_seq)
			*max_seq = seq;
		off += (int64_t)REC_HDR_LEN + len;
	}
}

/* Reads every record from the start, indexing the unacknowledged ones. *end is where the good records end,
 * *last_seq the last good one's number, *max_seq the highest number in any plausible header (including a
 * record that then fails authentication): after damage, numbering resumes above it. */
static enum scan_end scan(struct queue *q, int64_t size, int64_t *end, uint64_t *last_seq, uint64_t *max_seq)
{
	int64_t off = 0;
	uint64_t prev = 0;
	*max_seq = 0;
	enum scan_end how = SCAN_CLEAN;
	uint8_t hdr[REC_HDR_LEN];
	while (off < size) {
		int64_t rem = size - off;
		if (rem < REC_HDR_LEN) {
			how = SCAN_TORN;
			break;
		}
		if (pread_all(q->fd, hdr, sizeof(hdr), off) != HF_OK) {
			how = SCAN_CORRUPT;
			break;
		}
		uint64_t seq = get_u64(hdr + 4);
		uint32_t len = get_u32(hdr + 12);
		bool plausible = memcmp(hdr, REC_MAGIC, 4) == 0 && get_u32(hdr + REC_AD_LEN) == crc32_ieee(hdr, REC_AD_LEN) &&
				 len >= REC_LEN_MIN && len <= REC_LEN_MAX && seq >= 1 && seq < UINT64_MAX / 2;
		if (plausible && seq > *max_seq)
			*max_seq = seq;
		bool header_ok = plausible && (prev == 0 || seq == prev + 1);
		if (!header_ok || rem < (int64_t)REC_HDR_LEN + len) {
			/* A header cut short by a crash, or one whose record runs past the end: torn. A file
			 * extended by a crash without its data (zeros) is torn too. Anything else is damage. */
			bool tail_zero = !header_ok && all_zero(hdr, sizeof(hdr));
			if (tail_zero) {
				for (int64_t at = off + REC_HDR_LEN; at < size && tail_zero;) {
					size_t chunk = (size_t)(size - at < 4096 ? size - at : 4096);
					tail_zero = pread_all(q->fd, q->io, chunk, at) == HF_OK && all_zero(q->io, chunk);
					at += (int64_t)chunk;
				}
			}
			how = header_ok || tail_zero ? SCAN_TORN : SCAN_CORRUPT;
			break;
		}
		struct rec r = {.seq = seq, .off = off, .len = len};
		if (rec_open(q, &r) != HF_OK) {
			bool last = off + (int64_t)REC_HDR_LEN + len == size;
			how = last && all_zero(q->io + REC_HDR_LEN, len) ? SCAN_TORN : SCAN_CORRUPT;
			break;
		}
		r.ts_ms = (int64_t)get_u64(q->plain);
		if (seq > q->acked)
			rec_push(q, r);
		prev = seq;
		off += (int64_t)REC_HDR_LEN + len;
	}
	if (how == SCAN_CORRUPT)
		headers_max_seq(q, off, size, max_seq);
	*end = off;
	*last_seq = prev;
	return how;
}

static hf_err file_open(struct queue *q)
{
	q->fd = open(q->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->fd < 0)
		return HF_EIO;
	/* The file may be new: its directory entry must be as durable as the first event written to it. */
	return dir_sync(q->dir);
}

static hf_err load(struct queue *q, struct queue_damage *damaged)
{
	hf_err err = file_open(q);
	if (err)
		return err;
	struct stat sb;
	if (fstat(q->fd, &sb) != 0)
		return HF_EIO;
	int64_t end = 0;
	uint64_t last_seq = 0, max_seq = 0;
	/* Appends never grow the file past the cap, so a bigger one is not ours (and is not read into memory). */
	enum scan_end how = sb.st_size > queue_max_bytes ? SCAN_CORRUPT : scan(q, sb.st_size, &end, &last_seq, &max_seq);
	sodium_memzero(q->plain, REC_LEN_MAX + 1);
	if (how == SCAN_TORN) {
		if (ftruncate(q->fd, (off_t)end) != 0 || fdatasync(q->fd) != 0)
			return HF_EIO;
		hf_log(HF_LOG_WARN, PLACE, "msg=\"cut a partly written last record (crash during an append)\" bytes=%lld",
		       (long long)(sb.st_size - end));
		damaged->torn_tail = 1;
	} else if (how == SCAN_CORRUPT) {
		close(q->fd);
		q->fd = -1;
		q->head = q->count = 0;
		/* Numbers of the moved file are not reused, so that an operator comparing it with what core has
		 * cannot confuse two events (a forged huge number only makes numbering jump, within bounds). */
		last_seq = max_seq;
		end = 0;
		err = move_aside(q->path, q->dir, damaged->moved_to, sizeof(damaged->moved_to));
		hf_log(HF_LOG_ERROR, PLACE,
		       "msg=\"queue file failed authentication; moved aside, queue starts empty\" moved_to=%s",
		       err ? "(could not move)" : damaged->moved_to);
		if (err)
			return err;
		damaged->corrupt_files = 1;
		err = file_open(q);
		if (err)
			return err;
	}
	q->size = end;
	if (last_seq + 1 > q->next_seq)
		q->next_seq = last_seq + 1;
	if (end > 0 && q->next_seq > last_seq + 1) {
		/* The ack file counts records that are no longer at the end of the file: lost to damage (an
		 * append returned only after its fsync). Records must follow one another, so the next one is
		 * numbered last + 1, or, when every record left is acknowledged, the file is emptied and the ack
		 * file's number kept. Either way the next number is above every acknowledged one. */
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"records counted by the ack file are missing from the end of the queue\" "
		       "last=%llu next=%llu", (unsigned long long)last_seq, (unsigned long long)q->next_seq);
		if (queue_depth(q) > 0)
			q->next_seq = last_seq + 1;
		else
			err = compact(q);
	}
	return err;
}

hf_err queue_open(const char *path, const uint8_t key[QUEUE_KEY_LEN], struct queue **out,
		  struct queue_damage *damaged)
{
	struct queue_damage scratch;
	if (!damaged)
		damaged = &scratch;
	memset(damaged, 0, sizeof(*damaged));
	if (sodium_init() < 0)
		return HF_EINTERNAL;
	hf_err err = HF_EIO;
	struct queue *q = hf_xcalloc(1, sizeof(*q));
	q->fd = -1;
	q->path = hf_xstrdup(path);
	q->ack_path = path_with(path, ".ack");
	q->tmp_path = path_with(path, ".tmp");
	q->ack_tmp_path = path_with(path, ".ack.tmp");
	q->dir = dir_of(path);
	q->key = sodium_malloc(QUEUE_KEY_LEN);
	q->plain = sodium_malloc(REC_LEN_MAX + 1);
	HF_ASSERT(q->key && q->plain);
	memcpy(q->key, key, QUEUE_KEY_LEN);
	q->io = hf_xmalloc(REC_HDR_LEN + REC_LEN_MAX);

	char *lock_path = path_with(path, ".lock");
	q->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(lock_path);
	if (q->lock_fd < 0 || flock(q->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot lock the queue (in use by another process?)\" errno=%d", errno);
		goto fail;
	}
	/* Leftovers of a crash before a rename: never current, safe to drop. */
	unlink(q->tmp_path);
	unlink(q->ack_tmp_path);
	err = ack_load(q);
	if (err)
		goto fail;
	err = load(q, damaged);
	if (err) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot open the queue file\" errno=%d", errno);
		goto fail;
	}
	*out = q;
	return HF_OK;
fail:
	queue_close(q);
	return err;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	if (q->lock_fd >= 0)
		close(q->lock_fd);
	sodium_free(q->key);
	sodium_free(q->plain);
	free(q->io);
	free(q->recs);
	free(q->path);
	free(q->ack_path);
	free(q->tmp_path);
	free(q->ack_tmp_path);
	free(q->dir);
	free(q);
}

/* ---- append, peek, ack ----------------------------------------------------------------------------- */

hf_err queue_append(struct queue *q, const char *json, size_t len, uint64_t *seq_out)
{
	if (q->broken)
		return HF_EIO;
	if (len > QUEUE_EVENT_MAX)
		return HF_ETOOBIG;
	if (len == 0 || memchr(json, '\0', len))
		return HF_EINVAL;
	if (queue_depth(q) >= queue_max_events)
		return HF_ETOOBIG;
	uint32_t clen = (uint32_t)(REC_TS_LEN + len + REC_TAG_LEN);
	int64_t total = (int64_t)REC_HDR_LEN + clen;
	if (q->size + total > queue_max_bytes) {
		/* Acknowledged records may still take room: drop them before refusing. */
		if ((!queue_depth(q) || q->recs[q->head].off > 0) && q->size > 0 && compact(q) != HF_OK)
			return HF_EIO;
		if (q->size + total > queue_max_bytes)
			return HF_ETOOBIG;
	}
	uint64_t seq = q->next_seq;
	rec_head(q->io, seq, clen);
	randombytes_buf(q->io + REC_NONCE_AT, REC_NONCE_LEN);
	int64_t now = hf_now_ms();
	put_u64(q->plain, (uint64_t)now);
	memcpy(q->plain + REC_TS_LEN, json, len);
	crypto_aead_xchacha20poly1305_ietf_encrypt(q->io + REC_HDR_LEN, NULL, q->plain, REC_TS_LEN + len, q->io,
						   REC_AD_LEN, NULL, q->io + REC_NONCE_AT, q->key);
	sodium_memzero(q->plain, REC_TS_LEN + len);
	if (pwrite_all(q->fd, q->io, (size_t)total, q->size) != HF_OK || fdatasync(q->fd) != 0) {
		int saved = errno;
		/* Nothing half-written may stay: the next record would follow garbage. If even that fails the
		 * file's tail is unknown, and appending more could only bury good events behind it. */
		if (ftruncate(q->fd, (off_t)q->size) != 0 || fdatasync(q->fd) != 0)
			q->broken = true;
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot append to the queue\" errno=%d broken=%d", saved, q->broken);
		return HF_EIO;
	}
	rec_push(q, (struct rec){.seq = seq, .ts_ms = now, .off = q->size, .len = clen});
	q->size += total;
	q->next_seq = seq + 1;
	*seq_out = seq;
	return HF_OK;
}

int64_t queue_oldest_age_s(const struct queue *q)
{
	if (!queue_depth(q))
		return 0;
	int64_t age = (hf_now_ms() - q->recs[q->head].ts_ms) / 1000;
	return age > 0 ? age : 0;
}

size_t queue_peek(struct queue *q, size_t max, queue_visit_fn fn, void *ud)
{
	size_t n = 0;
	for (size_t k = q->head; k < q->count && n < max; k++, n++) {
		const struct rec *r = &q->recs[k];
		if (rec_open(q, r) != HF_OK) {
			/* Checked at open; failing now means the disk or someone changed the file under us. */
			hf_log(HF_LOG_ERROR, PLACE, "msg=\"queue record unreadable since open; replay stops\" seq=%llu",
			       (unsigned long long)r->seq);
			break;
		}
		size_t len = r->len - REC_TS_LEN - REC_TAG_LEN;
		fn(ud, r->seq, (const char *)q->plain + REC_TS_LEN, len);
		sodium_memzero(q->plain, REC_TS_LEN + len + 1);
	}
	return n;
}

hf_err queue_ack(struct queue *q, uint64_t seq)
{
	if (seq <= q->acked)
		return HF_OK;
	if (seq >= q->next_seq)
		return HF_EINVAL; /* never handed out */
	hf_err err = ack_write(q, seq, q->next_seq);
	if (err)
		return err;
	q->acked = seq;
	while (q->head < q->count && q->recs[q->head].seq <= seq)
		q->head++;
	int64_t dropped = queue_depth(q) ? q->recs[q->head].off : q->size;
	bool worth = queue_depth(q) ? (dropped >= queue_compact_min_bytes && 2 * dropped >= q->size) : q->size > 0;
	/* The ack is durable already: a compaction that fails is logged (and, when the file's name might
	 * revert, appends are refused) and tried again at the next ack. */
	if (worth && compact(q) != HF_OK)
		hf_log(HF_LOG_WARN, PLACE, "msg=\"queue not compacted after an ack\" broken=%d", q->broken);
	return HF_OK;
}

/* ---- key file -------------------------------------------------------------------------------------- */

/* Writes a new key to a private temporary file, syncs it and links it to path: link, unlike rename, never
 * replaces a key that appeared meanwhile (a lost key would make every queued event unreadable), and the
 * temporary's unique name keeps two daemons starting at once from writing into one file. */
static hf_err key_create(const char *path)
{
	char *tmp = path_with(path, ".XXXXXX");
	hf_err err = HF_EIO;
	uint8_t key[QUEUE_KEY_LEN];
	char hex[2 * QUEUE_KEY_LEN + 2];
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		goto out;
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	hex[2 * QUEUE_KEY_LEN] = '\n';
	bool written = pwrite_all(fd, hex, 2 * QUEUE_KEY_LEN + 1, 0) == HF_OK && fsync(fd) == 0;
	if (close(fd) != 0 || !written)
		goto out_unlink;
	if (link(tmp, path) != 0 && errno != EEXIST)
		goto out_unlink;
	err = HF_OK;
out_unlink:
	unlink(tmp);
	if (!err) {
		char *dir = dir_of(path);
		err = dir_sync(dir);
		free(dir);
	}
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	free(tmp);
	if (err)
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot create the queue key file\" errno=%d", errno);
	return err;
}

hf_err queue_key_load_or_create(const char *path, uint8_t key[QUEUE_KEY_LEN])
{
	if (sodium_init() < 0)
		return HF_EINTERNAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		hf_err err = key_create(path);
		if (err)
			return err;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot open the queue key file\" errno=%d", errno);
		return HF_EIO;
	}
	hf_err err = HF_EINVAL;
	char hex[2 * QUEUE_KEY_LEN + 4];
	uint8_t bin[QUEUE_KEY_LEN];
	struct stat sb;
	ssize_t n = -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077)) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"queue key file must be a regular file readable by its owner only\"");
		goto out;
	}
	n = read(fd, hex, sizeof(hex));
	size_t len = n > 0 ? (size_t)n : 0;
	while (len > 0 && (hex[len - 1] == '\n' || hex[len - 1] == '\r'))
		len--;
	size_t bin_len = 0;
	const char *hex_end = NULL;
	if (len != 2 * QUEUE_KEY_LEN ||
	    sodium_hex2bin(bin, sizeof(bin), hex, len, NULL, &bin_len, &hex_end) != 0 || bin_len != QUEUE_KEY_LEN ||
	    hex_end != hex + len) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"queue key file must hold 64 hex digits\"");
		goto out;
	}
	memcpy(key, bin, QUEUE_KEY_LEN);
	err = HF_OK;
out:
	close(fd);
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(bin, sizeof(bin));
	return err;
}
