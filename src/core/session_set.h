/* The three sessions a peer holds at once, and how a new one rotates in (WireGuard's
 * keypairs: next, current, previous):
 *
 *   next      made by us as responder; not used to send until the initiator's first data
 *             on it confirms the initiator has it too
 *   current   the one we send with
 *   previous  still accepted for packets in flight when the keys changed
 *
 *   event                        next        current       previous
 *   we initiated, done           (moved)     new           next if it held one, else current
 *   we answered an initiation    new         (kept)        (dropped, to make room)
 *   data arrived on next         empty       next          current
 *
 * When our initiation crossed the peer's, the one we answered (next) becomes previous, so the
 * peer's packets on it still count, and each side then sends on the session it initiated and
 * so keeps rekeying it on time. A session owns its keys and replay ring: a move wipes the
 * source, a dropped session is cleared.
 * tests/unit/test_session_set.c walks this table.
 */
#ifndef MESHD_SESSION_SET_H
#define MESHD_SESSION_SET_H

#include <stdint.h>

#include "session.h"

struct session_set {
	struct session next, current, previous;
};

/* A handshake we initiated completed with *s (moved in; *s is zeroed). An unconfirmed next
 * (our answer to a crossing initiation) becomes previous, so late packets on it still count. */
void session_set_install_initiator(struct session_set *ss, struct session *s);
/* We answered an initiation with *s (moved in as next; the previous session is dropped). */
void session_set_install_responder(struct session_set *ss, struct session *s);
/* The initiator's first data arrived on next: it becomes current. */
void session_set_confirm_next(struct session_set *ss);
/* The valid session whose local index is `index` (current, previous, next in that order), or NULL. */
struct session *session_set_by_index(struct session_set *ss, uint32_t index);
/* Wipes all three. */
void session_set_clear(struct session_set *ss);

#endif
