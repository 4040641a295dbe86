/* meshd's side of the coordinator: one TCP control connection driven by the device's event
 * loop. It registers (with a join key the first time), applies the peer map and its deltas to
 * the device, reports this node's candidate endpoints (interface addresses, plus the STUN
 * reflexive address learned through the data socket), remembers everything in the state
 * directory, and reconnects with backoff. Tunnels never depend on the connection being up. */
#ifndef MESHD_COORDCLIENT_H
#define MESHD_COORDCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/control.h"
#include "core/ipaddr.h"
#include "core/joinkey.h"
#include "meshd/config.h"

struct device;

/* Sets up the client if a coordinator is known (join key given, or remembered in the state
 * directory) and applies the remembered addresses and peers to the open device; dev->coord
 * stays NULL without a coordinator. join may be NULL. */
bool coordclient_open(struct device *dev, const struct config *cfg, const struct joinkey *join, char *err,
		      size_t err_len);
void coordclient_close(struct device *dev);

/* Whether the saved state gives this node its addresses (so `address:` may be omitted). */
bool coordclient_state_has_addresses(const char *state_dir);

void coordclient_on_io(struct device *dev, uint32_t epoll_events, uint64_t now_ms);
void coordclient_tick(struct device *dev, uint64_t now_ms);
uint64_t coordclient_next_deadline(const struct device *dev);
/* Consumes a datagram from the data socket if it answers our STUN request. */
bool coordclient_on_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
			     uint64_t now_ms);
/* Whether our NAT's mapping depends on the destination (STUN to the coordinator's two
 * ports): 1 yes (a hard NAT), 0 no, -1 not known yet. */
int coordclient_mapping_varies(const struct device *dev);
/* Our address as the coordinator's STUN saw it, or NULL. */
const struct control_endpoint *coordclient_reflexive(const struct device *dev);
/* Registered and connected: control messages (and relayed datagrams) can be sent. */
bool coordclient_ready(const struct device *dev);
/* The name the coordinator gave this node, or NULL (no coordinator, not registered yet). */
const char *coordclient_node_name(const struct device *dev);
/* The mesh's DNS domain as the coordinator last named it (kept in the state), or NULL. */
const char *coordclient_dns_domain(const struct device *dev);
/* This node's overlay addresses; false if it has none yet. */
bool coordclient_self_addresses(const struct device *dev, struct ip_prefix *v4, struct ip_prefix *v6);
/* Sends a datagram for node `to` through the control connection (UDP to the relay does not
 * work). False if not connected or the connection's queue is full: the datagram is dropped. */
bool coordclient_send_relay(struct device *dev, const uint8_t to[WIRE_KEY_LEN], const uint8_t *payload, size_t len,
			    uint64_t now_ms);
/* Our candidate endpoints as last reported to the coordinator (for call-me-maybe). */
size_t coordclient_our_endpoints(const struct device *dev, struct control_endpoint *out, size_t max);
/* An address as the control protocol writes it (v4-mapped IPv6 becomes IPv4). */
void coordclient_endpoint_from_sockaddr(const struct sockaddr *sa, struct control_endpoint *e);
/* Endpoints in the data socket's address family; those it cannot reach are left out. */
size_t coordclient_endpoints_to_socket(const struct device *dev, const struct control_endpoint *eps, size_t n,
				       struct sockaddr_storage *out);
/* Sends one control message if registered and connected; false otherwise. */
bool coordclient_send(struct device *dev, const struct control_message *m, uint64_t now_ms);
/* The coordinator's resolved control address and its configured host and port (for
 * publish.c's work connections and status); false until resolved. */
bool coordclient_address(const struct device *dev, struct sockaddr_storage *addr, socklen_t *len, const char **host,
			 uint16_t *port);
/* The connection's fd, or -1. */
int coordclient_fd(const struct device *dev);

#endif
