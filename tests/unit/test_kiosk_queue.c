/* test_kiosk_queue.c - the kiosk's offline queue: what was stored survives, in order, exactly once.
 *
 * The queue is what makes an offline collection safe: an event the kiosk said it stored must come back
 * after a crash, once, in order, and damaged or foreign data must never be replayed. The checks here are
 * the ones an agent or an auditor would notice: events lost or duplicated after a restart, a torn write
 * that poisons the queue, a flipped byte that is replayed, a file readable in clear, sequence numbers
 * going backwards, and a child process killed (SIGKILL) at random points while appending and acking.
 * This file #includes kiosk/queue.c to lower the caps (20,000 fsync'd appends would take minutes).
 */
#include "hf_base.h"

#include "../../kiosk/queue.c"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "hf_test.h"

static const uint8_t g_key[QUEUE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					       17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

#define MAX_SEEN 4096

/* What queue_peek visited, in order. */
struct seen {
	size_t n;
	uint64_t seq[MAX_SEEN];
	char *json[MAX_SEEN];
	bool terminated; /* every json was NUL-terminated at len */
};

static void seen_visit(void *ud, uint64_t seq, const char *json, size_t len)
{
	struct seen *s = ud;
	HF_ASSERT(s->n < MAX_SEEN);
	if (json[len] != '\0')
		s->terminated = false;
	s->seq[s->n] = seq;
	s->json[s->n] = hf_xstrndup(json, len);
	s->n++;
}

static void seen_init(struct seen *s)
{
	s->n = 0;
	s->terminated = true;
}

static void seen_free(struct seen *s)
{
	for (size_t k = 0; k < s->n; k++)
		free(s->json[k]);
	s->n = 0;
}

static void peek_all(struct queue *q, struct seen *s)
{
	seen_init(s);
	queue_peek(q, MAX_SEEN, seen_visit, s);
}

static void qpath(const char *dir, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	HF_ASSERT(n > 0 && (size_t)n < cap);
}

static int64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static struct queue *open_ok(const char *path, const uint8_t *key, struct queue_damage *d)
{
	struct queue *q = NULL;
	struct queue_damage scratch;
	hf_err err = queue_open(path, key, &q, d ? d : &scratch);
	HF_CHECK_MSG(err == HF_OK, "queue_open: %s", hf_err_name(err));
	HF_ASSERT(q != NULL);
	return q;
}

static uint64_t append_ok(struct queue *q, const char *json)
{
	uint64_t seq = 0;
	hf_err err = queue_append(q, json, strlen(json), &seq);
	HF_CHECK_MSG(err == HF_OK, "append %s: %s", json, hf_err_name(err));
	return seq;
}

/* The whole file read into memory (owned; *len set). */
static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	HF_ASSERT(fd >= 0);
	struct stat sb;
	HF_ASSERT(fstat(fd, &sb) == 0);
	uint8_t *p = hf_xmalloc((size_t)sb.st_size + 1);
	HF_ASSERT(pread_all(fd, p, (size_t)sb.st_size, 0) == HF_OK);
	close(fd);
	*len = (size_t)sb.st_size;
	return p;
}

static void test_round_trip(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	struct queue *q = open_ok(path, g_key, NULL);
	HF_CHECK(queue_depth(q) == 0);
	HF_CHECK(queue_oldest_age_s(q) == 0);
	uint64_t s1 = append_ok(q, "{\"id\":\"a\"}");
	uint64_t s2 = append_ok(q, "{\"id\":\"b\"}");
	uint64_t s3 = append_ok(q, "{\"id\":\"c\"}");
	HF_CHECK(s1 == 1 && s2 == 2 && s3 == 3);
	HF_CHECK(queue_depth(q) == 3);
	HF_CHECK(queue_oldest_age_s(q) >= 0 && queue_oldest_age_s(q) <= 2);

	struct seen s;
	seen_init(&s);
	HF_CHECK(queue_peek(q, 2, seen_visit, &s) == 2);
	HF_CHECK(s.n == 2 && s.seq[0] == 1 && s.seq[1] == 2 && strcmp(s.json[0], "{\"id\":\"a\"}") == 0 &&
		 strcmp(s.json[1], "{\"id\":\"b\"}") == 0);
	HF_CHECK(s.terminated);
	seen_free(&s);

	HF_CHECK(queue_ack(q, 2) == HF_OK);
	HF_CHECK(queue_depth(q) == 1);
	peek_all(q, &s);
	HF_CHECK(s.n == 1 && s.seq[0] == 3 && strcmp(s.json[0], "{\"id\":\"c\"}") == 0);
	seen_free(&s);
	HF_CHECK_MSG(queue_ack(q, 1) == HF_OK, "an old ack is not an error");
	HF_CHECK_MSG(queue_ack(q, 4) == HF_EINVAL, "acking what was never handed out is refused");
	HF_CHECK(queue_depth(q) == 1);

	uint64_t seq = 0;
	HF_CHECK(queue_append(q, "", 0, &seq) == HF_EINVAL);
	HF_CHECK(queue_append(q, "{\"a\0b\"}", 7, &seq) == HF_EINVAL);

	/* A second process (or daemon) on the same queue is refused while the first holds it. */
	struct queue *q2 = NULL;
	struct queue_damage d;
	HF_CHECK(queue_open(path, g_key, &q2, &d) == HF_EIO && q2 == NULL);
	queue_close(q);
	hf_test_rmtree(dir);
}

static void test_reopen_keeps_events_and_numbers(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	struct queue *q = open_ok(path, g_key, NULL);
	for (int k = 0; k < 5; k++) {
		char json[64];
		snprintf(json, sizeof(json), "{\"id\":\"e%d\"}", k);
		append_ok(q, json);
	}
	HF_CHECK(queue_ack(q, 2) == HF_OK);
	queue_close(q);

	struct queue_damage d;
	q = open_ok(path, g_key, &d);
	HF_CHECK(d.torn_tail == 0 && d.corrupt_files == 0);
	HF_CHECK(queue_depth(q) == 3);
	struct seen s;
	peek_all(q, &s);
	HF_CHECK(s.n == 3 && s.seq[0] == 3 && s.seq[2] == 5 && strcmp(s.json[0], "{\"id\":\"e2\"}") == 0 &&
		 strcmp(s.json[2], "{\"id\":\"e4\"}") == 0);
	seen_free(&s);
	HF_CHECK_MSG(append_ok(q, "{\"id\":\"e5\"}") == 6, "numbering goes on after a restart");

	/* Everything acknowledged: the file is compacted to nothing, and numbering still goes on, also after a
	 * restart (the next number is kept in the ack file). */
	HF_CHECK(queue_ack(q, 6) == HF_OK);
	HF_CHECK(queue_depth(q) == 0);
	HF_CHECK(file_size(path) == 0);
	queue_close(q);
	q = open_ok(path, g_key, &d);
	HF_CHECK(queue_depth(q) == 0);
	HF_CHECK_MSG(append_ok(q, "{\"id\":\"e6\"}") == 7, "no number is reused after compaction and restart");
	queue_close(q);
	hf_test_rmtree(dir);
}

/* Three events, closed; returns the file's size and the offset where the last record starts. */
static void three_events(const char *path, int64_t *size, int64_t *last_off)
{
	struct queue *q = open_ok(path, g_key, NULL);
	append_ok(q, "{\"id\":\"t1\"}");
	append_ok(q, "{\"id\":\"t2\"}");
	*last_off = q->size;
	append_ok(q, "{\"id\":\"t3\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
	*size = q->size;
	queue_close(q);
	HF_ASSERT(file_size(path) == *size);
}

static void check_two_left(const char *path, const char *what)
{
	struct queue_damage d;
	struct queue *q = open_ok(path, g_key, &d);
	HF_CHECK_MSG(d.torn_tail == 1 && d.corrupt_files == 0, "%s: torn tail cut and counted", what);
	struct seen s;
	peek_all(q, &s);
	HF_CHECK_MSG(s.n == 2 && s.seq[0] == 1 && s.seq[1] == 2 && strcmp(s.json[1], "{\"id\":\"t2\"}") == 0,
		     "%s: earlier events intact", what);
	seen_free(&s);
	HF_CHECK_MSG(append_ok(q, "{\"id\":\"t3b\"}") == 3, "%s: the cut record's number was never handed out", what);
	queue_close(q);
	q = open_ok(path, g_key, &d);
	HF_CHECK_MSG(d.torn_tail == 0 && d.corrupt_files == 0 && queue_depth(q) == 3, "%s: clean after the cut", what);
	queue_close(q);
}

static void test_torn_tail(void)
{
	static const struct {
		const char *what;
		int64_t keep_from_last; /* bytes of the last record kept; -1: zeros instead of its body */
	} cuts[] = {{"mid-header", 10}, {"mid-ciphertext", REC_HDR_LEN + 20}, {"one byte short", -2}, {"zeroed body", -1}};
	for (size_t k = 0; k < HF_ARRAY_LEN(cuts); k++) {
		char dir[64], path[128];
		hf_test_tmpdir(dir, sizeof(dir));
		qpath(dir, "q", path, sizeof(path));
		int64_t size, last_off;
		three_events(path, &size, &last_off);
		if (cuts[k].keep_from_last >= 0) {
			HF_ASSERT(truncate(path, last_off + cuts[k].keep_from_last) == 0);
		} else if (cuts[k].keep_from_last == -2) {
			HF_ASSERT(truncate(path, size - 1) == 0);
		} else {
			/* A crash that extended the file without writing its data (zeros where the record was). */
			HF_ASSERT(truncate(path, last_off) == 0 && truncate(path, size) == 0);
		}
		check_two_left(path, cuts[k].what);
		hf_test_rmtree(dir);
	}
}

/* Found by fuzzing: the ack file counts three records but the file has lost its last one (damage, not a
 * crash: appends return after their fsync). New records must still follow the last one in the file, or the
 * next open takes the gap for corruption and moves every good event aside. */
static void test_ack_file_ahead_of_the_file(void)
{
	for (int all_acked = 0; all_acked < 2; all_acked++) {
		char dir[64], path[128];
		hf_test_tmpdir(dir, sizeof(dir));
		qpath(dir, "q", path, sizeof(path));
		int64_t size, last_off;
		three_events(path, &size, &last_off);
		struct queue *q = open_ok(path, g_key, NULL);
		HF_CHECK(queue_ack(q, all_acked ? 2 : 1) == HF_OK);
		queue_close(q);
		HF_ASSERT(truncate(path, last_off) == 0); /* record 3 gone, whole */
		struct queue_damage d;
		q = open_ok(path, g_key, &d);
		HF_CHECK(queue_depth(q) == (all_acked ? 0u : 1u));
		uint64_t seq = append_ok(q, "{\"id\":\"next\"}");
		HF_CHECK_MSG(seq == (all_acked ? 4u : 3u), "all acked=%d: new record numbered %llu", all_acked,
			     (unsigned long long)seq);
		queue_close(q);
		q = open_ok(path, g_key, &d);
		struct seen s;
		peek_all(q, &s);
		HF_CHECK_MSG(d.corrupt_files == 0 && d.torn_tail == 0 && s.n == (all_acked ? 1u : 2u) && s.seq[s.n - 1] == seq,
			     "all acked=%d: the queue stays readable (%zu events)", all_acked, s.n);
		seen_free(&s);
		queue_close(q);
		hf_test_rmtree(dir);
	}
}

static void flip_byte(const char *path, int64_t off)
{
	int fd = open(path, O_RDWR);
	HF_ASSERT(fd >= 0);
	uint8_t b;
	HF_ASSERT(pread(fd, &b, 1, off) == 1);
	b ^= 0x40;
	HF_ASSERT(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}

static void check_moved_aside(const char *path, int64_t size, const struct queue_damage *d, struct queue *q,
			      const char *what)
{
	HF_CHECK_MSG(d->corrupt_files == 1 && d->torn_tail == 0, "%s: damage reported", what);
	HF_CHECK_MSG(queue_depth(q) == 0, "%s: nothing of it is replayed", what);
	char want[256];
	snprintf(want, sizeof(want), "%s.corrupt-1", path);
	HF_CHECK_MSG(strcmp(d->moved_to, want) == 0, "%s: moved to %s", what, d->moved_to);
	HF_CHECK_MSG(file_size(want) == size, "%s: kept whole for an operator", what);
	HF_CHECK_MSG(file_size(path) == 0, "%s: a fresh file in its place", what);
}

static void test_flipped_byte_moves_file_aside(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	int64_t size, last_off;
	three_events(path, &size, &last_off);
	flip_byte(path, last_off - 5); /* inside the second record's tag */
	struct queue_damage d;
	struct queue *q = open_ok(path, g_key, &d);
	check_moved_aside(path, size, &d, q, "flipped byte");
	HF_CHECK_MSG(append_ok(q, "{\"id\":\"after\"}") > 3, "numbers of the moved file are not reused");
	queue_close(q);

	/* A flipped byte in a header (the length) and a record dropped from the middle: damage too. */
	char path2[128];
	qpath(dir, "q2", path2, sizeof(path2));
	three_events(path2, &size, &last_off);
	flip_byte(path2, 13);
	q = open_ok(path2, g_key, &d);
	HF_CHECK_MSG(d.corrupt_files == 1 && queue_depth(q) == 0, "bad header moved aside");
	queue_close(q);

	/* A damaged length that makes a record seem to run past the end is damage, not a torn tail: in the
	 * middle record (the good one after it must not be cut off silently) or in the last. */
	for (int which = 0; which < 2; which++) {
		char p[128];
		qpath(dir, which ? "q2b" : "q2a", p, sizeof(p));
		three_events(p, &size, &last_off);
		size_t n;
		uint8_t *all = slurp(p, &n);
		int64_t second = REC_HDR_LEN + (int64_t)get_u32(all + 12);
		free(all);
		int64_t at = which ? last_off : second;
		int fd = open(p, O_RDWR);
		uint8_t len4[4];
		HF_ASSERT(fd >= 0 && pread(fd, len4, 4, at + 12) == 4);
		put_u32(len4, get_u32(len4) + 200);
		HF_ASSERT(pwrite(fd, len4, 4, at + 12) == 4);
		close(fd);
		q = open_ok(p, g_key, &d);
		HF_CHECK_MSG(d.corrupt_files == 1 && d.torn_tail == 0 && queue_depth(q) == 0,
			     "length damaged in the %s record: moved aside", which ? "last" : "middle");
		queue_close(q);
	}

	char path3[128];
	qpath(dir, "q3", path3, sizeof(path3));
	three_events(path3, &size, &last_off);
	size_t len;
	uint8_t *all = slurp(path3, &len);
	int64_t first_len = REC_HDR_LEN + (int64_t)get_u32(all + 12);
	int fd = open(path3, O_WRONLY | O_TRUNC);
	HF_ASSERT(fd >= 0 && write(fd, all + first_len, len - (size_t)first_len) == (ssize_t)(len - (size_t)first_len));
	HF_ASSERT(write(fd, all, (size_t)first_len) == first_len); /* records 2, 3, 1: all authentic, out of order */
	close(fd);
	free(all);
	q = open_ok(path3, g_key, &d);
	HF_CHECK_MSG(d.corrupt_files == 1 && queue_depth(q) == 0, "records out of order moved aside");
	queue_close(q);
	hf_test_rmtree(dir);
}

static void test_wrong_key(void)
{
	char dir[64], path[128], ack[160];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	snprintf(ack, sizeof(ack), "%s.ack", path);
	int64_t size, last_off;
	three_events(path, &size, &last_off);
	struct queue *q = open_ok(path, g_key, NULL);
	HF_CHECK(queue_ack(q, 1) == HF_OK);
	queue_close(q);
	HF_CHECK(file_size(ack) > 0);

	uint8_t other[QUEUE_KEY_LEN];
	memcpy(other, g_key, sizeof(other));
	other[7] ^= 1;
	struct queue_damage d;
	q = open_ok(path, other, &d);
	check_moved_aside(path, size, &d, q, "wrong key");
	char ack_aside[200];
	snprintf(ack_aside, sizeof(ack_aside), "%s.corrupt-1", ack);
	HF_CHECK_MSG(file_size(ack_aside) > 0 && file_size(ack) < 0, "the ack file under another key moved aside too");
	HF_CHECK_MSG(append_ok(q, "{\"id\":\"new\"}") > 3, "numbers of the moved file are not reused");
	queue_close(q);
	hf_test_rmtree(dir);
}

static void test_caps(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	struct queue *q = open_ok(path, g_key, NULL);
	uint64_t seq = 0;

	/* One event of exactly the maximum comes back whole; one byte more is refused. */
	char *big = hf_xmalloc(QUEUE_EVENT_MAX + 2);
	memset(big, 'x', QUEUE_EVENT_MAX + 1);
	big[0] = '"';
	big[QUEUE_EVENT_MAX - 1] = '"';
	big[QUEUE_EVENT_MAX + 1] = '\0';
	HF_CHECK(queue_append(q, big, QUEUE_EVENT_MAX + 1, &seq) == HF_ETOOBIG);
	HF_CHECK(queue_depth(q) == 0);
	HF_CHECK(queue_append(q, big, QUEUE_EVENT_MAX, &seq) == HF_OK);
	struct seen s;
	peek_all(q, &s);
	HF_CHECK(s.n == 1 && strlen(s.json[0]) == QUEUE_EVENT_MAX && memcmp(s.json[0], big, QUEUE_EVENT_MAX) == 0);
	seen_free(&s);
	HF_CHECK(queue_ack(q, seq) == HF_OK);

	/* Count cap. */
	queue_max_events = 4;
	for (int k = 0; k < 4; k++)
		append_ok(q, "{\"id\":\"n\"}");
	HF_CHECK(queue_append(q, "{\"id\":\"n\"}", 10, &seq) == HF_ETOOBIG);
	HF_CHECK(queue_depth(q) == 4);
	HF_CHECK(queue_ack(q, 3) == HF_OK); /* the first of the four */
	HF_CHECK_MSG(queue_append(q, "{\"id\":\"n\"}", 10, &seq) == HF_OK, "room again once one is acknowledged");
	queue_max_events = QUEUE_MAX_EVENTS;
	HF_CHECK(queue_ack(q, seq) == HF_OK);
	HF_CHECK(file_size(path) == 0);

	/* Byte cap: three 1000-byte events fit, a fourth does not; once one is acknowledged the file is
	 * compacted on the next append instead of refusing. */
	int64_t rec = REC_HDR_LEN + REC_TS_LEN + 1000 + REC_TAG_LEN;
	queue_max_bytes = 3 * rec + 10;
	big[1000] = '\0';
	for (int k = 0; k < 3; k++)
		HF_CHECK(queue_append(q, big, 1000, &seq) == HF_OK);
	HF_CHECK(queue_append(q, big, 1000, &seq) == HF_ETOOBIG);
	HF_CHECK(queue_depth(q) == 3 && file_size(path) == 3 * rec);
	HF_CHECK(queue_ack(q, seq - 2) == HF_OK);
	HF_CHECK(queue_append(q, big, 1000, &seq) == HF_OK);
	HF_CHECK(queue_depth(q) == 3 && file_size(path) == 3 * rec);
	queue_max_bytes = QUEUE_MAX_BYTES;
	queue_close(q);

	struct queue_damage d;
	q = open_ok(path, g_key, &d);
	peek_all(q, &s);
	HF_CHECK(d.torn_tail == 0 && d.corrupt_files == 0 && s.n == 3 && s.seq[2] == seq && strlen(s.json[0]) == 1000);
	seen_free(&s);
	queue_close(q);
	free(big);
	hf_test_rmtree(dir);
}

static void test_partial_compaction(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	struct queue *q = open_ok(path, g_key, NULL);
	queue_compact_min_bytes = 1;
	for (int k = 0; k < 6; k++)
		append_ok(q, "{\"id\":\"p\"}");
	int64_t before = file_size(path);
	HF_CHECK(queue_ack(q, 2) == HF_OK);
	HF_CHECK_MSG(file_size(path) == before, "a third of the file acknowledged: not worth rewriting");
	HF_CHECK(queue_ack(q, 4) == HF_OK);
	HF_CHECK_MSG(file_size(path) == before / 3, "two thirds acknowledged: dropped");
	struct seen s;
	peek_all(q, &s);
	HF_CHECK(s.n == 2 && s.seq[0] == 5 && s.seq[1] == 6);
	seen_free(&s);
	HF_CHECK(append_ok(q, "{\"id\":\"p\"}") == 7);
	queue_close(q);
	queue_compact_min_bytes = 1024 * 1024;
	struct queue_damage d;
	q = open_ok(path, g_key, &d);
	peek_all(q, &s);
	HF_CHECK(d.torn_tail == 0 && d.corrupt_files == 0 && s.n == 3 && s.seq[0] == 5 && s.seq[2] == 7);
	seen_free(&s);
	queue_close(q);
	hf_test_rmtree(dir);
}

static void test_no_plaintext_on_disk(void)
{
	char dir[64], path[128], ack[160];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	snprintf(ack, sizeof(ack), "%s.ack", path);
	struct queue *q = open_ok(path, g_key, NULL);
	static const char marker[] = "Wanjiru-Otieno-0712345678";
	char json[128];
	snprintf(json, sizeof(json), "{\"id\":\"x1\",\"name\":\"%s\"}", marker);
	append_ok(q, json);
	append_ok(q, json);
	HF_CHECK(queue_ack(q, 1) == HF_OK);
	queue_close(q);
	size_t len;
	uint8_t *all = slurp(path, &len);
	HF_CHECK(len > 2 * strlen(json));
	HF_CHECK(memmem(all, len, marker, strlen(marker)) == NULL);
	HF_CHECK(memmem(all, len, "x1", 2) == NULL);
	free(all);
	struct stat sb;
	HF_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0);
	HF_CHECK(stat(ack, &sb) == 0 && (sb.st_mode & 077) == 0);
	hf_test_rmtree(dir);
}

/* A write that fails (here: the file size limit) leaves nothing behind and the queue usable. */
static void test_failed_write_truncated_back(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	struct queue *q = open_ok(path, g_key, NULL);
	append_ok(q, "{\"id\":\"w1\"}");
	int64_t before = file_size(path);
	struct rlimit old;
	HF_ASSERT(getrlimit(RLIMIT_FSIZE, &old) == 0);
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	struct rlimit lim = {.rlim_cur = (rlim_t)before + 20, .rlim_max = old.rlim_max};
	HF_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	uint64_t seq = 0;
	hf_err err = queue_append(q, "{\"id\":\"w2\"}", 11, &seq);
	HF_ASSERT(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, old_handler);
	HF_CHECK_MSG(err == HF_EIO, "append past the limit: %s", hf_err_name(err));
	HF_CHECK_MSG(file_size(path) == before, "nothing half-written remains");
	HF_CHECK(append_ok(q, "{\"id\":\"w3\"}") == 2);
	queue_close(q);
	struct queue_damage d;
	q = open_ok(path, g_key, &d);
	struct seen s;
	peek_all(q, &s);
	HF_CHECK(d.torn_tail == 0 && d.corrupt_files == 0 && s.n == 2 && strcmp(s.json[1], "{\"id\":\"w3\"}") == 0);
	seen_free(&s);
	queue_close(q);
	hf_test_rmtree(dir);
}

static void test_key_file(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "queue.key", path, sizeof(path));
	uint8_t k1[QUEUE_KEY_LEN], k2[QUEUE_KEY_LEN];
	HF_CHECK(queue_key_load_or_create(path, k1) == HF_OK);
	struct stat sb;
	HF_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size == 65);
	HF_CHECK(queue_key_load_or_create(path, k2) == HF_OK);
	HF_CHECK_MSG(memcmp(k1, k2, sizeof(k1)) == 0, "the key is created once, then read");
	HF_CHECK(!all_zero(k1, sizeof(k1)));
	HF_CHECK(chmod(path, 0644) == 0);
	HF_CHECK_MSG(queue_key_load_or_create(path, k2) == HF_EINVAL, "a key others can read is refused");
	char bad[128];
	hf_test_write_file(dir, "bad.key", "not a key\n", 0600, bad, sizeof(bad));
	HF_CHECK(queue_key_load_or_create(bad, k2) == HF_EINVAL);
	hf_test_rmtree(dir);
}

/* ---- crash simulation ------------------------------------------------------------------------------ */

enum { MSG_APPENDED = 1, MSG_ACK_START, MSG_ACK_DONE, MSG_FAILED };

struct msg {
	uint32_t type;
	uint32_t pad;
	uint64_t seq;
	uint64_t id;
};

static void child_send(int fd, uint32_t type, uint64_t seq, uint64_t id)
{
	struct msg m = {.type = type, .seq = seq, .id = id};
	/* Smaller than PIPE_BUF: written whole or not at all, even when SIGKILL comes. */
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(3);
}

/* Appends events ev-<id> forever, reporting each after queue_append returned; now and then acknowledges
 * the one two back, or all of them (which compacts the file), announcing the ack before and after. */
HF_NORETURN static void child_run(const char *path, int fd, uint64_t first_id, unsigned seed)
{
	queue_compact_min_bytes = 1 + seed % 512; /* partial compaction too, at varying points */
	struct queue *q = NULL;
	struct queue_damage d;
	if (queue_open(path, g_key, &q, &d) != HF_OK)
		child_send(fd, MSG_FAILED, 0, 0), _exit(1);
	uint64_t last = 0, prev = 0;
	for (uint64_t id = first_id;; id++) {
		char json[64];
		int n = snprintf(json, sizeof(json), "{\"id\":\"ev-%08llu\"}", (unsigned long long)id);
		uint64_t seq;
		if (queue_append(q, json, (size_t)n, &seq) != HF_OK)
			child_send(fd, MSG_FAILED, 0, id), _exit(1);
		child_send(fd, MSG_APPENDED, seq, id);
		prev = last;
		last = seq;
		uint64_t target = (id + seed) % 11 == 5 ? last : (id + seed) % 4 == 1 ? prev : 0;
		if (target) {
			child_send(fd, MSG_ACK_START, target, 0);
			if (queue_ack(q, target) != HF_OK)
				child_send(fd, MSG_FAILED, target, 0), _exit(1);
			child_send(fd, MSG_ACK_DONE, target, 0);
		}
	}
}

/* Reads one message, waiting at most until deadline_ms; false at end of file or on timeout. */
static bool read_msg(int fd, struct msg *m, int64_t deadline_ms)
{
	size_t got = 0;
	while (got < sizeof(*m)) {
		int64_t left = deadline_ms - hf_mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		ssize_t n = read(fd, (char *)m + got, sizeof(*m) - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

struct model {
	size_t n;
	uint64_t seq[MAX_SEEN], id[MAX_SEEN];
};

static void model_drop_upto(struct model *m, uint64_t seq)
{
	size_t k = 0;
	while (k < m->n && m->seq[k] <= seq)
		k++;
	memmove(m->seq, m->seq + k, (m->n - k) * sizeof(m->seq[0]));
	memmove(m->id, m->id + k, (m->n - k) * sizeof(m->id[0]));
	m->n -= k;
}

/* L (what the reopened queue holds) must be M (what the child reported), except that an ack the child was
 * doing when killed may or may not have happened, and the append it was doing may or may not be there
 * (at the end, with the next id and a higher number). Returns false with *why set when it is not. */
static int g_inflight_found, g_pending_acks, g_pending_applied;

static bool matches(const struct model *m, uint64_t pending_ack, uint64_t inflight_id, const struct seen *s,
		    const char **why)
{
	g_pending_acks += pending_ack != 0;
	struct model alt = *m;
	if (pending_ack)
		model_drop_upto(&alt, pending_ack);
	const struct model *cands[2] = {m, &alt};
	for (int c = 0; c < (pending_ack ? 2 : 1); c++) {
		const struct model *e = cands[c];
		if (s->n != e->n && s->n != e->n + 1)
			continue;
		bool same = true;
		for (size_t k = 0; k < e->n && same; k++) {
			char want[64];
			snprintf(want, sizeof(want), "{\"id\":\"ev-%08llu\"}", (unsigned long long)e->id[k]);
			same = s->seq[k] == e->seq[k] && strcmp(s->json[k], want) == 0;
		}
		if (!same)
			continue;
		if (s->n == e->n + 1) {
			char want[64];
			snprintf(want, sizeof(want), "{\"id\":\"ev-%08llu\"}", (unsigned long long)inflight_id);
			uint64_t floor = e->n ? e->seq[e->n - 1] : 0;
			if (strcmp(s->json[e->n], want) != 0 || s->seq[e->n] <= floor) {
				*why = "an extra event that is not the one being appended";
				return false;
			}
			g_inflight_found++;
		}
		g_pending_applied += c == 1 && e->n != m->n;
		return true;
	}
	*why = "events lost, duplicated or out of order";
	return false;
}

static void test_crash_at_random_points(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	qpath(dir, "q", path, sizeof(path));
	unsigned seed = (unsigned)hf_now_ms();
	printf("crash test seed=%u\n", seed);
	srand(seed);
	static struct model m;
	m.n = 0;
	uint64_t next_id = 1, max_seq = 0;
	int rounds = 30, torn = 0, reported = 0, failures = 0;
	for (int round = 0; round < rounds && failures == 0; round++) {
		int fds[2];
		HF_ASSERT(pipe(fds) == 0);
		fflush(stdout);
		pid_t pid = fork();
		HF_ASSERT(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_run(path, fds[1], next_id, (unsigned)rand());
		}
		close(fds[1]);
		/* Kill after a random number of reported appends (0: while it opens the queue). */
		int kill_after = rand() % 40;
		int appended = 0;
		uint64_t pending_ack = 0;
		uint64_t inflight = next_id;
		bool child_failed = false;
		struct msg msg;
		int64_t deadline = hf_mono_ms() + 60000;
		bool killed = false;
		while (true) {
			if (!killed && appended >= kill_after) {
				kill(pid, SIGKILL);
				killed = true;
			}
			/* After the kill, what the child wrote before dying is still in the pipe: read it to the end. */
			if (!read_msg(fds[0], &msg, deadline))
				break;
			if (msg.type == MSG_FAILED) {
				child_failed = true;
			} else if (msg.type == MSG_APPENDED) {
				if (msg.seq <= max_seq || m.n >= MAX_SEEN - 1) {
					HF_CHECK_MSG(msg.seq > max_seq, "round %d: sequence went backwards (%llu after %llu)", round,
						     (unsigned long long)msg.seq, (unsigned long long)max_seq);
					failures++;
				}
				if (m.n < MAX_SEEN - 1) {
					m.seq[m.n] = msg.seq;
					m.id[m.n] = msg.id;
					m.n++;
				}
				max_seq = msg.seq;
				inflight = msg.id + 1;
				appended++;
				reported++;
			} else if (msg.type == MSG_ACK_START) {
				pending_ack = msg.seq;
			} else if (msg.type == MSG_ACK_DONE) {
				model_drop_upto(&m, msg.seq);
				pending_ack = 0;
			}
		}
		if (!killed)
			kill(pid, SIGKILL);
		int status;
		HF_ASSERT(waitpid(pid, &status, 0) == pid);
		close(fds[0]);
		HF_CHECK_MSG(!child_failed, "round %d: the child's queue failed", round);
		HF_CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "round %d: the child was killed", round);

		struct queue_damage d;
		struct queue *q = open_ok(path, g_key, &d);
		torn += d.torn_tail;
		if (!HF_CHECK_MSG(d.corrupt_files == 0, "round %d: a kill never looks like corruption", round))
			failures++;
		struct seen s;
		peek_all(q, &s);
		const char *why = "";
		bool ok = matches(&m, pending_ack, inflight, &s, &why);
		if (!HF_CHECK_MSG(ok, "round %d: %s (reported %zu, found %zu)", round, why, m.n, s.n))
			failures++;
		/* The reopened queue is the truth for the next round. */
		m.n = 0;
		for (size_t k = 0; k < s.n && k < MAX_SEEN - 1; k++) {
			m.seq[m.n] = s.seq[k];
			int64_t parsed = 0;
			char digits[9];
			HF_ASSERT(strlen(s.json[k]) == 20);
			memcpy(digits, s.json[k] + 10, 8);
			digits[8] = '\0';
			HF_ASSERT(hf_parse_i64(digits, 0, 99999999, &parsed) == HF_OK);
			uint64_t id = (uint64_t)parsed;
			m.id[m.n++] = id;
			if (s.seq[k] > max_seq)
				max_seq = s.seq[k];
			if (id + 1 > inflight)
				inflight = id + 1;
		}
		next_id = inflight;
		seen_free(&s);
		queue_close(q);
	}
	printf("crash test: %d rounds, %d appends reported, %d torn tails cut, %d kills during an append that "
	       "got stored, %d during an ack (%d of them applied)\n",
	       rounds, reported, torn, g_inflight_found, g_pending_acks, g_pending_applied);
	HF_CHECK_MSG(reported > rounds, "the children did append (%d)", reported);
	hf_test_rmtree(dir);
}

int main(void)
{
	hf_log_set_filter("kiosk.queue.none"); /* the damage tests log errors on purpose */
	HF_TEST(test_round_trip);
	HF_TEST(test_reopen_keeps_events_and_numbers);
	HF_TEST(test_torn_tail);
	HF_TEST(test_flipped_byte_moves_file_aside);
	HF_TEST(test_wrong_key);
	HF_TEST(test_ack_file_ahead_of_the_file);
	HF_TEST(test_caps);
	HF_TEST(test_partial_compaction);
	HF_TEST(test_no_plaintext_on_disk);
	HF_TEST(test_failed_write_truncated_back);
	HF_TEST(test_key_file);
	HF_TEST(test_crash_at_random_points);
	return hf_test_summary();
}
