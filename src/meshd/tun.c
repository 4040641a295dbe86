/* The TUN device. Plain layer-3 frames, one IP packet per read/write, no packet-info
 * header: the IP version nibble already says what the packet is.
 *
 * Planned throughput step: IFF_VNET_HDR plus TUNSETOFFLOAD (TUN_F_CSUM | TUN_F_TSO4 |
 * TUN_F_TSO6) so one read returns a TCP super-packet of up to 64 KB with a virtio_net_hdr
 * in front, which the data path segments and encrypts in one pass. Until then every read
 * is one MTU-sized packet. */
#include "meshd/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char tun_clone_path[] = "/dev/net/tun";

int tun_open(char name[IFNAMSIZ])
{
	struct ifreq ifr;
	size_t name_len;
	int fd, err;

	/* Refuse rather than truncate: a silently shortened name would configure the wrong
	 * interface, or attach to someone else's. */
	name_len = strnlen(name, IFNAMSIZ);
	if (name_len >= IFNAMSIZ)
		return -EINVAL;

	/* O_CLOEXEC: a helper we spawn must not hold the interface alive. O_NONBLOCK: the
	 * event loop reads until EAGAIN. Missing node gives -ENOENT, for the caller's message. */
	fd = open(tun_clone_path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, name_len); /* the rest stays zero: NUL-terminated */

	/* Without CAP_NET_ADMIN this is where -EPERM comes from (the open above succeeds
	 * for everyone because /dev/net/tun is usually mode 0666). */
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		close(fd);
		return err;
	}

	/* The kernel fills in a "%d" template, and may have been given an empty name. */
	ifr.ifr_name[IFNAMSIZ - 1] = '\0';
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	return fd;
}
