/* One transport session: the pair of ChaCha20-Poly1305 keys a handshake produced,
 * the send counter and the receive replay window, and the limits after which the
 * keys must be replaced (rekey) or refused (reject). */
#ifndef MESHD_SESSION_H
#define MESHD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aead.h"
#include "replay.h"
#include "wire.h"

/* Limits on one set of keys, WireGuard's proven values. */
#define SESSION_REKEY_AFTER_MESSAGES (UINT64_C(1) << 60)  /* initiate a new handshake well before nonce exhaustion */
#define SESSION_REJECT_AFTER_MESSAGES (UINT64_MAX - REPLAY_WINDOW_SIZE - 1) /* never let a nonce wrap, with window slack */
#define SESSION_REKEY_AFTER_TIME_MS (120u * 1000u)  /* the initiator refreshes keys every two minutes */
#define SESSION_REJECT_AFTER_TIME_MS (180u * 1000u) /* keys older than this are never used again */

struct session {
	bool valid;
	bool we_initiated;   /* only the initiator rekeys by time, to avoid both sides racing */
	uint32_t local_index;  /* the index peers put in data messages to us */
	uint32_t remote_index; /* the index we put in data messages to them */
	uint8_t send_key[WIRE_KEY_LEN];
	uint8_t recv_key[WIRE_KEY_LEN];
	/* The keys prepared for libcrypto (aead.h); NULL: libsodium uses the raw keys. */
	struct aead_cipher *seal, *open;
	uint64_t send_counter; /* next counter to use */
	struct replay_window replay;
	uint64_t created_ms;
};

enum session_result {
	SESSION_OK = 0,
	SESSION_ERR_EXPIRED = -1,   /* past reject-after time or message limit: do a new handshake */
	SESSION_ERR_AUTH = -2,      /* AEAD failed (forged, corrupted or wrong key) */
	SESSION_ERR_REPLAY = -3,    /* counter already seen or older than the window */
	SESSION_ERR_MALFORMED = -4, /* too short, wrong header, buffer too small */
	SESSION_ERR_CIPHER = -5,    /* libcrypto failed to seal (not seen in practice): drop the packet */
};

/* Sets up a fresh session from handshake output. Copies the keys. s must not hold a replay
 * ring or ciphers (a new or cleared session): they would leak. A session owns them: a struct
 * copy moves them, and only one copy may then be cleared (the rotation zeroes the source). */
void session_init(struct session *s, const uint8_t send_key[WIRE_KEY_LEN], const uint8_t recv_key[WIRE_KEY_LEN],
		  uint32_t local_index, uint32_t remote_index, bool we_initiated, uint64_t now_ms);
/* Wipes the keys, frees the replay ring and ciphers and marks the session invalid. */
void session_clear(struct session *s);

/* Encrypts `len` bytes of plaintext (zero-padded to WIRE_DATA_PADDING) into a complete data
 * message in `out`; *out_len gets its size. len == 0 makes a keepalive. */
enum session_result session_encrypt(struct session *s, uint64_t now_ms, const uint8_t *plain, size_t len,
				    uint8_t *out, size_t out_cap, size_t *out_len);

/* Decrypts a complete data message (header included) into `plain`; *plain_len gets the padded
 * plaintext length. The replay window moves only after the AEAD check passed. */
enum session_result session_decrypt(struct session *s, uint64_t now_ms, const uint8_t *msg, size_t msg_len,
				    uint8_t *plain, size_t plain_cap, size_t *plain_len);

/* True when the keys are still usable for sending/receiving at now_ms. */
bool session_usable(const struct session *s, uint64_t now_ms);
/* True when we should start a new handshake because of this session's age or message count. */
bool session_wants_rekey(const struct session *s, uint64_t now_ms);

#endif
