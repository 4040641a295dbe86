/* Durable file writes. */
#ifndef MESHD_FILEIO_H
#define MESHD_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Replaces path with len bytes of data, atomically: a temporary file beside it (created
 * 0600, then set to mode), fsync, rename, fsync of the directory. Readers see the old or the
 * new contents, never a mix, even after a crash. err gets one line on failure. */
bool file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t err_len);

#endif
