/* Receiving: one datagram from the UDP socket is dispatched by type, authenticated, and
 * (for data) written to TUN. Nothing changes for a datagram that did not authenticate. */
#ifndef MESHD_RX_H
#define MESHD_RX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct device;

/* `buf` may be modified (decryption happens in the device's plain buffers). */
void rx_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
		 uint64_t now_ms);
/* A datagram another node sent us through the coordinator's relay (sender: its key as the
 * relay says; the message authenticates itself). */
/* Writes the decrypted packets waiting for the TUN (offloads only: coalesced where they
 * continue each other). The loop calls it after every batch and event. */
void rx_flush_tun(struct device *dev);
void rx_relayed(struct device *dev, const uint8_t sender[32], const uint8_t *buf, size_t len, uint64_t now_ms);

#endif
