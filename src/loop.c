/* Per-loop state: the tick queue (Node's process.nextTick), the loop-wide
 * read slab, and cnet_run.
 *
 * cnet lives on loops it does not own, so it cannot use loop->data. A small
 * process-wide registry maps a uv_loop_t to its state; objects look it up
 * once, when they are made, and keep a pointer. The state goes away (its
 * idle handle closed, so uv_loop_close() succeeds) when the last object on
 * that loop has been freed. */
#include "internal.h"

#include <signal.h>
#include <stdio.h>

static uv_once_t registry_once = UV_ONCE_INIT;
static uv_mutex_t registry_lock;
static cnet__loop_t *registry;

/* libuv writes with write(2), so a peer that has gone would kill the
 * process with SIGPIPE. Node ignores SIGPIPE; so do we, once, and only if
 * the application has left it at its default. The write then fails with
 * EPIPE and becomes an 'error', as in Node. */
static void registry_init(void) {
  struct sigaction sa;

  if (uv_mutex_init(&registry_lock) != 0)
    abort();
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

static void on_idle(uv_idle_t *idle) {
  cnet__loop_t *L = container_of(idle, cnet__loop_t, idle);

  cnet__loop_enter(L);
  if (L->n_yielded != 0)
    cnet__stream_read_yielded(L);
  cnet__loop_leave(L); /* drains the queue */
  if (L->n_yielded == 0 && L->head == NULL)
    uv_idle_stop(&L->idle);
}

void cnet__loop_wake(cnet__loop_t *L) {
  if (!uv_is_active((uv_handle_t *)&L->idle))
    uv_idle_start(&L->idle, on_idle);
}

static void on_loop_closed(uv_handle_t *h) {
  cnet__loop_t *L = container_of(h, cnet__loop_t, idle);

  while (L->free_ticks != NULL) {
    cnet__tick_t *t = L->free_ticks;
    L->free_ticks = t->next;
    cnet__free(t);
  }
  while (L->free_wreqs != NULL) {
    uv_write_t *req = L->free_wreqs;
    L->free_wreqs = req->data;
    cnet__free(req);
  }
  cnet__free(L->slab);
  cnet__free(L->text);
  cnet__free(L->yielded);
  cnet__free(L);
}

static cnet__loop_t *loop_create(uv_loop_t *uv) {
  cnet__loop_t *L = cnet__calloc(1, sizeof(*L));

  if (L == NULL)
    return NULL;
  L->uv = uv;
  uv_idle_init(uv, &L->idle);
  L->next = registry;
  registry = L;
  return L;
}

cnet__loop_t *cnet__loop_get(uv_loop_t *uv) {
  cnet__loop_t *L;

  if (uv == NULL)
    uv = uv_default_loop();
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  for (L = registry; L != NULL && L->uv != uv; L = L->next)
    ;
  if (L == NULL)
    L = loop_create(uv);
  if (L != NULL)
    L->refs++;
  uv_mutex_unlock(&registry_lock);
  return L;
}

void cnet__loop_put(cnet__loop_t *L) {
  assert(L->refs > 0);
  if (--L->refs != 0)
    return;
  assert(L->head == NULL);
  uv_mutex_lock(&registry_lock);
  for (cnet__loop_t **p = &registry; *p != NULL; p = &(*p)->next) {
    if (*p == L) {
      *p = L->next;
      break;
    }
  }
  uv_mutex_unlock(&registry_lock);
  uv_close((uv_handle_t *)&L->idle, on_loop_closed);
}

void cnet__loop_drain(cnet__loop_t *L) {
  cnet__tick_t *t;

  while ((t = L->head) != NULL) {
    L->head = t->next;
    if (L->head == NULL)
      L->tail = NULL;
    t->fn(t);
    if (t->done != NULL)
      t->done(t->obj);
    t->next = L->free_ticks;
    L->free_ticks = t;
  }
  if (L->n_yielded == 0)
    uv_idle_stop(&L->idle);
}

cnet__tick_t *cnet__tick_new(cnet__loop_t *L, cnet__tick_fn fn, void *obj) {
  cnet__tick_t *t = L->free_ticks;

  if (t != NULL)
    L->free_ticks = t->next;
  else
    t = cnet__xmalloc(sizeof(*t));
  memset(t, 0, sizeof(*t));
  t->fn = fn;
  t->obj = obj;
  return t;
}

void cnet__tick_push(cnet__loop_t *L, cnet__tick_t *t) {
  t->next = NULL;
  if (L->tail != NULL)
    L->tail->next = t;
  else
    L->head = t;
  L->tail = t;
  /* Outside any cnet callback nobody will drain on the way out: let the
   * loop come round once more without blocking in poll. */
  if (L->depth == 0)
    cnet__loop_wake(L);
}

int cnet_run(void) {
  return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
