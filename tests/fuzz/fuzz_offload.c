/* Fuzz target: the TUN offload parsers (core/gso.c, core/gro.c). The input is what a TUN
 * read returns with IFF_VNET_HDR: a virtio header, then the packet. An accepted packet is
 * split; every segment must fit its announced size, and the segments (peer-controlled
 * data on the receive side) are then planned for coalescing, whose writes must stay
 * inside the packets and add up to what the plan claims. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/gro.h"
#include "core/gso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FUZZ_SEG_ROOM = 2048, /* larger than any MTU we configure */
	FUZZ_PACKET_MAX = GSO_MAX_PACKET + 64,
};

static uint8_t segs[GRO_MAX_PACKETS][FUZZ_SEG_ROOM];

static void check_gro(struct gro_packet *pk, size_t n, bool coalesce_udp)
{
	struct gro_plan plan;
	size_t seen = 0;
	if (!gro_plan_make(pk, n, coalesce_udp, &plan))
		abort();
	for (size_t k = 0; k < plan.n_out; k++) {
		const struct gro_output *o = &plan.out[k];
		size_t total = pk[o->head].len, members = 1;
		if (o->head >= n)
			abort();
		for (uint16_t i = plan.next[o->head]; i != GRO_NO_NEXT; i = plan.next[i]) {
			if (i >= n || pk[i].len < o->hdr_skip || ++members > n)
				abort();
			total += pk[i].len - o->hdr_skip;
		}
		if (members != o->n_members || total != o->total_len)
			abort();
		seen += members;
	}
	if (seen != n)
		abort();
}

/* The raw input as received packets too (decrypted data is the peer's to choose): cut
 * into pieces whose lengths the input's own bytes pick. */
static void check_gro_raw(const uint8_t *data, size_t size, bool coalesce_udp)
{
	static uint8_t copy[FUZZ_PACKET_MAX];
	struct gro_packet pk[GRO_MAX_PACKETS];
	size_t n = 0, off = 0;
	memcpy(copy, data, size);
	while (off < size && n < GRO_MAX_PACKETS) {
		size_t want = (size_t)data[off] * 8 + 1;
		size_t len = size - off < want ? size - off : want;
		pk[n++] = (struct gro_packet){ copy + off, len };
		off += len;
	}
	check_gro(pk, n, coalesce_udp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vnet_hdr h;
	struct gso_plan plan;
	struct gro_packet pk[GRO_MAX_PACKETS];
	size_t n = 0;

	if (size > FUZZ_PACKET_MAX)
		return 0;
	check_gro_raw(data, size, false);
	check_gro_raw(data, size, true);
	if (!vnet_hdr_decode(data, size, &h))
		return 0;
	if (!gso_plan_make(&h, data + VNET_HDR_LEN, size - VNET_HDR_LEN, &plan))
		return 0;
	if (plan.hdr_len > plan.len || plan.n_segments == 0)
		abort();
	for (size_t i = 0; i < plan.n_segments && n < GRO_MAX_PACKETS; i++) {
		size_t len = gso_segment(&plan, data + VNET_HDR_LEN, i, segs[n], FUZZ_SEG_ROOM);
		if (len > FUZZ_SEG_ROOM)
			abort();
		if (len == 0)
			continue; /* larger than the room: the data path drops it */
		pk[n].data = segs[n];
		pk[n].len = len;
		n++;
	}
	check_gro(pk, n, true); /* USO segments: UDP may group again */
	return 0;
}
