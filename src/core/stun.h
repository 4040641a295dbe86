/* STUN Binding (RFC 8489, and classic RFC 3489 clients): the coordinator answers requests
 * with the address it saw; a node sends requests from its data socket to learn its
 * reflexive address (the NAT mapping its data packets get). */
#ifndef MESHD_STUN_H
#define MESHD_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	STUN_DEFAULT_PORT = 3478,          /* IANA "stun" */
	STUN_HEADER_LEN = 20,
	STUN_MAGIC_COOKIE = 0x2112A442,    /* RFC 5389: marks a modern client; XOR key for addresses */
	STUN_TRANSACTION_ID_LEN = 12,
	STUN_BINDING_REQUEST = 0x0001,
	STUN_BINDING_RESPONSE = 0x0101,
	STUN_ATTR_MAPPED_ADDRESS = 0x0001,
	STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_ATTR_SOFTWARE = 0x8022,
	STUN_ATTR_FINGERPRINT = 0x8028,
	STUN_MAX_MESSAGE = 548,            /* RFC 8489 section 6.1: what any path carries */
};

struct stun_request {
	bool classic; /* no magic cookie: an RFC 3489 client (transaction id is then 16 bytes) */
	uint8_t transaction_id[16]; /* 12 bytes used for RFC 8489, 16 (cookie field included) for classic */
};

/* Parses a Binding request (explicit length, every bound checked; attributes are skipped,
 * but their lengths must be consistent). False for anything else. */
bool stun_parse_request(const uint8_t *buf, size_t len, struct stun_request *out);
/* Builds the Binding success response telling `observed` (AF_INET/AF_INET6, v4-mapped shown
 * as IPv4) its address: XOR-MAPPED-ADDRESS and MAPPED-ADDRESS, plus SOFTWARE; classic clients
 * get MAPPED-ADDRESS only. Returns length or 0 (unsupported family, or cap too small). */
size_t stun_build_response(const struct stun_request *req, const struct sockaddr *observed, uint8_t *out,
			   size_t cap);

/* Client side: a Binding request with the given 12-byte transaction id. Returns length (20). */
size_t stun_build_request(const uint8_t transaction_id[STUN_TRANSACTION_ID_LEN], uint8_t *out, size_t cap);
/* True if buf looks like a STUN message (top bits 00, magic cookie, length multiple of 4 and
 * consistent): lets the data socket tell STUN from meshd messages before parsing. */
bool stun_is_message(const uint8_t *buf, size_t len);
/* Parses a Binding success response for our transaction id; fills the mapped address
 * (XOR-MAPPED-ADDRESS preferred) into *mapped. */
bool stun_parse_response(const uint8_t *buf, size_t len, const uint8_t transaction_id[STUN_TRANSACTION_ID_LEN],
			 struct sockaddr_storage *mapped);

#endif
