/* fuzz_csv_import.c - libFuzzer target: the CSV importer's reading side, on arbitrary files.
 *
 * `hifadhi-core import` reads spreadsheets from partners and old systems. Everything it does before the
 * database runs here, as import_run does it: the BOM, the structure pass (libcsv, header rules, caps),
 * then the row pass handing batches over (every ~500 households, from a reader thread, with ids drawn
 * and every valid row sealed), and a writer that, with no database, only does the database-free part of
 * batch_flush: it resets the batch, reports it (every rejected row must carry a reason: batch_report
 * asserts it) and clears it. Two programmes exist, as in tests/unit/test_import_parse.c.
 * Checked as well: a refused file always says why, and the rejection report is well-formed CSV with
 * exactly the four columns row,household_ref,field,reason on every line.
 *
 * Input: the file's bytes.
 */
#include "hf_base.h"

#include "../../core/core_config.c"
#include "../../core/db.c"
#include "../../core/location.c"
#include "../../core/person.c"
#include "../../core/validate.c"
#include "../../core/audit_chain.c"
#include "../../core/audit.c"
#include "../../core/import.c"

#include "fuzz_common.h"

#include <csv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The writer without a database: takes each batch the reader hands over, reports it, gives it back. */
static void write_all_offline(struct ictx *c)
{
	for (size_t i = 0;; i ^= 1) {
		struct ibatch *b = &c->batches[i];
		pthread_mutex_lock(&c->mu);
		while (!b->full)
			pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
		bool last = b->last;
		if (!b->abort) {
			batch_reset_write(c, b);
			batch_report(c, b);
		}
		batch_clear(b);
		pthread_mutex_lock(&c->mu);
		b->full = false;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		if (last)
			return;
	}
}

/* The programmes programmes_load would find: OPCT (individuals) and CT-OVC (households). */
static void add_programmes(struct ictx *c)
{
	static const char *const codes[] = {"OPCT", "CT-OVC"};
	c->progs = hf_xcalloc(HF_ARRAY_LEN(codes), sizeof(*c->progs));
	for (size_t i = 0; i < HF_ARRAY_LEN(codes); i++) {
		uint8_t k[KEY_LEN];
		key_of("import.prog", codes[i], k);
		HF_ASSERT(kmap_add(&c->progmap, k, (int64_t)i));
		c->progs[i] = (struct prog){(int64_t)i + 1, i == 1, ""};
		hf_strlcpy(c->progs[i].code, codes[i], sizeof(c->progs[i].code));
	}
	c->nprogs = HF_ARRAY_LEN(codes);
}

struct report_shape {
	size_t fields;
	uint64_t records;
	bool bad;
};

static void on_report_field(void *s, size_t len, void *data)
{
	(void)s;
	(void)len;
	struct report_shape *r = data;
	r->fields++;
}

static void on_report_record(int term, void *data)
{
	(void)term;
	struct report_shape *r = data;
	if (r->fields != 4)
		r->bad = true;
	r->fields = 0;
	r->records++;
}

/* Every line of the report parses as strict CSV with exactly four fields. */
static void check_report(const char *report, size_t len)
{
	struct csv_parser p;
	struct report_shape shape = {0, 0, false};
	HF_ASSERT(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) == 0);
	FUZZ_CHECK(csv_parse(&p, report, len, on_report_field, on_report_record, &shape) == len);
	FUZZ_CHECK(csv_fini(&p, on_report_field, on_report_record, &shape) == 0);
	csv_free(&p);
	FUZZ_CHECK(!shape.bad);
	FUZZ_CHECK(len == 0 || report[len - 1] == '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	char *report = NULL;
	size_t report_len = 0;
	FILE *rep = open_memstream(&report, &report_len);
	HF_ASSERT(rep != NULL);

	struct ictx *c = hf_xcalloc(1, sizeof(*c));
	ctx_init(c, NULL, "fuzz", rep, NULL);
	add_programmes(c);

	const char *text = (const char *)data;
	size_t len = size;
	hf_err err = HF_OK;
	if (size == 0) {
		hf_buf_note(&c->why, "the file is empty");
		err = HF_EINVAL;
		file_refuse(c, 0);
		goto out;
	}
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		text += 3;
		len -= 3;
	}

	/* Pass 1: structure only. */
	c->scanning = true;
	err = parse_all(c, text, len);
	if (!err && c->recno == 0) {
		hf_buf_note(&c->why, "the file has no header row");
		err = HF_EINVAL;
	}
	if (err) {
		FUZZ_CHECK(err == HF_EINVAL && c->why.len > 0);
		file_refuse(c, c->rerr ? 1 : c->recno + 1);
		goto out;
	}
	c->total_rows = c->recno - 1;

	/* Pass 2: the reader thread against the offline writer. A file too small to fill a batch is handed
	 * over once, at its end, and never waits for the writer: it is read on this thread, which saves a
	 * thread start per input (a fifth of the time of a small input under ASan). */
	c->scanning = false;
	struct reader_args ra = {c, text, len};
	if (c->total_rows <= BATCH_HOUSEHOLDS) {
		reader_main(&ra);
		write_all_offline(c);
	} else {
		pthread_t reader;
		HF_ASSERT(pthread_create(&reader, NULL, reader_main, &ra) == 0);
		write_all_offline(c);
		pthread_join(reader, NULL);
	}
	c->st.rows = c->rows_read;
	/* The same bytes were parsed twice: the second pass cannot fail where the first succeeded. */
	FUZZ_CHECK(c->rerr == HF_OK);
	FUZZ_CHECK(c->rows_read == c->total_rows);
	FUZZ_CHECK(c->st.individuals_inserted + c->st.rejected_rows == c->rows_read);

out:
	FUZZ_CHECK(fflush(rep) == 0);
	check_report(report, report_len);
	HF_ASSERT(fclose(rep) == 0);
	free(report);
	ctx_release(c);
	free(c);
	return 0;
}
