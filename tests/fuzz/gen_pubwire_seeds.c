/* Writes the fuzz_pubwire seeds into the directory named by argv[1]: frames sealed by a node
 * under the fuzz target's fixed secret (32 x 0x07), as a coordinator would read them.
 *   make tests/fuzz/gen_pubwire_seeds && tests/fuzz/gen_pubwire_seeds ../tests/fuzz/corpus/fuzz_pubwire */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/pubwire.h"

static void put(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
		perror(path);
}

int main(int argc, char **argv)
{
	uint8_t secret[CONTROL_STREAM_SECRET_LEN], out[4 * PUBWIRE_MAX_SEALED];
	struct control_channel ch;
	size_t len = 0, n;
	uint8_t pre[PUBWIRE_PREAMBLE_FRAME_LEN];

	if (argc != 2 || sodium_init() < 0)
		return 1;
	memset(secret, 0x07, sizeof(secret));
	pubwire_preamble_write(0x0102030405060708u, pre);
	put(argv[1], "preamble-body", pre + CONTROL_FRAME_HEADER_LEN, PUBWIRE_PREAMBLE_LEN);
	put(argv[1], "frame-attach", (const uint8_t[]){ PUBWIRE_ATTACH }, 1);
	put(argv[1], "frame-data", (const uint8_t[]){ PUBWIRE_DATA, 'h', 'i' }, 3);
	put(argv[1], "frame-eof", (const uint8_t[]){ PUBWIRE_EOF }, 1);
	pubwire_channel_init(&ch, secret, true);
	pubwire_seal(&ch, PUBWIRE_ATTACH, NULL, 0, out, sizeof(out), &n);
	len += n;
	put(argv[1], "stream-attach", out, len);
	pubwire_seal(&ch, PUBWIRE_DATA, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18, out + len, sizeof(out) - len, &n);
	len += n;
	put(argv[1], "stream-attach-data", out, len);
	pubwire_seal(&ch, PUBWIRE_EOF, NULL, 0, out + len, sizeof(out) - len, &n);
	len += n;
	put(argv[1], "stream-attach-data-eof", out, len);
	pubwire_seal(&ch, PUBWIRE_DATA, (const uint8_t *)"late", 4, out + len, sizeof(out) - len, &n);
	put(argv[1], "stream-data-after-eof", out, len + n);
	return 0;
}
