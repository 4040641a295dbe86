/* Key encoding and key files. Keys are 32 bytes, shown as base64 (44 characters). */
#ifndef MESHD_KEYS_H
#define MESHD_KEYS_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum { KEY_BASE64_LEN = 44 }; /* base64 of 32 bytes, with padding, without the NUL */

/* Constant-time (libsodium) base64. Decoding accepts exactly one key, with optional trailing
 * whitespace, and nothing else. */
bool key_from_base64(uint8_t key[WIRE_KEY_LEN], const char *b64, size_t len);
void key_to_base64(char out[KEY_BASE64_LEN + 1], const uint8_t key[WIRE_KEY_LEN]);

/* Makes a new X25519 private key (clamped). */
void key_generate_private(uint8_t key[WIRE_KEY_LEN]);
/* Derives the public key; false if the private key is unusable. */
bool key_public_from_private(uint8_t pub[WIRE_KEY_LEN], const uint8_t priv[WIRE_KEY_LEN]);

/* Reads up to cap bytes of a file holding a secret (`what` names it in errors: "key file",
 * "join_key_file"). Refuses anything but a regular file, a file group or others can access,
 * and one owned by anyone but us or root. Returns the length read, or -1 with err set to one
 * line saying what is wrong and what to do. The caller wipes buf. */
ssize_t secret_file_read(const char *path, const char *what, char *buf, size_t cap, char *err, size_t err_len);

/* Reads a base64 private key file (checked as secret_file_read does). Refuses a file that
 * does not hold exactly one key; err gets one line saying what is wrong and what to do. */
bool key_file_read(const char *path, uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len);
/* Writes a key file atomically with mode 0600: temp file, fsync, rename, fsync directory. */
bool key_file_write(const char *path, const uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len);

#endif
