/* dlopen with a symbol table (dynlib.h). */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

enum { DYNLIB_MAX_SYMBOLS = 32 /* the largest table (sd-bus) has 16 */ };

void *dynlib_open(const char *soname, const struct dynlib_symbol *symbols, size_t n_symbols, char *err,
		  size_t err_len)
{
	void *found[DYNLIB_MAX_SYMBOLS];
	void *lib;

	if (n_symbols > DYNLIB_MAX_SYMBOLS) {
		snprintf(err, err_len, "%s: %zu functions asked for, at most %d", soname, n_symbols,
			 DYNLIB_MAX_SYMBOLS);
		return NULL;
	}
	lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(err, err_len, "cannot load %s (%s)", soname, dlerror());
		return NULL;
	}
	for (size_t i = 0; i < n_symbols; i++) {
		if (symbols[i].fn_size != sizeof(void *)) {
			snprintf(err, err_len, "%s: %s is not stored in a function pointer", soname, symbols[i].name);
			dlclose(lib);
			return NULL;
		}
		found[i] = dlsym(lib, symbols[i].name);
		if (!found[i]) {
			snprintf(err, err_len, "%s has no %s (too old?)", soname, symbols[i].name);
			dlclose(lib);
			return NULL;
		}
	}
	/* POSIX guarantees a function pointer survives the round trip through void *. */
	for (size_t i = 0; i < n_symbols; i++)
		memcpy(symbols[i].fn_out, &found[i], symbols[i].fn_size);
	return lib;
}

void dynlib_close(void *lib)
{
	if (lib)
		dlclose(lib);
}
