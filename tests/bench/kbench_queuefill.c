/* kbench_queuefill.c - fills a kiosk's offline queue for `make bench` O, as the daemon would have filled it
 * during a day without core: through the kiosk's own queue module (kiosk/queue.c: sealed, fsync'd records),
 * with the key the daemon uses (key.dir/queue.key, made here with the daemon's function if it is not there).
 *
 *   kbench_queuefill QUEUE_KEY QUEUE_PATH EVENTS
 *
 * EVENTS: one event's JSON per line (tests/bench/kiosk_load.c events writes them in kiosk/flow.c's shapes).
 * Run it while the daemon is stopped (queue_open takes the queue's lock). Prints "BENCH mode=queuefill
 * appended=N depth=N seconds=S"; exit 0 when every event was appended, 1 otherwise, 2 on bad arguments.
 */
#include "hf_base.h"
#include "queue.h"

#include "hf_crypto.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: kbench_queuefill QUEUE_KEY QUEUE_PATH EVENTS\n");
		return 2;
	}
	if (hf_crypto_init() != HF_OK)
		return 1;
	uint8_t key[QUEUE_KEY_LEN];
	if (queue_key_load_or_create(argv[1], key) != HF_OK) {
		fprintf(stderr, "kbench_queuefill: cannot read or create the queue key %s\n", argv[1]);
		return 1;
	}
	struct queue *q = NULL;
	struct queue_damage dmg;
	hf_err err = queue_open(argv[2], key, &q, &dmg);
	sodium_memzero(key, sizeof(key));
	if (err != HF_OK) {
		fprintf(stderr, "kbench_queuefill: cannot open the queue %s (%s)\n", argv[2], hf_err_name(err));
		return 1;
	}
	FILE *f = fopen(argv[3], "re");
	if (!f) {
		fprintf(stderr, "kbench_queuefill: cannot read %s\n", argv[3]);
		queue_close(q);
		return 1;
	}
	char *line = hf_xmalloc(QUEUE_EVENT_MAX + 2);
	size_t appended = 0, bad = 0;
	int64_t t0 = hf_mono_us();
	while (fgets(line, QUEUE_EVENT_MAX + 2, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		uint64_t seq = 0;
		if (queue_append(q, line, strlen(line), &seq) == HF_OK)
			appended++;
		else
			bad++;
	}
	double secs = (double)(hf_mono_us() - t0) / 1e6;
	printf("BENCH mode=queuefill appended=%zu refused=%zu depth=%zu seconds=%.3f\n", appended, bad, queue_depth(q),
	       secs);
	free(line);
	fclose(f);
	queue_close(q);
	return bad == 0 && appended > 0 ? 0 : 1;
}
