/* replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput over files, without libFuzzer.
 *
 * libFuzzer needs clang; the committed seed corpus must also guard every ordinary build. Linked with one
 * tests/fuzz/fuzz_<target>.c, this main() feeds every file of the given directories (or files) to the
 * target, one call each, in name order, in a buffer of exactly the file's size (so ASan sees an overread),
 * and prints "ok <file>" per input and "N passed, N failed" last, as tests/run_unit.sh expects. A crash
 * or a failed property check aborts the process, which run_unit.sh counts as a failure.
 *
 *   test_fuzzreplay_<target> [DIR|FILE]...
 *
 * Without arguments it replays HF_FUZZ_CORPUS_DIR, compiled in as a path relative to the repository root
 * ("tests/fuzz/corpus/<target>"): run_unit.sh runs every suite from there. A missing or empty corpus is a
 * failure, never a silent pass.
 */
#include "hf_base.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef HF_FUZZ_CORPUS_DIR
#error "build with -DHF_FUZZ_CORPUS_DIR=\"tests/fuzz/corpus/<target>\""
#endif

/* Corpus files are small by construction (libFuzzer's -max_len); anything bigger is not ours. */
#define REPLAY_FILE_MAX (16u * 1024 * 1024)

static unsigned long g_passed, g_failed;

static void fail(const char *path, const char *why)
{
	g_failed++;
	printf("FAIL %s: %s\n", path, why);
	fflush(stdout);
}

static void replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fail(path, strerror(errno));
		return;
	}
	struct stat sb;
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > REPLAY_FILE_MAX) {
		fclose(f);
		fail(path, "not a regular file of at most 16 MiB");
		return;
	}
	size_t size = (size_t)sb.st_size;
	/* Exactly size bytes (malloc(0) may return NULL: keep one byte then, and pass size 0). */
	uint8_t *data = hf_xmalloc(size ? size : 1);
	size_t got = fread(data, 1, size, f);
	bool read_err = ferror(f) != 0;
	fclose(f);
	if (read_err || got != size) {
		free(data);
		fail(path, "short read");
		return;
	}
	printf("run %s (%zu bytes)\n", path, size);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	g_passed++;
	printf("ok %s\n", path);
	fflush(stdout);
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void replay_path(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		fail(path, strerror(errno));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		replay_file(path);
		return;
	}
	struct dirent **names = NULL;
	int n = scandir(path, &names, NULL, name_order);
	if (n < 0) {
		fail(path, strerror(errno));
		return;
	}
	unsigned long files = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (name[0] != '.') {
			size_t len = strlen(path) + 1 + strlen(name) + 1;
			char *full = hf_xmalloc(len);
			snprintf(full, len, "%s/%s", path, name);
			replay_file(full);
			free(full);
			files++;
		}
		free(names[i]);
	}
	free(names);
	if (files == 0)
		fail(path, "no corpus files in this directory");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		replay_path(HF_FUZZ_CORPUS_DIR);
	} else {
		for (int i = 1; i < argc; i++)
			replay_path(argv[i]);
	}
	printf("%lu passed, %lu failed\n", g_passed, g_failed);
	fflush(stdout);
	return g_failed == 0 && g_passed > 0 ? 0 : 1;
}
