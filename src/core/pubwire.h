/* The work connection of a published service (issue 11): one TCP connection from the node to
 * the coordinator's control port per client connection (TCP) or client flow (UDP), frp-style,
 * so one slow client never holds up another or the control messages.
 *
 * The coordinator announces each stream on the node's authenticated control channel
 * (CONTROL_MSG_STREAM_OPEN: a random 64-bit id and a random 32-byte secret). The node dials
 * back and sends
 *   frame 0 (plaintext):   2-byte length | PUBWIRE_MAGIC (4) | version (1) | stream id (8)
 * then both ways the control channel's transport frames (control.h: 2-byte length, then
 * ChaCha20-Poly1305 with an implicit counter nonce from 0 in each direction), keyed from the
 * stream's secret (pubwire_channel_init: one key per direction). A frame's plaintext is a kind
 * byte then its payload:
 *   PUBWIRE_ATTACH  node's first frame, empty: proves it holds the secret; nothing is
 *                   spliced to the client before the coordinator has opened it
 *   PUBWIRE_DATA    1..PUBWIRE_MAX_DATA bytes of the stream (UDP: exactly one datagram)
 *   PUBWIRE_EOF     empty: the sender's side of the stream ended cleanly (TCP half-close);
 *                   a connection that closes without it was cut, and the other side is reset
 * Only the holder of the control session can learn the secret, so the work connection is
 * authenticated by the node's key at one remove, without a Diffie-Hellman per connection
 * (docs/publish.md says why that matters). Frame 0 needs no secrecy: the id alone opens
 * nothing. A frame that fails to open, or an unknown kind, closes the work connection. */
#ifndef MESHD_PUBWIRE_H
#define MESHD_PUBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"

enum {
	PUBWIRE_MAGIC = 0x4d534857, /* "MSHW": a work connection, not a node's hello */
	PUBWIRE_VERSION = 1,
	PUBWIRE_PREAMBLE_LEN = 4 + 1 + 8, /* the body of frame 0 */
	PUBWIRE_PREAMBLE_FRAME_LEN = CONTROL_FRAME_HEADER_LEN + PUBWIRE_PREAMBLE_LEN,
	PUBWIRE_KIND_LEN = 1,
	/* The most stream bytes one frame carries: a full control frame less tag and kind. */
	PUBWIRE_MAX_DATA = CONTROL_MAX_PLAIN - PUBWIRE_KIND_LEN,
	/* A sealed frame with its header: what a reader must be able to hold at once. */
	PUBWIRE_MAX_SEALED = CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME,
};
_Static_assert((int)PUBWIRE_PREAMBLE_LEN != (int)CONTROL_HELLO_LEN, "frame 0's length tells it from a hello");

enum pubwire_kind {
	PUBWIRE_ATTACH = 1,
	PUBWIRE_DATA = 2,
	PUBWIRE_EOF = 3,
};

/* Writes frame 0 (with its header) into out[PUBWIRE_PREAMBLE_FRAME_LEN]. */
void pubwire_preamble_write(uint64_t stream_id, uint8_t out[PUBWIRE_PREAMBLE_FRAME_LEN]);
/* True if body[0..len) (a frame's body, header removed) is frame 0; sets *stream_id. */
bool pubwire_preamble_read(const uint8_t *body, size_t len, uint64_t *stream_id);

/* Sets up ch as an established channel keyed from secret: node_side picks which of the two
 * derived keys sends. The same secret on both sides gives matching channels. */
bool pubwire_channel_init(struct control_channel *ch, const uint8_t secret[CONTROL_STREAM_SECRET_LEN],
			  bool node_side);

/* Splits an opened frame's plaintext: false if it is empty, of an unknown kind, or a kind
 * with a payload it must not have (ATTACH, EOF) or without one it must have (DATA). */
bool pubwire_frame_parse(const uint8_t *plain, size_t len, enum pubwire_kind *kind, const uint8_t **payload,
			 size_t *payload_len);

/* Seals kind + payload (payload_len <= PUBWIRE_MAX_DATA; 0 for ATTACH and EOF) as one frame
 * with header into out (at least PUBWIRE_MAX_SEALED bytes); false if the channel is worn out. */
bool pubwire_seal(struct control_channel *ch, enum pubwire_kind kind, const uint8_t *payload, size_t payload_len,
		  uint8_t *out, size_t cap, size_t *out_len);

#endif
