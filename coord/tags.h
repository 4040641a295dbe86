/* Node tags: labels an administrator gives nodes in the registry (meshcoord nodes tag), which
 * the policy file names as "tag:NAME" wherever it names a node. Shared by the registry
 * (db_tags.c), the admin command and the policy parser, so one syntax holds everywhere. */
#ifndef MESHCOORD_TAGS_H
#define MESHCOORD_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum {
	TAG_PREFIX_LEN = 4,                 /* "tag:" */
	TAG_NAME_MAX = 63,                  /* a DNS label: tags may become names one day */
	TAG_MAX = TAG_PREFIX_LEN + TAG_NAME_MAX,
	/* Per node: a role or two is the use; bounds the registry rows and the compiler's
	 * per-node work (every tag is compared with every tag the policy names). */
	TAGS_PER_NODE_MAX = 16,
};

/* "tag:" then 1 to TAG_NAME_MAX of [a-z0-9-]; s need not be NUL-terminated. */
static inline bool tag_valid(const char *s, size_t len)
{
	if (len <= TAG_PREFIX_LEN || len > TAG_MAX || memcmp(s, "tag:", TAG_PREFIX_LEN) != 0)
		return false;
	for (size_t i = TAG_PREFIX_LEN; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

#endif
