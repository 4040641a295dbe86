/* Whole-file replacement: durable (file_write_atomic) or only atomic (file_write_replace). */
#ifndef MESHD_FILEIO_H
#define MESHD_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Replaces path with len bytes of data, atomically: a temporary file beside it (created
 * 0600, then set to mode), fsync, rename, fsync of the directory. Readers see the old or the
 * new contents, never a mix, even after a crash. err gets one line on failure. */
bool file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t err_len);
/* The same without either fsync: readers still see the old or the new contents whole, but
 * a crash may lose the change. For files rewritten every second or so that nobody needs
 * after a crash (status snapshots): no disk flush stalls the caller's event loop. */
bool file_write_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t err_len);

#endif
