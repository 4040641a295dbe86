/* The relay's source address -> node table: lookups, replacement, removal that keeps probe
 * chains whole (checked against a plain array as the model), and address canonical forms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "coord/addrmap.h"

static struct addrmap_key v4(uint32_t addr, uint16_t port)
{
	struct sockaddr_in in;
	struct addrmap_key k;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(addr);
	in.sin_port = htons(port);
	assert_true(addrmap_key_from(&k, (const struct sockaddr *)&in));
	return k;
}

static void test_put_find_replace_remove(void **state)
{
	struct addrmap m;
	int a, b;
	bool ok;
	(void)state;

	addrmap_init(&m);
	struct addrmap_key k1 = v4(0xc0000214, 40000), k2 = v4(0xc0000214, 40001);
	assert_null(addrmap_find(&m, &k1));
	assert_false(addrmap_remove(&m, &k1, &a));
	assert_null(addrmap_put(&m, &k1, &a, &ok));
	assert_true(ok);
	assert_ptr_equal(addrmap_find(&m, &k1), &a);
	assert_null(addrmap_find(&m, &k2)); /* another port is another address */
	/* The same address bound by another node: the old value is handed back. */
	assert_ptr_equal(addrmap_put(&m, &k1, &b, &ok), &a);
	assert_int_equal(m.count, 1);
	/* Only the current owner's removal counts. */
	assert_false(addrmap_remove(&m, &k1, &a));
	assert_ptr_equal(addrmap_find(&m, &k1), &b);
	assert_true(addrmap_remove(&m, &k1, &b));
	assert_null(addrmap_find(&m, &k1));
	assert_int_equal(m.count, 0);
	addrmap_free(&m);
}

static void test_canonical_forms(void **state)
{
	struct sockaddr_in6 in6;
	struct sockaddr_un_like {
		sa_family_t family;
		char path[20];
	} other = { AF_UNIX, "x" };
	struct addrmap_key k6, k4 = v4(0xc0000214, 5000);
	(void)state;

	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(5000);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.20", &in6.sin6_addr), 1);
	assert_true(addrmap_key_from(&k6, (const struct sockaddr *)&in6));
	assert_memory_equal(k6.b, k4.b, ADDRMAP_KEY_LEN); /* a dual-stack socket's IPv4 */
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::20", &in6.sin6_addr), 1);
	assert_true(addrmap_key_from(&k6, (const struct sockaddr *)&in6));
	assert_memory_not_equal(k6.b, k4.b, ADDRMAP_KEY_LEN);
	assert_false(addrmap_key_from(&k6, (const struct sockaddr *)&other));
}

enum { MODEL_N = 3000, MODEL_OPS = 40000 };

/* Random puts and removes against an array: growth and backward-shift deletion must keep
 * every live entry reachable and every removed one gone. */
static void test_against_model(void **state)
{
	static int values[MODEL_N];
	static void *model[MODEL_N];
	struct addrmap m;
	uint32_t x = 12345;
	(void)state;

	addrmap_init(&m);
	memset(model, 0, sizeof(model));
	for (int op = 0; op < MODEL_OPS; op++) {
		x = x * 1103515245u + 12345u;
		size_t i = (x >> 8) % MODEL_N;
		/* few distinct hosts, many ports: keys that differ in few bytes */
		struct addrmap_key k = v4(0xcb007100u + (uint32_t)(i % 7), (uint16_t)(1000 + i));
		bool ok;
		if ((x >> 4) & 1) {
			void *old = addrmap_put(&m, &k, &values[i], &ok);
			assert_true(ok);
			assert_ptr_equal(old, model[i]);
			model[i] = &values[i];
		} else {
			assert_int_equal(addrmap_remove(&m, &k, &values[i]), model[i] != NULL);
			model[i] = NULL;
		}
		if (op % 1000 == 0 || op == MODEL_OPS - 1) {
			size_t live = 0;
			for (size_t j = 0; j < MODEL_N; j++) {
				struct addrmap_key kj = v4(0xcb007100u + (uint32_t)(j % 7), (uint16_t)(1000 + j));
				assert_ptr_equal(addrmap_find(&m, &kj), model[j]);
				live += model[j] != NULL;
			}
			assert_int_equal(m.count, live);
		}
	}
	addrmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_find_replace_remove),
		cmocka_unit_test(test_canonical_forms),
		cmocka_unit_test(test_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
