/* The coordinator's STUN responder: Binding requests on a UDP socket of their own, answered
 * with the address they came from (core/stun.c builds the answer). Stateless, so a flood
 * costs only the time to drop it. */
#include <errno.h>
#include <sys/socket.h>

#include "coord/server_internal.h"
#include "core/ipaddr.h"
#include "core/stun.h"

void stunserver_on_readable(struct coord_server *s)
{
	for (int i = 0; i < SERVER_STUN_BATCH; i++) {
		uint8_t in[SERVER_STUN_RECV_MAX];
		uint8_t out[STUN_MAX_MESSAGE];
		union peer_addr from;
		socklen_t flen = sizeof(from);
		struct stun_request req;
		char a[ADDR_STR_MAX];

		ssize_t n = recvfrom(s->stun.fd, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC, &from.sa, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN, or an ICMP error from an earlier answer: nothing to do */
		}
		if ((size_t)n > sizeof(in) || !stun_parse_request(in, (size_t)n, &req)) {
			SERVER_COUNT_LOG(s, stun_dropped, "stun: dropped a %zd-byte datagram from %s: not a Binding request",
					 n, sockaddr_format(&from.sa, a, sizeof(a)));
			continue;
		}
		size_t len = stun_build_response(&req, &from.sa, out, sizeof(out));
		if (len == 0) {
			s->counters.stun_dropped++;
			continue;
		}
		s->counters.stun_requests++;
		/* Best effort, like UDP: a full socket buffer drops the answer and the client retries. */
		(void)sendto(s->stun.fd, out, len, MSG_DONTWAIT, &from.sa, flen);
	}
}
