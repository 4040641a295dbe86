/* The admin subcommands' command line (admin_args.h). */
#include "coord/admin_args.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *long_name;
	char short_name; /* 0: none */
	bool takes_value;
} options[ADMIN_OPT_COUNT] = {
	[ADMIN_OPT_HELP] = { "help", 'h', false },
	[ADMIN_OPT_CONFIG] = { "config", 'c', true },
	[ADMIN_OPT_REUSABLE] = { "reusable", 0, false },
	[ADMIN_OPT_EXPIRES] = { "expires", 0, true },
	[ADMIN_OPT_MAX_USES] = { "max-uses", 0, true },
	[ADMIN_OPT_PER_MINUTE] = { "per-minute", 0, true },
	[ADMIN_OPT_JSON] = { "json", 0, false },
	[ADMIN_OPT_PROTOCOL] = { "protocol", 0, true },
	[ADMIN_OPT_VIA] = { "via", 0, true },
	[ADMIN_OPT_PUBLIC_KEY] = { "public-key", 0, true },
	[ADMIN_OPT_ENDPOINT] = { "endpoint", 0, true },
	[ADMIN_OPT_TAG] = { "tag", 0, true },
	[ADMIN_OPT_QR] = { "qr", 0, false },
};

/* The option arg names (and its inline value), or -1. */
static int option_find(const char *arg, unsigned int allowed, const char **value)
{
	for (int o = 0; o < ADMIN_OPT_COUNT; o++) {
		size_t len = strlen(options[o].long_name);
		if (!(allowed & ADMIN_OPT(o)))
			continue;
		if (arg[1] == '-' && strncmp(arg + 2, options[o].long_name, len) == 0 &&
		    (arg[2 + len] == '\0' || (arg[2 + len] == '=' && options[o].takes_value))) {
			*value = arg[2 + len] == '=' ? arg + 3 + len : NULL;
			return o;
		}
		if (arg[1] != '-' && options[o].short_name && arg[1] == options[o].short_name &&
		    (arg[2] == '\0' || options[o].takes_value)) {
			*value = arg[2] != '\0' ? arg + 2 : NULL;
			return o;
		}
	}
	return -1;
}

static bool tag_append(struct admin_args *a, const char *tag, char *err, size_t err_len)
{
	size_t used = strlen(a->tags), len = strlen(tag);
	if (used + (used ? 1 : 0) + len >= sizeof(a->tags)) {
		snprintf(err, err_len, "too many tags (at most %d)", TAGS_PER_NODE_MAX);
		return false;
	}
	snprintf(a->tags + used, sizeof(a->tags) - used, "%s%s", used ? " " : "", tag);
	return true;
}

bool admin_args_parse(int argc, char **argv, unsigned int allowed, struct admin_args *a, char *err, size_t err_len)
{
	bool options_done = false;

	memset(a, 0, sizeof(*a));
	allowed |= ADMIN_OPT(ADMIN_OPT_HELP) | ADMIN_OPT(ADMIN_OPT_CONFIG);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (a->n_positional == ADMIN_POSITIONAL_MAX) {
				snprintf(err, err_len, "too many arguments ('%s')", arg);
				return false;
			}
			a->positional[a->n_positional++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		int opt = option_find(arg, allowed, &value);
		if (opt < 0) {
			snprintf(err, err_len, "unknown option '%s'", arg);
			return false;
		}
		if (options[opt].takes_value && !value) {
			if (i + 1 == argc) {
				snprintf(err, err_len, "option '%s' needs a value", arg);
				return false;
			}
			value = argv[++i];
		}
		switch ((enum admin_option)opt) {
		case ADMIN_OPT_HELP: a->help = true; break;
		case ADMIN_OPT_CONFIG: a->config = value; break;
		case ADMIN_OPT_REUSABLE: a->reusable = true; break;
		case ADMIN_OPT_EXPIRES:
			if (a->expires) {
				snprintf(err, err_len, "--expires given twice");
				return false;
			}
			a->expires = value;
			break;
		case ADMIN_OPT_MAX_USES: a->max_uses = value; break;
		case ADMIN_OPT_PER_MINUTE: a->per_minute = value; break;
		case ADMIN_OPT_JSON: a->json = true; break;
		case ADMIN_OPT_PROTOCOL: a->protocol = value; break;
		case ADMIN_OPT_VIA: a->via = value; break;
		case ADMIN_OPT_PUBLIC_KEY: a->public_key = value; break;
		case ADMIN_OPT_ENDPOINT: a->endpoint = value; break;
		case ADMIN_OPT_TAG:
			if (!tag_append(a, value, err, err_len))
				return false;
			break;
		case ADMIN_OPT_QR: a->qr = true; break;
		case ADMIN_OPT_COUNT: break;
		}
	}
	return true;
}
