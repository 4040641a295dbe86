/* Key encoding and key files. Keys are 32 bytes, shown as base64 (44 characters). */
#ifndef MESHD_KEYS_H
#define MESHD_KEYS_H

#include <stdbool.h>
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

/* Reads a base64 private key file. Refuses a file that group or others can read, or that
 * does not hold exactly one key; err gets one line saying what is wrong and what to do. */
bool key_file_read(const char *path, uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len);
/* Writes a key file atomically with mode 0600: temp file, fsync, rename, fsync directory. */
bool key_file_write(const char *path, const uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len);

#endif
