/* audit_verify.c - the audit trail benchmark: fill the trail fast, then time audit verify over it.
 *
 * audit verify re-walks every entry (SHA-256 + BLAKE2b per entry, one streamed query), so its cost grows
 * with the trail; the target is 1,000,000 entries in well under 10 s on 2 cores. `fill` appends entries
 * through the real audit_append path (thread stripes, head compare-and-set, checkpoints) in transactions of
 * --batch entries on --threads connections, which also gives the append rate.
 *
 * usage: audit_verify -c CONFIG [-o section.key=value]... fill N [--threads T] [--batch B]
 *        audit_verify -c CONFIG [-o section.key=value]... verify
 * The config is hifadhi-core's (database, crypto.key_dir, audit.*); missing audit keys are created in
 * crypto.key_dir (never overwritten). Prints one line on stdout:
 *   audit_fill entries=N seconds=S rate=R/s threads=T
 *   audit_verify entries=N seconds=S rate=R/s ok=1        (ok=0 and the first problem on stderr if not)
 * Exit 0 on success (for verify: the trail holds), 1 on any error or a trail that does not verify.
 */
#include "hf_base.h"
#include "app.h"
#include "audit.h"
#include "db.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 32
#define MAX_THREADS 64

static void usage(void)
{
	fprintf(stderr, "usage: audit_verify -c CONFIG [-o section.key=value]... fill N [--threads T] [--batch B]\n"
			"       audit_verify -c CONFIG [-o section.key=value]... verify\n");
}

struct filler {
	pthread_t th;
	int64_t first, count; /* record numbers first .. first+count-1 */
	int batch;
	hf_err err;
	/* per batch */
	int64_t next;
	int n;
	json_t *before, *after, *detail;
};

static hf_err fill_tx(struct db *db, void *ctx)
{
	struct filler *f = ctx;
	struct audit_actor who = {"staff", "bench.registrar", "127.0.0.1", "0f8c6a52-3d4b-4e5f-8a9b-0c1d2e3f4a5b"};
	char record[24];
	for (int i = 0; i < f->n; i++) {
		snprintf(record, sizeof(record), "%lld", (long long)(100000000 + f->next + i));
		struct audit_event ev = {"individual.update", "individual", record, "ok", f->before, f->after, f->detail};
		hf_err err = audit_append(db, &who, &ev);
		if (err)
			return err;
	}
	return HF_OK;
}

static void *fill_thread(void *arg)
{
	struct filler *f = arg;
	struct db *db = NULL;
	f->before = json_pack("{s:s, s:s, s:i}", "ben_no", "100000017", "phone_last3", "678", "version", 3);
	f->after = json_pack("{s:s, s:s, s:i}", "ben_no", "100000017", "phone_last3", "912", "version", 4);
	f->detail = json_pack("{s:[s], s:s}", "fields", "phone", "reason", "bench");
	f->err = db_acquire(&db);
	for (int64_t done = 0; !f->err && done < f->count; done += f->n) {
		f->next = f->first + done;
		f->n = (int)(f->count - done < f->batch ? f->count - done : f->batch);
		f->err = db_tx(db, fill_tx, f);
	}
	json_decref(f->before);
	json_decref(f->after);
	json_decref(f->detail);
	db_release_thread();
	return NULL;
}

static int cmd_fill(int64_t n, int threads, int batch)
{
	struct filler f[MAX_THREADS];
	memset(f, 0, sizeof(f));
	int64_t t0 = hf_mono_us(), per = n / threads;
	for (int i = 0; i < threads; i++) {
		f[i].first = per * i;
		f[i].count = i == threads - 1 ? n - per * i : per;
		f[i].batch = batch;
		if (pthread_create(&f[i].th, NULL, fill_thread, &f[i]) != 0) {
			fprintf(stderr, "audit_verify: cannot start a thread\n");
			exit(1);
		}
	}
	int rc = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(f[i].th, NULL);
		if (f[i].err) {
			fprintf(stderr, "audit_verify: fill thread %d failed (%s)\n", i, hf_err_name(f[i].err));
			rc = 1;
		}
	}
	double s = (double)(hf_mono_us() - t0) / 1e6;
	if (!audit_enabled())
		fprintf(stderr, "audit_verify: audit.enabled = false: nothing was appended\n");
	printf("audit_fill entries=%lld seconds=%.3f rate=%.0f/s threads=%d\n", (long long)n, s, (double)n / s, threads);
	return rc;
}

static int cmd_verify(void)
{
	struct db *db = NULL;
	struct audit_verify_result res;
	if (db_acquire(&db)) {
		fprintf(stderr, "audit_verify: cannot connect to the database\n");
		return 1;
	}
	int64_t t0 = hf_mono_us();
	hf_err err = audit_verify(db, &res);
	double s = (double)(hf_mono_us() - t0) / 1e6;
	if (err) {
		fprintf(stderr, "audit_verify: verify could not run (%s)\n", hf_err_name(err));
		return 1;
	}
	printf("audit_verify entries=%llu seconds=%.3f rate=%.0f/s ok=%d\n", (unsigned long long)res.entries, s,
	       s > 0 ? (double)res.entries / s : 0.0, res.ok ? 1 : 0);
	if (!res.ok)
		fprintf(stderr, "audit_verify: %llu problem(s); first: %s\n", (unsigned long long)res.problems, res.problem);
	return res.ok ? 0 : 1;
}

/* Config, keys, database and audit set up as hifadhi-core does it for the service account. */
static int setup(const char *config_path, const char *const *ov, size_t nov, struct hf_config **cfg_out)
{
	struct hf_buf err, pw;
	struct hf_config *cfg = NULL;
	hf_buf_init(&err, 2048);
	if (hf_crypto_init()) {
		fprintf(stderr, "audit_verify: libsodium failed to initialise\n");
		return 1;
	}
	hf_err e = hf_config_load(core_config_decls, core_config_ndecls, config_path, ov, nov, &cfg, &err);
	if (!e)
		e = app_rules_from_config(cfg, &err);
	if (e) {
		fprintf(stderr, "audit_verify: config: %s\n", hf_buf_cstr(&err));
		hf_buf_release(&err);
		return 1;
	}
	hf_buf_release(&err);
	enum hf_log_level lvl;
	if (hf_log_level_parse(hf_config_str(cfg, "log.level"), &lvl))
		hf_log_set_level(lvl);
	const char *key_dir = hf_config_str(cfg, "crypto.key_dir");
	if (hf_file_read(hf_config_str(cfg, "db.password_file"), 1024, true, &pw)) {
		fprintf(stderr, "audit_verify: cannot read db.password_file\n");
		return 1;
	}
	struct db_conf c = {
		.socket = hf_config_str(cfg, "db.socket"),
		.host = hf_config_str(cfg, "db.host"),
		.port = (int)hf_config_int(cfg, "db.port"),
		.name = hf_config_str(cfg, "db.name"),
		.user = hf_config_str(cfg, "db.user"),
		.password = hf_buf_cstr(&pw),
		.connect_timeout_s = (int)hf_config_int(cfg, "db.connect_timeout_s"),
		.rw_timeout_s = (int)hf_config_int(cfg, "db.rw_timeout_s"),
	};
	e = db_global_init(&c); /* copies the password */
	memset(pw.data, 0, pw.len);
	hf_buf_release(&pw);
	if (!e)
		e = audit_keygen(key_dir);
	if (!e)
		e = audit_init(key_dir, (int)hf_config_int(cfg, "audit.stripes"), (int)hf_config_int(cfg, "audit.checkpoint_every"),
			       hf_config_bool(cfg, "audit.enabled"));
	if (e) {
		fprintf(stderr, "audit_verify: setup failed (%s)\n", hf_err_name(e));
		return 1;
	}
	*cfg_out = cfg;
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	const char *ov[MAX_OVERRIDES];
	size_t nov = 0;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && nov < MAX_OVERRIDES)
			ov[nov++] = argv[++i];
		else
			break;
	}
	if (!config_path || i >= argc) {
		usage();
		return 2;
	}
	const char *cmd = argv[i++];
	int64_t n = 0, threads = 2, batch = 1000;
	if (strcmp(cmd, "fill") == 0) {
		if (i >= argc || hf_parse_i64(argv[i++], 1, INT64_MAX / 2, &n)) {
			usage();
			return 2;
		}
		for (; i < argc; i++) {
			if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && !hf_parse_i64(argv[i + 1], 1, MAX_THREADS, &threads))
				i++;
			else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc && !hf_parse_i64(argv[i + 1], 1, 100000, &batch))
				i++;
			else {
				usage();
				return 2;
			}
		}
	} else if (strcmp(cmd, "verify") != 0 || i != argc) {
		usage();
		return 2;
	}
	struct hf_config *cfg = NULL;
	if (setup(config_path, ov, nov, &cfg))
		return 1;
	int rc = strcmp(cmd, "fill") == 0 ? cmd_fill(n, (int)threads, (int)batch) : cmd_verify();
	audit_shutdown();
	db_global_release();
	hf_config_free(cfg);
	return rc;
}
