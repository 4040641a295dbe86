/* The coordinator's STUN responder: Binding requests answered with the address they came
 * from (core/stun.c builds the answer), on the main STUN socket and on the alternate port
 * (a second destination, so a node can tell whether its NAT mapping depends on it). The
 * main socket also carries relay frames (core/relay.h: their first byte is 0x81 or 0x83,
 * never a STUN message's), which go to relay.c; the alternate port answers STUN only.
 * STUN itself is stateless, so a flood costs only the time to drop it. An answer is 3-4x
 * the request and UDP sources can be forged, so answers are limited per source address
 * (coord/srclimit.h): a forged flood "from" a victim gets it a trickle, not an amplifier. */
#include <errno.h>
#include <sys/socket.h>

#include "coord/server_internal.h"
#include "core/ipaddr.h"
#include "core/stun.h"

static bool is_relay_frame(const uint8_t *buf, size_t len)
{
	return len > 0 && (buf[WIRE_OFF_TYPE] == MSG_RELAY_BIND || buf[WIRE_OFF_TYPE] == MSG_RELAY_DATA);
}

/* One answer more for this source? Sources the table has no room for (a flood from forged
 * random addresses) share the overflow bucket. */
static bool stun_answer_allowed(struct coord_server *s, const struct sockaddr *from)
{
	struct srclimit_entry *e = srclimit_get(&s->src_stun, from, s->now_ms);

	if (e)
		return srclimit_take(&s->src_stun, e, s->now_ms);
	return ratelimit_take(&s->stun_overflow, SERVER_STUN_OVERFLOW_RATE, SERVER_STUN_OVERFLOW_BURST, s->now_ms, 1);
}

/* One datagram of a batch. */
static void on_datagram(struct coord_server *s, struct source *src, uint8_t *in, size_t n, bool truncated,
			union peer_addr *from, socklen_t flen)
{
	bool relay = src == &s->stun;
	uint8_t out[STUN_MAX_MESSAGE];
	struct stun_request req;
	char a[ADDR_STR_MAX];

	if (relay && is_relay_frame(in, n)) {
		if (truncated) /* larger than any relay frame: the kernel cut it */
			SERVER_COUNT_LOG(s, relay_malformed, "relay: dropped an oversized datagram from %s",
					 sockaddr_format(&from->sa, a, sizeof(a)));
		else
			relay_on_datagram(s, in, n, from, flen);
		return;
	}
	if (truncated || !stun_parse_request(in, n, &req)) {
		SERVER_COUNT_LOG(s, stun_dropped, "stun: dropped a %zu-byte datagram from %s: not a Binding request", n,
				 sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	if (!stun_answer_allowed(s, &from->sa)) {
		SERVER_COUNT_LOG(s, stun_rate_limited, "stun: more than %d requests a second from %s; not answering",
				 SERVER_STUN_SRC_RATE, sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	size_t len = stun_build_response(&req, &from->sa, out, sizeof(out));
	if (len == 0) {
		s->counters.stun_dropped++;
		return;
	}
	s->counters.stun_requests++;
	if (!relay)
		s->counters.stun_alt_requests++;
	/* Best effort, like UDP: a full socket buffer drops the answer and the client retries. */
	(void)sendto(src->fd, out, len, MSG_DONTWAIT, &from->sa, flen);
}

void stunserver_on_readable(struct coord_server *s, struct source *src)
{
	for (unsigned int i = 0; i < SERVER_STUN_BATCH; i++) {
		s->udp.iov[i] = (struct iovec){ .iov_base = s->udp.buf[i], .iov_len = SERVER_STUN_RECV_MAX };
		s->udp.msgs[i].msg_hdr = (struct msghdr){ .msg_name = &s->udp.from[i],
							  .msg_namelen = sizeof(s->udp.from[i]),
							  .msg_iov = &s->udp.iov[i],
							  .msg_iovlen = 1 };
	}
	int n = recvmmsg(src->fd, s->udp.msgs, SERVER_STUN_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return; /* EAGAIN, EINTR, or an ICMP error from an earlier answer: level-triggered epoll calls again */
	s->udp.batching = true;
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &s->udp.msgs[i].msg_hdr;
		on_datagram(s, src, s->udp.buf[i], s->udp.msgs[i].msg_len, (h->msg_flags & MSG_TRUNC) != 0,
			    &s->udp.from[i], h->msg_namelen);
	}
	s->udp.batching = false;
	relay_flush_udp(s);
}
