/* Sending: packets read from TUN go out encrypted to the peer that owns their destination;
 * handshake initiations and keepalives are sent from here too. */
#ifndef MESHD_TX_H
#define MESHD_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct device;
struct peer;

/* Whether p can be sent to now: a direct path, the relay, or a (static or last) endpoint. */
bool tx_has_path(const struct device *dev, const struct peer *p, uint64_t now_ms);
/* Sends the datagram of len bytes written at device_outbox_slot() to p on its best path:
 * a confirmed direct path, else the relay, else its endpoint. False (counted) if none. */
bool tx_to_peer(struct device *dev, struct peer *p, size_t len, uint64_t now_ms);
/* Sends the datagram at device_outbox_slot() to p's candidate i (through the punch socket
 * for a punched candidate). */
void tx_to_candidate(struct device *dev, struct peer *p, size_t i, size_t len);
/* Reads up to a batch of packets from TUN and sends them. Returns false when TUN is drained. */
bool tx_from_tun(struct device *dev, uint64_t now_ms);
/* Encrypts one inner packet for the peer and queues it, or stages it and starts a handshake. */
void tx_send_packet(struct device *dev, struct peer *p, const uint8_t *pkt, size_t len, uint64_t now_ms);
/* Sends staged packets (after a handshake completed); sends a keepalive if none were staged
 * and `keepalive_if_empty` (the initiator must confirm a new session to the responder). */
void tx_flush_staged(struct device *dev, struct peer *p, uint64_t now_ms, bool keepalive_if_empty);
void tx_send_keepalive(struct device *dev, struct peer *p, uint64_t now_ms);
/* Starts a handshake unless one went out less than TIMER_REKEY_TIMEOUT_MS ago (retries bypass). */
void tx_send_initiation(struct device *dev, struct peer *p, uint64_t now_ms, bool is_retry);

/* A probe (disco ping, initiation copy) to a candidate not yet known to answer may go to
 * `to` now: false (counted) when that destination is over DEVICE_PROBES_PER_DESTINATION_PER_S. */
bool tx_probe_allowed(struct device *dev, const struct sockaddr_storage *to, uint64_t now_ms);

#endif
