/* Listeners: on / once / prepend / off / count, and emission that stays safe
 * while listeners add and remove listeners or destroy their object.
 *
 * One flat array for every event type: real sockets have a handful of
 * listeners, so a scan beats a table per type, and two slots live inline
 * (sharing their room with the heap pointer they become) so that a socket
 * with one or two listeners allocates nothing. Slots never shift while an
 * emit runs; removal marks a slot dead and the outermost emit compacts
 * afterwards. */
#include "internal.h"

static const char *const event_names[] = {
#define XX(name, str) str,
    CNET_EVENT_MAP(XX)
#undef XX
};

const char *cnet_event_name(cnet_event_type_t type) {
  if ((unsigned)type >= CNET_EV_COUNT_)
    return NULL;
  return event_names[type];
}

void cnet__emitter_init(cnet__emitter_t *em) {
  memset(em, 0, sizeof(*em));
  em->cap = CNET__INLINE_LISTENERS;
}

static bool inline_items(const cnet__emitter_t *em) {
  return em->cap == CNET__INLINE_LISTENERS;
}

static cnet__listener_t *items_of(const cnet__emitter_t *em) {
  return inline_items(em) ? (cnet__listener_t *)em->u.inline_ : em->u.heap;
}

void cnet__emitter_free(cnet__emitter_t *em) {
  assert(em->emitting == 0);
  if (!inline_items(em))
    cnet__free(em->u.heap);
  cnet__emitter_init(em);
}

/* Drops dead slots and moves listeners prepended during an emit to the
 * front, keeping everyone's relative order. */
static void emitter_compact(cnet__emitter_t *em) {
  cnet__listener_t *it = items_of(em);
  uint16_t n = 0, front = 0;

  for (uint16_t i = 0; i < em->len; i++) {
    if (it[i].fn == NULL)
      continue;
    if (it[i].prepend) {
      cnet__listener_t l = it[i];
      l.prepend = 0;
      memmove(&it[front + 1], &it[front], (n - front) * sizeof(*it));
      it[front++] = l;
    } else {
      it[n] = it[i];
    }
    n++;
  }
  em->len = n;
  em->dead = 0;
}

static void emitter_kill(cnet__emitter_t *em, unsigned i) {
  items_of(em)[i].fn = NULL;
  em->dead++;
  if (em->emitting == 0)
    emitter_compact(em);
}

static int emitter_grow(cnet__emitter_t *em) {
  uint16_t cap = em->cap * 2;
  cnet__listener_t *items;

  if (cap < em->cap) /* 65536 listeners on one object */
    return UV_ENOMEM;
  if (inline_items(em)) {
    items = cnet__malloc(cap * sizeof(*items));
    if (items != NULL)
      memcpy(items, em->u.inline_, em->len * sizeof(*items));
  } else {
    items = cnet__realloc(em->u.heap, cap * sizeof(*items));
  }
  if (items == NULL)
    return UV_ENOMEM;
  em->u.heap = items;
  em->cap = cap;
  return 0;
}

int cnet__emitter_add(cnet__emitter_t *em, cnet_event_type_t type,
                      cnet__any_fn fn, void *ctx, bool once, bool prepend) {
  cnet__listener_t l = {fn, ctx, (uint8_t)type, once, 0};

  if (em->len == em->cap && em->dead != 0 && em->emitting == 0)
    emitter_compact(em);
  if (em->len == em->cap && emitter_grow(em) != 0)
    return UV_ENOMEM;
  if (prepend && em->emitting == 0) {
    cnet__listener_t *it = items_of(em);
    memmove(&it[1], &it[0], em->len * sizeof(l));
    it[0] = l;
  } else {
    /* During an emit, a prepended listener waits at the end (it would not
     * run in this emit anyway) and is moved first by the compaction. */
    l.prepend = prepend;
    items_of(em)[em->len] = l;
    if (prepend)
      em->dead++; /* forces a compaction when the emit ends */
  }
  em->len++;
  return 0;
}

void cnet__emitter_remove(cnet__emitter_t *em, cnet_event_type_t type,
                          cnet__any_fn fn, void *ctx) {
  for (unsigned i = em->len; i-- > 0;) {
    cnet__listener_t *l = &items_of(em)[i];
    if (l->fn == fn && l->ctx == ctx && l->type == type) {
      emitter_kill(em, i);
      return;
    }
  }
}

void cnet__emitter_remove_type(cnet__emitter_t *em, cnet_event_type_t type) {
  cnet__listener_t *it = items_of(em); /* compaction keeps the storage */

  for (unsigned i = em->len; i-- > 0;)
    if (it[i].fn != NULL && it[i].type == type)
      emitter_kill(em, i);
}

size_t cnet__emitter_count(const cnet__emitter_t *em, cnet_event_type_t type) {
  const cnet__listener_t *it = items_of(em);
  size_t n = 0;

  for (unsigned i = 0; i < em->len; i++)
    n += it[i].fn != NULL && it[i].type == type;
  return n;
}

/* Listeners added during this emit wait for the next one (n is taken
 * first); removed ones are skipped at once. Each slot is copied before the
 * call, because a listener may grow the array under us. */
size_t cnet__emit(cnet__emitter_t *em, void *self, const cnet_event_t *ev,
                  cnet__invoke_fn invoke) {
  unsigned n = em->len;
  size_t ran = 0;

  em->emitting++;
  for (unsigned i = 0; i < n; i++) {
    cnet__listener_t l = items_of(em)[i];
    if (l.fn == NULL || l.type != ev->type || l.prepend)
      continue;
    if (l.once)
      emitter_kill(em, i); /* gone before it runs, as in Node */
    invoke(self, l.fn, ev, l.ctx);
    ran++;
  }
  if (--em->emitting == 0 && em->dead != 0)
    emitter_compact(em);
  return ran;
}
