/* Fuzz target: the control socket codec, both directions, on arbitrary bytes with their exact
 * length (what a local client, or a daemon of another version, may send). A request that
 * decodes must encode back to the same bytes; a prefix of it must read as incomplete; a
 * response header that decodes must be in range. The JSON string writer gets the input too:
 * its output must stay inside printable ASCII with balanced quotes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *data, size_t size)
{
	struct ipc_request req;
	size_t consumed;
	uint8_t again[IPC_REQUEST_MAX];

	enum ipc_decode rc = ipc_request_decode(data, size, &req, &consumed);
	if (rc != IPC_DECODE_OK) {
		if (consumed != 0)
			abort();
		return;
	}
	if (consumed > size || consumed > IPC_REQUEST_MAX || req.arg_len > IPC_ARG_MAX ||
	    strlen(req.arg) != req.arg_len || req.version != IPC_VERSION)
		abort();
	size_t n = ipc_request_encode(req.command, req.flags, req.arg, again, sizeof(again));
	if (n != consumed || memcmp(again, data, n) != 0)
		abort();
	/* Every strict prefix is incomplete, never an error or a different message. */
	for (size_t cut = 0; cut < consumed; cut++) {
		struct ipc_request part;
		size_t c;
		if (ipc_request_decode(data, cut, &part, &c) != IPC_DECODE_INCOMPLETE)
			abort();
	}
}

static void check_response(const uint8_t *data, size_t size)
{
	struct ipc_response_header h;
	uint8_t again[IPC_RESPONSE_HEADER_LEN];

	if (ipc_response_header_decode(data, size, &h) != IPC_DECODE_OK)
		return;
	if (size < IPC_RESPONSE_HEADER_LEN || h.body_len > IPC_BODY_MAX || h.status > IPC_STATUS_VERSION)
		abort();
	ipc_response_header_encode(h.status, h.body_len, again);
	if (memcmp(again, data, sizeof(again)) != 0)
		abort();
}

static void check_json_string(const uint8_t *data, size_t size)
{
	struct ipc_text t;
	ipc_text_init(&t);
	ipc_text_json_string(&t, (const char *)data, size);
	if (t.failed || t.len < 2 || t.buf[0] != '"' || t.buf[t.len - 1] != '"' || strlen(t.buf) != t.len)
		abort();
	for (size_t i = 1; i + 1 < t.len; i++) {
		unsigned char c = (unsigned char)t.buf[i];
		if (c < 0x20 || c >= 0x7f)
			abort();
		if (c == '\\')
			i++; /* the escaped character */
		else if (c == '"')
			abort(); /* an unescaped quote would end the string early */
	}
	ipc_text_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	check_response(data, size);
	check_json_string(data, size);
	return 0;
}
