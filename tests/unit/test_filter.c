/* Unit tests for access rules on the node: the packet matcher (core/filter), the connection
 * table (core/conntrack), the FILTER message codec (core/control), the assembly of a set
 * from parts (meshd/acl) and the state file's filter and rule lines (meshd/state). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conntrack.h"
#include "core/control.h"
#include "core/filter.h"
#include "meshd/acl.h"
#include "meshd/state.h"

/* ---------------------------------------------------------------- packets */

/* An IPv4 packet src -> dst of proto with an 8-byte transport header: ports (TCP, UDP) or
 * type, code, 0, 0, id (ICMP). frag_off in 8-byte units. */
static size_t pkt4(uint8_t *p, const char *src, const char *dst, uint8_t proto, uint16_t a, uint16_t b,
		   uint16_t frag_off)
{
	memset(p, 0, 64);
	p[0] = 0x45;
	p[3] = 28;
	p[6] = (uint8_t)(frag_off >> 8);
	p[7] = (uint8_t)frag_off;
	p[8] = 64;
	p[9] = proto;
	inet_pton(AF_INET, src, p + 12);
	inet_pton(AF_INET, dst, p + 16);
	if (proto == IP_PROTO_ICMP) {
		p[20] = (uint8_t)a;       /* type */
		p[21] = (uint8_t)(b >> 8); /* code */
		p[24] = (uint8_t)(b >> 8);
		p[25] = (uint8_t)b;       /* id */
	} else {
		p[20] = (uint8_t)(a >> 8);
		p[21] = (uint8_t)a;
		p[22] = (uint8_t)(b >> 8);
		p[23] = (uint8_t)b;
	}
	return 28;
}

static size_t pkt6(uint8_t *p, const char *src, const char *dst, uint8_t proto, uint16_t sport, uint16_t dport)
{
	memset(p, 0, 64);
	p[0] = 0x60;
	p[5] = 8;
	p[6] = proto;
	p[7] = 64;
	inet_pton(AF_INET6, src, p + 8);
	inet_pton(AF_INET6, dst, p + 24);
	p[40] = (uint8_t)(sport >> 8);
	p[41] = (uint8_t)sport;
	p[42] = (uint8_t)(dport >> 8);
	p[43] = (uint8_t)dport;
	return 48;
}

static struct filter_rule rule4(const char *src, uint8_t sbits, const char *dst, uint8_t proto, uint16_t lo,
				uint16_t hi)
{
	struct filter_rule r;
	memset(&r, 0, sizeof(r));
	r.family = FILTER_FAMILY_IPV4;
	inet_pton(AF_INET, src, r.src);
	r.src_bits = sbits;
	inet_pton(AF_INET, dst, r.dst);
	r.dst_bits = 32;
	r.proto = proto;
	r.port_lo = lo;
	r.port_hi = hi;
	return r;
}

static bool allowed(const struct filter_rule *rules, size_t n, const uint8_t *p, size_t len)
{
	struct filter_flow f;
	assert_true(filter_flow_parse(p, len, &f));
	return filter_rules_allow(rules, n, &f);
}

static void test_matcher(void **state)
{
	(void)state;
	uint8_t p[64];
	struct filter_rule rules[] = {
		rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_TCP, 80, 80),
		rule4("100.64.0.0", 24, "100.64.0.2", FILTER_PROTO_UDP, 5000, 5010),
		rule4("0.0.0.0", 0, "100.64.0.2", FILTER_PROTO_ICMP, 0, 65535),
	};
	size_t n = 3;
	/* A -> B:80 tcp yes; B:22 no; from elsewhere no */
	assert_true(allowed(rules, n, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 40000, 80, 0)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 40000, 22, 0)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.0.9", "100.64.0.2", IP_PROTO_TCP, 40000, 80, 0)));
	/* UDP range by prefix; TCP on the UDP rule's ports no */
	assert_true(allowed(rules, n, p, pkt4(p, "100.64.0.9", "100.64.0.2", IP_PROTO_UDP, 1, 5010, 0)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.0.9", "100.64.0.2", IP_PROTO_UDP, 1, 5011, 0)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.1.9", "100.64.0.2", IP_PROTO_UDP, 1, 5000, 0)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.0.9", "100.64.0.2", IP_PROTO_TCP, 1, 5000, 0)));
	/* ICMP from anyone; to another destination no */
	assert_true(allowed(rules, n, p, pkt4(p, "100.64.3.3", "100.64.0.2", IP_PROTO_ICMP, 8, 7, 0)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.3.3", "100.64.0.3", IP_PROTO_ICMP, 8, 7, 0)));
	/* a later fragment of TCP from A: ports unknown, the port rule lets it through */
	assert_true(allowed(rules, n, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 0, 0, 100)));
	assert_false(allowed(rules, n, p, pkt4(p, "100.64.0.7", "100.64.0.2", IP_PROTO_TCP, 0, 0, 100)));
	/* no rules: nothing */
	assert_false(allowed(rules, 0, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 40000, 80, 0)));
	/* IPv6 never matches an IPv4 rule; an IPv6 rule does */
	assert_false(allowed(rules, n, p, pkt6(p, "fd00::1", "fd00::2", IP_PROTO_TCP, 1, 80)));
	struct filter_rule r6;
	memset(&r6, 0, sizeof(r6));
	r6.family = FILTER_FAMILY_IPV6;
	inet_pton(AF_INET6, "fd00::", r6.src);
	r6.src_bits = 16;
	inet_pton(AF_INET6, "fd00::2", r6.dst);
	r6.dst_bits = 128;
	r6.proto = FILTER_PROTO_ANY;
	r6.port_lo = 80;
	r6.port_hi = 80;
	assert_true(filter_rule_valid(&r6));
	assert_true(allowed(&r6, 1, p, pkt6(p, "fd00::1", "fd00::2", IP_PROTO_TCP, 1, 80)));
	assert_true(allowed(&r6, 1, p, pkt6(p, "fd00::1", "fd00::2", IP_PROTO_UDP, 1, 80)));
	assert_false(allowed(&r6, 1, p, pkt6(p, "fd00::1", "fd00::2", IP_PROTO_UDP, 1, 81)));
	/* "any" with a port range does not cover protocols without ports */
	assert_false(allowed(&r6, 1, p, pkt6(p, "fd00::1", "fd00::2", IP_PROTO_ICMPV6, 0x8000, 0)));
}

static void test_rule_valid(void **state)
{
	(void)state;
	struct filter_rule r = rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_TCP, 80, 80);
	assert_true(filter_rule_valid(&r));
	r.src_bits = 24; /* host bits set */
	assert_false(filter_rule_valid(&r));
	r = rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_TCP, 81, 80);
	assert_false(filter_rule_valid(&r));
	r = rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_ICMP, 80, 80);
	assert_false(filter_rule_valid(&r));
	r = rule4("100.64.0.1", 32, "100.64.0.2", 2, 0, 65535);
	assert_false(filter_rule_valid(&r));
	r = rule4("100.64.0.1", 33, "100.64.0.2", FILTER_PROTO_TCP, 0, 65535);
	assert_false(filter_rule_valid(&r));
	r = rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_TCP, 0, 65535);
	r.src[5] = 1; /* an IPv4 rule's unused bytes must be zero */
	assert_false(filter_rule_valid(&r));
	r.src[5] = 0;
	r.family = 5;
	assert_false(filter_rule_valid(&r));
}

/* ---------------------------------------------------------------- the connection table */

static struct filter_flow flow(uint8_t *p, size_t len)
{
	struct filter_flow f;
	assert_true(filter_flow_parse(p, len, &f));
	return f;
}

static void test_conntrack(void **state)
{
	(void)state;
	struct conntrack ct;
	uint8_t p[64], q[64];
	struct filter_flow f;

	assert_false(conntrack_init(&ct, 3)); /* not a power of two */
	assert_true(conntrack_init(&ct, 4));
	/* B opened B:40000 -> A:22: A's replies pass, for CONNTRACK_TCP_TIMEOUT_MS */
	f = flow(p, pkt4(p, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, 40000, 22, 0));
	conntrack_note_tx(&ct, &f, 1000);
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 22, 40000, 0));
	assert_true(conntrack_rx_related(&ct, &f, 2000));
	assert_false(conntrack_rx_related(&ct, &f, 1000 + CONNTRACK_TCP_TIMEOUT_MS));
	/* another port, another protocol, another peer: no */
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 22, 40001, 0));
	assert_false(conntrack_rx_related(&ct, &f, 2000));
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_UDP, 22, 40000, 0));
	assert_false(conntrack_rx_related(&ct, &f, 2000));
	f = flow(q, pkt4(q, "100.64.0.3", "100.64.0.2", IP_PROTO_TCP, 22, 40000, 0));
	assert_false(conntrack_rx_related(&ct, &f, 2000));
	/* the remote's own connection to the same ports is not a reply: A:22 -> B:40000 is,
	 * but A:40000 -> B:22 is new */
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 40000, 22, 0));
	assert_false(conntrack_rx_related(&ct, &f, 2000));
	/* UDP times out sooner; a refresh extends it */
	f = flow(p, pkt4(p, "100.64.0.2", "100.64.0.1", IP_PROTO_UDP, 5353, 53, 0));
	conntrack_note_tx(&ct, &f, 0);
	conntrack_note_tx(&ct, &f, 100000);
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_UDP, 53, 5353, 0));
	assert_true(conntrack_rx_related(&ct, &f, 100000 + CONNTRACK_UDP_TIMEOUT_MS - 1));
	assert_false(conntrack_rx_related(&ct, &f, 100000 + CONNTRACK_UDP_TIMEOUT_MS));
	/* ICMP echo: the reply with our id passes, another id does not, a request does not */
	f = flow(p, pkt4(p, "100.64.0.2", "100.64.0.1", IP_PROTO_ICMP, 8, 77, 0));
	conntrack_note_tx(&ct, &f, 0);
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_ICMP, 0, 77, 0));
	assert_true(conntrack_rx_related(&ct, &f, 10));
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_ICMP, 0, 78, 0));
	assert_false(conntrack_rx_related(&ct, &f, 10));
	f = flow(q, pkt4(q, "100.64.0.1", "100.64.0.2", IP_PROTO_ICMP, 8, 77, 0));
	assert_false(conntrack_rx_related(&ct, &f, 10));
	/* an ICMP error quoting our TCP packet passes; quoting someone else's does not */
	uint8_t err[96];
	memset(err, 0, sizeof(err));
	pkt4(err, "100.64.0.1", "100.64.0.2", IP_PROTO_ICMP, 3, 0, 0); /* first: it clears 64 bytes */
	size_t inner = pkt4(err + 28, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, 40000, 22, 0);
	err[3] = (uint8_t)(28 + inner);
	err[24] = err[25] = 0;
	f = flow(err, 28 + inner);
	assert_true(filter_icmp_is_error(&f));
	assert_true(conntrack_rx_related(&ct, &f, 2000));
	pkt4(err + 28, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, 40009, 22, 0);
	f = flow(err, 28 + inner);
	assert_false(conntrack_rx_related(&ct, &f, 2000));
	conntrack_free(&ct);
}

static void test_conntrack_bounded(void **state)
{
	(void)state;
	struct conntrack ct;
	uint8_t p[64];
	assert_true(conntrack_init(&ct, 2)); /* 8 slots */
	for (uint16_t port = 1; port <= 1000; port++) {
		struct filter_flow f = flow(p, pkt4(p, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, port, 80, 0));
		conntrack_note_tx(&ct, &f, port);
	}
	assert_int_equal(conntrack_count(&ct, 1000), 8);
	assert_int_equal(ct.inserted, 1000);
	assert_int_equal(ct.evicted, 992);
	/* the newest flow is always kept (the oldest in its bucket made room) */
	struct filter_flow f = flow(p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 80, 1000, 0));
	assert_true(conntrack_rx_related(&ct, &f, 1000));
	conntrack_clear(&ct);
	assert_int_equal(conntrack_count(&ct, 1000), 0);
	conntrack_free(&ct);
}

/* ---------------------------------------------------------------- the FILTER message */

static void test_codec(void **state)
{
	(void)state;
	struct control_message m, d;
	uint8_t buf[CONTROL_MAX_FRAME];

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_FILTER;
	m.u.filter.generation = 7;
	m.u.filter.part = 1;
	m.u.filter.parts = 2;
	m.u.filter.active = true;
	m.u.filter.n_rules = CONTROL_FILTER_RULES_PER_MSG;
	for (int i = 0; i < CONTROL_FILTER_RULES_PER_MSG; i++)
		m.u.filter.rules[i] = rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_TCP, (uint16_t)i, (uint16_t)i);
	size_t len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 1 + 8 + CONTROL_FILTER_RULES_PER_MSG * 40);
	assert_int_equal(control_decode(buf, len, &d), CONTROL_DECODE_OK);
	assert_int_equal(d.u.filter.generation, 7);
	assert_int_equal(d.u.filter.n_rules, CONTROL_FILTER_RULES_PER_MSG);
	assert_memory_equal(&d.u.filter.rules[5], &m.u.filter.rules[5], sizeof(struct filter_rule));
	/* a trailing byte, a short rule, a count beyond what is there: malformed */
	assert_int_equal(control_decode(buf, len - 1, &d), CONTROL_DECODE_MALFORMED);
	buf[len] = 0;
	assert_int_equal(control_decode(buf, len + 1, &d), CONTROL_DECODE_MALFORMED);
	/* header rules */
	static const struct {
		uint8_t part, parts, active, count;
	} bad[] = { { 0, 0, 1, 0 }, { 2, 2, 1, 0 }, { 0, CONTROL_FILTER_MAX_PARTS + 1, 1, 0 }, { 0, 1, 2, 0 },
		    { 0, 2, 0, 0 }, { 0, 1, 0, 1 }, { 0, 1, 1, CONTROL_FILTER_RULES_PER_MSG + 1 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t b[16 + 2 * 40] = { CONTROL_MSG_FILTER, 0, 0, 0, 1, bad[i].part, bad[i].parts, bad[i].active,
					   bad[i].count };
		assert_int_equal(control_decode(b, 9 + (size_t)bad[i].count * 40 > sizeof(b) ? sizeof(b) : 9, &d),
				 CONTROL_DECODE_MALFORMED);
	}
	/* allow all: one part, no rules */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_FILTER;
	m.u.filter.parts = 1;
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 9);
	assert_int_equal(control_decode(buf, len, &d), CONTROL_DECODE_OK);
	assert_false(d.u.filter.active);
	/* an invalid rule (host bits) is refused both ways */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_FILTER;
	m.u.filter.parts = 1;
	m.u.filter.active = true;
	m.u.filter.n_rules = 1;
	m.u.filter.rules[0] = rule4("100.64.0.1", 24, "100.64.0.2", FILTER_PROTO_TCP, 1, 1);
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	m.u.filter.rules[0].src_bits = 32;
	len = control_encode(&m, buf, sizeof(buf));
	buf[10] = 24; /* the src bits of the first rule */
	assert_int_equal(control_decode(buf, len, &d), CONTROL_DECODE_MALFORMED);
}

/* ---------------------------------------------------------------- a set in parts */

static struct control_filter part(uint32_t gen, uint8_t i, uint8_t n, uint8_t count)
{
	struct control_filter f;
	memset(&f, 0, sizeof(f));
	f.generation = gen;
	f.part = i;
	f.parts = n;
	f.active = true;
	f.n_rules = count;
	for (uint8_t k = 0; k < count; k++)
		f.rules[k] = rule4("100.64.0.1", 32, "100.64.0.2", FILTER_PROTO_TCP, (uint16_t)(i * 100 + k),
				   (uint16_t)(i * 100 + k));
	return f;
}

static void test_acl_parts(void **state)
{
	(void)state;
	struct acl a;
	struct control_filter f;
	uint8_t p[64];

	acl_init(&a);
	assert_true(acl_allow_rx(&a, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 1, 22, 0), 0));
	f = part(5, 0, 3, 64);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_PENDING);
	assert_false(a.active); /* nothing changes until the set is complete */
	f = part(5, 1, 3, 64);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_PENDING);
	f = part(5, 2, 3, 2);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_APPLIED);
	assert_true(a.active);
	assert_int_equal(a.n_rules, 130);
	assert_true(a.from_coordinator);
	assert_true(acl_allow_rx(&a, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 1, 201, 0), 0));
	assert_false(acl_allow_rx(&a, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 1, 202, 0), 0));
	/* a reply to our own connection passes */
	acl_note_tx(&a, p, pkt4(p, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, 50000, 22, 0), 0);
	assert_true(acl_allow_rx(&a, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 22, 50000, 0), 1));
	/* out of order, another generation, a missing part 0: refused, the set in force stays */
	f = part(6, 1, 2, 1);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_REFUSED);
	f = part(6, 0, 2, 1);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_PENDING);
	f = part(7, 1, 2, 1);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_REFUSED);
	assert_int_equal(a.n_rules, 130);
	/* an ICMP error from A about our reply on an allowed connection (A:1 -> us:201 is a
	 * rule) passes; one about a reply on a port no rule allows does not */
	uint8_t err[96];
	pkt4(err, "100.64.0.1", "100.64.0.2", IP_PROTO_ICMP, 3, 4 << 8, 0); /* frag needed */
	pkt4(err + 28, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, 201, 1, 0);
	err[3] = 56;
	assert_true(acl_allow_rx(&a, err, 56, 2));
	pkt4(err + 28, "100.64.0.2", "100.64.0.1", IP_PROTO_TCP, 202, 1, 0);
	assert_false(acl_allow_rx(&a, err, 56, 2));
	/* allow all */
	memset(&f, 0, sizeof(f));
	f.parts = 1;
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_APPLIED);
	assert_false(a.active);
	assert_true(a.known);
	assert_true(acl_allow_rx(&a, p, pkt4(p, "100.64.0.9", "100.64.0.2", IP_PROTO_TCP, 1, 22, 0), 0));
	/* an empty active set: nothing new gets in */
	f = part(8, 0, 1, 0);
	assert_int_equal(acl_receive_part(&a, &f), ACL_PART_APPLIED);
	assert_true(a.active);
	assert_false(acl_allow_rx(&a, p, pkt4(p, "100.64.0.1", "100.64.0.2", IP_PROTO_TCP, 1, 201, 0), 0));
	acl_free(&a);
}

/* ---------------------------------------------------------------- the state file */

static void test_state_lines(void **state)
{
	(void)state;
	struct node_state st;
	char err[256];
	const char *text = "meshd-state 1\nfilter on\nrule 100.64.0.1/32 100.64.0.2/32 tcp 80\n"
			   "rule 0.0.0.0/0 100.64.0.2/32 icmp *\nrule fd00::/16 fd00::2/128 udp 5000-5010\n";
	assert_true(state_parse(&st, text, strlen(text), err, sizeof(err)));
	assert_true(st.filter_known);
	assert_true(st.filter_active);
	assert_int_equal(st.n_rules, 3);
	char buf[FILTER_RULE_STR_MAX];
	assert_string_equal(filter_rule_format(&st.rules[2], buf, sizeof(buf)), "fd00::/16 -> fd00::2/128 udp 5000-5010");
	state_free(&st);

	static const char *const bad[] = {
		"meshd-state 1\nrule 100.64.0.1/32 100.64.0.2/32 tcp 80\n", /* no filter on before */
		"meshd-state 1\nfilter maybe\n",
		"meshd-state 1\nfilter on\nrule 100.64.0.1/24 100.64.0.2/32 tcp 80\n", /* host bits */
		"meshd-state 1\nfilter on\nrule 100.64.0.1/32 fd00::2/128 tcp 80\n",   /* families */
		"meshd-state 1\nfilter on\nrule 100.64.0.1/32 100.64.0.2/32 icmp 80\n",
		"meshd-state 1\nfilter on\nrule 100.64.0.1/32 100.64.0.2/32 tcp 90-80\n",
		"meshd-state 1\nfilter on\nrule 100.64.0.1/32 100.64.0.2/32 tcp 65536\n",
		"meshd-state 1\nfilter on\nrule 100.64.0.1 100.64.0.2/32 tcp 1\n",
		"meshd-state 1\nfilter on\nrule 100.64.0.1/32 100.64.0.2/32 gre *\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (state_parse(&st, bad[i], strlen(bad[i]), err, sizeof(err)))
			fail_msg("case %zu parsed", i);

	/* "filter off" is remembered: a restart knows the coordinator said allow all */
	const char *off = "meshd-state 1\nfilter off\n";
	assert_true(state_parse(&st, off, strlen(off), err, sizeof(err)));
	assert_true(st.filter_known);
	assert_false(st.filter_active);
	state_free(&st);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matcher),
		cmocka_unit_test(test_rule_valid),
		cmocka_unit_test(test_conntrack),
		cmocka_unit_test(test_conntrack_bounded),
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_acl_parts),
		cmocka_unit_test(test_state_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
