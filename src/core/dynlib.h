/* Libraries loaded on first use (dlopen) instead of linked: a library that is linked is
 * mapped, relocated and initialised at start, with its whole dependency chain, whether the
 * node ever calls it or not. libcrypto (the fast cipher), libnftables (subnet routes and
 * exit nodes) and libsystemd (systemd-resolved) together cost an idle node ~4 MB of RSS
 * that way; most nodes use one of them at most, some only after hours.
 *
 * The caller keeps a table of function pointers typed with __typeof__ of the header's
 * declarations, so every call is checked by the compiler as if linked. */
#ifndef CORE_DYNLIB_H
#define CORE_DYNLIB_H

#include <stdbool.h>
#include <stddef.h>

/* One function to resolve: its name in the library, and where its address goes. */
struct dynlib_symbol {
	const char *name;
	void *fn_out;   /* a function pointer variable */
	size_t fn_size; /* sizeof that variable */
};

#define DYNLIB_SYMBOL(var, name) { (name), &(var), sizeof(var) }

/* Loads soname (RTLD_NOW | RTLD_LOCAL: its symbols stay out of the global namespace) and
 * resolves every symbol. Writes nothing unless all resolve. Returns the library's handle
 * (the pointers are valid until dynlib_close of it; a caller that keeps them for the life of
 * the process never closes it), or NULL with err holding one line naming the library and
 * what is missing. */
void *dynlib_open(const char *soname, const struct dynlib_symbol *symbols, size_t n_symbols, char *err,
		  size_t err_len);
/* Unloads it (its pages go when nothing else holds it); NULL is a no-op. */
void dynlib_close(void *lib);

#endif
