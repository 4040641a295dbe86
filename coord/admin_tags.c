/* meshcoord nodes tag|untag NAME TAG...: the tags the policy file names as "tag:NAME"
 * (meshcoord-policy(5)). The running server notices the commit (db_changed), compiles the
 * policy again and sends the nodes whose rules changed their new set within a tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/admin.h"
#include "coord/tags.h"

int admin_tags_change(struct db *db, const char *const *pos, size_t n_pos, bool add)
{
	const char *verb = add ? "tag" : "untag";
	size_t changed;

	if (n_pos < 3) {
		fprintf(stderr, "meshcoord nodes %s: needs a node NAME and at least one tag:NAME\n", verb);
		return ADMIN_EXIT_USAGE;
	}
	for (size_t i = 2; i < n_pos; i++)
		if (!tag_valid(pos[i], strlen(pos[i]))) {
			fprintf(stderr,
				"meshcoord nodes %s: '%.80s' is not a tag: 'tag:' then 1 to %d of a-z, 0-9, '-'\n", verb,
				pos[i], TAG_NAME_MAX);
			return ADMIN_EXIT_USAGE;
		}
	switch (db_node_tags_change(db, pos[1], pos + 2, n_pos - 2, add, &changed)) {
	case DB_TAG_OK:
		break;
	case DB_TAG_BAD: /* checked above */
	case DB_TAG_ERROR:
		fprintf(stderr, "meshcoord nodes %s: could not change the tags of '%s' (see the error above)\n", verb,
			pos[1]);
		return EXIT_FAILURE;
	case DB_TAG_NO_NODE:
		fprintf(stderr, "meshcoord nodes %s: no node named '%s' (see 'meshcoord nodes list')\n", verb, pos[1]);
		return EXIT_FAILURE;
	case DB_TAG_TOO_MANY:
		fprintf(stderr, "meshcoord nodes tag: '%s' would have more than %d tags; nothing changed\n", pos[1],
			TAGS_PER_NODE_MAX);
		return EXIT_FAILURE;
	}
	fprintf(stderr, "%s: %zu tag(s) %s%s\n", pos[1], changed, add ? "added" : "removed",
		changed < n_pos - 2 ? (add ? " (the others it had already)" : " (the others it did not have)") : "");
	return EXIT_SUCCESS;
}

void admin_tags_text(struct db *db, int64_t node_id, char *out, size_t cap)
{
	struct db_tags t;
	size_t off = 0;

	out[0] = '\0';
	if (!db_node_tags(db, node_id, &t))
		t.n = 0;
	for (size_t i = 0; i < t.n; i++) {
		int w = snprintf(out + off, cap - off, "%s%s", i ? "," : "", t.v[i]);
		if (w < 0 || (size_t)w >= cap - off)
			break;
		off += (size_t)w;
	}
	if (off == 0)
		snprintf(out, cap, "-");
}
