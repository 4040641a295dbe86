/* The TUN device: opened through /dev/net/tun, no packet-info header, non-blocking. */
#ifndef MESHD_TUN_H
#define MESHD_TUN_H

#include <net/if.h>

/* Creates (or attaches to) TUN interface `name`; on return name holds the kernel's name.
 * Returns the fd or -errno. */
int tun_open(char name[IFNAMSIZ]);

#endif
