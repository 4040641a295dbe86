/* TUN offloads (core/gso.c, core/gro.c) against hand-built packets: super-packets as the
 * kernel hands them over with a virtio header are split, every segment's checksums are
 * verified by the test's own RFC 1071 routine, and the segments coalesced again must
 * split back into the same bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>

#include "core/gro.h"
#include "core/gso.h"
#include "meshd/udpoffload.h"

#include <netinet/in.h>
#include <sys/uio.h>

enum { BUF = 70000, SEG_MAX = 2048, MAX_SEGS = 64 };

/* ---------------------------------------------------------------- independent checksums */

/* RFC 1071, written out byte by byte on purpose (not core/gso.c's routine). */
static uint16_t ref_sum(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint32_t s = 0;
	uint8_t all[BUF + 64];
	memcpy(all, a, alen);
	if (blen)
		memcpy(all + alen, b, blen);
	size_t n = alen + blen;
	if (n & 1)
		all[n++] = 0;
	for (size_t i = 0; i < n; i += 2) {
		s += (uint32_t)all[i] * 256 + all[i + 1];
		s = (s & 0xffff) + (s >> 16);
	}
	return (uint16_t)s;
}

static bool ref_ipv4_header_ok(const uint8_t *p)
{
	return ref_sum(p, (size_t)(p[0] & 15) * 4, NULL, 0) == 0xffff;
}

/* The transport checksum of a whole packet, pseudo-header included, verifies. */
static bool ref_l4_ok(const uint8_t *p, size_t len)
{
	uint8_t ph[40];
	size_t phlen, ip_len;
	uint8_t proto;
	if (p[0] >> 4 == 4) {
		ip_len = (size_t)(p[0] & 15) * 4;
		proto = p[9];
		memcpy(ph, p + 12, 8);
		ph[8] = 0;
		ph[9] = proto;
		ph[10] = (uint8_t)((len - ip_len) >> 8);
		ph[11] = (uint8_t)(len - ip_len);
		phlen = 12;
	} else {
		ip_len = 40;
		proto = p[6];
		memcpy(ph, p + 8, 32);
		ph[32] = 0;
		ph[33] = 0;
		ph[34] = (uint8_t)((len - ip_len) >> 8);
		ph[35] = (uint8_t)(len - ip_len);
		ph[36] = ph[37] = ph[38] = 0;
		ph[39] = proto;
		phlen = 40;
	}
	return ref_sum(ph, phlen, p + ip_len, len - ip_len) == 0xffff;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---------------------------------------------------------------- packet builders */

struct spec {
	int family;
	size_t ip_opts;   /* IPv4 option bytes (multiple of 4) */
	size_t tcp_opts;  /* TCP option bytes (multiple of 4) */
	bool udp;
	size_t payload;
	uint8_t flags;    /* TCP flags of the super-packet */
	uint32_t seq;
	uint16_t sport;
};

/* Builds a super-packet as a TUN with offloads returns it: headers, payload, the transport
 * checksum field holding the folded pseudo-header sum; fills the virtio header. */
static size_t build(const struct spec *s, uint8_t *p, struct vnet_hdr *h, size_t gso_size)
{
	size_t ip_len = s->family == AF_INET ? 20 + s->ip_opts : 40;
	size_t l4_hdr = s->udp ? 8 : 20 + s->tcp_opts;
	size_t len = ip_len + l4_hdr + s->payload;
	memset(p, 0, len);
	if (s->family == AF_INET) {
		p[0] = (uint8_t)(0x40 | ip_len / 4);
		wr16(p + 2, (uint16_t)len);
		wr16(p + 4, 0x1234);
		wr16(p + 6, 0x4000);
		p[8] = 64;
		p[9] = s->udp ? 17 : 6;
		memcpy(p + 12, "\xc0\x00\x02\x01\xc0\x00\x02\x02", 8);
		for (size_t i = 20; i < ip_len; i++)
			p[i] = 1; /* NOP options */
		csum_ipv4_header(p, ip_len);
	} else {
		p[0] = 0x60;
		wr16(p + 4, (uint16_t)(len - 40));
		p[6] = s->udp ? 17 : 6;
		p[7] = 64;
		p[8] = 0xfd;
		p[23] = 1;
		p[24] = 0xfd;
		p[39] = 2;
	}
	uint8_t *t = p + ip_len;
	wr16(t, s->sport);
	wr16(t + 2, 5201);
	if (s->udp) {
		wr16(t + 4, (uint16_t)(len - ip_len));
	} else {
		t[4] = (uint8_t)(s->seq >> 24);
		t[5] = (uint8_t)(s->seq >> 16);
		t[6] = (uint8_t)(s->seq >> 8);
		t[7] = (uint8_t)s->seq;
		memcpy(t + 8, "\x11\x22\x33\x44", 4);
		t[12] = (uint8_t)((l4_hdr / 4) << 4);
		t[13] = s->flags;
		wr16(t + 14, 512);
		for (size_t i = 0; i < s->tcp_opts; i++)
			t[20 + i] = i + 1 == s->tcp_opts ? 0 : 1; /* NOPs, then end of list */
	}
	for (size_t i = 0; i < s->payload; i++)
		t[l4_hdr + i] = (uint8_t)(i * 7 + 3);
	size_t csum_off = s->udp ? 6 : 16;
	const uint8_t *addrs = p + (s->family == AF_INET ? 12 : 8);
	wr16(t + csum_off, csum_fold(csum_pseudo(addrs, s->family == AF_INET ? 4 : 16, s->udp ? 17 : 6,
						 (uint32_t)(len - ip_len))));
	*h = (struct vnet_hdr){
		.flags = VNET_F_NEEDS_CSUM,
		.gso_type = s->udp ? VNET_GSO_UDP_L4 : (s->family == AF_INET ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6),
		.hdr_len = (uint16_t)(ip_len + l4_hdr),
		.gso_size = (uint16_t)gso_size,
		.csum_start = (uint16_t)ip_len,
		.csum_offset = (uint16_t)csum_off,
	};
	return len;
}

static uint8_t super[BUF], segs[MAX_SEGS][SEG_MAX];
static size_t seg_len[MAX_SEGS];

/* Splits and checks every segment against the super-packet; returns the count. */
static size_t split_and_check(const struct spec *s, size_t gso_size)
{
	struct vnet_hdr h;
	struct gso_plan plan;
	size_t len = build(s, super, &h, gso_size);
	assert_true(gso_plan_make(&h, super, len, &plan));
	size_t ip_len = plan.ip_len, hdr = plan.hdr_len;
	assert_int_equal(plan.n_segments, (s->payload + gso_size - 1) / gso_size);
	assert_true(plan.n_segments <= MAX_SEGS);
	size_t off = 0;
	for (size_t i = 0; i < plan.n_segments; i++) {
		size_t n = gso_segment(&plan, super, i, segs[i], SEG_MAX);
		bool last = i + 1 == plan.n_segments;
		size_t want = last ? s->payload - off : gso_size;
		assert_int_equal(n, hdr + want);
		seg_len[i] = n;
		assert_memory_equal(segs[i] + hdr, super + hdr + off, want);
		assert_true(ref_l4_ok(segs[i], n));
		if (s->family == AF_INET) {
			assert_int_equal(rd16(segs[i] + 2), n);
			assert_int_equal(rd16(segs[i] + 4), 0x1234 + i);
			assert_true(ref_ipv4_header_ok(segs[i]));
			assert_memory_equal(segs[i] + 20, super + 20, ip_len - 20); /* options copied */
		} else {
			assert_int_equal(rd16(segs[i] + 4), n - 40);
		}
		uint8_t *t = segs[i] + ip_len;
		if (s->udp) {
			assert_int_equal(rd16(t + 4), n - ip_len);
		} else {
			assert_int_equal(rd32(t + 4), (uint32_t)(s->seq + off)); /* wraps */
			uint8_t f = t[13];
			uint8_t want_f = s->flags;
			if (!last)
				want_f &= (uint8_t)~(TCP_FLAG_FIN | TCP_FLAG_PSH);
			if (i > 0)
				want_f &= (uint8_t)~TCP_FLAG_CWR;
			assert_int_equal(f, want_f);
			assert_memory_equal(t + 20, super + ip_len + 20, s->tcp_opts);
		}
		off += want;
	}
	assert_int_equal(gso_segment(&plan, super, plan.n_segments, segs[0], SEG_MAX), 0);
	return plan.n_segments;
}

/* ---------------------------------------------------------------- the checksum itself */

static void test_csum_matches_reference(void **state)
{
	(void)state;
	static uint8_t buf[4096];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245 + 12345; /* any fixed pattern; high bytes often 0xff to force carries */
		buf[i] = i % 3 ? (uint8_t)(x >> 16) : 0xff;
	}
	/* Every length 0..300 at odd and even starts, then long ones. */
	for (size_t start = 0; start < 4; start++)
		for (size_t len = 0; len < 300; len++)
			assert_int_equal(csum_fold(csum_add(0, buf + start, len)), ref_sum(buf + start, len, NULL, 0));
	assert_int_equal(csum_fold(csum_add(0, buf, sizeof(buf))), ref_sum(buf, sizeof(buf), NULL, 0));
	/* Chained: the sum carries over between calls on even boundaries. */
	assert_int_equal(csum_fold(csum_add(csum_add(0, buf, 1000), buf + 1000, 1001)), ref_sum(buf, 2001, NULL, 0));
}

/* ---------------------------------------------------------------- segmentation */

static void test_split_tcp4(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET, .payload = 10000, .flags = TCP_FLAG_ACK | TCP_FLAG_PSH | TCP_FLAG_CWR,
			  .seq = 0xfffff000, .sport = 40000 }; /* the sequence number wraps */
	assert_int_equal(split_and_check(&s, 1380), 8); /* 7 full, a short last one */
}

static void test_split_tcp6(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET6, .payload = 64000, .flags = TCP_FLAG_ACK | TCP_FLAG_FIN | TCP_FLAG_PSH,
			  .seq = 1, .sport = 40001 };
	assert_int_equal(split_and_check(&s, 1360), 48);
}

static void test_split_options(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET, .ip_opts = 8, .tcp_opts = 12, .payload = 4 * 1300,
			  .flags = TCP_FLAG_ACK, .seq = 77, .sport = 40002 };
	assert_int_equal(split_and_check(&s, 1300), 4); /* exact multiple: no short segment */
}

static void test_split_udp(void **state)
{
	(void)state;
	struct spec s4 = { .family = AF_INET, .udp = true, .payload = 3000, .sport = 5000 };
	assert_int_equal(split_and_check(&s4, 1200), 3);
	struct spec s6 = { .family = AF_INET6, .udp = true, .payload = 1201, .sport = 5001 };
	assert_int_equal(split_and_check(&s6, 1200), 2);
}

static void test_no_gso_checksum(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET, .udp = true, .payload = 333, .sport = 5002 };
	struct vnet_hdr h;
	struct gso_plan plan;
	size_t len = build(&s, super, &h, 1000);
	h.gso_type = VNET_GSO_NONE;
	h.gso_size = 0;
	assert_true(gso_plan_make(&h, super, len, &plan));
	assert_int_equal(plan.n_segments, 1);
	assert_int_equal(gso_segment(&plan, super, 0, segs[0], SEG_MAX), len);
	assert_true(ref_l4_ok(segs[0], len));

	/* Without NEEDS_CSUM the packet passes untouched. */
	h.flags = 0;
	assert_true(gso_plan_make(&h, super, len, &plan));
	assert_int_equal(gso_segment(&plan, super, 0, segs[1], SEG_MAX), len);
	assert_memory_equal(segs[1], super, len);
	assert_int_equal(gso_segment(&plan, super, 0, segs[1], len - 1), 0); /* room too small */
}

static void test_bad_headers(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET, .payload = 3000, .flags = TCP_FLAG_ACK, .sport = 1 };
	struct vnet_hdr h, bad;
	struct gso_plan plan;
	size_t len = build(&s, super, &h, 1000);
	assert_true(gso_plan_make(&h, super, len, &plan));

	bad = h;
	bad.gso_type = VNET_GSO_TCPV6; /* IPv4 packet */
	assert_false(gso_plan_make(&bad, super, len, &plan));
	bad = h;
	bad.gso_size = 0;
	assert_false(gso_plan_make(&bad, super, len, &plan));
	bad = h;
	bad.flags = 0; /* GSO without NEEDS_CSUM */
	assert_false(gso_plan_make(&bad, super, len, &plan));
	bad = h;
	bad.csum_start = (uint16_t)len;
	assert_false(gso_plan_make(&bad, super, len, &plan));
	bad = h;
	bad.csum_start = 12; /* inside the IPv4 header */
	assert_false(gso_plan_make(&bad, super, len, &plan));
	bad = h;
	bad.csum_offset = 6; /* UDP's, on TCP */
	assert_false(gso_plan_make(&bad, super, len, &plan));
	bad = h;
	bad.gso_type = 3; /* UFO: never negotiated */
	assert_false(gso_plan_make(&bad, super, len, &plan));
	assert_false(gso_plan_make(&h, super, 30, &plan)); /* TCP header cut short */
	super[20 + 12] = 0x40; /* data offset 16 bytes */
	assert_false(gso_plan_make(&h, super, len, &plan));
	super[0] = 0x30;
	assert_false(gso_plan_make(&h, super, len, &plan));
	uint8_t vh[VNET_HDR_LEN];
	assert_false(vnet_hdr_decode(vh, VNET_HDR_LEN - 1, &bad));
	vnet_hdr_encode(&h, vh);
	assert_true(vnet_hdr_decode(vh, VNET_HDR_LEN, &bad));
	assert_memory_equal(&bad, &h, sizeof(h));
}

/* ---------------------------------------------------------------- coalescing */

static uint8_t rx[MAX_SEGS * 2][SEG_MAX];
static struct gro_packet pk[MAX_SEGS * 2];

/* Concatenates output k as the writer would. */
static size_t assemble(const struct gro_plan *plan, size_t k, uint8_t *out)
{
	const struct gro_output *o = &plan->out[k];
	size_t n = pk[o->head].len;
	memcpy(out, pk[o->head].data, n);
	for (uint16_t i = plan->next[o->head]; i != GRO_NO_NEXT; i = plan->next[i]) {
		memcpy(out + n, pk[i].data + o->hdr_skip, pk[i].len - o->hdr_skip);
		n += pk[i].len - o->hdr_skip;
	}
	assert_int_equal(n, o->total_len);
	return n;
}

/* Output k re-split must give back segments first..first+count of segs[] exactly. */
static void check_roundtrip(const struct gro_plan *plan, size_t k, size_t first, size_t count)
{
	static uint8_t big[BUF], again[SEG_MAX];
	const struct gro_output *o = &plan->out[k];
	size_t n = assemble(plan, k, big);
	assert_int_equal(o->n_members, count);
	assert_int_equal(o->hdr.flags, VNET_F_NEEDS_CSUM);
	if (big[0] >> 4 == 4)
		assert_true(ref_ipv4_header_ok(big));
	struct gso_plan gp;
	assert_true(gso_plan_make(&o->hdr, big, n, &gp));
	assert_int_equal(gp.n_segments, count);
	for (size_t i = 0; i < count; i++) {
		size_t m = gso_segment(&gp, big, i, again, sizeof(again));
		assert_int_equal(m, seg_len[first + i]);
		assert_memory_equal(again, segs[first + i], m);
	}
}

static void load(size_t dst, size_t src)
{
	memcpy(rx[dst], segs[src], seg_len[src]);
	pk[dst] = (struct gro_packet){ rx[dst], seg_len[src] };
}

static void test_coalesce_roundtrip(void **state)
{
	(void)state;
	const struct spec specs[] = {
		{ .family = AF_INET, .payload = 10000, .flags = TCP_FLAG_ACK | TCP_FLAG_PSH, .seq = 0xfffff000, .sport = 1 },
		{ .family = AF_INET6, .payload = 40000, .flags = TCP_FLAG_ACK, .seq = 5, .sport = 2 },
		{ .family = AF_INET, .ip_opts = 4, .tcp_opts = 12, .payload = 5 * 1200 + 1, .flags = TCP_FLAG_ACK,
		  .sport = 3 },
	};
	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
		size_t n = split_and_check(&specs[k], 1200);
		for (size_t i = 0; i < n; i++)
			load(i, i);
		struct gro_plan plan;
		assert_true(gro_plan_make(pk, n, false, &plan));
		assert_int_equal(plan.n_out, 1);
		assert_int_equal(plan.out[0].hdr.gso_size, 1200);
		check_roundtrip(&plan, 0, 0, n);
	}
}

static void test_coalesce_mixed_flows(void **state)
{
	(void)state;
	/* Flow A's 4 segments land in segs[0..3], flow B's 3 in segs[4..6], interleaved. */
	struct spec a = { .family = AF_INET, .payload = 4 * 1000, .flags = TCP_FLAG_ACK, .seq = 100, .sport = 10 };
	struct spec b = { .family = AF_INET, .payload = 2 * 1000 + 10, .flags = TCP_FLAG_ACK, .seq = 900, .sport = 11 };
	assert_int_equal(split_and_check(&b, 1000), 3);
	for (size_t i = 0; i < 3; i++) {
		memcpy(segs[4 + i], segs[i], seg_len[i]);
		seg_len[4 + i] = seg_len[i];
	}
	assert_int_equal(split_and_check(&a, 1000), 4);
	const size_t order[] = { 0, 4, 1, 5, 2, 6, 3 };
	for (size_t i = 0; i < 7; i++)
		load(i, order[i]);
	struct gro_plan plan;
	assert_true(gro_plan_make(pk, 7, false, &plan));
	assert_int_equal(plan.n_out, 2);
	assert_int_equal(plan.out[0].head, 0);
	check_roundtrip(&plan, 0, 0, 4);
	check_roundtrip(&plan, 1, 4, 3);
}

static void test_coalesce_refusals(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET6, .payload = 6 * 1000, .flags = TCP_FLAG_ACK, .seq = 1, .sport = 20 };
	assert_int_equal(split_and_check(&s, 1000), 6);
	struct gro_plan plan;

	/* A gap: 0 1 | 3 4 5 (2 lost); then 2 arrives late and goes alone. */
	const size_t order[] = { 0, 1, 3, 4, 5, 2 };
	for (size_t i = 0; i < 6; i++)
		load(i, order[i]);
	assert_true(gro_plan_make(pk, 6, false, &plan));
	assert_int_equal(plan.n_out, 3);
	check_roundtrip(&plan, 0, 0, 2);
	check_roundtrip(&plan, 1, 3, 3);
	assert_int_equal(plan.out[2].n_members, 1);
	assert_int_equal(plan.out[2].hdr.gso_type, VNET_GSO_NONE);
	assert_memory_equal(pk[5].data, segs[2], seg_len[2]); /* a lone packet is not touched */

	/* A different ACK number stops the group; a wrong TCP checksum does not (gro.h: the
	 * AEAD vouched for the bytes, and the TCP checksum is not verified). */
	for (size_t i = 0; i < 6; i++)
		load(i, i);
	rx[2][40 + 11] ^= 1;      /* ACK number of segment 2 */
	rx[4][40 + 20 + 7] ^= 1; /* payload of segment 4: checksum now wrong */
	assert_true(gro_plan_make(pk, 6, false, &plan));
	/* [0 1] [2] [3 4 5]: 2 differs from 1 and 3 in the ACK number. */
	assert_int_equal(plan.n_out, 3);
	check_roundtrip(&plan, 0, 0, 2);
	assert_int_equal(plan.out[1].n_members, 1);
	assert_int_equal(plan.out[2].n_members, 3);

	for (size_t i = 0; i < 6; i++)
		load(i, i);
	rx[1][40 + 13] |= TCP_FLAG_PSH;
	rx[3][40 + 13] |= TCP_FLAG_FIN;
	/* fix the checksums the flag changes broke (they are real packets, just different ones) */
	for (size_t i = 1; i <= 3; i += 2) {
		wr16(rx[i] + 40 + 16, 0);
		uint8_t ph[40] = { 0 };
		memcpy(ph, rx[i] + 8, 32);
		wr16(ph + 34, (uint16_t)(seg_len[i] - 40));
		ph[39] = 6;
		wr16(rx[i] + 40 + 16, (uint16_t)~ref_sum(ph, 40, rx[i] + 40, seg_len[i] - 40));
	}
	assert_true(gro_plan_make(pk, 6, false, &plan));
	/* [0 1+PSH] [2] [3 FIN] [4 5] */
	assert_int_equal(plan.n_out, 4);
	assert_int_equal(plan.out[0].n_members, 2);
	assert_true(pk[0].data[40 + 13] & TCP_FLAG_PSH);
	assert_int_equal(plan.out[1].n_members, 1);
	assert_int_equal(plan.out[2].n_members, 1);
	assert_int_equal(plan.out[3].n_members, 2);
	check_roundtrip(&plan, 3, 4, 2);
}

static void test_coalesce_bad_ip_checksum(void **state)
{
	(void)state;
	struct spec s = { .family = AF_INET, .payload = 3 * 1000, .flags = TCP_FLAG_ACK, .seq = 1, .sport = 40 };
	assert_int_equal(split_and_check(&s, 1000), 3);
	for (size_t i = 0; i < 3; i++)
		load(i, i);
	rx[1][10] ^= 0x10; /* IPv4 header checksum of the middle one */
	struct gro_plan plan;
	assert_true(gro_plan_make(pk, 3, false, &plan));
	assert_int_equal(plan.n_out, 3); /* it passes alone, and 2 cannot follow it */
	for (size_t k = 0; k < 3; k++)
		assert_int_equal(plan.out[k].hdr.gso_type, VNET_GSO_NONE);
	assert_memory_equal(pk[1].data, rx[1], seg_len[1]);
}

static void test_coalesce_non_tcp(void **state)
{
	(void)state;
	/* UDP and pure ACKs pass one by one; a short segment ends its group. */
	struct spec u = { .family = AF_INET, .udp = true, .payload = 2400, .sport = 30 };
	assert_int_equal(split_and_check(&u, 1200), 2);
	load(0, 0);
	load(1, 1);
	struct spec t = { .family = AF_INET, .payload = 1000 + 500, .flags = TCP_FLAG_ACK, .seq = 9, .sport = 31 };
	assert_int_equal(split_and_check(&t, 1000), 2);
	load(2, 0);
	load(3, 1);
	struct spec ack = { .family = AF_INET, .payload = 0, .flags = TCP_FLAG_ACK, .seq = 2509, .sport = 31 };
	struct vnet_hdr h;
	size_t n = build(&ack, rx[4], &h, 1000);
	pk[4] = (struct gro_packet){ rx[4], n };
	struct gro_plan plan;
	assert_true(gro_plan_make(pk, 5, false, &plan));
	assert_int_equal(plan.n_out, 4); /* udp, udp, [tcp tcp], ack */
	check_roundtrip(&plan, 2, 0, 2);
	assert_false(gro_plan_make(pk, GRO_MAX_PACKETS + 1, false, &plan));
}

/* With USO on the TUN, datagrams of one flow group: equal sizes, the last may be shorter. */
static void test_coalesce_udp(void **state)
{
	(void)state;
	const struct spec specs[] = {
		{ .family = AF_INET, .udp = true, .payload = 5 * 1200 + 300, .sport = 50 },
		{ .family = AF_INET6, .udp = true, .payload = 8 * 1200, .sport = 51 },
		{ .family = AF_INET, .ip_opts = 8, .udp = true, .payload = 3 * 1000, .sport = 52 },
	};
	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
		size_t gso = specs[k].ip_opts ? 1000 : 1200;
		size_t n = split_and_check(&specs[k], gso);
		for (size_t i = 0; i < n; i++)
			load(i, i);
		struct gro_plan plan;
		assert_true(gro_plan_make(pk, n, true, &plan));
		assert_int_equal(plan.n_out, 1);
		assert_int_equal(plan.out[0].hdr.gso_type, VNET_GSO_UDP_L4);
		assert_int_equal(plan.out[0].hdr.gso_size, gso);
		assert_int_equal(plan.out[0].hdr.csum_offset, 6);
		check_roundtrip(&plan, 0, 0, n);
	}
}

static void test_coalesce_udp_refusals(void **state)
{
	(void)state;
	struct spec u = { .family = AF_INET, .udp = true, .payload = 6 * 1000, .sport = 60 };
	struct gro_plan plan;
	assert_int_equal(split_and_check(&u, 1000), 6);

	/* A zero (absent) IPv4 UDP checksum, and a UDP length that is not the IP header's,
	 * pass alone: [0 1] [2] [3] [4 5]. */
	for (size_t i = 0; i < 6; i++)
		load(i, i);
	rx[2][20 + 6] = rx[2][20 + 7] = 0;
	rx[3][20 + 5] ^= 1;
	assert_true(gro_plan_make(pk, 6, true, &plan));
	assert_int_equal(plan.n_out, 4);
	check_roundtrip(&plan, 0, 0, 2);
	assert_int_equal(plan.out[1].n_members, 1);
	assert_int_equal(plan.out[2].n_members, 1);
	assert_int_equal(plan.out[1].hdr.gso_type, VNET_GSO_NONE);
	assert_memory_equal(pk[2].data, rx[2], seg_len[2]); /* untouched */
	check_roundtrip(&plan, 3, 4, 2);

	/* A short datagram closes the group; a longer one cannot follow a shorter head. */
	struct spec s = { .family = AF_INET, .udp = true, .payload = 2 * 1000 + 10, .sport = 61 };
	assert_int_equal(split_and_check(&s, 1000), 3); /* 1000 1000 10 */
	for (size_t i = 0; i < 3; i++)
		load(i, i);
	load(3, 0); /* a fourth datagram after the short one: starts anew */
	assert_true(gro_plan_make(pk, 4, true, &plan));
	assert_int_equal(plan.n_out, 2);
	check_roundtrip(&plan, 0, 0, 3);
	load(0, 2);
	load(1, 0);
	assert_true(gro_plan_make(pk, 2, true, &plan));
	assert_int_equal(plan.n_out, 2); /* 10 then 1000: no group */

	/* TCP and UDP on the same ports are different flows. */
	struct spec t = { .family = AF_INET, .payload = 2 * 1000, .flags = TCP_FLAG_ACK, .seq = 7, .sport = 61 };
	assert_int_equal(split_and_check(&s, 1000), 3);
	load(0, 0);
	load(2, 1);
	assert_int_equal(split_and_check(&t, 1000), 2);
	load(1, 0);
	load(3, 1);
	assert_true(gro_plan_make(pk, 4, true, &plan));
	assert_int_equal(plan.n_out, 2);
	assert_int_equal(plan.out[0].n_members, 2);
	assert_int_equal(plan.out[0].hdr.gso_type, VNET_GSO_UDP_L4);
	assert_int_equal(plan.out[1].n_members, 2);
	assert_int_equal(plan.out[1].hdr.gso_type, VNET_GSO_TCPV4);
}

/* ---------------------------------------------------------------- UDP GSO grouping */

static void test_udp_gso_groups(void **state)
{
	(void)state;
	struct iovec iov[UDPOFFLOAD_MAX_SEGMENTS + 8];
	struct sockaddr_storage dest[UDPOFFLOAD_MAX_SEGMENTS + 8];
	memset(dest, 0, sizeof(dest));
	for (size_t i = 0; i < sizeof(iov) / sizeof(iov[0]); i++) {
		struct sockaddr_in *in = (struct sockaddr_in *)&dest[i];
		in->sin_family = AF_INET;
		in->sin_port = htons(51820);
		in->sin_addr.s_addr = htonl(0xc0000202);
		iov[i] = (struct iovec){ NULL, 1000 };
	}
	/* 1000 1000 600 | 1000 (other peer) | 1000 1000 | 32 (keepalive after full ones) */
	iov[2].iov_len = 600;
	((struct sockaddr_in *)&dest[3])->sin_port = htons(51821);
	iov[6].iov_len = 32;
	assert_int_equal(udpoffload_group(iov, dest, 8, 0), 3);
	assert_int_equal(udpoffload_group(iov, dest, 8, 3), 1);
	assert_int_equal(udpoffload_group(iov, dest, 8, 4), 3);
	assert_int_equal(udpoffload_group(iov, dest, 7, 4), 3);
	assert_int_equal(udpoffload_group(iov, dest, 6, 4), 2); /* the count bounds it */
	/* A longer datagram cannot follow shorter ones. */
	iov[1].iov_len = 1001;
	assert_int_equal(udpoffload_group(iov, dest, 8, 0), 1);
	/* Equal datagrams of 1100 bytes: the byte limit (65000) comes first. */
	for (size_t i = 0; i < sizeof(iov) / sizeof(iov[0]); i++) {
		iov[i].iov_len = 1100;
		((struct sockaddr_in *)&dest[i])->sin_port = htons(51820);
	}
	assert_int_equal(udpoffload_group(iov, dest, 70, 0), 59);
	for (size_t i = 0; i < sizeof(iov) / sizeof(iov[0]); i++)
		iov[i].iov_len = 100;
	assert_int_equal(udpoffload_group(iov, dest, 70, 0), UDPOFFLOAD_MAX_SEGMENTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_matches_reference),
		cmocka_unit_test(test_split_tcp4),
		cmocka_unit_test(test_split_tcp6),
		cmocka_unit_test(test_split_options),
		cmocka_unit_test(test_split_udp),
		cmocka_unit_test(test_no_gso_checksum),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_coalesce_roundtrip),
		cmocka_unit_test(test_coalesce_mixed_flows),
		cmocka_unit_test(test_coalesce_refusals),
		cmocka_unit_test(test_coalesce_bad_ip_checksum),
		cmocka_unit_test(test_coalesce_non_tcp),
		cmocka_unit_test(test_coalesce_udp),
		cmocka_unit_test(test_coalesce_udp_refusals),
		cmocka_unit_test(test_udp_gso_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
