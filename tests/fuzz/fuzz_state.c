/* Fuzz target: the node's saved coordinator state (src/meshd/state.c). The file is meshd's
 * own, but a damaged disk or a hand edit must give an error, never a crash; and whatever
 * parses must survive a save and load unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node_state st;
	char err[256];

	err[0] = 'x';
	if (!state_parse(&st, (const char *)data, size, err, sizeof(err))) {
		if (err[0] == '\0' || !memchr(err, '\0', sizeof(err)) || st.peers != NULL)
			abort();
		return 0;
	}
	if (st.n_peers > st.peers_cap || (st.n_peers > 0 && !st.peers))
		abort();
	state_free(&st);
	return 0;
}
