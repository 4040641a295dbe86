/* The node <-> coordinator control protocol (TCP).
 *
 * A connection carries frames: a 2-byte big-endian length, then that many bytes.
 *   frame 1, node -> coord:  CONTROL_MAGIC (4) | version (1) | Noise IK message 1
 *                            whose payload is a TAI64N timestamp (replayed hellos are refused)
 *   frame 2, coord -> node:  Noise IK message 2 with an empty payload
 *   then both ways:          ChaCha20-Poly1305 transport frames, nonces counting from 0 in
 *                            each direction (TCP keeps order, so the nonce is implicit)
 * Noise_IK_25519_ChaChaPoly_BLAKE2b, prologue "meshcoord v1". The coordinator learns the node's
 * key from the handshake: that key is the node's identity everywhere.
 *
 * A transport frame's plaintext is a sequence of records, each a 2-byte big-endian length then
 * that many bytes of one message. A frame holds at least one record and a record never spans
 * frames, so each frame is read on its own; a zero-length record, a length past the end of the
 * frame, or an empty frame is malformed (the receiver closes). Packing records lets a sender
 * seal a batch of a peer map at once: each seal costs a nonce, a Poly1305 key and a tag, far
 * more than encoding one ~100-byte PEER.
 *
 * A message is its type (1 byte) then its body. Strings are a 1-byte length then bytes;
 * endpoints are family (4 or 6), address (4 or 16 bytes), port (2, big-endian). Unknown
 * message types are skipped (newer peers may send more; the record length says how far);
 * known ones are parsed strictly: any length mismatch or trailing byte makes the message
 * malformed.
 */
#ifndef MESHD_CONTROL_H
#define MESHD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "noise.h"
#include "relay.h"
#include "wire.h"

enum {
	CONTROL_PROTOCOL_VERSION = 1,
	CONTROL_MAGIC = 0x4d534843,       /* "MSHC": tells a stray client from a node quickly */
	CONTROL_DEFAULT_PORT = 51821,     /* TCP, next to the data plane's default 51820 */
	CONTROL_FRAME_HEADER_LEN = 2,
	/* One frame is at most this big: bounds every buffer; a netmap of any size is sent as
	 * many CONTROL_MSG_PEER messages. */
	CONTROL_MAX_FRAME = 4096,
	CONTROL_MAX_PLAIN = CONTROL_MAX_FRAME - NOISE_TAG_LEN,
	CONTROL_RECORD_HEADER_LEN = 2,
	CONTROL_HELLO_LEN = 4 + 1 + NOISE_MESSAGE1_OVERHEAD + WIRE_TIMESTAMP_LEN,
	CONTROL_WELCOME_LEN = NOISE_MESSAGE2_OVERHEAD,

	CONTROL_NAME_MAX = 63,            /* a DNS label */
	CONTROL_SECRET_MAX = 64,          /* join key secret bytes */
	CONTROL_MAX_ENDPOINTS = 16,       /* candidates per node: interfaces + reflexive, with room */
	CONTROL_MESSAGE_TEXT_MAX = 200,   /* error text shown to the user */
	/* FILTER: rules per message (64 x 40 bytes fits a frame with room to spare), and so
	 * the parts a node's whole rule set (FILTER_MAX_RULES) may take. */
	CONTROL_FILTER_RULES_PER_MSG = 64,
	CONTROL_FILTER_MAX_PARTS = FILTER_MAX_RULES / CONTROL_FILTER_RULES_PER_MSG,
	CONTROL_DOMAIN_MAX = 253,         /* the mesh's DNS domain: a DNS name, dotted */
	/* Prefixes one node advertises (subnet routes plus the exit pair): a home has a LAN or
	 * three; 32 leaves room and keeps ROUTES and PEER_ROUTES far below one frame. */
	CONTROL_MAX_ROUTES = 32,
	/* Satellites one gateway serves (SATELLITES): a household's phones and laptops. Each
	 * takes two host routes of its gateway's PEER_ROUTES, so 8 leave half of
	 * CONTROL_MAX_ROUTES to the gateway's own subnet routes and exit offer. */
	CONTROL_MAX_SATELLITES = 8,
	/* Services one node asks to publish (issue 11): a home has a web app, a game server, a
	 * webhook; 16 leaves room and keeps PUBLISH far below one frame. */
	CONTROL_MAX_PUBLISH = 16,
	/* The key of one work connection (core/pubwire.h): 32 random bytes per stream. */
	CONTROL_STREAM_SECRET_LEN = 32,
	/* IP protocol numbers name a published service's transport on the wire. */
	CONTROL_PROTO_TCP = 6,
	CONTROL_PROTO_UDP = 17,
};

enum control_msg_type {
	CONTROL_MSG_REGISTER = 1,    /* node: hostname, join secret (may be empty), endpoints */
	CONTROL_MSG_REGISTERED = 2,  /* coord: assigned name and addresses */
	CONTROL_MSG_ERROR = 3,       /* coord: code and text; the coordinator closes after it */
	CONTROL_MSG_PEER = 4,        /* coord: a peer joined or changed (full record) */
	CONTROL_MSG_PEER_REMOVE = 5, /* coord: a peer was removed */
	CONTROL_MSG_NETMAP_END = 6,  /* coord: the full map sent after REGISTERED is complete */
	CONTROL_MSG_ENDPOINTS = 7,   /* node: its candidate endpoints changed */
	CONTROL_MSG_KEEPALIVE = 8,   /* either: keeps the connection (and NAT state) alive */
	CONTROL_MSG_RELAY_INFO = 9,  /* coord, after REGISTERED: STUN/relay ports and relay token */
	CONTROL_MSG_RELAY = 10,      /* either: a relayed datagram (node key: to / from whom) */
	CONTROL_MSG_ROUTES = 11,     /* node: the prefixes it advertises (0.0.0.0/0, ::/0: exit) */
	/* coord, after a PEER: that peer's routes in effect (advertised and approved), an empty
	 * list once none are; and with the node's own key, which of its own routes took effect */
	CONTROL_MSG_PEER_ROUTES = 12,
	CONTROL_MSG_FILTER = 13,     /* coord: the access rules that concern this node (a part) */
	CONTROL_MSG_DNS = 14,        /* coord, after REGISTERED and on change: the mesh's DNS domain */
	/* coord -> a gateway node, after REGISTERED and on every change: the full list of the
	 * stock WireGuard devices it serves (an empty list: none any more) */
	CONTROL_MSG_SATELLITES = 15,
	/* coord, after a gateway's PEER_ROUTES: the names and addresses of the satellites behind
	 * it (no keys), an empty list once none are; for names (DNS) and status */
	CONTROL_MSG_PEER_SATELLITES = 16,
	/* Publishing a home service on the coordinator's address (issue 11, docs/publish.md): */
	CONTROL_MSG_PUBLISH = 17,        /* node, after REGISTERED and on reload: the services it
					  * asks to publish (the whole list; empty: none) */
	CONTROL_MSG_PUBLISH_STATE = 18,  /* coord: one service's state (open, not granted, ...) */
	CONTROL_MSG_STREAM_OPEN = 19,    /* coord: a client arrived; dial back with this stream's
					  * id and secret over a new work connection */
	CONTROL_MSG_STREAM_REFUSE = 20,  /* node: it cannot serve that stream (local service down) */
};

/* CONTROL_MSG_PUBLISH_STATE's state. */
enum control_publish_state {
	CONTROL_PUBLISH_OPEN = 1,         /* listening on the coordinator's public address */
	CONTROL_PUBLISH_NOT_GRANTED = 2,  /* no grant for this node, port and protocol */
	CONTROL_PUBLISH_DISABLED = 3,     /* the coordinator publishes nothing (no 'publish:') */
	CONTROL_PUBLISH_OUT_OF_RANGE = 4, /* granted, but outside the configured port range */
	CONTROL_PUBLISH_BIND_FAILED = 5,  /* the coordinator could not listen on the port */
	CONTROL_PUBLISH_STATE_MAX = 5,
};

enum control_error_code {
	CONTROL_ERR_JOIN_KEY_UNKNOWN = 1,
	CONTROL_ERR_JOIN_KEY_EXPIRED = 2,
	CONTROL_ERR_JOIN_KEY_REVOKED = 3,
	CONTROL_ERR_JOIN_KEY_USED = 4,
	CONTROL_ERR_NODE_REMOVED = 5,  /* this node key was removed by an administrator */
	CONTROL_ERR_NEED_JOIN_KEY = 6, /* unknown node and no join key given */
	CONTROL_ERR_BAD_MESSAGE = 7,
	CONTROL_ERR_INTERNAL = 8,
};

struct control_endpoint {
	uint8_t family; /* 4 or 6 */
	uint8_t addr[16];
	uint16_t port;
};

struct control_register {
	char hostname[CONTROL_NAME_MAX + 1];
	uint8_t join_secret[CONTROL_SECRET_MAX];
	size_t join_secret_len;
	struct control_endpoint endpoints[CONTROL_MAX_ENDPOINTS];
	size_t n_endpoints;
};

struct control_registered {
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	uint8_t ipv4_bits; /* prefix length of the overlay, e.g. 10 */
	uint8_t ipv6[16];
	uint8_t ipv6_bits; /* e.g. 48 */
};

struct control_error {
	uint16_t code; /* enum control_error_code */
	char text[CONTROL_MESSAGE_TEXT_MAX + 1];
};

struct control_peer {
	uint8_t node_key[WIRE_KEY_LEN];
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	bool online;
	struct control_endpoint endpoints[CONTROL_MAX_ENDPOINTS];
	size_t n_endpoints;
};

struct control_relay_info {
	uint8_t token[RELAY_TOKEN_LEN]; /* keys the node's relay BINDs (core/relay.h) */
	uint16_t stun_port;             /* STUN and UDP relay, on the coordinator's host */
	uint16_t alt_stun_port;         /* a second STUN port (mapping-varies test), 0 if none */
	uint32_t relay_rate;            /* bytes per second the relay forwards for this node */
};

struct control_relay {
	uint8_t node_key[WIRE_KEY_LEN];
	const uint8_t *payload; /* decoded: points into the decoded buffer */
	size_t payload_len;     /* 1 .. RELAY_MAX_PAYLOAD */
};

struct control_dns {
	/* Lower-case dotted labels of [a-z0-9-] (core/dns.h dns_domain_valid), no final dot. */
	char domain[CONTROL_DOMAIN_MAX + 1];
};

/* A route prefix: family 4 or 6, bits 0..32 or 0..128, host bits zero (one spelling per
 * prefix). The /0 of either family is the exit offer. */
struct control_route {
	uint8_t family;
	uint8_t bits;
	uint8_t addr[16];
};

struct control_routes {
	struct control_route list[CONTROL_MAX_ROUTES];
	size_t n;
};

struct control_peer_routes {
	uint8_t node_key[WIRE_KEY_LEN];
	struct control_routes routes; /* n = 0: none approved (or all revoked) */
};

/* A satellite: a device running a stock WireGuard client, served by one gateway node as a
 * static peer (its own key, its overlay addresses, an optional preshared key). */
struct control_satellite {
	uint8_t public_key[WIRE_KEY_LEN];
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	bool has_psk;
	uint8_t psk[WIRE_KEY_LEN]; /* a secret: wipe the message after use */
};

struct control_satellites {
	struct control_satellite list[CONTROL_MAX_SATELLITES];
	size_t n;
};

/* What every node learns of a gateway's satellites: who is behind it, not how to reach them. */
struct control_peer_satellite {
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	uint8_t ipv6[16];
};

struct control_peer_satellites {
	uint8_t node_key[WIRE_KEY_LEN]; /* the gateway's */
	struct control_peer_satellite list[CONTROL_MAX_SATELLITES];
	size_t n;
};

/* One part of a node's rule set. A set is `parts` messages of one generation, part 0 to
 * parts - 1, sent in order; the node applies it when the last part arrives. active = false
 * (no policy on the coordinator: allow all) is one part with no rules. */
struct control_filter {
	uint32_t generation; /* the coordinator's counter; a new set starts a new generation */
	uint8_t part;        /* 0 .. parts - 1 */
	uint8_t parts;       /* 1 .. CONTROL_FILTER_MAX_PARTS */
	bool active;
	uint8_t n_rules;     /* 0 .. CONTROL_FILTER_RULES_PER_MSG */
	struct filter_rule rules[CONTROL_FILTER_RULES_PER_MSG];
};

/* One published service: its name (a DNS label, for logs and status), its transport
 * (CONTROL_PROTO_TCP or _UDP) and the public port it asks for (1..65535). */
struct control_service {
	char name[CONTROL_NAME_MAX + 1];
	uint8_t proto;
	uint16_t port;
};

struct control_publish {
	struct control_service list[CONTROL_MAX_PUBLISH];
	size_t n;
};

struct control_publish_state_msg {
	struct control_service service;
	uint8_t state; /* enum control_publish_state */
};

/* A client connection (TCP) or flow (UDP) on a published port. */
struct control_stream_open {
	uint64_t stream_id;
	uint8_t secret[CONTROL_STREAM_SECRET_LEN];
	uint8_t proto;
	uint16_t port;                 /* the public port the client reached */
	struct control_endpoint client; /* who it is (for logs and the PROXY header) */
};

struct control_message {
	enum control_msg_type type;
	union {
		struct control_register reg;
		struct control_registered registered;
		struct control_error error;
		struct control_peer peer;
		uint8_t remove_key[WIRE_KEY_LEN];
		struct control_relay_info relay_info;
		struct control_relay relay;
		struct control_filter filter;
		struct control_dns dns;
		struct control_routes routes;
		struct control_peer_routes peer_routes;
		struct control_satellites satellites;
		struct control_peer_satellites peer_satellites;
		struct control_publish publish;
		struct control_publish_state_msg publish_state;
		struct control_stream_open stream_open;
		uint64_t stream_refuse; /* the stream id */
		struct {
			struct control_endpoint list[CONTROL_MAX_ENDPOINTS];
			size_t n;
		} endpoints;
	} u;
};

enum control_decode_result {
	CONTROL_DECODE_OK = 0,
	CONTROL_DECODE_UNKNOWN = 1,    /* a type we do not know: skip it */
	CONTROL_DECODE_MALFORMED = -1, /* a known type that does not parse: drop the connection */
};

/* True when s (NUL-terminated) is a name the codec carries: 1..CONTROL_NAME_MAX of
 * [A-Za-z0-9._-]. For stores that must not hand the encoder a name it refuses. */
bool control_name_valid(const char *s);

/* Encodes one message; returns its length, or 0 if it does not fit in cap or is invalid. */
size_t control_encode(const struct control_message *m, uint8_t *out, size_t cap);
enum control_decode_result control_decode(const uint8_t *buf, size_t len, struct control_message *out);

/* Appends m as one record to a frame's plaintext plain[0..*used) of at most cap bytes
 * (CONTROL_MAX_PLAIN for a full frame) and advances *used. False, with plain and *used as
 * they were, if the record does not fit or m is invalid; any valid message fits an empty
 * frame, so a false on an empty one means an invalid message. */
bool control_record_append(uint8_t *plain, size_t cap, size_t *used, const struct control_message *m);
/* Steps through the records of a frame's plaintext: from *off (0 to start), returns 1 with
 * *msg and *msg_len set to the next message and *off moved past it, 0 at the end, and -1 if
 * the frame is malformed: no record at all, a zero-length record, or a length past the end. */
int control_record_next(const uint8_t *plain, size_t len, size_t *off, const uint8_t **msg, size_t *msg_len);

/* ---------------------------------------------------------------- the encrypted channel */

struct control_channel {
	bool established;
	struct noise_handshake hs;
	uint8_t remote_static[WIRE_KEY_LEN]; /* server side: the node's key, once accepted */
	uint8_t send_key[NOISE_KEY_LEN];
	uint8_t recv_key[NOISE_KEY_LEN];
	uint64_t send_nonce;
	uint64_t recv_nonce;
};

/* Node: builds frame 1 (with its 2-byte header) into out; *out_len = CONTROL_FRAME_HEADER_LEN +
 * CONTROL_HELLO_LEN. ephemeral_private is NULL except in tests. */
bool control_client_hello(struct control_channel *ch, const uint8_t node_private[WIRE_KEY_LEN],
			  const uint8_t coord_public[WIRE_KEY_LEN], const uint8_t timestamp[WIRE_TIMESTAMP_LEN],
			  const uint8_t *ephemeral_private, uint8_t *out, size_t cap, size_t *out_len);
/* Node: consumes frame 2's body (header already removed). */
bool control_client_finish(struct control_channel *ch, const uint8_t *body, size_t len);

/* Coordinator: consumes frame 1's body; on success ch->remote_static is the node's key and
 * timestamp_out its hello timestamp (the caller refuses one not newer than the last), and
 * frame 2 (with header) is written to out. */
bool control_server_accept(struct control_channel *ch, const uint8_t coord_private[WIRE_KEY_LEN],
			   const uint8_t *body, size_t len, uint8_t timestamp_out[WIRE_TIMESTAMP_LEN],
			   const uint8_t *ephemeral_private, uint8_t *out, size_t cap, size_t *out_len);

/* The coordinator's side in two steps, so that it can judge a hello (its timestamp, the
 * node it names) after the two Diffie-Hellman operations of reading it and before the three
 * of answering it. The responder's initial state (its key pair and the hashed protocol name,
 * prologue and "<- s") is the same for every hello: control_server_key_init computes it once
 * at start, not once per connection. */
struct control_server_key {
	struct noise_handshake initial;
};
bool control_server_key_init(struct control_server_key *k, const uint8_t coord_private[WIRE_KEY_LEN]);
void control_server_key_clear(struct control_server_key *k);
/* Consumes frame 1's body: on success ch->remote_static is the node's key, timestamp_out
 * its hello timestamp, and ch waits for control_server_write_welcome. */
bool control_server_read_hello(struct control_channel *ch, const struct control_server_key *k, const uint8_t *body,
			       size_t len, uint8_t timestamp_out[WIRE_TIMESTAMP_LEN]);
/* Writes frame 2 (with header) into out and establishes the channel. */
bool control_server_write_welcome(struct control_channel *ch, const uint8_t *ephemeral_private, uint8_t *out,
				  size_t cap, size_t *out_len);

/* Encrypts plain into one frame (header included). len <= CONTROL_MAX_PLAIN. */
bool control_seal(struct control_channel *ch, const uint8_t *plain, size_t len, uint8_t *out, size_t cap,
		  size_t *out_len);
/* Seals m as a frame of one record (header included); the plaintext is wiped, as a REGISTER
 * holds the join secret. For a sender that says one thing at a time. */
bool control_seal_message(struct control_channel *ch, const struct control_message *m, uint8_t *out, size_t cap,
			  size_t *out_len);
/* Decrypts one frame body (header removed). False: forged, reordered or corrupt: close. */
bool control_open(struct control_channel *ch, const uint8_t *body, size_t len, uint8_t *plain, size_t cap,
		  size_t *plain_len);

/* Finds a complete frame at the start of buf: returns 1 and sets *body, *body_len and *consumed,
 * 0 if more bytes are needed, -1 if the length is 0 or above CONTROL_MAX_FRAME. */
int control_frame_next(const uint8_t *buf, size_t len, const uint8_t **body, size_t *body_len, size_t *consumed);

void control_channel_clear(struct control_channel *ch);

#endif
