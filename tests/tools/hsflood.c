/* hsflood: a handshake flood for tests/netns/handshake-flood.sh. Sends WireGuard handshake
 * initiations that a meshd must do its Diffie-Hellman on before it can refuse them: each is
 * well formed with a valid mac1 for the target's public key (anyone who knows the key can make
 * one), made by an identity the target does not know, and the set is replayed over and over
 * (so the flood is also the "replayed captured initiation" case). They come from --sources
 * sockets (different ports) so no per-connection shortcut applies.
 *
 * Usage: hsflood --to IPv4:PORT --key BASE64_PUBKEY [--seconds S] [--sources N] [--distinct M]
 * Bounded: at most HSFLOOD_MAX_SECONDS and HSFLOOD_MAX_PACKETS; only documentation
 * (TEST-NET) and loopback destinations. Prints: sent=N seconds=S rate=R/s */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/handshake.h"
#include "core/keys.h"

enum {
	HSFLOOD_MAX_SECONDS = 60,
	HSFLOOD_MAX_PACKETS = 20 * 1000 * 1000, /* far above what 60 s on a lab veth can carry */
	HSFLOOD_MAX_SOURCES = 64,
	HSFLOOD_MAX_DISTINCT = 1024,
	HSFLOOD_BURST = 64, /* datagrams per socket per turn */
};

static bool documentation_address(uint32_t a)
{
	return (a & 0xffffff00u) == 0xc0000200u || (a & 0xffffff00u) == 0xc6336400u ||
	       (a & 0xffffff00u) == 0xcb007100u || (a & 0xff000000u) == 0x7f000000u;
}

static int usage(void)
{
	fprintf(stderr, "usage: hsflood --to IPv4:PORT --key BASE64_PUBKEY [--seconds 1..%d] [--sources 1..%d] "
			"[--distinct 1..%d]\n",
		HSFLOOD_MAX_SECONDS, HSFLOOD_MAX_SOURCES, HSFLOOD_MAX_DISTINCT);
	return 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint8_t target[WIRE_KEY_LEN];
	bool have_to = false, have_key = false;
	long seconds = 10, sources = 8, distinct = 256;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *opt = argv[i], *val = argv[i + 1];
		char *end;
		if (strcmp(opt, "--to") == 0) {
			char host[64];
			const char *colon = strrchr(val, ':');
			long port = colon ? strtol(colon + 1, &end, 10) : 0;
			if (!colon || (size_t)(colon - val) >= sizeof(host) || *end || port < 1 || port > 65535)
				return usage();
			memcpy(host, val, (size_t)(colon - val));
			host[colon - val] = '\0';
			if (inet_pton(AF_INET, host, &to.sin_addr) != 1 || !documentation_address(ntohl(to.sin_addr.s_addr))) {
				fprintf(stderr, "hsflood: %s is not an IPv4 documentation or loopback address\n", host);
				return 2;
			}
			to.sin_port = htons((uint16_t)port);
			have_to = true;
		} else if (strcmp(opt, "--key") == 0) {
			have_key = key_from_base64(target, val, strlen(val));
		} else {
			long v = strtol(val, &end, 10);
			if (*end)
				return usage();
			if (strcmp(opt, "--seconds") == 0 && v >= 1 && v <= HSFLOOD_MAX_SECONDS)
				seconds = v;
			else if (strcmp(opt, "--sources") == 0 && v >= 1 && v <= HSFLOOD_MAX_SOURCES)
				sources = v;
			else if (strcmp(opt, "--distinct") == 0 && v >= 1 && v <= HSFLOOD_MAX_DISTINCT)
				distinct = v;
			else
				return usage();
		}
	}
	if (!have_to || !have_key || argc % 2 == 0)
		return usage();
	if (sodium_init() < 0)
		return 1;

	/* The messages: each from a fresh identity nobody configured. */
	static uint8_t msgs[HSFLOOD_MAX_DISTINCT][WIRE_INITIATION_LEN];
	for (long m = 0; m < distinct; m++) {
		uint8_t priv[WIRE_KEY_LEN], ts[WIRE_TIMESTAMP_LEN];
		struct handshake_identity id;
		struct handshake hs;
		key_generate_private(priv);
		if (!handshake_identity_init(&id, priv))
			return 1;
		handshake_tai64n(ts, clock_realtime());
		if (!handshake_create_initiation(&hs, &id, target, randombytes_random(), ts, NULL, msgs[m])) {
			fprintf(stderr, "hsflood: cannot make an initiation for that key\n");
			return 1;
		}
		handshake_clear(&hs);
		handshake_identity_clear(&id);
		sodium_memzero(priv, sizeof(priv));
	}

	int fds[HSFLOOD_MAX_SOURCES];
	for (long s = 0; s < sources; s++) {
		fds[s] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fds[s] < 0 || connect(fds[s], (struct sockaddr *)&to, sizeof(to)) != 0) {
			perror("hsflood: socket");
			return 1;
		}
	}
	uint64_t start = clock_monotonic_ms(), end = start + (uint64_t)seconds * 1000u;
	unsigned long sent = 0;
	long next = 0;
	while (clock_monotonic_ms() < end && sent < HSFLOOD_MAX_PACKETS) {
		for (long s = 0; s < sources; s++) {
			for (int b = 0; b < HSFLOOD_BURST; b++) {
				if (send(fds[s], msgs[next], WIRE_INITIATION_LEN, 0) == WIRE_INITIATION_LEN)
					sent++;
				else if (errno == EAGAIN || errno == ENOBUFS)
					break; /* the socket buffer is full: next socket */
				next = (next + 1) % distinct;
			}
		}
	}
	double secs = (double)(clock_monotonic_ms() - start) / 1000.0;
	printf("sent=%lu seconds=%.1f rate=%.0f/s\n", sent, secs, secs > 0 ? (double)sent / secs : 0);
	return 0;
}
