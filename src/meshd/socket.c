/* The node's UDP socket, the one every peer's datagrams go through: opened dual-stack with
 * its offloads probed (udpoffload.c), the outbox (tx.c queues sealed datagrams, sent a batch
 * at a time by sendmmsg, grouped for GSO) and the inbox (a recvmmsg batch, GRO super-
 * datagrams split, each handed to rx.c). */
#include "meshd/socket.h"
#include "meshd/meshroutes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "meshd/device.h"
#include "meshd/rx.h"
#include "meshd/udpoffload.h"

enum {
	SOCKET_BUFFER_BYTES = 4 << 20, /* room for bursts at multi-Gbit/s between loop turns */
};

bool socket_alloc_buffers(struct device *dev)
{
	size_t datagram = dev->mtu + DEVICE_DATAGRAM_OVERHEAD;
	if (datagram < WIRE_INITIATION_LEN)
		datagram = WIRE_INITIATION_LEN;
	/* Receive slots take one byte more than we accept so that an oversized datagram is
	 * seen as such (MSG_TRUNC) rather than silently cut. */
	dev->inbox.slot_size = (datagram > RELAY_MAX_FRAME ? datagram : RELAY_MAX_FRAME) + 1;
	/* A GRO receive holds many datagrams: the pages are touched only when it does. */
	if (dev->udp_gro && dev->inbox.slot_size < UDPOFFLOAD_GRO_BUFFER + 1)
		dev->inbox.slot_size = UDPOFFLOAD_GRO_BUFFER + 1;
	dev->outbox.slot_size = DEVICE_SLOT_HEADROOM + datagram;
	dev->outbox.payload_room = datagram;
	dev->inbox.buffers = calloc(DEVICE_BATCH, dev->inbox.slot_size);
	dev->outbox.buffers = calloc(DEVICE_BATCH, dev->outbox.slot_size);
	if (!dev->inbox.buffers || !dev->outbox.buffers)
		return false;

	for (unsigned int i = 0; i < DEVICE_BATCH; i++) {
		dev->inbox.iov[i].iov_base = dev->inbox.buffers + (size_t)i * dev->inbox.slot_size;
		dev->inbox.iov[i].iov_len = dev->inbox.slot_size;
		dev->inbox.msgs[i].msg_hdr.msg_iov = &dev->inbox.iov[i];
		dev->inbox.msgs[i].msg_hdr.msg_iovlen = 1;
		dev->inbox.msgs[i].msg_hdr.msg_name = &dev->inbox.source[i];
		dev->outbox.msgs[i].msg_hdr.msg_iov = &dev->outbox.iov[i];
		dev->outbox.msgs[i].msg_hdr.msg_iovlen = 1;
		dev->outbox.msgs[i].msg_hdr.msg_name = &dev->outbox.dest[i];
	}
	return true;
}

bool socket_open(struct device *dev, uint16_t port, char *err, size_t err_len)
{
	int zero = 0, bufsize = SOCKET_BUFFER_BYTES;

	dev->udp_family = AF_INET6;
	dev->udp_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (dev->udp_fd >= 0) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
		setsockopt(dev->udp_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(dev->udp_fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)
			goto bind_failed;
	} else {
		dev->udp_family = AF_INET; /* IPv6 disabled on this host */
		dev->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (dev->udp_fd < 0) {
			snprintf(err, err_len, "cannot create a UDP socket: %s", strerror(errno));
			return false;
		}
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
		if (bind(dev->udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto bind_failed;
	}
	/* peers' direct paths, STUN and the relay stay outside an exit node's tunnel */
	meshroutes_mark_socket(dev->udp_fd);
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	if (getsockname(dev->udp_fd, (struct sockaddr *)&bound, &bound_len) == 0)
		dev->listen_port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
								      : ((struct sockaddr_in6 *)&bound)->sin6_port);
	/* The FORCE variants pass net.core.{r,w}mem_max (CAP_NET_ADMIN, which meshd has when it
	 * opens the socket): a default 208 KiB receive buffer holds a few ms of a flood or a
	 * burst, and what overflows it is lost, tunnel packets included. Without the capability,
	 * the plain options give what the sysctls allow. */
	if (setsockopt(dev->udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) != 0)
		setsockopt(dev->udp_fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	if (setsockopt(dev->udp_fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)) != 0)
		setsockopt(dev->udp_fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	udpoffload_probe(dev->udp_fd, &dev->udp_gso, &dev->udp_gro);
	log_info("UDP offloads: GSO %s, GRO %s", dev->udp_gso ? "on" : "off (kernel refused)",
		 dev->udp_gro ? "on" : "off (kernel refused)");
	return true;

bind_failed:
	snprintf(err, err_len, "cannot listen on UDP port %u: %s; pick another listen_port or stop the other program",
		 port, strerror(errno));
	return false;
}

/* Converts an address to the socket's family (IPv4 becomes v4-mapped IPv6 on a
 * dual-stack socket) so that endpoints compare equal to recvmmsg's source addresses. */
bool device_socket_address(const struct device *dev, const struct sockaddr *sa, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == dev->udp_family) {
		memcpy(out, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		return true;
	}
	if (sa->sa_family == AF_INET && dev->udp_family == AF_INET6) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = in->sin_port;
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&in6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
		return true;
	}
	return false; /* an IPv6 endpoint but IPv6 is not available here */
}

/* Sends msgs[0..count) of one mmsghdr array; n_of(i) datagrams ride in message i.
 * Returns the index of a message that failed with an error GSO may cause, or count. */
static unsigned int send_batch(struct device *dev, struct mmsghdr *msgs, unsigned int count, const unsigned int *n_of)
{
	unsigned int sent = 0;
	while (sent < count) {
		int n = sendmmsg(dev->udp_fd, msgs + sent, count - sent, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EIO: the device cannot checksum for us; EINVAL or EMSGSIZE: the kernel
			 * will not segment it (old kernel, or datagrams larger than the path's MTU,
			 * which only IP fragmentation, never GSO, gets through). */
			if (n_of && n_of[sent] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE))
				return sent;
			/* A full socket buffer or an unreachable peer: drop this message, keep the rest. */
			dev->counters.tx_dropped += n_of ? n_of[sent] : 1;
			n = 1;
		} else {
			for (int k = 0; k < n; k++)
				dev->counters.tx_datagrams += n_of ? n_of[sent + (unsigned int)k] : 1;
		}
		sent += (unsigned int)n;
	}
	return count;
}

/* Groups the outbox into GSO messages and sends them; on a refusal, GSO is off from
 * then on and the rest goes one datagram per message. */
static void flush_gso(struct device *dev)
{
	struct udp_outbox *ob = &dev->outbox;
	unsigned int m = 0;
	for (unsigned int i = 0; i < ob->count; m++) {
		unsigned int n = (unsigned int)udpoffload_group(ob->iov, ob->dest, ob->count, i);
		ob->gso_msgs[m].msg_hdr = ob->msgs[i].msg_hdr;
		ob->gso_msgs[m].msg_hdr.msg_iov = &ob->iov[i];
		ob->gso_msgs[m].msg_hdr.msg_iovlen = n;
		if (n > 1) {
			udpoffload_set_segment(&ob->gso_msgs[m].msg_hdr, ob->gso_control[m], (uint16_t)ob->iov[i].iov_len);
			dev->counters.tx_gso_sends++;
		}
		ob->gso_first[m] = i;
		ob->gso_n[m] = n;
		i += n;
	}
	unsigned int failed = send_batch(dev, ob->gso_msgs, m, ob->gso_n);
	if (failed == m)
		return;
	log_warn("UDP GSO refused on send (%s); sending one datagram per message from now on", strerror(errno));
	dev->udp_gso = false;
	unsigned int first = ob->gso_first[failed];
	send_batch(dev, ob->msgs + first, ob->count - first, NULL);
}

void device_outbox_flush(struct device *dev)
{
	if (dev->udp_fd < 0 || dev->outbox.count == 0) {
		dev->outbox.count = 0; /* offline device (fuzzing): drop */
		return;
	}
	if (dev->udp_gso)
		flush_gso(dev);
	else
		send_batch(dev, dev->outbox.msgs, dev->outbox.count, NULL);
	dev->outbox.count = 0;
}

uint8_t *device_outbox_slot(struct device *dev)
{
	if (dev->outbox.count == DEVICE_BATCH)
		device_outbox_flush(dev);
	return dev->outbox.buffers + (size_t)dev->outbox.count * dev->outbox.slot_size + DEVICE_SLOT_HEADROOM;
}

static void commit_at(struct device *dev, size_t offset, size_t len, const struct sockaddr_storage *dest)
{
	unsigned int i = dev->outbox.count++;
	dev->outbox.iov[i].iov_base = dev->outbox.buffers + (size_t)i * dev->outbox.slot_size + offset;
	dev->outbox.iov[i].iov_len = len;
	dev->outbox.dest[i] = *dest;
	dev->outbox.msgs[i].msg_hdr.msg_namelen =
		dest->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

void device_outbox_commit(struct device *dev, size_t len, const struct sockaddr_storage *dest)
{
	commit_at(dev, DEVICE_SLOT_HEADROOM, len, dest);
}

void device_outbox_commit_frame(struct device *dev, size_t len, const struct sockaddr_storage *dest)
{
	commit_at(dev, 0, len, dest);
}

bool socket_receive_batch(struct device *dev, uint64_t now_ms)
{
	for (unsigned int i = 0; i < DEVICE_BATCH; i++) {
		dev->inbox.msgs[i].msg_hdr.msg_namelen = sizeof(dev->inbox.source[i]);
		dev->inbox.msgs[i].msg_hdr.msg_flags = 0;
		if (dev->udp_gro) {
			dev->inbox.msgs[i].msg_hdr.msg_control = dev->inbox.control[i];
			dev->inbox.msgs[i].msg_hdr.msg_controllen = sizeof(dev->inbox.control[i]);
		}
	}
	int n = recvmmsg(dev->udp_fd, dev->inbox.msgs, DEVICE_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			device_log_limited(dev, DEVICE_LOG_udp_receive, now_ms, "receiving on the UDP socket failed: %s",
					   strerror(errno));
		return false;
	}
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &dev->inbox.msgs[i].msg_hdr;
		if (h->msg_flags & MSG_TRUNC || dev->inbox.msgs[i].msg_len >= dev->inbox.slot_size) {
			dev->counters.rx_datagrams++;
			dev->counters.rx_invalid_size++;
			continue;
		}
		uint8_t *buf = dev->inbox.iov[i].iov_base;
		size_t len = dev->inbox.msgs[i].msg_len;
		size_t seg = dev->udp_gro ? udpoffload_gro_size(h) : 0;
		if (seg == 0 || seg >= len) {
			rx_datagram(dev, buf, len, &dev->inbox.source[i], now_ms);
			continue;
		}
		/* GRO: datagrams of seg bytes back to back, the last one maybe shorter. */
		dev->counters.rx_gro_receives++;
		for (size_t off = 0; off < len; off += seg)
			rx_datagram(dev, buf + off, len - off < seg ? len - off : seg, &dev->inbox.source[i], now_ms);
	}
	rx_flush_tun(dev);
	return n == DEVICE_BATCH;
}

