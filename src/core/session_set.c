/* Session rotation (session_set.h has the table). */
#include "session_set.h"

#include <sodium.h>

/* Moves *from into *to (which must be clear) and wipes *from: keys and replay ring change owner. */
static void session_move(struct session *to, struct session *from)
{
	*to = *from;
	sodium_memzero(from, sizeof(*from));
}

void session_set_install_initiator(struct session_set *ss, struct session *s)
{
	session_clear(&ss->previous);
	if (ss->next.valid) {
		session_move(&ss->previous, &ss->next);
		session_clear(&ss->current);
	} else {
		session_move(&ss->previous, &ss->current);
	}
	session_move(&ss->current, s);
}

void session_set_install_responder(struct session_set *ss, struct session *s)
{
	session_clear(&ss->next);
	session_clear(&ss->previous);
	session_move(&ss->next, s);
}

void session_set_confirm_next(struct session_set *ss)
{
	session_clear(&ss->previous);
	session_move(&ss->previous, &ss->current);
	session_move(&ss->current, &ss->next);
}

struct session *session_set_by_index(struct session_set *ss, uint32_t index)
{
	struct session *order[] = { &ss->current, &ss->previous, &ss->next };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (order[i]->valid && order[i]->local_index == index)
			return order[i];
	return NULL;
}

void session_set_clear(struct session_set *ss)
{
	session_clear(&ss->next);
	session_clear(&ss->current);
	session_clear(&ss->previous);
}
