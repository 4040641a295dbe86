/* `meshd status` in the daemon: this node and every peer, rendered as JSON or as a table for
 * people, from the same walk over the device (so the two never disagree). */
#ifndef MESHD_STATUS_H
#define MESHD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ipc.h"

struct device;
struct peer;

enum status_path { STATUS_PATH_NONE, STATUS_PATH_DIRECT, STATUS_PATH_RELAY };

/* How traffic to p goes now: a coordinator peer's confirmed direct path, else the relay;
 * a static peer's endpoint while a session with it is live. *direct is the direct address
 * (the endpoint) when STATUS_PATH_DIRECT. */
enum status_path status_peer_path(const struct device *dev, const struct peer *p, uint64_t now_ms, int *direct);
/* The peer's first overlay address without its prefix length ("100.64.0.2"), or "-". */
void status_peer_address(const struct peer *p, char *buf, size_t len);
void status_render(const struct device *dev, uint64_t now_ms, bool json, struct ipc_text *out);

#endif
