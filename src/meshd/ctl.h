/* The daemon's control socket: a UNIX stream socket that `meshd status|ping|netcheck` connect
 * to (core/ipc.h is the wire format). Non-blocking, on the device's epoll loop; a bounded
 * number of clients with bounded buffers; one request per connection.
 *
 * Lifetime: `meshd up` opens it before the device (so a second daemon for the same
 * interface stops here with a clear message, not at a confusing port or TUN error),
 * attaches it to the loop once the device is open, and closes it (socket file removed) on
 * the way out. A ping or netcheck waits inside the client slot and is answered from the
 * loop (a tick or a datagram), never by blocking it. */
#ifndef MESHD_CTL_H
#define MESHD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/ipc.h"
#include "core/wire.h"
#include "meshd/config.h"
#include "meshd/netcheck.h"

enum {
	CTL_MAX_CLIENTS = 8,        /* a few CLIs at once; more wait in the backlog or get "busy" */
	CTL_BACKLOG = 8,
	CTL_READ_TIMEOUT_MS = 2000, /* a client that does not send its request in time is dropped */
	CTL_WRITE_TIMEOUT_MS = 10000, /* a client that stops reading its answer is dropped */
	CTL_PING_TIMEOUT_MS = 2000, /* a pong over a working direct path comes well within this */
	CTL_SOCKET_MODE = 0600,
	CTL_SOCKET_GROUP_MODE = 0660,
	CTL_DIR_MODE = 0755,        /* /run/meshd: the path is public, the socket is not */
};

enum ctl_phase {
	CTL_FREE,
	CTL_READING,  /* reading the request */
	CTL_PINGING,  /* pings sent, waiting for a pong or the timeout */
	CTL_CHECKING, /* netcheck's STUN requests in flight */
	CTL_WRITING,  /* sending the answer, then close */
};

struct ctl_client {
	int fd;
	enum ctl_phase phase;
	uint64_t phase_since_ms;
	uint8_t in[IPC_REQUEST_MAX];
	size_t in_len;
	bool json;
	uint8_t ping_key[WIRE_KEY_LEN]; /* the peer pinged (looked up again: it may go away) */
	struct netcheck nc;
	uint8_t *out; /* header and body */
	size_t out_len, out_off;
};

struct device;

struct ctl {
	int listen_fd;
	char path[CONFIG_SOCKET_PATH_MAX];
	dev_t dev;
	ino_t ino; /* the socket file we made: removed on close only if it is still ours */
	struct ctl_client clients[CTL_MAX_CLIENTS];
	size_t n_checking; /* clients in CTL_CHECKING: datagrams are only offered while > 0 */
};

/* Nothing open: ctl_close is a no-op. */
void ctl_init(struct ctl *ctl);
/* Creates the socket at cfg->control_socket (its directory too), replacing a stale one; fails
 * with one line in err if another daemon answers there or the socket cannot be made. */
bool ctl_open(struct ctl *ctl, const struct config *cfg, char *err, size_t err_len);
/* Puts the listening socket on the device's loop (dev->ctl = ctl). */
bool ctl_attach(struct ctl *ctl, struct device *dev);
/* Closes every client and the socket and removes the socket file. Safe if never opened. */
void ctl_close(struct ctl *ctl);

bool ctl_owns_fd(const struct ctl *ctl, int fd);
void ctl_on_io(struct device *dev, int fd, uint32_t events, uint64_t now_ms);
void ctl_tick(struct device *dev, uint64_t now_ms);
uint64_t ctl_next_deadline(const struct device *dev);
/* A datagram from the data socket: consumed if it answers a running netcheck. */
bool ctl_on_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from);

#endif
