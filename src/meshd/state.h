/* What a coordinator-managed node remembers across restarts, in <state_dir>/coordinator.state:
 * the coordinator (address and key), the name and addresses it assigned, and the last peer
 * map, so that a node restarted while the coordinator is down keeps its addresses and its
 * tunnels. A small line format, written atomically (temp file, fsync, rename), mode 0600:
 *
 *   meshd-state 1
 *   coordinator HOST:PORT PUBKEY
 *   self NAME IPV4/BITS IPV6/BITS
 *   peer PUBKEY NAME IPV4 IPV6 [ENDPOINT ...]
 */
#ifndef MESHD_STATE_H
#define MESHD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"
#include "core/ipaddr.h"

enum {
	STATE_FILE_VERSION = 1,
	STATE_FILE_MAX = 16 << 20, /* ~100,000 peers: bounds the read */
};

#define STATE_FILE_NAME "coordinator.state"

struct node_state {
	bool has_coordinator;
	char coord_host[ENDPOINT_HOST_MAX];
	uint16_t coord_port;
	uint8_t coord_public[WIRE_KEY_LEN];

	bool registered;
	char name[CONTROL_NAME_MAX + 1];
	struct ip_prefix ipv4;
	struct ip_prefix ipv6;

	struct control_peer *peers; /* heap array */
	size_t n_peers;
	size_t peers_cap;
};

void state_init(struct node_state *st);
void state_free(struct node_state *st);
bool state_add_peer(struct node_state *st, const struct control_peer *p);

/* Parses the text form (explicit length); err gets "line N: what is wrong". */
bool state_parse(struct node_state *st, const char *text, size_t len, char *err, size_t err_len);
/* Loads <dir>/coordinator.state; a missing file is an empty state, not an error. */
bool state_load(struct node_state *st, const char *dir, char *err, size_t err_len);
bool state_save(const struct node_state *st, const char *dir, char *err, size_t err_len);

#endif
