/* Fuzz target: meshcoord's YAML config parser (explicit length, no NUL terminator). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coordconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coord_config cfg;
	char err[512];

	err[0] = 'x';
	if (coordconf_parse(&cfg, "fuzz.yaml", (const char *)data, size, err, sizeof(err))) {
		/* An accepted config names where nodes reach it and has an absolute state dir. */
		if (cfg.public_host[0] == '\0' || cfg.public_port == 0 || cfg.state_dir[0] != '/')
			abort();
	} else if (err[0] == '\0' || !memchr(err, '\0', sizeof(err))) {
		abort(); /* every refusal explains itself */
	}
	return 0;
}
