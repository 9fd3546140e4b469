/* hf_test.h - the unit tests' header-only framework: checks, named groups and a summary line.
 *
 * Each tests/unit/test_X.c is its own binary with one main(), so the counters below are per binary and
 * need no registration machinery. A failed check prints "FAIL file:line: expr" (and the message, for
 * HF_CHECK_MSG) and the test goes on, so one run shows every broken behaviour at once. main() ends with
 * `return hf_test_summary();`, whose line "N passed, N failed" is always the last one on stdout, and whose
 * result is the exit code (0 only when nothing failed) that make and CI look at.
 *
 * Usage:
 *	static void test_append_caps(void) { ... HF_CHECK(b.len == 3); ... }
 *	int main(void) { HF_TEST(test_append_caps); return hf_test_summary(); }
 *
 * Everything goes to stdout and is flushed at once, so FAIL lines and the library's stderr logs stay in
 * order when both are captured into one file. Helpers for temporary files are here too, because the
 * config, crypto and key-file tests all need a private directory that is removed afterwards.
 */
#ifndef HF_TEST_H
#define HF_TEST_H

#include "hf_base.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long hf_test_passed_;
static unsigned long hf_test_failed_;

/* Records one check; returns cond so a test can skip what depends on it (e.g. a NULL pointer). */
HF_PRINTF(5, 6)
static inline bool hf_test_check_(bool cond, const char *file, int line, const char *expr, const char *fmt, ...)
{
	if (cond) {
		hf_test_passed_++;
		return true;
	}
	hf_test_failed_++;
	printf("FAIL %s:%d: %s", file, line, expr);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		fputs(": ", stdout);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
	return false;
}

/* Both evaluate cond exactly once and yield it as a bool. */
#define HF_CHECK(cond) hf_test_check_((cond) ? true : false, __FILE__, __LINE__, #cond, NULL)
#define HF_CHECK_MSG(cond, ...) hf_test_check_((cond) ? true : false, __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Runs one group of checks and reports it by name with how many of its checks failed. */
static inline void hf_test_run_(const char *name, void (*fn)(void))
{
	unsigned long failed_before = hf_test_failed_;
	fn();
	unsigned long failed = hf_test_failed_ - failed_before;
	if (failed)
		printf("not ok %s (%lu failed)\n", name, failed);
	else
		printf("ok %s\n", name);
	fflush(stdout);
}

#define HF_TEST(fn) hf_test_run_(#fn, fn)

/* Prints "N passed, N failed" as the last line and returns the process exit code. A binary that ran no
 * check at all fails too: it is a broken test, not a passing one. */
static inline int hf_test_summary(void)
{
	printf("%lu passed, %lu failed\n", hf_test_passed_, hf_test_failed_);
	fflush(stdout);
	return hf_test_failed_ == 0 && hf_test_passed_ > 0 ? 0 : 1;
}

/* Creates a private directory (0700) under /tmp and writes its path into out (at least 20 bytes). Aborts
 * on failure: a test that cannot get a directory cannot say anything useful. */
static inline void hf_test_tmpdir(char *out, size_t out_size)
{
	static const char tmpl[] = "/tmp/hf_test_XXXXXX";
	HF_ASSERT(out_size >= sizeof(tmpl));
	memcpy(out, tmpl, sizeof(tmpl));
	HF_ASSERT(mkdtemp(out) != NULL);
}

/* Removes a directory made by hf_test_tmpdir and the files in it (the tests never nest directories). */
static inline void hf_test_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (n > 0 && (size_t)n < sizeof(path))
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Writes text to dir/name with the given mode and returns the full path in out. Aborts on failure. */
static inline void hf_test_write_file(const char *dir, const char *name, const char *text, mode_t mode, char *out,
				      size_t out_size)
{
	int n = snprintf(out, out_size, "%s/%s", dir, name);
	HF_ASSERT(n > 0 && (size_t)n < out_size);
	FILE *f = fopen(out, "w");
	HF_ASSERT(f != NULL);
	size_t len = strlen(text);
	HF_ASSERT(fwrite(text, 1, len, f) == len);
	HF_ASSERT(fclose(f) == 0);
	HF_ASSERT(chmod(out, mode) == 0);
}

#endif
