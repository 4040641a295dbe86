/* Fuzz target: the join key parser, on arbitrary bytes with their exact length (what a
 * user pastes or a join_key_file holds). Whatever it accepts must format again and read
 * back as the same key; whatever it refuses must say why and leave nothing behind. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/joinkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct joinkey k, again;
	char err[256], out[JOINKEY_MAX_LEN + 1];

	err[0] = 'x';
	if (!joinkey_parse((const char *)data, size, &k, err, sizeof(err))) {
		if (err[0] == '\0' || !memchr(err, '\0', sizeof(err)))
			abort();
		if (!sodium_is_zero((const unsigned char *)&k, sizeof(k)))
			abort();
		return 0;
	}
	if (k.port == 0 || k.host[0] == '\0' || !memchr(k.host, '\0', sizeof(k.host)))
		abort();
	if (!joinkey_format(&k, out, sizeof(out)) || strlen(out) > JOINKEY_MAX_LEN)
		abort();
	if (!joinkey_parse(out, strlen(out), &again, err, sizeof(err)))
		abort();
	if (memcmp(k.coord_public, again.coord_public, sizeof(k.coord_public)) != 0 ||
	    memcmp(k.secret, again.secret, sizeof(k.secret)) != 0 || strcmp(k.host, again.host) != 0 ||
	    k.port != again.port)
		abort();
	joinkey_clear(&k);
	joinkey_clear(&again);
	return 0;
}
