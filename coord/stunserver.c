/* The coordinator's STUN responder: Binding requests answered with the address they came
 * from (core/stun.c builds the answer), on the main STUN socket and on the alternate port
 * (a second destination, so a node can tell whether its NAT mapping depends on it). The
 * main socket also carries relay frames (core/relay.h: their first byte is 0x81 or 0x83,
 * never a STUN message's), which go to relay.c; the alternate port answers STUN only.
 * STUN itself is stateless, so a flood costs only the time to drop it. */
#include <errno.h>
#include <sys/socket.h>

#include "coord/server_internal.h"
#include "core/ipaddr.h"
#include "core/stun.h"

static bool is_relay_frame(const uint8_t *buf, size_t len)
{
	return len > 0 && (buf[WIRE_OFF_TYPE] == MSG_RELAY_BIND || buf[WIRE_OFF_TYPE] == MSG_RELAY_DATA);
}

void stunserver_on_readable(struct coord_server *s, struct source *src)
{
	bool relay = src == &s->stun;

	for (int i = 0; i < SERVER_STUN_BATCH; i++) {
		uint8_t in[SERVER_STUN_RECV_MAX];
		uint8_t out[STUN_MAX_MESSAGE];
		union peer_addr from;
		socklen_t flen = sizeof(from);
		struct stun_request req;
		char a[ADDR_STR_MAX];

		ssize_t n = recvfrom(src->fd, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC, &from.sa, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN, or an ICMP error from an earlier answer: nothing to do */
		}
		if (relay && is_relay_frame(in, (size_t)n)) {
			/* An oversized frame was cut by the kernel: its real length says so. */
			relay_on_datagram(s, in, (size_t)n, &from, flen);
			continue;
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
		if (!relay)
			s->counters.stun_alt_requests++;
		/* Best effort, like UDP: a full socket buffer drops the answer and the client retries. */
		(void)sendto(src->fd, out, len, MSG_DONTWAIT, &from.sa, flen);
	}
}
