/* Access rules on this node: the rule set the coordinator sent (CONTROL_MSG_FILTER, in
 * parts), the connection table of flows this node opened, and the two data-path hooks:
 *   TUN -> peer (tx.c):  acl_note_tx remembers the outgoing flow;
 *   peer -> TUN (rx.c):  acl_allow_rx, after the cryptokey-routing check, decides.
 * Both cost one branch while no policy is in force (acl.active false): allow all. */
#ifndef MESHD_ACL_H
#define MESHD_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conntrack.h"
#include "core/control.h"
#include "core/filter.h"

struct acl {
	bool active;               /* rules apply (else allow all) */
	struct filter_rule *rules; /* n_rules, malloc'd */
	size_t n_rules;
	bool known;                /* a set was put in force (else never told: allow all) */
	bool from_coordinator;     /* false: restored from the state file, not yet confirmed */
	struct conntrack ct;       /* allocated while active */
	/* A set arriving in parts: collected here, applied when the last part is in. */
	struct filter_rule *pending;
	size_t n_pending;
	uint32_t pending_generation;
	uint8_t pending_next, pending_parts;
	bool pending_active;
};

enum acl_part_result {
	ACL_PART_PENDING,  /* more parts to come */
	ACL_PART_APPLIED,  /* the set is complete and in force */
	ACL_PART_REFUSED,  /* out of order or out of memory: the part is dropped */
};

void acl_init(struct acl *a);
void acl_free(struct acl *a);

/* Puts a complete set in force (a copy of rules), e.g. restored from the state file. False
 * if out of memory: then everything stays as it was. */
bool acl_set(struct acl *a, bool active, const struct filter_rule *rules, size_t n, bool from_coordinator);

/* One FILTER part from the coordinator (decoded, so each rule is valid). A part 0 starts a
 * new set and drops any unfinished one; other parts must follow in order within one
 * generation. */
enum acl_part_result acl_receive_part(struct acl *a, const struct control_filter *f);

/* The data path. pkt is a well-formed IP packet (ip_packet_parse passed). */
bool acl_allow_rx_slow(struct acl *a, const uint8_t *pkt, size_t len, uint64_t now_ms);
void acl_note_tx_slow(struct acl *a, const uint8_t *pkt, size_t len, uint64_t now_ms);

static inline bool acl_allow_rx(struct acl *a, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	return !a->active || acl_allow_rx_slow(a, pkt, len, now_ms);
}

static inline void acl_note_tx(struct acl *a, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	if (a->active)
		acl_note_tx_slow(a, pkt, len, now_ms);
}

#endif
