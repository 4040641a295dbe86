/* Fuzz target: meshcoord's policy file parser (explicit length, no NUL terminator), and the
 * compiler on what it accepts, for three fixed nodes: one tagged, one a subnet router and exit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char tags[2][TAG_MAX + 1] = { "tag:a", "tag:server" };
	static const struct control_route routes[3] = {
		{ .family = 4, .bits = 24, .addr = { 192, 168, 1 } },
		{ .family = 4, .bits = 0 },
		{ .family = 6, .bits = 0 },
	};
	static const struct policy_node nodes[3] = {
		{ .name = "a", .ipv4 = { 100, 64, 0, 1 }, .ipv6 = { 0xfd, [15] = 1 } },
		{ .name = "b", .ipv4 = { 100, 64, 0, 2 }, .ipv6 = { 0xfd, [15] = 2 }, .tags = tags, .n_tags = 2 },
		{ .name = "home", .ipv4 = { 100, 64, 1, 3 }, .ipv6 = { 0xfd, [15] = 3 }, .routes = routes,
		  .n_routes = 3 },
	};
	struct policy p;
	char err[512];

	err[0] = '\0';
	if (!policy_parse(&p, "fuzz.yaml", (const char *)data, size, err, sizeof(err))) {
		/* every refusal explains itself, with a position */
		if (strncmp(err, "fuzz.yaml", 9) != 0 || !memchr(err, '\0', sizeof(err)))
			abort();
		return 0;
	}
	for (size_t i = 0; i < 3; i++) {
		struct filter_rule *rules;
		size_t n;
		if (!policy_compile(&p, nodes, 3, i, &rules, &n, err, sizeof(err)))
			continue; /* over the limit: refused with a message */
		if (n > FILTER_MAX_RULES)
			abort();
		for (size_t k = 0; k < n; k++)
			if (!filter_rule_valid(&rules[k]))
				abort(); /* the encoder would refuse it: a node could never get its set */
		free(rules);
	}
	policy_free(&p);
	return 0;
}
