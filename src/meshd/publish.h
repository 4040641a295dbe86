/* The node's side of publishing a service on the coordinator's public address (issue 11).
 *
 * After each registration the node says what it asks to publish (CONTROL_MSG_PUBLISH, from
 * `publish:` in its config) and logs what the coordinator answers for each (published, not
 * granted, ...). For every client the coordinator accepts it sends STREAM_OPEN; the node then
 * dials the local service and, on a new TCP connection, the coordinator's control port (a
 * work connection, core/pubwire.h), and pumps bytes between the two (core/splice.h) in this
 * loop. At most PUBLISH_DIALS_MAX work connections are being set up at once (the coordinator
 * holds a bounded number of unauthenticated connections per source address); the rest wait
 * their turn in order. */
#ifndef MESHD_PUBLISH_H
#define MESHD_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"

struct device;
struct config;

enum {
	/* Work connections being set up at once: well under the coordinator's 64 unregistered
	 * connections per source (SERVER_SRC_HELD_MAX), which other nodes behind the same NAT
	 * share. */
	PUBLISH_DIALS_MAX = 16,
	/* Streams open or waiting at once: each holds two descriptors and up to three 64 KiB
	 * buffers. The coordinator's max_connections is per service and usually lower. */
	PUBLISH_STREAMS_MAX = 4096,
	/* Connecting to the local service or the coordinator takes at most this long. */
	PUBLISH_CONNECT_TIMEOUT_MS = 10000,
	/* A stream waiting for a dial slot this long is dropped undialled: the coordinator
	 * gave up on it (its PUBLISH_ATTACH_TIMEOUT_MS, 10 s). */
	PUBLISH_QUEUE_MAX_MS = 10000,
	/* A stream that moved nothing either way for this long is closed. The coordinator's
	 * idle_timeout and udp_timeout (at most 24 h) are the ones that matter; these are only
	 * past them, to bound what a vanished coordinator leaves behind. */
	PUBLISH_IDLE_TIMEOUT_MS = (24 * 3600 + 60) * 1000,
	PUBLISH_UDP_IDLE_MS = (24 * 3600 + 60) * 1000,
	/* Checks of timeouts: once a second is plenty for limits counted in seconds. */
	PUBLISH_TICK_MS = 1000,
};

bool publish_open(struct device *dev, const struct config *cfg);
void publish_close(struct device *dev);
/* SIGHUP: the new list replaces the old; sent to the coordinator if it changed. */
void publish_reload(struct device *dev, const struct config *cfg, uint64_t now_ms);
/* Registered: say what we ask to publish. */
void publish_registered(struct device *dev, uint64_t now_ms);
void publish_on_state(struct device *dev, const struct control_publish_state_msg *m);
void publish_on_stream_open(struct device *dev, const struct control_stream_open *m, uint64_t now_ms);
bool publish_owns_fd(const struct device *dev, int fd);
void publish_on_io(struct device *dev, int fd, uint32_t events, uint64_t now_ms);
void publish_tick(struct device *dev, uint64_t now_ms);
uint64_t publish_next_deadline(const struct device *dev);
struct ipc_text;
/* `meshd status`: one line per service (name, protocol, local address, public port, the
 * coordinator's answer, live and total streams, bytes), or the JSON "publish" member (with
 * its leading comma). */
void publish_status_render(const struct device *dev, bool json, struct ipc_text *t);

#endif
