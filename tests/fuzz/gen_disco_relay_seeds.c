/* Writes the seed corpora of fuzz_disco and fuzz_relay: real messages of every kind under the
 * targets' fixed keys (disco: sender private key 32 x 0x0a, receiver 32 x 0x0b, a stranger
 * 32 x 0x0c; relay: token 32 x 0x0d), and a few invalid ones. Run from the top of the tree:
 *   make tests/fuzz/gen_disco_relay_seeds &&
 *   tests/fuzz/gen_disco_relay_seeds tests/fuzz/corpus/fuzz_disco tests/fuzz/corpus/fuzz_relay
 * Disco nonces are random, so the bytes differ on every run; the messages do not. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/disco.h"
#include "core/keys.h"
#include "core/relay.h"
#include "seedfile.h"

enum {
	SEED_DISCO_SENDER_BYTE = 0x0a,   /* FUZZ_DISCO_SENDER_BYTE in fuzz_disco.c */
	SEED_DISCO_RECEIVER_BYTE = 0x0b, /* FUZZ_DISCO_RECEIVER_BYTE */
	SEED_DISCO_OTHER_BYTE = 0x0c,    /* FUZZ_DISCO_OTHER_BYTE */
	SEED_RELAY_TOKEN_BYTE = 0x0d,    /* FUZZ_RELAY_TOKEN_BYTE in fuzz_relay.c */
};

static void die(const char *what)
{
	fprintf(stderr, "gen_disco_relay_seeds: %s\n", what);
	exit(1);
}

/* ---------------------------------------------------------------- disco */

static void endpoint(struct control_endpoint *e, uint8_t family, uint8_t host, uint16_t port)
{
	static const uint8_t v4[3] = { 203, 0, 113 }, v6[4] = { 0x20, 0x01, 0x0d, 0xb8 };

	memset(e, 0, sizeof(*e));
	e->family = family;
	if (family == 4) {
		memcpy(e->addr, v4, sizeof(v4));
		e->addr[3] = host;
	} else {
		memcpy(e->addr, v6, sizeof(v6));
		e->addr[15] = host;
	}
	e->port = port;
}

static void message(struct disco_message *m, enum disco_kind kind, size_t n)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	for (size_t i = 0; i < DISCO_TXID_LEN; i++)
		m->txid[i] = (uint8_t)(0x30 + i);
	if (kind == DISCO_PONG)
		endpoint(&m->observed, n == 6 ? 6 : 4, 9, 41641);
	if (kind == DISCO_CALL_ME_MAYBE) {
		for (size_t i = 0; i < n; i++)
			endpoint(&m->endpoints[i], i % 2 ? 6 : 4, (uint8_t)(1 + i), (uint16_t)(51820 + i));
		m->n_endpoints = n;
	}
}

struct disco_keys {
	uint8_t sender_public[WIRE_KEY_LEN];
	uint8_t shared[crypto_box_BEFORENMBYTES]; /* sender <-> receiver */
	uint8_t elsewhere[crypto_box_BEFORENMBYTES]; /* sender <-> other: not for the receiver */
};

static void disco_keys(struct disco_keys *k)
{
	uint8_t sender[WIRE_KEY_LEN], receiver[WIRE_KEY_LEN], receiver_public[WIRE_KEY_LEN], other[WIRE_KEY_LEN];
	uint8_t other_public[WIRE_KEY_LEN];

	memset(sender, SEED_DISCO_SENDER_BYTE, sizeof(sender));
	memset(receiver, SEED_DISCO_RECEIVER_BYTE, sizeof(receiver));
	memset(other, SEED_DISCO_OTHER_BYTE, sizeof(other));
	if (!key_public_from_private(k->sender_public, sender) ||
	    !key_public_from_private(receiver_public, receiver) || !key_public_from_private(other_public, other) ||
	    !disco_shared_key(k->shared, sender, receiver_public) || !disco_shared_key(k->elsewhere, sender, other_public))
		die("disco keys");
}

/* A plaintext framed and sealed as disco_seal would, for plaintexts it would not make. */
static size_t seal_plain(const struct disco_keys *k, const uint8_t *plain, size_t plain_len, uint8_t *out)
{
	wire_put_header(out, MSG_DISCO);
	memcpy(out + DISCO_OFF_SENDER, k->sender_public, WIRE_KEY_LEN);
	randombytes_buf(out + DISCO_OFF_NONCE, crypto_box_NONCEBYTES);
	/* as disco_seal: XChaCha20-Poly1305, header and sender key as associated data */
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + DISCO_OFF_BOX, NULL, plain, plain_len, out, DISCO_OFF_NONCE,
						       NULL, out + DISCO_OFF_NONCE, k->shared) != 0)
		die("seal");
	return DISCO_HEADER_LEN + crypto_box_MACBYTES + plain_len;
}

static void write_disco(const char *dir)
{
	static const struct {
		const char *name;
		enum disco_kind kind;
		size_t n;
	} list[] = {
		{ "ping", DISCO_PING, 0 },
		{ "punch", DISCO_PUNCH, 0 },
		{ "pong-v4", DISCO_PONG, 4 },
		{ "pong-v6", DISCO_PONG, 6 },
		{ "call-me-maybe-0", DISCO_CALL_ME_MAYBE, 0 },
		{ "call-me-maybe-1", DISCO_CALL_ME_MAYBE, 1 },
		{ "call-me-maybe-2", DISCO_CALL_ME_MAYBE, 2 },
		{ "call-me-maybe-16", DISCO_CALL_ME_MAYBE, CONTROL_MAX_ENDPOINTS },
	};
	struct disco_keys k;
	struct disco_message m;
	uint8_t buf[DISCO_MAX_LEN + 64], plain[DISCO_PLAIN_MAX + DISCO_ENDPOINT_LEN];
	size_t len;

	disco_keys(&k);
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		message(&m, list[i].kind, list[i].n);
		len = disco_seal(&m, k.sender_public, k.shared, buf, sizeof(buf));
		if (len == 0)
			die("a disco sample does not seal");
		seedfile_write(dir, list[i].name, buf, len);
	}

	/* broken on the outside */
	message(&m, DISCO_PING, 0);
	len = disco_seal(&m, k.sender_public, k.shared, buf, sizeof(buf));
	seedfile_write(dir, "bad-ping-truncated", buf, len - 1);
	buf[len] = 0;
	seedfile_write(dir, "bad-ping-extra-byte", buf, len + 1);
	buf[len - 5] ^= 0x10;
	seedfile_write(dir, "bad-ping-tampered", buf, len);
	buf[len - 5] ^= 0x10;
	buf[1] = 1; /* the reserved bytes must be zero */
	seedfile_write(dir, "bad-ping-reserved", buf, len);
	message(&m, DISCO_PONG, 4);
	len = disco_seal(&m, k.sender_public, k.elsewhere, buf, sizeof(buf)); /* sealed for someone else */
	seedfile_write(dir, "bad-pong-other-key", buf, len);

	/* well sealed, broken inside (only the parser refuses these) */
	memset(plain, 0, sizeof(plain));
	plain[0] = DISCO_PING;
	plain[1 + DISCO_TXID_LEN + 3] = 1;
	seedfile_write(dir, "bad-ping-padding", buf, seal_plain(&k, plain, DISCO_PLAIN_MIN, buf));

	memset(plain, 0, sizeof(plain));
	plain[0] = DISCO_PONG;
	plain[1 + DISCO_TXID_LEN] = 5; /* family */
	plain[1 + DISCO_TXID_LEN + 18] = 1;
	seedfile_write(dir, "bad-pong-family", buf, seal_plain(&k, plain, DISCO_PLAIN_MIN, buf));
	plain[1 + DISCO_TXID_LEN] = 4;
	plain[1 + DISCO_TXID_LEN + 10] = 1; /* an IPv4 tail byte */
	seedfile_write(dir, "bad-pong-v4-tail", buf, seal_plain(&k, plain, DISCO_PLAIN_MIN, buf));
	plain[1 + DISCO_TXID_LEN + 10] = 0;
	plain[1 + DISCO_TXID_LEN + 18] = 0; /* port 0 */
	seedfile_write(dir, "bad-pong-port-0", buf, seal_plain(&k, plain, DISCO_PLAIN_MIN, buf));

	memset(plain, 0, sizeof(plain));
	plain[0] = 5; /* no such kind */
	seedfile_write(dir, "bad-kind", buf, seal_plain(&k, plain, DISCO_PLAIN_MIN, buf));

	message(&m, DISCO_CALL_ME_MAYBE, CONTROL_MAX_ENDPOINTS);
	len = disco_seal(&m, k.sender_public, k.shared, buf, sizeof(buf));
	{
		struct disco_message back;
		uint8_t receiver[WIRE_KEY_LEN], shared[crypto_box_BEFORENMBYTES];

		memset(receiver, SEED_DISCO_RECEIVER_BYTE, sizeof(receiver));
		if (!disco_shared_key(shared, receiver, k.sender_public) || !disco_open(buf, len, shared, &back))
			die("a disco sample does not open");
		/* the same plaintext with its count raised to 17 */
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, buf + DISCO_OFF_BOX, len - DISCO_HEADER_LEN,
							       buf, DISCO_OFF_NONCE, buf + DISCO_OFF_NONCE, shared) != 0)
			die("open");
	}
	plain[1 + DISCO_TXID_LEN] = CONTROL_MAX_ENDPOINTS + 1;
	seedfile_write(dir, "bad-call-me-maybe-count-17", buf, seal_plain(&k, plain, DISCO_PLAIN_MAX, buf));
	seedfile_write(dir, "empty", NULL, 0);
}

/* ---------------------------------------------------------------- relay */

static void write_relay(const char *dir)
{
	static uint8_t frame[RELAY_MAX_FRAME + 1];
	uint8_t token[RELAY_TOKEN_LEN], other[RELAY_TOKEN_LEN], key[WIRE_KEY_LEN];
	uint8_t bind[RELAY_BIND_LEN], ack[RELAY_BIND_ACK_LEN];
	size_t len;

	memset(token, SEED_RELAY_TOKEN_BYTE, sizeof(token));
	memset(other, SEED_RELAY_TOKEN_BYTE + 1, sizeof(other));
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0x40 + i);

	relay_build_bind(bind, key, 1, token);
	seedfile_write(dir, "bind", bind, sizeof(bind));
	relay_build_bind(bind, key, 1700000000000ULL, token); /* milliseconds of real time */
	seedfile_write(dir, "bind-time", bind, sizeof(bind));
	seedfile_write(dir, "bad-bind-truncated", bind, sizeof(bind) - 1);
	relay_build_bind(bind, key, 1, other);
	seedfile_write(dir, "bad-bind-other-token", bind, sizeof(bind));

	relay_build_bind_ack(ack, 1, token);
	seedfile_write(dir, "bind-ack", ack, sizeof(ack));
	relay_build_bind_ack(ack, UINT64_MAX, token);
	seedfile_write(dir, "bind-ack-max", ack, sizeof(ack));
	relay_build_bind_ack(ack, 1, other);
	seedfile_write(dir, "bad-bind-ack-other-token", ack, sizeof(ack));

	for (size_t i = 0; i < RELAY_MAX_PAYLOAD + 1; i++)
		frame[RELAY_DATA_OFF_PAYLOAD + i] = (uint8_t)(i * 13);
	frame[RELAY_DATA_OFF_PAYLOAD] = 4; /* looks like a data message inside */
	len = relay_wrap_data(frame, key, 1);
	seedfile_write(dir, "data-1", frame, len);
	len = relay_wrap_data(frame, key, 148);
	seedfile_write(dir, "data-148", frame, len);
	len = relay_wrap_data(frame, key, RELAY_MAX_PAYLOAD);
	if (len != RELAY_MAX_FRAME)
		die("relay_wrap_data");
	seedfile_write(dir, "data-max", frame, len);
	seedfile_write(dir, "bad-data-oversize", frame, RELAY_MAX_FRAME + 1);
	seedfile_write(dir, "bad-data-header-only", frame, RELAY_DATA_HEADER_LEN);
	seedfile_write(dir, "empty", NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc != 3 || sodium_init() < 0) {
		fprintf(stderr, "usage: gen_disco_relay_seeds DISCO_DIR RELAY_DIR\n");
		return 2;
	}
	write_disco(argv[1]);
	write_relay(argv[2]);
	return 0;
}
