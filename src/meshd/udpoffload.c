/* UDP GSO/GRO on the data socket: see udpoffload.h. */
#include "meshd/udpoffload.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "core/ipaddr.h"

/* Linux 4.18 (UDP_SEGMENT) and 5.0 (UDP_GRO); older headers lack the names. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

_Static_assert(CMSG_SPACE(sizeof(int)) <= UDPOFFLOAD_CMSG_SPACE, "room for one UDP control message");

void udpoffload_probe(int fd, bool *gso, bool *gro)
{
	int one = 1, zero = 0, size = 0;
	socklen_t len = sizeof(size);
	/* UDP_SEGMENT as a socket option only sets a default size; reading it says the
	 * kernel knows the option, which is what the per-message form needs too. */
	*gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
	*gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	if (!*gro)
		(void)setsockopt(fd, SOL_UDP, UDP_GRO, &zero, sizeof(zero));
}

size_t udpoffload_group(const struct iovec *iov, const struct sockaddr_storage *dest, size_t count, size_t i)
{
	size_t size = iov[i].iov_len, total = size, n = 1;
	while (i + n < count && n < UDPOFFLOAD_MAX_SEGMENTS) {
		const struct iovec *next = &iov[i + n];
		if (iov[i + n - 1].iov_len != size || next->iov_len > size || next->iov_len == 0 ||
		    total + next->iov_len > UDPOFFLOAD_MAX_BYTES || !sockaddr_equal(&dest[i], &dest[i + n]))
			break;
		total += next->iov_len;
		n++;
	}
	return n;
}

void udpoffload_set_segment(struct msghdr *msg, uint8_t *control, uint16_t seg_size)
{
	memset(control, 0, UDPOFFLOAD_CMSG_SPACE);
	msg->msg_control = control;
	msg->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
	struct cmsghdr *c = CMSG_FIRSTHDR(msg);
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	memcpy(CMSG_DATA(c), &seg_size, sizeof(seg_size));
}

size_t udpoffload_gro_size(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int size;
			memcpy(&size, CMSG_DATA(c), sizeof(size));
			return size > 0 ? (size_t)size : 0;
		}
	}
	return 0;
}
