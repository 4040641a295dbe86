/* The control socket's wire format: what `meshd status|ping|netcheck` (the CLI) and
 * `meshd up` (the daemon's ctl server) say to each other over a UNIX stream socket.
 *
 *   request:  magic "MSHQ" (4) | version (u16 BE) | command (u16 BE) | flags (u16 BE)
 *             | arg_len (u16 BE, at most IPC_ARG_MAX) | arg (printable ASCII, no spaces)
 *   response: magic "MSHR" (4) | version (u16 BE) | status (u16 BE) | body_len (u32 BE, at
 *             most IPC_BODY_MAX) | body
 *
 * One request per connection: the daemon answers, then closes. The magic and the version
 * come first in every version of the protocol, forever: whatever else changes, a daemon
 * can read the version of a CLI it does not understand and answer IPC_STATUS_VERSION in its
 * own version, and the CLI can tell the user which binaries disagree.
 *
 * The daemon renders the body (flags pick the JSON or the plain-text table), so the CLI
 * prints it as is: the two renderings come from the same data in one place, and the CLI
 * needs no JSON parser (one parser fewer that could be fed a hostile daemon's output). */
#ifndef MESHD_IPC_H
#define MESHD_IPC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	IPC_VERSION = 1,
	IPC_MAGIC_LEN = 4,
	IPC_PREFIX_LEN = IPC_MAGIC_LEN + 2, /* magic and version: the part no version changes */
	IPC_REQUEST_HEADER_LEN = IPC_PREFIX_LEN + 2 + 2 + 2,
	/* A peer name (CONFIG_NAME_MAX 64) or an IPv6 address (45), with room. */
	IPC_ARG_MAX = 128,
	IPC_REQUEST_MAX = IPC_REQUEST_HEADER_LEN + IPC_ARG_MAX,
	IPC_RESPONSE_HEADER_LEN = IPC_PREFIX_LEN + 2 + 4,
	/* Status of a 10,000-peer map is ~4 MB of JSON (~400 bytes a peer); twice that. */
	IPC_BODY_MAX = 8 << 20,
};

enum ipc_command {
	IPC_CMD_STATUS = 1,
	IPC_CMD_PING = 2,     /* arg: a peer's name or one of its overlay addresses */
	IPC_CMD_NETCHECK = 3,
	IPC_CMD_SET_EXIT_NODE = 4, /* arg: a node's name, or "none" */
};

enum ipc_flag {
	IPC_FLAG_JSON = 1, /* the body is JSON; else a plain-text rendering for people */
	IPC_FLAGS_KNOWN = IPC_FLAG_JSON,
};

enum ipc_status {
	IPC_STATUS_OK = 0,         /* body: the answer, for stdout */
	IPC_STATUS_NEGATIVE = 1,   /* body: the answer, for stdout, but it is "no" (ping: no pong) */
	IPC_STATUS_ERROR = 2,      /* body: one line saying what is wrong, for stderr */
	IPC_STATUS_VERSION = 3,    /* the request's version is not ours; body: "meshd <package version>" */
};

enum ipc_decode {
	IPC_DECODE_OK,
	IPC_DECODE_INCOMPLETE, /* a prefix of a valid message: read more */
	IPC_DECODE_BAD_MAGIC,  /* not our protocol at all */
	IPC_DECODE_VERSION,    /* our magic, another version: only the version field is filled */
	IPC_DECODE_MALFORMED,  /* our magic and version, but a field is out of range */
};

struct ipc_request {
	uint16_t version;
	uint16_t command;
	uint16_t flags;
	char arg[IPC_ARG_MAX + 1]; /* NUL-terminated */
	size_t arg_len;
};

struct ipc_response_header {
	uint16_t version;
	uint16_t status;
	uint32_t body_len;
};

/* Writes the request (version IPC_VERSION); returns its length, or 0 if the argument is
 * too long or not printable, or cap is too small. */
size_t ipc_request_encode(uint16_t command, uint16_t flags, const char *arg, uint8_t *out, size_t cap);
/* Reads a request from the first len bytes of buf. On IPC_DECODE_OK *consumed is its length
 * (anything after it is not part of it). Every field is checked; the command is not (the
 * server answers an unknown one with an error). */
enum ipc_decode ipc_request_decode(const uint8_t *buf, size_t len, struct ipc_request *out, size_t *consumed);

/* Writes a response header (version IPC_VERSION); IPC_RESPONSE_HEADER_LEN bytes. */
void ipc_response_header_encode(uint16_t status, uint32_t body_len, uint8_t out[IPC_RESPONSE_HEADER_LEN]);
/* Reads a response header from the first len bytes of buf. IPC_DECODE_VERSION: the
 * daemon speaks another version (out->version); the rest is not read. */
enum ipc_decode ipc_response_header_decode(const uint8_t *buf, size_t len, struct ipc_response_header *out);

/* A growing text buffer for response bodies, never beyond IPC_BODY_MAX: once a write would
 * pass it (or memory runs out) the buffer is marked failed and stays so. */
struct ipc_text {
	char *buf;
	size_t len, cap;
	bool failed;
};

void ipc_text_init(struct ipc_text *t);
void ipc_text_free(struct ipc_text *t);
__attribute__((format(printf, 2, 3))) void ipc_text_printf(struct ipc_text *t, const char *fmt, ...);
/* Appends s (len bytes) as a JSON string, quoted and escaped (control characters as \u00XX;
 * DEL and bytes >= 0x80 become '?': names here are ASCII, and the output is valid JSON whatever s is). */
void ipc_text_json_string(struct ipc_text *t, const char *s, size_t len);

#endif
