/* UDP offloads on the data socket: GSO on send (UDP_SEGMENT: one sendmsg carries several
 * equal-size datagrams to one address, the kernel cuts them) and GRO on receive (UDP_GRO:
 * one recvmsg returns several datagrams of one sender back to back, with their size in
 * a control message). Both are probed when the socket opens; a kernel or socket that
 * refuses them leaves the plain one-datagram-per-message path, logged once. */
#ifndef MESHD_UDPOFFLOAD_H
#define MESHD_UDPOFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	/* The kernel's UDP_MAX_SEGMENTS (include/linux/udp.h) is 128; one batch is less. */
	UDPOFFLOAD_MAX_SEGMENTS = 64,
	/* One GSO send is one IP packet before the split: payload under 64 KB minus an IPv6
	 * header and the UDP header, rounded down for margin. */
	UDPOFFLOAD_MAX_BYTES = 65000,
	/* A GRO receive holds up to 64 KB of datagrams. */
	UDPOFFLOAD_GRO_BUFFER = 65536,
	/* Room for one control message with a 16-bit (send) or int (receive) segment size. */
	UDPOFFLOAD_CMSG_SPACE = 32,
};

/* Which offloads the socket took (setsockopt probes; nothing is left set on failure). */
void udpoffload_probe(int fd, bool *gso, bool *gro);

/* Send side. The outbox's datagrams i..i+n-1 that may go as one GSO message: the same
 * destination, every one but the last exactly as long as the first and the last not
 * longer, within the byte and segment limits. Returns n >= 1. */
size_t udpoffload_group(const struct iovec *iov, const struct sockaddr_storage *dest, size_t count, size_t i);
/* Writes the UDP_SEGMENT control message for segments of seg_size into msg (control
 * points to UDPOFFLOAD_CMSG_SPACE bytes). */
void udpoffload_set_segment(struct msghdr *msg, uint8_t *control, uint16_t seg_size);

/* Receive side: the segment size of a GRO receive (its UDP_GRO control message), or 0
 * when the message holds one datagram. */
size_t udpoffload_gro_size(struct msghdr *msg);

#endif
