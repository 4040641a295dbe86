/* Fuzz target: the STUN parsers, both sides. The input is one datagram, passed with its
 * exact length. A request that parses must get a response that our own client reads back
 * as the address we put in; a response is checked against its own transaction id, so the
 * fuzzer reaches the attribute walk without guessing 96 bits. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Family, port and address equal (the rest of a sockaddr is not what STUN carries). */
static bool same_address(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

static void check_round_trip(const struct stun_request *req, const struct sockaddr *observed,
			     const struct sockaddr *expect)
{
	uint8_t out[STUN_MAX_MESSAGE];
	struct sockaddr_storage mapped;
	size_t n;

	n = stun_build_response(req, observed, out, sizeof(out));
	if (n < STUN_HEADER_LEN || n > sizeof(out) || n % 4 != 0)
		abort();
	if (req->classic) {
		/* RFC 3489 clients get their 16-byte id back, and no cookie is invented. */
		if (memcmp(out + 4, req->transaction_id, 16) != 0)
			abort();
		return;
	}
	if (!stun_is_message(out, n) || !stun_parse_response(out, n, req->transaction_id, &mapped))
		abort();
	if (!same_address(&mapped, expect))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stun_request req;
	struct sockaddr_storage mapped;
	bool is_msg = stun_is_message(data, size);

	if (stun_parse_request(data, size, &req)) {
		struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons(54321) };
		struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(3478) };
		struct sockaddr_in6 mapped4 = { .sin6_family = AF_INET6, .sin6_port = htons(54321) };

		/* A modern request is exactly what the data socket recognises as STUN. */
		if (!req.classic && !is_msg)
			abort();
		in4.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
		inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
		inet_pton(AF_INET6, "::ffff:192.0.2.1", &mapped4.sin6_addr);
		check_round_trip(&req, (struct sockaddr *)&in4, (struct sockaddr *)&in4);
		check_round_trip(&req, (struct sockaddr *)&in6, (struct sockaddr *)&in6);
		/* Seen through a dual-stack socket, an IPv4 client is told its IPv4 address. */
		check_round_trip(&req, (struct sockaddr *)&mapped4, (struct sockaddr *)&in4);
	}
	if (size >= STUN_HEADER_LEN) {
		uint8_t tid[STUN_TRANSACTION_ID_LEN];

		memcpy(tid, data + 8, sizeof(tid));
		if (stun_parse_response(data, size, tid, &mapped)) {
			if (!is_msg)
				abort();
			if (mapped.ss_family == AF_INET) {
				if (((struct sockaddr_in *)&mapped)->sin_port == 0)
					abort();
			} else if (mapped.ss_family == AF_INET6) {
				if (((struct sockaddr_in6 *)&mapped)->sin6_port == 0)
					abort();
			} else {
				abort();
			}
		}
	}
	return 0;
}
