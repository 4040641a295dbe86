/* The control messages of control.h: one type byte, then the type's fields in a fixed order.
 *
 *   REGISTER     hostname | secret (u8 len, bytes) | endpoints
 *   REGISTERED   name | ipv4 (4) | ipv4 bits (1) | ipv6 (16) | ipv6 bits (1)
 *   ERROR        code (u16) | text
 *   PEER         node key (32) | name | ipv4 (4) | ipv6 (16) | online (1: 0 or 1) | endpoints
 *   PEER_REMOVE  node key (32)
 *   NETMAP_END   (empty)
 *   ENDPOINTS    endpoints
 *   KEEPALIVE    (empty)
 *   RELAY_INFO   token (32) | stun port (u16, not 0) | alt stun port (u16, 0: none) | rate (u32)
 *   RELAY        node key (32) | payload (the rest of the record, 1..RELAY_MAX_PAYLOAD bytes)
 *   FILTER       generation (u32) | part (u8) | parts (u8, 1..CONTROL_FILTER_MAX_PARTS) |
 *                active (u8: 0 or 1) | count (u8) | count rules of FILTER_RULE_LEN (40) bytes:
 *                family (4 or 6) | src bits | dst bits | proto (0 any, 1 icmp, 6, 17) |
 *                port lo (u16) | port hi (u16) | src (16) | dst (16)
 *                (IPv4 addresses in the first 4 of their 16 bytes, the rest zero; host bits
 *                zero; filter_rule_valid). Inactive: part 0 of 1, no rules.
 *   DNS          domain (a string: 1..CONTROL_DOMAIN_MAX, a valid DNS domain in lower case)
 *   ROUTES       routes
 *   PEER_ROUTES  node key (32) | routes
 *   SATELLITES   count (u8, at most CONTROL_MAX_SATELLITES) | each: public key (32) | name |
 *                ipv4 (4) | ipv6 (16) | has psk (u8: 0 or 1) | psk (32, only when has psk)
 *   PEER_SATELLITES  node key (32) | count (u8, at most CONTROL_MAX_SATELLITES) | each: name |
 *                ipv4 (4) | ipv6 (16)
 *
 * Routes are a u8 count (at most CONTROL_MAX_ROUTES), then each family (4 or 6) | bits (at
 * most 32 or 128) | address (4 or 16 bytes, the bits past the prefix length all zero).
 *
 * A string is a u8 length then that many bytes, no NUL. Names (hostname, name) are 1 to
 * CONTROL_NAME_MAX of [A-Za-z0-9-_.]; error text is printable ASCII. Endpoints are a u8 count
 * (at most CONTROL_MAX_ENDPOINTS), then each family (4 or 6) | address (4 or 16) | port (u16,
 * never 0). Integers are big-endian, as on the TCP frame header.
 *
 * The encoder checks the same rules as the decoder, so everything it writes parses back to
 * the same message, and the encoding of a message is unique: re-encoding a decoded message
 * gives back the input bytes (the fuzz target checks this).
 *
 * A frame's plaintext is records: u16 length (1 or more) | that many bytes of one message.
 */
#include "control.h"
#include "control_wire.h"

#include <string.h>

#include <sodium.h>

#include "dns.h"

enum {
	ENDPOINT_FAMILY_IPV4 = 4,
	ENDPOINT_FAMILY_IPV6 = 6,
	IPV4_ADDR_LEN = 4,
	IPV6_ADDR_LEN = 16,
	IPV4_BITS_MAX = 32,
	IPV6_BITS_MAX = 128,
	/* Printable ASCII: error text ends up on a terminal, where control bytes could lie. */
	TEXT_CHAR_MIN = 0x20,
	TEXT_CHAR_MAX = 0x7e,
};

/* The longest encoding of each message type, to show that any one fits an empty frame. */
enum {
	ENDPOINT_MAX_LEN = 1 + IPV6_ADDR_LEN + 2,
	ENDPOINTS_MAX_LEN = 1 + CONTROL_MAX_ENDPOINTS * ENDPOINT_MAX_LEN,
	REGISTER_MAX_LEN = 1 + (1 + CONTROL_NAME_MAX) + (1 + CONTROL_SECRET_MAX) + ENDPOINTS_MAX_LEN,
	REGISTERED_MAX_LEN = 1 + (1 + CONTROL_NAME_MAX) + IPV4_ADDR_LEN + 1 + IPV6_ADDR_LEN + 1,
	ERROR_MAX_LEN = 1 + 2 + (1 + CONTROL_MESSAGE_TEXT_MAX),
	PEER_MAX_LEN = 1 + WIRE_KEY_LEN + (1 + CONTROL_NAME_MAX) + IPV4_ADDR_LEN + IPV6_ADDR_LEN + 1 + ENDPOINTS_MAX_LEN,
	RELAY_INFO_LEN = 1 + RELAY_TOKEN_LEN + 2 + 2 + 4,
	RELAY_MSG_MAX_LEN = 1 + WIRE_KEY_LEN + RELAY_MAX_PAYLOAD,
	FILTER_RULE_LEN = 4 + 2 + 2 + 16 + 16,
	FILTER_MAX_LEN = 1 + 4 + 1 + 1 + 1 + 1 + CONTROL_FILTER_RULES_PER_MSG * FILTER_RULE_LEN,
	DNS_MSG_MAX_LEN = 1 + 1 + CONTROL_DOMAIN_MAX,
	ROUTES_MAX_LEN = 1 + CONTROL_MAX_ROUTES * (2 + IPV6_ADDR_LEN),
	PEER_ROUTES_MAX_LEN = 1 + WIRE_KEY_LEN + ROUTES_MAX_LEN,
	SATELLITE_MAX_LEN = WIRE_KEY_LEN + (1 + CONTROL_NAME_MAX) + IPV4_ADDR_LEN + IPV6_ADDR_LEN + 1 + WIRE_KEY_LEN,
	SATELLITES_MAX_LEN = 1 + 1 + CONTROL_MAX_SATELLITES * SATELLITE_MAX_LEN,
	PEER_SATELLITES_MAX_LEN = 1 + WIRE_KEY_LEN + 1 +
				  CONTROL_MAX_SATELLITES * ((1 + CONTROL_NAME_MAX) + IPV4_ADDR_LEN + IPV6_ADDR_LEN),
	SERVICE_MAX_LEN = (1 + CONTROL_NAME_MAX) + 1 + 2,
	PUBLISH_MAX_LEN = 1 + 1 + CONTROL_MAX_PUBLISH * SERVICE_MAX_LEN,
	PUBLISH_STATE_MAX_LEN = 1 + SERVICE_MAX_LEN + 1,
	STREAM_OPEN_MAX_LEN = 1 + 8 + CONTROL_STREAM_SECRET_LEN + 1 + 2 + ENDPOINT_MAX_LEN,
	RECORD_ROOM = CONTROL_MAX_PLAIN - CONTROL_RECORD_HEADER_LEN,
};
_Static_assert(PUBLISH_MAX_LEN <= RECORD_ROOM && PUBLISH_STATE_MAX_LEN <= RECORD_ROOM &&
		       STREAM_OPEN_MAX_LEN <= RECORD_ROOM && CONTROL_MAX_PUBLISH <= UINT8_MAX,
	       "publish messages fit an empty frame as one record, their count a u8");
_Static_assert(DNS_MSG_MAX_LEN <= RECORD_ROOM, "a DNS message fits an empty frame");
_Static_assert((int)CONTROL_DOMAIN_MAX == (int)DNS_NAME_TEXT_MAX, "the domain is a DNS name");

_Static_assert(PEER_ROUTES_MAX_LEN <= RECORD_ROOM && CONTROL_MAX_ROUTES <= UINT8_MAX,
	       "a routes message fits an empty frame as one record, its count a u8");
_Static_assert(SATELLITES_MAX_LEN <= RECORD_ROOM && PEER_SATELLITES_MAX_LEN <= RECORD_ROOM &&
		       CONTROL_MAX_SATELLITES <= UINT8_MAX,
	       "a full SATELLITES list fits an empty frame as one record, its count a u8");
_Static_assert(FILTER_MAX_LEN <= RECORD_ROOM, "a full FILTER part fits an empty frame as one record");
_Static_assert(CONTROL_FILTER_MAX_PARTS <= UINT8_MAX && CONTROL_FILTER_RULES_PER_MSG <= UINT8_MAX &&
		       CONTROL_FILTER_MAX_PARTS * CONTROL_FILTER_RULES_PER_MSG >= FILTER_MAX_RULES,
	       "FILTER counts fit their u8 and the parts carry a full rule set");

_Static_assert(RELAY_INFO_LEN <= RECORD_ROOM && RELAY_MSG_MAX_LEN <= RECORD_ROOM,
	       "a relay message fits an empty frame as one record");

_Static_assert(REGISTER_MAX_LEN <= RECORD_ROOM && REGISTERED_MAX_LEN <= RECORD_ROOM && ERROR_MAX_LEN <= RECORD_ROOM &&
		       PEER_MAX_LEN <= RECORD_ROOM && 1 + WIRE_KEY_LEN <= RECORD_ROOM && 1 + ENDPOINTS_MAX_LEN <= RECORD_ROOM,
	       "any valid message fits an empty frame as one record");
_Static_assert(CONTROL_MAX_PLAIN <= UINT16_MAX, "a record length fits its 2-byte header");

_Static_assert(CONTROL_NAME_MAX <= UINT8_MAX && CONTROL_SECRET_MAX <= UINT8_MAX &&
	       CONTROL_MESSAGE_TEXT_MAX <= UINT8_MAX && CONTROL_MAX_ENDPOINTS <= UINT8_MAX,
	       "every length and count fits its u8 on the wire");

/* ---------------------------------------------------------------- field rules */

static bool name_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.';
}

static bool name_ok(const uint8_t *s, size_t len)
{
	if (len == 0 || len > CONTROL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok(s[i]))
			return false;
	return true;
}

bool control_name_valid(const char *s)
{
	size_t len = s ? strnlen(s, CONTROL_NAME_MAX + 1) : 0;
	return len <= CONTROL_NAME_MAX && name_ok((const uint8_t *)s, len);
}

static bool text_ok(const uint8_t *s, size_t len)
{
	if (len > CONTROL_MESSAGE_TEXT_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < TEXT_CHAR_MIN || s[i] > TEXT_CHAR_MAX)
			return false;
	return true;
}

/* s[0..len) is not NUL-terminated: copy it out to ask dns_domain_valid. */
static bool domain_ok(const uint8_t *s, size_t len)
{
	char text[CONTROL_DOMAIN_MAX + 1];

	if (len == 0 || len > CONTROL_DOMAIN_MAX || memchr(s, '\0', len))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return dns_domain_valid(text);
}

static size_t family_addr_len(uint8_t family)
{
	switch (family) {
	case ENDPOINT_FAMILY_IPV4:
		return IPV4_ADDR_LEN;
	case ENDPOINT_FAMILY_IPV6:
		return IPV6_ADDR_LEN;
	default:
		return 0;
	}
}

/* ---------------------------------------------------------------- encoding */

/* A C string field: its length must leave room for the NUL inside the array, so an
 * unterminated array is refused instead of read past. */
static void put_checked_string(struct writer *w, const char *s, size_t array_len,
			       bool (*valid)(const uint8_t *, size_t))
{
	size_t len = strnlen(s, array_len);

	if (len == array_len || !valid((const uint8_t *)s, len)) {
		w->ok = false;
		return;
	}
	put_u8(w, (uint8_t)len);
	put_bytes(w, s, len);
}

static void put_endpoints(struct writer *w, const struct control_endpoint *list, size_t n)
{
	if (n > CONTROL_MAX_ENDPOINTS) {
		w->ok = false;
		return;
	}
	put_u8(w, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		size_t addr_len = family_addr_len(list[i].family);

		if (addr_len == 0 || list[i].port == 0) {
			w->ok = false;
			return;
		}
		put_u8(w, list[i].family);
		put_bytes(w, list[i].addr, addr_len);
		put_u16(w, list[i].port);
	}
}

/* One endpoint without a count in front (a stream's client). */
static void put_endpoints_one(struct writer *w, const struct control_endpoint *e)
{
	size_t addr_len = family_addr_len(e->family);

	if (addr_len == 0 || e->port == 0) {
		w->ok = false;
		return;
	}
	put_u8(w, e->family);
	put_bytes(w, e->addr, addr_len);
	put_u16(w, e->port);
}

static void encode_register(struct writer *w, const struct control_register *m)
{
	put_checked_string(w, m->hostname, sizeof(m->hostname), name_ok);
	if (m->join_secret_len > CONTROL_SECRET_MAX) {
		w->ok = false;
		return;
	}
	put_u8(w, (uint8_t)m->join_secret_len);
	put_bytes(w, m->join_secret, m->join_secret_len);
	put_endpoints(w, m->endpoints, m->n_endpoints);
}

static void encode_registered(struct writer *w, const struct control_registered *m)
{
	if (m->ipv4_bits > IPV4_BITS_MAX || m->ipv6_bits > IPV6_BITS_MAX) {
		w->ok = false;
		return;
	}
	put_checked_string(w, m->name, sizeof(m->name), name_ok);
	put_bytes(w, m->ipv4, IPV4_ADDR_LEN);
	put_u8(w, m->ipv4_bits);
	put_bytes(w, m->ipv6, IPV6_ADDR_LEN);
	put_u8(w, m->ipv6_bits);
}

static void encode_error(struct writer *w, const struct control_error *m)
{
	put_u16(w, m->code);
	put_checked_string(w, m->text, sizeof(m->text), text_ok);
}

static void encode_peer(struct writer *w, const struct control_peer *m)
{
	put_bytes(w, m->node_key, WIRE_KEY_LEN);
	put_checked_string(w, m->name, sizeof(m->name), name_ok);
	put_bytes(w, m->ipv4, IPV4_ADDR_LEN);
	put_bytes(w, m->ipv6, IPV6_ADDR_LEN);
	put_u8(w, m->online ? 1 : 0);
	put_endpoints(w, m->endpoints, m->n_endpoints);
}

static void encode_relay_info(struct writer *w, const struct control_relay_info *m)
{
	if (m->stun_port == 0) {
		w->ok = false;
		return;
	}
	put_bytes(w, m->token, RELAY_TOKEN_LEN);
	put_u16(w, m->stun_port);
	put_u16(w, m->alt_stun_port);
	put_u32(w, m->relay_rate);
}

static void encode_relay(struct writer *w, const struct control_relay *m)
{
	if (m->payload_len == 0 || m->payload_len > RELAY_MAX_PAYLOAD || !m->payload) {
		w->ok = false;
		return;
	}
	put_bytes(w, m->node_key, WIRE_KEY_LEN);
	put_bytes(w, m->payload, m->payload_len);
}

/* True when the bits past the prefix length are zero and the length fits the family. */
static bool route_ok(const struct control_route *r)
{
	size_t addr_len = family_addr_len(r->family);

	if (addr_len == 0 || r->bits > addr_len * 8)
		return false;
	for (size_t bit = r->bits; bit < addr_len * 8; bit++)
		if (r->addr[bit / 8] & (0x80u >> (bit % 8)))
			return false;
	return true;
}

static void put_routes(struct writer *w, const struct control_routes *rs)
{
	if (rs->n > CONTROL_MAX_ROUTES) {
		w->ok = false;
		return;
	}
	put_u8(w, (uint8_t)rs->n);
	for (size_t i = 0; i < rs->n; i++) {
		const struct control_route *r = &rs->list[i];
		if (!route_ok(r)) {
			w->ok = false;
			return;
		}
		put_u8(w, r->family);
		put_u8(w, r->bits);
		put_bytes(w, r->addr, family_addr_len(r->family));
	}
}

static bool filter_header_ok(const struct control_filter *m)
{
	if (m->parts == 0 || m->parts > CONTROL_FILTER_MAX_PARTS || m->part >= m->parts ||
	    m->n_rules > CONTROL_FILTER_RULES_PER_MSG)
		return false;
	return m->active || (m->parts == 1 && m->n_rules == 0);
}

static void encode_filter(struct writer *w, const struct control_filter *m)
{
	if (!filter_header_ok(m)) {
		w->ok = false;
		return;
	}
	put_u32(w, m->generation);
	put_u8(w, m->part);
	put_u8(w, m->parts);
	put_u8(w, m->active ? 1 : 0);
	put_u8(w, m->n_rules);
	for (size_t i = 0; i < m->n_rules; i++) {
		const struct filter_rule *r = &m->rules[i];
		if (!filter_rule_valid(r)) {
			w->ok = false;
			return;
		}
		put_u8(w, r->family);
		put_u8(w, r->src_bits);
		put_u8(w, r->dst_bits);
		put_u8(w, r->proto);
		put_u16(w, r->port_lo);
		put_u16(w, r->port_hi);
		put_bytes(w, r->src, sizeof(r->src));
		put_bytes(w, r->dst, sizeof(r->dst));
	}
}

static void encode_satellites(struct writer *w, const struct control_satellites *m)
{
	if (m->n > CONTROL_MAX_SATELLITES) {
		w->ok = false;
		return;
	}
	put_u8(w, (uint8_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct control_satellite *sat = &m->list[i];
		put_bytes(w, sat->public_key, WIRE_KEY_LEN);
		put_checked_string(w, sat->name, sizeof(sat->name), name_ok);
		put_bytes(w, sat->ipv4, IPV4_ADDR_LEN);
		put_bytes(w, sat->ipv6, IPV6_ADDR_LEN);
		put_u8(w, sat->has_psk ? 1 : 0);
		if (sat->has_psk)
			put_bytes(w, sat->psk, WIRE_KEY_LEN);
	}
}

static void encode_peer_satellites(struct writer *w, const struct control_peer_satellites *m)
{
	if (m->n > CONTROL_MAX_SATELLITES) {
		w->ok = false;
		return;
	}
	put_bytes(w, m->node_key, WIRE_KEY_LEN);
	put_u8(w, (uint8_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		put_checked_string(w, m->list[i].name, sizeof(m->list[i].name), name_ok);
		put_bytes(w, m->list[i].ipv4, IPV4_ADDR_LEN);
		put_bytes(w, m->list[i].ipv6, IPV6_ADDR_LEN);
	}
}

static bool proto_ok(uint8_t proto)
{
	return proto == CONTROL_PROTO_TCP || proto == CONTROL_PROTO_UDP;
}

static void put_service(struct writer *w, const struct control_service *sv)
{
	if (!proto_ok(sv->proto) || sv->port == 0) {
		w->ok = false;
		return;
	}
	put_checked_string(w, sv->name, sizeof(sv->name), name_ok);
	put_u8(w, sv->proto);
	put_u16(w, sv->port);
}

static void encode_publish(struct writer *w, const struct control_publish *m)
{
	if (m->n > CONTROL_MAX_PUBLISH) {
		w->ok = false;
		return;
	}
	put_u8(w, (uint8_t)m->n);
	for (size_t i = 0; i < m->n; i++)
		put_service(w, &m->list[i]);
}

static void encode_publish_state(struct writer *w, const struct control_publish_state_msg *m)
{
	if (m->state == 0 || m->state > CONTROL_PUBLISH_STATE_MAX) {
		w->ok = false;
		return;
	}
	put_service(w, &m->service);
	put_u8(w, m->state);
}

static void encode_stream_open(struct writer *w, const struct control_stream_open *m)
{
	if (!proto_ok(m->proto) || m->port == 0) {
		w->ok = false;
		return;
	}
	put_u64(w, m->stream_id);
	put_bytes(w, m->secret, CONTROL_STREAM_SECRET_LEN);
	put_u8(w, m->proto);
	put_u16(w, m->port);
	put_endpoints_one(w, &m->client);
}

size_t control_encode(const struct control_message *m, uint8_t *out, size_t cap)
{
	struct writer w = { .p = out, .cap = cap, .len = 0, .ok = out != NULL };

	put_u8(&w, (uint8_t)m->type);
	switch (m->type) {
	case CONTROL_MSG_REGISTER:
		encode_register(&w, &m->u.reg);
		break;
	case CONTROL_MSG_REGISTERED:
		encode_registered(&w, &m->u.registered);
		break;
	case CONTROL_MSG_ERROR:
		encode_error(&w, &m->u.error);
		break;
	case CONTROL_MSG_PEER:
		encode_peer(&w, &m->u.peer);
		break;
	case CONTROL_MSG_PEER_REMOVE:
		put_bytes(&w, m->u.remove_key, WIRE_KEY_LEN);
		break;
	case CONTROL_MSG_ENDPOINTS:
		put_endpoints(&w, m->u.endpoints.list, m->u.endpoints.n);
		break;
	case CONTROL_MSG_RELAY_INFO:
		encode_relay_info(&w, &m->u.relay_info);
		break;
	case CONTROL_MSG_RELAY:
		encode_relay(&w, &m->u.relay);
		break;
	case CONTROL_MSG_DNS:
		put_checked_string(&w, m->u.dns.domain, sizeof(m->u.dns.domain), domain_ok);
		break;
	case CONTROL_MSG_ROUTES:
		put_routes(&w, &m->u.routes);
		break;
	case CONTROL_MSG_PEER_ROUTES:
		put_bytes(&w, m->u.peer_routes.node_key, WIRE_KEY_LEN);
		put_routes(&w, &m->u.peer_routes.routes);
		break;
	case CONTROL_MSG_FILTER:
		encode_filter(&w, &m->u.filter);
		break;
	case CONTROL_MSG_SATELLITES:
		encode_satellites(&w, &m->u.satellites);
		break;
	case CONTROL_MSG_PEER_SATELLITES:
		encode_peer_satellites(&w, &m->u.peer_satellites);
		break;
	case CONTROL_MSG_PUBLISH:
		encode_publish(&w, &m->u.publish);
		break;
	case CONTROL_MSG_PUBLISH_STATE:
		encode_publish_state(&w, &m->u.publish_state);
		break;
	case CONTROL_MSG_STREAM_OPEN:
		encode_stream_open(&w, &m->u.stream_open);
		break;
	case CONTROL_MSG_STREAM_REFUSE:
		put_u64(&w, m->u.stream_refuse);
		break;
	case CONTROL_MSG_NETMAP_END:
	case CONTROL_MSG_KEEPALIVE:
		break;
	default:
		/* we only ever send what we know */
		w.ok = false;
		break;
	}
	if (!w.ok) {
		/* a register carries the join secret, satellites their preshared keys: leave no half
		 * of them behind */
		if (out)
			sodium_memzero(out, w.len);
		return 0;
	}
	return w.len;
}

/* ---------------------------------------------------------------- decoding */

/* Reads a string into a NUL-terminated array of max + 1 bytes; false if it breaks a rule. */
static bool get_checked_string(struct reader *r, char *dst, size_t max, bool (*valid)(const uint8_t *, size_t))
{
	size_t len = get_u8(r);

	if (!r->ok || len > max || len > r->left)
		return false;
	if (!valid(r->p, len))
		return false;
	get_bytes(r, dst, len);
	dst[len] = '\0';
	return r->ok;
}

static bool get_endpoints(struct reader *r, struct control_endpoint *list, size_t *n_out)
{
	size_t n = get_u8(r);

	if (!r->ok || n > CONTROL_MAX_ENDPOINTS)
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t addr_len;

		list[i].family = get_u8(r);
		addr_len = family_addr_len(list[i].family);
		if (!r->ok || addr_len == 0)
			return false;
		get_bytes(r, list[i].addr, addr_len);
		list[i].port = get_u16(r);
		if (!r->ok || list[i].port == 0)
			return false;
	}
	*n_out = n;
	return true;
}

static bool decode_register(struct reader *r, struct control_register *m)
{
	if (!get_checked_string(r, m->hostname, CONTROL_NAME_MAX, name_ok))
		return false;
	m->join_secret_len = get_u8(r);
	if (!r->ok || m->join_secret_len > CONTROL_SECRET_MAX)
		return false;
	get_bytes(r, m->join_secret, m->join_secret_len);
	return r->ok && get_endpoints(r, m->endpoints, &m->n_endpoints);
}

static bool decode_registered(struct reader *r, struct control_registered *m)
{
	if (!get_checked_string(r, m->name, CONTROL_NAME_MAX, name_ok))
		return false;
	get_bytes(r, m->ipv4, IPV4_ADDR_LEN);
	m->ipv4_bits = get_u8(r);
	get_bytes(r, m->ipv6, IPV6_ADDR_LEN);
	m->ipv6_bits = get_u8(r);
	return r->ok && m->ipv4_bits <= IPV4_BITS_MAX && m->ipv6_bits <= IPV6_BITS_MAX;
}

static bool decode_error(struct reader *r, struct control_error *m)
{
	m->code = get_u16(r);
	return r->ok && get_checked_string(r, m->text, CONTROL_MESSAGE_TEXT_MAX, text_ok);
}

static bool decode_peer(struct reader *r, struct control_peer *m)
{
	uint8_t online;

	get_bytes(r, m->node_key, WIRE_KEY_LEN);
	if (!r->ok || !get_checked_string(r, m->name, CONTROL_NAME_MAX, name_ok))
		return false;
	get_bytes(r, m->ipv4, IPV4_ADDR_LEN);
	get_bytes(r, m->ipv6, IPV6_ADDR_LEN);
	online = get_u8(r);
	/* one spelling per value keeps the encoding unique */
	if (!r->ok || online > 1)
		return false;
	m->online = online == 1;
	return get_endpoints(r, m->endpoints, &m->n_endpoints);
}

static bool decode_relay_info(struct reader *r, struct control_relay_info *m)
{
	get_bytes(r, m->token, RELAY_TOKEN_LEN);
	m->stun_port = get_u16(r);
	m->alt_stun_port = get_u16(r);
	m->relay_rate = get_u32(r);
	return r->ok && m->stun_port != 0;
}

static bool decode_relay(struct reader *r, struct control_relay *m)
{
	get_bytes(r, m->node_key, WIRE_KEY_LEN);
	if (!r->ok || r->left == 0 || r->left > RELAY_MAX_PAYLOAD)
		return false;
	m->payload = r->p;
	m->payload_len = r->left;
	r->p += r->left;
	r->left = 0;
	return true;
}

static bool get_routes(struct reader *r, struct control_routes *rs)
{
	size_t n = get_u8(r);

	if (!r->ok || n > CONTROL_MAX_ROUTES)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct control_route *rt = &rs->list[i];
		rt->family = get_u8(r);
		rt->bits = get_u8(r);
		size_t addr_len = family_addr_len(rt->family);
		if (!r->ok || addr_len == 0)
			return false;
		get_bytes(r, rt->addr, addr_len);
		if (!r->ok || !route_ok(rt))
			return false;
	}
	rs->n = n;
	return true;
}

static bool decode_filter(struct reader *r, struct control_filter *m)
{
	uint8_t active;

	m->generation = get_u32(r);
	m->part = get_u8(r);
	m->parts = get_u8(r);
	active = get_u8(r);
	m->n_rules = get_u8(r);
	if (!r->ok || active > 1)
		return false;
	m->active = active == 1;
	/* the count is checked against what is left before any rule is read */
	if (!filter_header_ok(m) || r->left != (size_t)m->n_rules * FILTER_RULE_LEN)
		return false;
	for (size_t i = 0; i < m->n_rules; i++) {
		struct filter_rule *f = &m->rules[i];
		f->family = get_u8(r);
		f->src_bits = get_u8(r);
		f->dst_bits = get_u8(r);
		f->proto = get_u8(r);
		f->port_lo = get_u16(r);
		f->port_hi = get_u16(r);
		get_bytes(r, f->src, sizeof(f->src));
		get_bytes(r, f->dst, sizeof(f->dst));
		if (!r->ok || !filter_rule_valid(f))
			return false;
	}
	return true;
}

static bool decode_satellites(struct reader *r, struct control_satellites *m)
{
	size_t n = get_u8(r);

	if (!r->ok || n > CONTROL_MAX_SATELLITES)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct control_satellite *sat = &m->list[i];
		uint8_t has_psk;

		get_bytes(r, sat->public_key, WIRE_KEY_LEN);
		if (!r->ok || !get_checked_string(r, sat->name, CONTROL_NAME_MAX, name_ok))
			return false;
		get_bytes(r, sat->ipv4, IPV4_ADDR_LEN);
		get_bytes(r, sat->ipv6, IPV6_ADDR_LEN);
		has_psk = get_u8(r);
		if (!r->ok || has_psk > 1) /* one spelling per value keeps the encoding unique */
			return false;
		sat->has_psk = has_psk == 1;
		if (sat->has_psk)
			get_bytes(r, sat->psk, WIRE_KEY_LEN);
		if (!r->ok)
			return false;
	}
	m->n = n;
	return true;
}

static bool decode_peer_satellites(struct reader *r, struct control_peer_satellites *m)
{
	get_bytes(r, m->node_key, WIRE_KEY_LEN);
	size_t n = get_u8(r);

	if (!r->ok || n > CONTROL_MAX_SATELLITES)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!get_checked_string(r, m->list[i].name, CONTROL_NAME_MAX, name_ok))
			return false;
		get_bytes(r, m->list[i].ipv4, IPV4_ADDR_LEN);
		get_bytes(r, m->list[i].ipv6, IPV6_ADDR_LEN);
		if (!r->ok)
			return false;
	}
	m->n = n;
	return true;
}

static bool get_service(struct reader *r, struct control_service *sv)
{
	if (!get_checked_string(r, sv->name, CONTROL_NAME_MAX, name_ok))
		return false;
	sv->proto = get_u8(r);
	sv->port = get_u16(r);
	return r->ok && proto_ok(sv->proto) && sv->port != 0;
}

static bool decode_publish(struct reader *r, struct control_publish *m)
{
	size_t n = get_u8(r);

	if (!r->ok || n > CONTROL_MAX_PUBLISH)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!get_service(r, &m->list[i]))
			return false;
	m->n = n;
	return true;
}

static bool decode_publish_state(struct reader *r, struct control_publish_state_msg *m)
{
	if (!get_service(r, &m->service))
		return false;
	m->state = get_u8(r);
	return r->ok && m->state != 0 && m->state <= CONTROL_PUBLISH_STATE_MAX;
}

static bool decode_stream_open(struct reader *r, struct control_stream_open *m)
{
	m->stream_id = get_u64(r);
	get_bytes(r, m->secret, CONTROL_STREAM_SECRET_LEN);
	m->proto = get_u8(r);
	m->port = get_u16(r);
	m->client.family = get_u8(r);
	size_t addr_len = family_addr_len(m->client.family);
	if (!r->ok || !proto_ok(m->proto) || m->port == 0 || addr_len == 0)
		return false;
	get_bytes(r, m->client.addr, addr_len);
	m->client.port = get_u16(r);
	return r->ok && m->client.port != 0;
}

enum control_decode_result control_decode(const uint8_t *buf, size_t len, struct control_message *out)
{
	struct reader r = { .p = buf, .left = len, .ok = buf != NULL };
	uint8_t type;
	bool ok;

	memset(out, 0, sizeof(*out));
	type = get_u8(&r);
	if (!r.ok)
		return CONTROL_DECODE_MALFORMED;
	/* every value 0..255 fits the enum's type; an unknown one is kept for the caller's log */
	out->type = (enum control_msg_type)type;

	switch (type) {
	case CONTROL_MSG_REGISTER:
		ok = decode_register(&r, &out->u.reg);
		break;
	case CONTROL_MSG_REGISTERED:
		ok = decode_registered(&r, &out->u.registered);
		break;
	case CONTROL_MSG_ERROR:
		ok = decode_error(&r, &out->u.error);
		break;
	case CONTROL_MSG_PEER:
		ok = decode_peer(&r, &out->u.peer);
		break;
	case CONTROL_MSG_PEER_REMOVE:
		get_bytes(&r, out->u.remove_key, WIRE_KEY_LEN);
		ok = r.ok;
		break;
	case CONTROL_MSG_ENDPOINTS:
		ok = get_endpoints(&r, out->u.endpoints.list, &out->u.endpoints.n);
		break;
	case CONTROL_MSG_RELAY_INFO:
		ok = decode_relay_info(&r, &out->u.relay_info);
		break;
	case CONTROL_MSG_RELAY:
		ok = decode_relay(&r, &out->u.relay);
		break;
	case CONTROL_MSG_DNS:
		ok = get_checked_string(&r, out->u.dns.domain, CONTROL_DOMAIN_MAX, domain_ok);
		break;
	case CONTROL_MSG_ROUTES:
		ok = get_routes(&r, &out->u.routes);
		break;
	case CONTROL_MSG_PEER_ROUTES:
		get_bytes(&r, out->u.peer_routes.node_key, WIRE_KEY_LEN);
		ok = r.ok && get_routes(&r, &out->u.peer_routes.routes);
		break;
	case CONTROL_MSG_FILTER:
		ok = decode_filter(&r, &out->u.filter);
		break;
	case CONTROL_MSG_SATELLITES:
		ok = decode_satellites(&r, &out->u.satellites);
		break;
	case CONTROL_MSG_PEER_SATELLITES:
		ok = decode_peer_satellites(&r, &out->u.peer_satellites);
		break;
	case CONTROL_MSG_PUBLISH:
		ok = decode_publish(&r, &out->u.publish);
		break;
	case CONTROL_MSG_PUBLISH_STATE:
		ok = decode_publish_state(&r, &out->u.publish_state);
		break;
	case CONTROL_MSG_STREAM_OPEN:
		ok = decode_stream_open(&r, &out->u.stream_open);
		break;
	case CONTROL_MSG_STREAM_REFUSE:
		out->u.stream_refuse = get_u64(&r);
		ok = r.ok;
		break;
	case CONTROL_MSG_NETMAP_END:
	case CONTROL_MSG_KEEPALIVE:
		ok = true;
		break;
	default:
		return CONTROL_DECODE_UNKNOWN;
	}
	/* a known message is exactly its fields: a trailing byte means the peer and we disagree */
	if (!ok || !r.ok || r.left != 0) {
		/* half a register may hold part of a join secret; the type stays for the log */
		sodium_memzero(out, sizeof(*out));
		out->type = (enum control_msg_type)type;
		return CONTROL_DECODE_MALFORMED;
	}
	return CONTROL_DECODE_OK;
}

/* ---------------------------------------------------------------- records */

bool control_record_append(uint8_t *plain, size_t cap, size_t *used, const struct control_message *m)
{
	size_t room, len;

	if (!plain || *used > cap || cap - *used <= CONTROL_RECORD_HEADER_LEN)
		return false;
	room = cap - *used - CONTROL_RECORD_HEADER_LEN;
	if (room > UINT16_MAX)
		room = UINT16_MAX; /* a longer message could not say its length */
	len = control_encode(m, plain + *used + CONTROL_RECORD_HEADER_LEN, room);
	if (len == 0)
		return false;
	plain[*used] = (uint8_t)(len >> 8);
	plain[*used + 1] = (uint8_t)len;
	*used += CONTROL_RECORD_HEADER_LEN + len;
	return true;
}

int control_record_next(const uint8_t *plain, size_t len, size_t *off, const uint8_t **msg, size_t *msg_len)
{
	size_t at = *off, rec_len;

	if (at == len && at > 0)
		return 0;
	/* an empty frame says nothing a sender would seal: only a broken peer makes one */
	if (!plain || at > len || len - at < CONTROL_RECORD_HEADER_LEN)
		return -1;
	rec_len = (size_t)plain[at] << 8 | plain[at + 1];
	if (rec_len == 0 || rec_len > len - at - CONTROL_RECORD_HEADER_LEN)
		return -1;
	*msg = plain + at + CONTROL_RECORD_HEADER_LEN;
	*msg_len = rec_len;
	*off = at + CONTROL_RECORD_HEADER_LEN + rec_len;
	return 1;
}
