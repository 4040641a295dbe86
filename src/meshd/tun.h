/* The TUN device: opened through /dev/net/tun, no packet-info header, non-blocking, and
 * with the kernel's offloads when it has them (a virtio-net header on every packet). */
#ifndef MESHD_TUN_H
#define MESHD_TUN_H

#include <net/if.h>
#include <stdbool.h>

/* What the TUN was opened with (tun_open's features). */
enum tun_feature {
	TUN_FEATURE_VNET_HDR = 1 << 0, /* every read and write starts with a virtio_net_hdr */
	TUN_FEATURE_TSO = 1 << 1,      /* reads may be TCP super-packets (TSO4/6), checksums partial */
	TUN_FEATURE_USO = 1 << 2,      /* reads may be UDP super-packets (Linux 6.2 and later) */
};

/* Creates (or attaches to) TUN interface `name`; on return name holds the kernel's name.
 * With offload, asks for IFF_VNET_HDR and TSO/USO and falls back to what the kernel
 * grants, down to a plain TUN; *features says what it got. Returns the fd or -errno. */
int tun_open(char name[IFNAMSIZ], bool offload, unsigned int *features);

#endif
