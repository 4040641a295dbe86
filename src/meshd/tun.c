/* The TUN device. Layer-3 frames, no packet-info header: the IP version nibble already
 * says what the packet is.
 *
 * With offloads (IFF_VNET_HDR plus TUNSETOFFLOAD), every read and write carries a
 * virtio_net_hdr, and one read may return a TCP (TSO) or UDP (USO) super-packet of up to
 * 64 KB with a partial checksum: core/gso.c splits it, core/gro.c builds the super-packets
 * we write. Which offloads exist depends on the kernel; we take the most it grants. */
#include "meshd/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Linux 6.2 (USO); older <linux/if_tun.h> lack the names, the values are fixed ABI. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

static const char tun_clone_path[] = "/dev/net/tun";

/* Asks for the most offloads the kernel grants: TSO and USO, else TSO, else none (the
 * virtio header stays, every packet then comes whole with a complete checksum). */
static unsigned int set_offloads(int fd)
{
	static const struct {
		unsigned long flags;
		unsigned int features;
	} tries[] = {
		{ TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6, TUN_FEATURE_TSO | TUN_FEATURE_USO },
		{ TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_FEATURE_TSO },
	};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (ioctl(fd, TUNSETOFFLOAD, tries[i].flags) == 0)
			return tries[i].features;
	return 0;
}

int tun_open(char name[IFNAMSIZ], bool offload, unsigned int *features)
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
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
	memcpy(ifr.ifr_name, name, name_len); /* the rest stays zero: NUL-terminated */

	/* Without CAP_NET_ADMIN this is where -EPERM comes from (the open above succeeds
	 * for everyone because /dev/net/tun is usually mode 0666). A kernel without
	 * IFF_VNET_HDR says EINVAL: then a plain TUN. */
	*features = 0;
	err = ioctl(fd, TUNSETIFF, &ifr) < 0 ? -errno : 0;
	if (err == -EINVAL && offload) {
		ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
		err = ioctl(fd, TUNSETIFF, &ifr) < 0 ? -errno : 0;
	} else if (err == 0 && offload) {
		*features = TUN_FEATURE_VNET_HDR | set_offloads(fd);
	}
	if (err < 0) {
		close(fd);
		return err;
	}

	/* The kernel fills in a "%d" template, and may have been given an empty name. */
	ifr.ifr_name[IFNAMSIZ - 1] = '\0';
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	return fd;
}
