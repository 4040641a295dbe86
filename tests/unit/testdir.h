/* Temporary directories for unit tests that touch the file system. */
#ifndef MESHD_TESTS_TESTDIR_H
#define MESHD_TESTS_TESTDIR_H

#include <stddef.h>
#include <sys/types.h>

/* Creates /tmp/<prefix>.XXXXXX into dir; 0 or -1 (a cmocka setup return value). */
int testdir_create(char *dir, size_t cap, const char *prefix);
/* Removes the files in dir, then dir itself; 0 or -1 (a cmocka teardown return value). */
int testdir_remove(const char *dir);
/* Writes a file with the given mode (the test fails on any error). */
void testdir_write_file(const char *path, const char *content, size_t len, mode_t mode);

#endif
