/* Unit tests for core/dynlib: a table resolved from a real library and usable; nothing
 * written when a symbol or the library is missing, with a message naming what; the
 * function-pointer size check. libsodium's soname comes from configure (the test links it,
 * so loading it again only takes a reference). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "core/dynlib.h"

static void resolves_and_calls(void **state)
{
	(void)state;
	__typeof__(&sodium_version_string) version = NULL;
	__typeof__(&sodium_library_version_major) major = NULL;
	const struct dynlib_symbol symbols[] = {
		DYNLIB_SYMBOL(version, "sodium_version_string"),
		DYNLIB_SYMBOL(major, "sodium_library_version_major"),
	};
	char err[200] = "";
	void *lib = dynlib_open(TEST_SODIUM_SONAME, symbols, 2, err, sizeof(err));

	assert_non_null(lib);
	assert_non_null(version);
	assert_string_equal(version(), sodium_version_string());
	assert_int_equal(major(), sodium_library_version_major());
	dynlib_close(lib);
	dynlib_close(NULL);
}

static void missing_symbol_writes_nothing(void **state)
{
	(void)state;
	__typeof__(&sodium_version_string) version = NULL;
	__typeof__(&sodium_version_string) absent = NULL;
	const struct dynlib_symbol symbols[] = {
		DYNLIB_SYMBOL(version, "sodium_version_string"),
		DYNLIB_SYMBOL(absent, "meshd_no_such_function"),
	};
	char err[200] = "";

	assert_null(dynlib_open(TEST_SODIUM_SONAME, symbols, 2, err, sizeof(err)));
	assert_null(version);
	assert_null(absent);
	assert_non_null(strstr(err, "has no meshd_no_such_function"));
}

static void missing_library(void **state)
{
	(void)state;
	__typeof__(&sodium_version_string) version = NULL;
	const struct dynlib_symbol symbols[] = { DYNLIB_SYMBOL(version, "sodium_version_string") };
	char err[200] = "";

	assert_null(dynlib_open("libmeshd-does-not-exist.so.9", symbols, 1, err, sizeof(err)));
	assert_null(version);
	assert_non_null(strstr(err, "cannot load libmeshd-does-not-exist.so.9"));
}

static void not_a_function_pointer(void **state)
{
	(void)state;
	char small = 0;
	const struct dynlib_symbol symbols[] = { DYNLIB_SYMBOL(small, "sodium_version_string") };
	char err[200] = "";

	assert_null(dynlib_open(TEST_SODIUM_SONAME, symbols, 1, err, sizeof(err)));
	assert_int_equal(small, 0);
	assert_non_null(strstr(err, "not stored in a function pointer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(resolves_and_calls),
		cmocka_unit_test(missing_symbol_writes_nothing),
		cmocka_unit_test(missing_library),
		cmocka_unit_test(not_a_function_pointer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
