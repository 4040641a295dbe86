/* Peers: who they are (key, owned addresses, endpoint), their handshake, their three
 * sessions and timers, and the packets waiting for a session. */
#ifndef MESHD_PEER_H
#define MESHD_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/control.h"
#include "core/cookie.h"
#include "core/handshake.h"
#include "core/log.h"
#include "core/timers.h"
#include "meshd/config.h"
#include "meshd/path.h"

enum {
	/* Packets held while a handshake is in progress; the oldest is dropped when full. */
	PEER_STAGED_MAX = 32,
};

struct device;

struct peer {
	char name[CONFIG_NAME_MAX];
	uint8_t public_key[WIRE_KEY_LEN];
	uint8_t psk[WIRE_KEY_LEN];
	struct ip_prefix allowed_ips[CONFIG_MAX_ALLOWED_IPS];
	size_t n_allowed_ips;

	/* Static peers: the configured endpoint, moved by authenticated packets (roaming).
	 * Coordinator peers: the last direct path in use (the path below decides). */
	bool has_endpoint;
	struct sockaddr_storage endpoint; /* in the family of the device's socket */
	/* Coordinator peers: candidate addresses, which of them work, and when to probe. */
	struct peer_path path;
	uint8_t disco_key[crypto_box_BEFORENMBYTES]; /* crypto_box key between our node keys */
	bool disco_key_ready;
	struct punch_attempt *punch; /* a birthday punch in progress (punch.h), or NULL */
	uint64_t punch_last_ms;      /* when the last one started */
	int punch_fd;                /* the punch's winning socket, or -1 */
	uint64_t rx_bytes, tx_bytes; /* inner packet bytes, for status */
	int64_t last_handshake_unix;  /* wall-clock seconds of the last completed handshake (as
				       * responder: when data confirmed it, as WireGuard); 0 never */
	bool from_coordinator; /* removed when the coordinator's map no longer has it */
	uint32_t map_generation; /* the coordinator session whose map last listed it */
	struct control_peer coord_record; /* as the coordinator described it (saved to the state file) */

	struct handshake handshake;
	struct cookie_jar cookie_jar; /* the cookie this peer gave us when under load (mac2) */
	uint64_t last_initiation_sent_ms;
	uint8_t latest_timestamp[WIRE_TIMESTAMP_LEN]; /* newest accepted initiation timestamp */
	bool no_response_warned;

	/* next: made by us as responder, not yet confirmed by data from the initiator.
	 * current: used for sending. previous: still accepted for in-flight packets. */
	struct session next, current, previous;
	struct peer_timers timers;

	/* Staged inner packets (ring), PEER_STAGED_MAX slots of staged_slot_size bytes. */
	uint8_t *staged;
	size_t staged_slot_size;
	uint16_t staged_len[PEER_STAGED_MAX];
	unsigned int staged_head, staged_count;

	struct log_ratelimit log_limit;
};

bool peer_init(struct peer *p, const struct config_peer *cp, size_t staged_slot_size);
void peer_free(struct peer *p);
/* Wipes sessions and handshake state (keys expired or peer gave up). */
void peer_wipe_keys(struct peer *p);

struct peer *peer_by_public_key(struct device *dev, const uint8_t key[WIRE_KEY_LEN]);
/* Longest-prefix match of an address over every peer's allowed IPs. */
struct peer *peer_by_address(struct device *dev, int family, const uint8_t *addr);
/* Finds the session (current, previous or next of any peer) whose local index is `index`. */
struct session *peer_session_by_index(struct device *dev, uint32_t index, struct peer **peer_out);
/* Finds the peer with an initiation in flight under local index `index`. */
struct peer *peer_by_handshake_index(struct device *dev, uint32_t index);
/* A local index not used by any session or handshake of the device. */
uint32_t peer_new_local_index(struct device *dev);

/* Installs a session we derived as initiator (becomes current at once). */
void peer_install_initiator_session(struct peer *p, struct session *s);
/* Installs a session we derived as responder (waits in next until the initiator's data). */
void peer_install_responder_session(struct peer *p, struct session *s);
/* Data arrived on `next`: it is confirmed and becomes current. */
void peer_confirm_next_session(struct peer *p);

/* Staging while no session is usable. */
void peer_stage_packet(struct peer *p, const uint8_t *pkt, size_t len, uint64_t *dropped);

bool peer_endpoint_equal(const struct peer *p, const struct sockaddr_storage *addr);

#endif
