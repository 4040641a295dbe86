/* What the seed generators (gen_*_seeds.c) share: writing one seed file. */
#ifndef MESHD_TESTS_SEEDFILE_H
#define MESHD_TESTS_SEEDFILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes data to DIR/NAME; exits the generator on failure (it has nothing to clean up). */
void seedfile_write(const char *dir, const char *name, const uint8_t *data, size_t len);

#endif
