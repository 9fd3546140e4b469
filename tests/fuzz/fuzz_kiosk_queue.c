/* fuzz_kiosk_queue.c - libFuzzer target: queue_open (kiosk/queue.c) on arbitrary queue and ack files.
 *
 * The queue file lives on a kiosk's disk, which can be damaged, filled by a crash at any point, or
 * tampered with by someone with the box in their hands. Whatever it holds, opening must succeed (damage is
 * repaired: a torn tail cut, a bad file moved aside), never crash, and never hand out anything that was
 * not sealed under the key. Input: the first byte's bit 0 says whether the next 60 bytes are written as
 * the ack file (QUEUE_PATH.ack); the rest is the queue file. Checked for every input: open succeeds; a file
 * moved aside leaves the queue empty; the events handed out have strictly increasing sequence numbers and
 * NUL-terminated JSON of 1..QUEUE_EVENT_MAX bytes; after an append, a second open finds no damage, the
 * same events and the new one last, with a number above all of them.
 *
 * The key is FIXED (bytes 0..31) so that the committed seeds (made with it) open and a crash reproduces
 * from its input alone. The files live in a private directory made once per process.
 */
#include "hf_base.h"

#include "../../kiosk/queue.c"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) HF_ASSERT(expr)
#define FUZZ_ACK_LEN ACK_FILE_LEN
#define FUZZ_MAX_EVENTS 4096

static char g_dir[64];
static char g_path[128];
static uint8_t g_key[QUEUE_KEY_LEN];

struct fuzz_seen {
	size_t n;
	uint64_t seq[FUZZ_MAX_EVENTS];
	uint8_t digest[FUZZ_MAX_EVENTS][16];
};

static void fuzz_visit(void *ud, uint64_t seq, const char *json, size_t len)
{
	struct fuzz_seen *s = ud;
	FUZZ_CHECK(len >= 1 && len <= QUEUE_EVENT_MAX && json[len] == '\0');
	FUZZ_CHECK(s->n == 0 || seq > s->seq[s->n - 1]);
	if (s->n < FUZZ_MAX_EVENTS) {
		s->seq[s->n] = seq;
		crypto_generichash(s->digest[s->n], 16, (const uint8_t *)json, len, NULL, 0);
		s->n++;
	}
}

static void fuzz_clear_dir(void)
{
	DIR *d = opendir(g_dir);
	HF_ASSERT(d != NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", g_dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

static void fuzz_write(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	HF_ASSERT(fd >= 0);
	HF_ASSERT(pwrite_all(fd, p, n, 0) == HF_OK || n == 0);
	close(fd);
}

static void fuzz_cleanup(void)
{
	fuzz_clear_dir();
	rmdir(g_dir);
}

static void fuzz_setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	HF_ASSERT(sodium_init() >= 0);
	hf_log_set_filter("fuzz.silent");
	for (size_t k = 0; k < QUEUE_KEY_LEN; k++)
		g_key[k] = (uint8_t)k;
	snprintf(g_dir, sizeof(g_dir), "/tmp/hf_fuzz_queue_XXXXXX");
	HF_ASSERT(mkdtemp(g_dir) != NULL);
	snprintf(g_path, sizeof(g_path), "%s/queue", g_dir);
	atexit(fuzz_cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	fuzz_clear_dir();
	if (size > 0 && (data[0] & 1) && size >= 1 + FUZZ_ACK_LEN) {
		char ack[160];
		snprintf(ack, sizeof(ack), "%s.ack", g_path);
		fuzz_write(ack, data + 1, FUZZ_ACK_LEN);
		data += 1 + FUZZ_ACK_LEN;
		size -= 1 + FUZZ_ACK_LEN;
	} else if (size > 0) {
		data++;
		size--;
	}
	fuzz_write(g_path, data, size);

	static struct fuzz_seen first, second;
	struct queue *q = NULL;
	struct queue_damage d;
	FUZZ_CHECK(queue_open(g_path, g_key, &q, &d) == HF_OK);
	FUZZ_CHECK(d.torn_tail == 0 || d.torn_tail == 1);
	FUZZ_CHECK(d.corrupt_files == 0 || (d.corrupt_files == 1 && queue_depth(q) == 0 && d.moved_to[0]));
	first.n = 0;
	FUZZ_CHECK(queue_peek(q, SIZE_MAX, fuzz_visit, &first) == queue_depth(q));
	uint64_t seq = 0;
	FUZZ_CHECK(queue_append(q, "{\"id\":\"fuzz\"}", 13, &seq) == HF_OK);
	FUZZ_CHECK(first.n == 0 || seq > first.seq[first.n - 1]);
	queue_close(q);

	FUZZ_CHECK(queue_open(g_path, g_key, &q, &d) == HF_OK);
	FUZZ_CHECK(d.torn_tail == 0 && d.corrupt_files == 0);
	second.n = 0;
	queue_peek(q, SIZE_MAX, fuzz_visit, &second);
	FUZZ_CHECK(second.n == first.n + 1 && second.seq[first.n] == seq);
	for (size_t k = 0; k < first.n && k < FUZZ_MAX_EVENTS; k++)
		FUZZ_CHECK(first.seq[k] == second.seq[k] && memcmp(first.digest[k], second.digest[k], 16) == 0);
	/* Acknowledging everything empties the file and keeps the numbering. */
	FUZZ_CHECK(queue_ack(q, seq) == HF_OK && queue_depth(q) == 0 && q->size == 0);
	queue_close(q);
	return 0;
}
