/* The node's UDP socket (socket.c): opening it, the outbox every sealed datagram is queued
 * in, and the receive batch. */
#ifndef MESHD_SOCKET_H
#define MESHD_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct device;

/* Opens the UDP socket on port (0: any), dual-stack when IPv6 is available, with bigger
 * buffers and GSO/GRO where the kernel takes them. On failure, err says why in one line. */
bool socket_open(struct device *dev, uint16_t port, char *err, size_t err_len);
/* The inbox and outbox slots for the device's MTU (after socket_open: GRO needs larger
 * receive slots). False when out of memory. */
bool socket_alloc_buffers(struct device *dev);
/* One recvmmsg batch, each datagram handed to rx_datagram (GRO receives split first), then
 * the decrypted packets written to the TUN. Returns false when the socket is drained. */
bool socket_receive_batch(struct device *dev, uint64_t now_ms);

/* Where to write the next datagram (payload_room bytes; sends the full batch first if
 * needed). DEVICE_SLOT_HEADROOM bytes before it belong to the same slot. */
uint8_t *device_outbox_slot(struct device *dev);
/* Queues the datagram of len bytes written at device_outbox_slot() for dest. */
void device_outbox_commit(struct device *dev, size_t len, const struct sockaddr_storage *dest);
/* Same, for a frame that starts DEVICE_SLOT_HEADROOM bytes earlier (a relay frame). */
void device_outbox_commit_frame(struct device *dev, size_t len, const struct sockaddr_storage *dest);
/* Sends every queued datagram (sendmmsg, GSO-grouped while the kernel takes it). */
void device_outbox_flush(struct device *dev);

/* An address (IPv4, or IPv6 in the socket's family) as the UDP socket wants it:
 * IPv4 becomes v4-mapped on a dual-stack socket. False if it cannot be reached from it. */
bool device_socket_address(const struct device *dev, const struct sockaddr *sa, struct sockaddr_storage *out);

#endif
