/* kbench_queue.c - the kiosk's offline queue: fsync'd appends and replay, against a bare fsync'd append.
 *
 *   kbench_queue [DIR] [N]     (DIR: where the files go, default a new directory under $TMPDIR or /tmp;
 *                               N: events, default 1000)
 *
 * Prints key=value lines:
 *   baseline_appends_per_s  plain pwrite + fdatasync of records of the same size to a file in DIR: what the
 *                           disk allows for a durable append, the ceiling for the queue
 *   appends_per_s           queue_append (seal + write + fdatasync) of N events of ~300 bytes
 *   append_vs_baseline      the ratio of the two (1.0 = the queue costs nothing beyond the fsync)
 *   replay_per_s            one by one, as the replay loop does when core answers each event: queue_peek of
 *                           one event, then queue_ack of it (ack file written, fsync'd, renamed, directory
 *                           fsync'd; the file compacted after the last)
 *   replay_batch50_per_s    the same with peek of 50 and one ack per batch
 *   reopen_ms               queue_open of a queue holding N events (authenticates every record)
 * Exit status 1 when anything failed or the replay did not give back the N events in order.
 */
#include "hf_base.h"
#include "queue.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_buf.h"
#include "hf_log.h"

#define EVENT_FMT                                                                                              \
	"{\"id\":\"ev-%08d\",\"type\":\"collection\",\"ben_no\":\"B12345678\",\"allowance\":\"AL-2026-11-0042\","     \
	"\"amount\":{\"minor\":400000,\"currency\":\"KES\"},\"kiosk\":\"K0042\",\"agent\":\"A-0007\","                 \
	"\"at\":\"2026-11-28T14:03:11+03:00\",\"fp\":{\"matched\":true,\"finger\":\"right_index\"},"                  \
	"\"receipt\":\"R-2026-000123\",\"check\":\"7QF3K9\",\"pad\":\"0123456789abcdef0123456789abcdef\"}"

struct replay {
	int expect_next;
	uint64_t last_seq;
	bool ok;
};

static void visit(void *ud, uint64_t seq, const char *json, size_t len)
{
	struct replay *r = ud;
	char want[32];
	snprintf(want, sizeof(want), "\"ev-%08d\"", r->expect_next);
	if (len < 20 || memcmp(json + 6, want, strlen(want)) != 0)
		r->ok = false;
	r->expect_next++;
	r->last_seq = seq;
}

static double per_s(int n, int64_t us)
{
	return us > 0 ? (double)n * 1e6 / (double)us : 0.0;
}

int main(int argc, char **argv)
{
	hf_log_set_filter("kiosk.queue");
	char dir[512];
	bool own_dir = argc < 2;
	if (own_dir) {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/kbench_queue_XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			perror("kbench_queue: mkdtemp");
			return 1;
		}
	} else {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	}
	int64_t n64 = 1000;
	if (argc > 2 && hf_parse_i64(argv[2], 1, 20000, &n64) != HF_OK) {
		fprintf(stderr, "kbench_queue: N must be 1..20000\n");
		return 2;
	}
	int n = (int)n64;
	char path[600], base_path[600], key_path[600];
	snprintf(path, sizeof(path), "%s/queue", dir);
	snprintf(base_path, sizeof(base_path), "%s/baseline", dir);
	snprintf(key_path, sizeof(key_path), "%s/queue.key", dir);
	char json[1024];
	int json_len = snprintf(json, sizeof(json), EVENT_FMT, 0);

	/* Baseline: the same number of durable appends of a sealed record's size, nothing else. */
	size_t rec_len = (size_t)json_len + 44 + 8 + 16;
	char *rec = calloc(1, rec_len);
	int fd = open(base_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !rec)
		return 1;
	int64_t t0 = hf_mono_us();
	for (int i = 0; i < n; i++)
		if (pwrite(fd, rec, rec_len, (off_t)i * (off_t)rec_len) != (ssize_t)rec_len || fdatasync(fd) != 0)
			return 1;
	int64_t base_us = hf_mono_us() - t0;
	close(fd);
	unlink(base_path);
	free(rec);

	uint8_t key[QUEUE_KEY_LEN];
	struct queue *q = NULL;
	struct queue_damage d;
	if (queue_key_load_or_create(key_path, key) || queue_open(path, key, &q, &d)) {
		fprintf(stderr, "kbench_queue: cannot open the queue in %s\n", dir);
		return 1;
	}
	t0 = hf_mono_us();
	for (int i = 0; i < n; i++) {
		uint64_t seq;
		json_len = snprintf(json, sizeof(json), EVENT_FMT, i);
		if (queue_append(q, json, (size_t)json_len, &seq) != HF_OK)
			return 1;
	}
	int64_t append_us = hf_mono_us() - t0;
	queue_close(q);

	t0 = hf_mono_us();
	if (queue_open(path, key, &q, &d) || queue_depth(q) != (size_t)n)
		return 1;
	int64_t reopen_us = hf_mono_us() - t0;

	/* Replay one by one: half of the events; the other half in batches of 50. */
	int half = n / 2;
	struct replay r = {.expect_next = 0, .ok = true};
	t0 = hf_mono_us();
	for (int i = 0; i < half; i++) {
		if (queue_peek(q, 1, visit, &r) != 1 || queue_ack(q, r.last_seq) != HF_OK)
			return 1;
	}
	int64_t replay_us = hf_mono_us() - t0;
	t0 = hf_mono_us();
	int batched = 0;
	while (queue_depth(q) > 0) {
		size_t got = queue_peek(q, 50, visit, &r);
		if (got == 0 || queue_ack(q, r.last_seq) != HF_OK)
			return 1;
		batched += (int)got;
	}
	int64_t batch_us = hf_mono_us() - t0;
	struct stat sb;
	bool compacted = stat(path, &sb) == 0 && sb.st_size == 0;
	queue_close(q);

	printf("events=%d\n", n);
	printf("event_bytes=%d\n", json_len);
	printf("baseline_appends_per_s=%.0f\n", per_s(n, base_us));
	printf("appends_per_s=%.0f\n", per_s(n, append_us));
	printf("append_vs_baseline=%.2f\n", base_us > 0 ? (double)base_us / (double)append_us : 0.0);
	printf("replay_per_s=%.0f\n", per_s(half, replay_us));
	printf("replay_batch50_per_s=%.0f\n", per_s(batched, batch_us));
	printf("reopen_ms=%.1f\n", (double)reopen_us / 1000.0);
	printf("replay_in_order=%s\n", r.ok && r.expect_next == n ? "yes" : "no");
	printf("compacted=%s\n", compacted ? "yes" : "no");

	if (own_dir) {
		char p[600];
		static const char *const names[] = {"queue", "queue.ack", "queue.lock", "queue.key"};
		for (size_t k = 0; k < HF_ARRAY_LEN(names); k++) {
			snprintf(p, sizeof(p), "%s/%s", dir, names[k]);
			unlink(p);
		}
		rmdir(dir);
	}
	return r.ok && r.expect_next == n && compacted ? 0 : 1;
}
