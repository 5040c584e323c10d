/* Name lookup through uv_getaddrinfo on libuv's thread pool. The request
 * holds its own copy of what it needs, so the object that asked may be gone
 * by the time it completes: the callback decides what to do with a late
 * answer (Node drops it, DN-08). */
#include "internal.h"

struct cnet__lookup_s {
  uv_getaddrinfo_t req;
  cnet__loop_t *loop;
  cnet__lookup_cb cb;
  void *data;
};

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  cnet__lookup_t *lk = container_of(req, cnet__lookup_t, req);
  cnet__loop_t *L = lk->loop;

  cnet__loop_enter(L);
  lk->cb(lk, status, status == 0 ? res : NULL, lk->data);
  if (status != 0 && res != NULL)
    uv_freeaddrinfo(res);
  cnet__free(lk);
  cnet__loop_leave(L);
  cnet__loop_put(L);
}

int cnet__lookup(cnet__loop_t *L, const char *host, int family, int ai_flags,
                 cnet__lookup_cb cb, void *data) {
  struct addrinfo hints;
  cnet__lookup_t *lk;
  int err;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = ai_flags;
  lk = cnet__malloc(sizeof(*lk));
  if (lk == NULL)
    return UV_ENOMEM;
  lk->loop = L;
  lk->cb = cb;
  lk->data = data;
  err = uv_getaddrinfo(L->uv, &lk->req, on_resolved, host, NULL, &hints);
  if (err != 0) {
    cnet__free(lk);
    return err;
  }
  L->refs++; /* the loop state stays while the request is out */
  return 0;
}
