/* A plain main() for the fuzz targets: feeds every file named on the command line (and
 * every regular file inside a named directory) to LLVMFuzzerTestOneInput once. `make check`
 * uses it to replay the seed corpora without clang or libFuzzer. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	/* libFuzzer's inputs are small (-max_len defaults to 4096); a seed far larger than this
	 * is a mistake in the corpus, not a test. */
	REPLAY_MAX_INPUT = 1 << 20,
	REPLAY_PATH_MAX = 4096,
};

/* Returns 0 on success, -1 after printing why the file could not be read. */
static int replay_file(const char *path, size_t *count)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t len;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	/* One spare byte notices a file over the limit. Exactly len bytes are passed, in a
	 * buffer of its own, so the sanitizers see any read past the end. */
	buf = malloc(REPLAY_MAX_INPUT + 1);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", path);
		fclose(f);
		return -1;
	}
	len = fread(buf, 1, REPLAY_MAX_INPUT + 1, f);
	if (ferror(f) || len > REPLAY_MAX_INPUT) {
		fprintf(stderr, "%s: %s\n", path, ferror(f) ? "read error" : "input too large");
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (!exact) {
			fprintf(stderr, "%s: out of memory\n", path);
			free(buf);
			return -1;
		}
		memcpy(exact, buf, len);
		free(buf);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	(*count)++;
	return 0;
}

static int replay_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char path[REPLAY_PATH_MAX];
		struct stat st;
		int n;

		if (e->d_name[0] == '.') /* ".", "..", and editor or VCS droppings */
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			fprintf(stderr, "%s/%s: path too long\n", dir, e->d_name);
			rc = -1;
			continue;
		}
		if (stat(path, &st) < 0) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			rc = -1;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (replay_file(path, count) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if ((S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i], &count)) < 0)
			rc = 1;
	}
	printf("replayed %zu inputs\n", count);
	return rc;
}
