/* auto_approve_routes in meshcoord's config: a list of {prefix, nodes} rules. An advertised
 * route inside a rule's prefix, from a node the rule names ("*": any), is approved without an
 * administrator (core/routes.h says how a route is matched). */
#include <string.h>

#include "coord/coordconf.h"
#include "core/routes.h"

enum rule_key { RULE_PREFIX, RULE_NODES, RULE_N };
static const char *const rule_keys[RULE_N] = { [RULE_PREFIX] = "prefix", [RULE_NODES] = "nodes" };

static bool add_node(struct yamlread *r, const char *key, void *ctx)
{
	struct route_auto_rule *rule = ctx;
	char q[YAMLREAD_QUOTE_BUF];
	const char *v = yamlread_value(r);

	if (rule->n_nodes == ROUTE_AUTO_NODES_MAX) {
		yamlread_fail(r, r->ev.start_mark, "'%s': at most %d names per rule", key, ROUTE_AUTO_NODES_MAX);
		return false;
	}
	if (strlen(v) != yamlread_len(r) || (strcmp(v, "*") != 0 && !control_name_valid(v))) {
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not a node name or '*'", key,
			      yamlread_quote(v, yamlread_len(r), q));
		return false;
	}
	strcpy(rule->nodes[rule->n_nodes++], v);
	return true;
}

static bool parse_rule(struct yamlread *r, struct route_auto_rule *rule, yaml_mark_t start)
{
	size_t seen[RULE_N] = { 0 }, idx;
	char q[YAMLREAD_QUOTE_BUF];
	bool done;

	memset(rule, 0, sizeof(*rule));
	for (;;) {
		if (!yamlread_key(r, rule_keys, RULE_N, seen, "auto_approve_routes ", &idx, &done))
			return false;
		if (done)
			break;
		if (idx == RULE_PREFIX) {
			if (!yamlread_scalar(r, rule_keys[idx]))
				return false;
			if (!route_parse(yamlread_value(r), &rule->prefix)) {
				yamlread_fail(r, r->ev.start_mark,
					      "'prefix': '%s' is not a network with its length and no host bits (e.g. 192.168.0.0/16, 0.0.0.0/0 for exits)",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
		} else if (!yamlread_list(r, rule_keys[idx], "name", "names", add_node, rule)) {
			return false;
		}
	}
	if (!seen[RULE_PREFIX] || !seen[RULE_NODES]) {
		yamlread_fail(r, start, "each auto_approve_routes rule needs 'prefix' and 'nodes' (e.g. {prefix: 192.168.0.0/16, nodes: ['*']})");
		return false;
	}
	return true;
}

bool coordconf_parse_auto_approve(struct yamlread *r, struct coord_config *cfg)
{
	bool has_items;
	int item;

	cfg->n_auto_approve = 0;
	if (!yamlread_mapping_list_begin(r, "auto_approve_routes", "rules", &has_items))
		return false;
	if (!has_items)
		return true;
	while ((item = yamlread_mapping_list_next(
			r, "each auto_approve_routes rule must be a mapping (prefix: ..., nodes: [...])")) > 0) {
		if (cfg->n_auto_approve == COORDCONF_MAX_AUTO_APPROVE) {
			yamlread_fail(r, r->ev.start_mark, "too many auto_approve_routes rules (at most %d)",
				      COORDCONF_MAX_AUTO_APPROVE);
			return false;
		}
		if (!parse_rule(r, &cfg->auto_approve[cfg->n_auto_approve], r->ev.start_mark))
			return false;
		cfg->n_auto_approve++;
	}
	return item == 0;
}
