/* Durable file writes: a file is replaced whole or not at all, even across a crash. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool write_all(int fd, const void *data, size_t len)
{
	const char *buf = data;

	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Makes the rename durable: without this a crash can leave the directory entry pointing
 * at the old file (or none) even though the new data reached the disk. */
static bool fsync_dir(const char *dir, char *err, size_t err_len)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, err_len, "%s: cannot open directory to sync it: %s", dir, strerror(errno));
		return false;
	}
	if (fsync(fd) < 0) {
		snprintf(err, err_len, "%s: cannot sync directory: %s", dir, strerror(errno));
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* The two below; durable: fsync the file before and the directory after the rename. */
static bool write_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable, char *err,
			  size_t err_len)
{
	char tmp[PATH_MAX];
	char dir[PATH_MAX];
	const char *slash, *base;
	int fd, saved;
	size_t dir_len;

	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	if (*base == '\0') {
		snprintf(err, err_len, "%s: path names a directory", path);
		return false;
	}
	/* "/key" lives in "/", "key" in "." */
	dir_len = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
	if (dir_len >= sizeof(dir)) {
		snprintf(err, err_len, "%s: path is too long", path);
		return false;
	}
	if (slash)
		memcpy(dir, path, dir_len);
	else
		dir[0] = '.';
	dir[dir_len] = '\0';

	/* The temporary file sits next to the target so rename() is atomic (same file system);
	 * the leading dot keeps it out of casual listings if a crash leaves it behind. */
	if (snprintf(tmp, sizeof(tmp), "%s%s.%s.tmp-XXXXXX", slash ? dir : "",
		     slash && slash != path ? "/" : "", base) >= (int)sizeof(tmp)) {
		snprintf(err, err_len, "%s: path is too long", path);
		return false;
	}
	/* mkostemp opens with O_CREAT|O_EXCL and mode 0600: never follows a planted symlink and
	 * the contents are never readable by others, not even briefly. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, err_len, "%s: cannot create temporary file in %s: %s", path, dir, strerror(errno));
		return false;
	}
	/* A restrictive umask may have dropped our own write bit; the owner needs rw. */
	if (fchmod(fd, mode) < 0) {
		snprintf(err, err_len, "%s: cannot set mode on %s: %s", path, tmp, strerror(errno));
		goto fail;
	}
	if (!write_all(fd, data, len)) {
		snprintf(err, err_len, "%s: cannot write %s: %s", path, tmp, strerror(errno));
		goto fail;
	}
	if (durable && fsync(fd) < 0) {
		snprintf(err, err_len, "%s: cannot sync %s: %s", path, tmp, strerror(errno));
		goto fail;
	}
	/* close() can report a delayed write error (NFS); it must not go unnoticed. */
	saved = close(fd);
	fd = -1;
	if (saved < 0) {
		snprintf(err, err_len, "%s: cannot close %s: %s", path, tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		snprintf(err, err_len, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
		goto fail;
	}
	/* From here the new file is in place; a failed directory sync is still reported because
	 * the caller may be about to act on it (hand out a public key, acknowledge a change). */
	return !durable || fsync_dir(dir, err, err_len);

fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return false;
}

bool file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t err_len)
{
	return write_replace(path, data, len, mode, true, err, err_len);
}

bool file_write_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t err_len)
{
	return write_replace(path, data, len, mode, false, err, err_len);
}
