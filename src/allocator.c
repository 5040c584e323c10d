/* The allocator cnet and libuv use: the C library's, unless the application
 * installs its own before its first cnet or libuv call (to count, to cap, to
 * use a faster malloc). One set of functions serves both, so memory never
 * crosses from one allocator to another's free. */
#include "internal.h"

#include <stdio.h>

cnet__allocator_t cnet__allocator = {malloc, realloc, calloc, free};

int cnet_replace_allocator(cnet_malloc_func malloc_fn,
                           cnet_realloc_func realloc_fn,
                           cnet_calloc_func calloc_fn, cnet_free_func free_fn) {
  int err;

  if (malloc_fn == NULL || realloc_fn == NULL || calloc_fn == NULL ||
      free_fn == NULL)
    return cnet__fail(CNET_ERR_MISSING_ARGS, "allocator functions");
  err = uv_replace_allocator(malloc_fn, realloc_fn, calloc_fn, free_fn);
  if (err != 0)
    return cnet__fail_errno(err, "uv_replace_allocator");
  cnet__allocator.malloc = malloc_fn;
  cnet__allocator.realloc = realloc_fn;
  cnet__allocator.calloc = calloc_fn;
  cnet__allocator.free = free_fn;
  return 0;
}

void *cnet__xmalloc(size_t n) {
  void *p = cnet__malloc(n);

  if (p == NULL) {
    fprintf(stderr, "cnet: out of memory (%zu bytes)\n", n);
    abort();
  }
  return p;
}
