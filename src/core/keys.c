/* Key encoding (base64) and private key files. */
#include "core/keys.h"
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	/* A key file holds 44 characters and a newline; anything much larger is not a key file,
	 * and reading it whole would only copy more secret-looking bytes around. */
	KEY_FILE_MAX = 256,
	KEY_FILE_MODE = 0600,
	/* Bits that must be clear on a private key file: any access for group or others. */
	KEY_FILE_FORBIDDEN_BITS = 0077,
	KEY_FILE_GROUP_OTHER_READ = 0044,
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool key_from_base64(uint8_t key[WIRE_KEY_LEN], const char *b64, size_t len)
{
	uint8_t tmp[WIRE_KEY_LEN];
	const char *end = NULL;
	size_t bin_len = 0;
	bool ok = false;

	if (!b64 || len < KEY_BASE64_LEN)
		return false;
	/* No ignore set: whitespace or line breaks inside the key are refused, and decoding
	 * stops at the first character that is not base64, which must then be trailing
	 * whitespace. libsodium also refuses non-zero padding bits, so each key has exactly
	 * one spelling. */
	if (sodium_base642bin(tmp, sizeof(tmp), b64, len, NULL, &bin_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	if (bin_len != WIRE_KEY_LEN || end != b64 + KEY_BASE64_LEN)
		goto out;
	for (const char *p = end; p < b64 + len; p++) {
		if (!is_space(*p))
			goto out;
	}
	memcpy(key, tmp, WIRE_KEY_LEN);
	ok = true;
out:
	sodium_memzero(tmp, sizeof(tmp));
	return ok;
}

void key_to_base64(char out[KEY_BASE64_LEN + 1], const uint8_t key[WIRE_KEY_LEN])
{
	sodium_bin2base64(out, KEY_BASE64_LEN + 1, key, WIRE_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

void key_generate_private(uint8_t key[WIRE_KEY_LEN])
{
	/* Idempotent; makes the library safe to use even if the caller forgot. It fails only
	 * without a usable entropy source, where libsodium's own randombytes_buf aborts too:
	 * a weak key must never be handed out, and this function has no way to say "failed". */
	if (sodium_init() < 0)
		abort();
	randombytes_buf(key, WIRE_KEY_LEN);
	/* X25519 clamping (RFC 7748 section 5): a multiple of the cofactor, top bit fixed. */
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
}

bool key_public_from_private(uint8_t pub[WIRE_KEY_LEN], const uint8_t priv[WIRE_KEY_LEN])
{
	if (sodium_init() < 0)
		return false;
	/* An all-zero private key is what an empty or wiped buffer looks like, never a key
	 * anyone generated: refuse it rather than run with a key every attacker can guess. */
	if (sodium_is_zero(priv, WIRE_KEY_LEN))
		return false;
	if (crypto_scalarmult_curve25519_base(pub, priv) != 0 || sodium_is_zero(pub, WIRE_KEY_LEN)) {
		sodium_memzero(pub, WIRE_KEY_LEN);
		return false;
	}
	return true;
}

/* Reads until EOF or until cap bytes are in; returns the count or -1 with errno set. */
static ssize_t read_bounded(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Symlinks are followed on purpose (configuration management often links key files into
 * place); every check below is made on the opened descriptor, so it applies to the file
 * actually read and cannot race with a rename. */
ssize_t secret_file_read(const char *path, const char *what, char *buf, size_t cap, char *err, size_t err_len)
{
	struct stat st;
	ssize_t n = -1;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not hang start-up before fstat can refuse it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, err_len, "%s: cannot open %s: %s", path, what, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s: cannot stat %s: %s", path, what, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "%s: %s is not a regular file", path, what);
	} else if (st.st_mode & KEY_FILE_FORBIDDEN_BITS) {
		snprintf(err, err_len, "%s: %s is %s by group or others (mode %04o); run: chmod 600 %s", path, what,
			 (st.st_mode & KEY_FILE_GROUP_OTHER_READ) ? "readable" : "accessible",
			 (unsigned int)(st.st_mode & 07777), path);
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		/* Whoever owns it could have read or replaced the secret (ssh refuses the same). */
		snprintf(err, err_len, "%s: %s belongs to uid %u, not to us (uid %u) or root; run: chown %u %s", path,
			 what, (unsigned int)st.st_uid, (unsigned int)geteuid(), (unsigned int)geteuid(), path);
	} else {
		n = read_bounded(fd, buf, cap);
		if (n < 0)
			snprintf(err, err_len, "%s: cannot read %s: %s", path, what, strerror(errno));
	}
	close(fd);
	return n;
}

bool key_file_read(const char *path, uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len)
{
	char buf[KEY_FILE_MAX + 1]; /* one more than allowed, to notice a longer file */
	ssize_t n;
	bool ok = false;

	n = secret_file_read(path, "key file", buf, sizeof(buf), err, err_len);
	if (n < 0)
		goto out;
	if ((size_t)n > KEY_FILE_MAX) {
		snprintf(err, err_len, "%s: key file is too large (expected one base64 key of %d characters)",
			 path, KEY_BASE64_LEN);
		goto out;
	}
	if (!key_from_base64(key, buf, (size_t)n)) {
		snprintf(err, err_len, "%s: key file does not hold exactly one base64 key of %d characters%s",
			 path, KEY_BASE64_LEN, n == 0 ? " (it is empty)" : "");
		goto out;
	}
	ok = true;
out:
	sodium_memzero(buf, sizeof(buf));
	return ok;
}

bool key_file_write(const char *path, const uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len)
{
	char b64[KEY_BASE64_LEN + 2]; /* key, newline, NUL */
	bool ok;

	key_to_base64(b64, key);
	b64[KEY_BASE64_LEN] = '\n';
	b64[KEY_BASE64_LEN + 1] = '\0';
	ok = file_write_atomic(path, b64, KEY_BASE64_LEN + 1, KEY_FILE_MODE, err, err_len);
	sodium_memzero(b64, sizeof(b64));
	return ok;
}
