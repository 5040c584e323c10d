/* The Duplex core over uv_stream_t: reading into the loop's slab, the write
 * queue, end/finish, and pipe with backpressure.
 *
 * Writes try the kernel first (uv_try_write) and copy only what it did not
 * take; queued chunks go out together in one uv_write with many buffers, and
 * only one uv_write is in flight per socket. Reads land in one loop-wide
 * buffer, so an idle connection owns no read memory. */
#include "internal.h"

#define MAX_BUFS_PER_WRITE 64

struct cnet__chunk_s {
  cnet__chunk_t *next;
  char *base;
  size_t len;
  cnet_write_cb cb;
  void *ctx;
  cnet_release_fn release; /* owned (zero-copy) chunks only */
  void *release_ctx;
  /* copied bytes follow the header */
};

struct cnet__end_cb_s {
  cnet__end_cb_t *next;
  cnet_write_cb cb;
  void *ctx;
};

struct cnet__pipe_s {
  cnet__pipe_t *next;        /* in src->pipes */
  cnet__pipe_t *next_waiter; /* in dst->drain_waiters */
  cnet_socket_t *src, *dst;
  bool end;
  bool waiting; /* src paused until dst drains */
};

/* ---- deferred callbacks ---------------------------------------------------- */

static void chunk_release(cnet__chunk_t *c) {
  if (c->release != NULL)
    c->release(c->base, c->len, c->release_ctx);
  cnet__free(c);
}

static void run_write_cb(cnet__tick_t *t) {
  cnet_write_cb cb = (cnet_write_cb)(uintptr_t)t->p1;
  cnet_error_t *err = t->p3;

  if (cb != NULL)
    cb(t->obj, err, t->p2);
  cnet__free(err);
}

/* cb(s, err, ctx) on the next tick; err (may be NULL) is copied. */
static void defer_write_cb(cnet_socket_t *s, cnet_write_cb cb, void *ctx,
                           const cnet_error_t *err) {
  cnet_error_t *copy = NULL;

  if (cb == NULL)
    return;
  if (err != NULL) {
    copy = cnet__xmalloc(sizeof(*copy));
    *copy = *err;
  }
  cnet__socket_defer(s, run_write_cb, (void *)(uintptr_t)cb, ctx, 0)->p3 = copy;
}

static void run_chunk_done(cnet__tick_t *t) {
  cnet__chunk_t *c = t->p1;
  cnet_error_t *err = t->p3;

  if (c->cb != NULL)
    c->cb(t->obj, err, c->ctx);
  chunk_release(c);
  cnet__free(err);
}

/* A chunk that will never be written: its callback gets err on the next
 * tick, and an owned buffer is released after that callback, as
 * cnet_socket_write_owned() promises. */
static void defer_chunk_failed(cnet_socket_t *s, cnet__chunk_t *c,
                               const cnet_error_t *err) {
  cnet_error_t *copy;

  if (c->cb == NULL && c->release == NULL) {
    chunk_release(c); /* nobody to tell: just the copied bytes */
    return;
  }
  copy = cnet__xmalloc(sizeof(*copy));
  *copy = *err;
  cnet__socket_defer(s, run_chunk_done, c, NULL, 0)->p3 = copy;
}

/* ---- reading ------------------------------------------------------------ */

static bool has_onread(const cnet_socket_t *s) {
  return s->extra != NULL && s->extra->has_onread;
}

/* RD-05/06: the onread option's memory. */
static void onread_alloc(cnet_socket_t *s, uv_buf_t *buf) {
  cnet_onread_t *o = &s->extra->onread;
  size_t len = o->len;
  char *base = o->get_buffer != NULL ? o->get_buffer(s, &len, o->ctx) : NULL;

  if (base == NULL) {
    base = o->buffer;
    len = o->len;
  }
  *buf = cnet__buf(base, base != NULL && len <= UINT32_MAX ? (unsigned)len
                                                             : 0);
}


/* The first read on a loop, or a socket with the onread option. */
static void alloc_slow(cnet_socket_t *s, uv_buf_t *buf) {
  cnet__loop_t *L = s->loop;

  if (has_onread(s)) {
    onread_alloc(s, buf);
    return;
  }
  if (L->slab == NULL)
    L->slab = cnet__malloc(CNET__SLAB_SIZE);
  *buf = cnet__buf(L->slab, L->slab != NULL ? CNET__SLAB_SIZE : 0);
}

/* Reads land in the loop's slab, as much as it holds (Node's 64 KiB): a
 * pipe to a slow destination then queues at most one read past its
 * high-water mark before the source pauses, as in Node. The common case
 * calls nothing. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  cnet_socket_t *s = container_of(h, cnet_socket_t, h.handle);
  char *slab = s->loop->slab;

  (void)suggested;
  if (slab == NULL || s->extra != NULL)
    alloc_slow(s, buf);
  else
    *buf = cnet__buf(slab, CNET__SLAB_SIZE);
}

static void stop_reading(cnet_socket_t *s) {
  if (s->flags & S_READING) {
    s->flags &= ~S_READING;
    uv_read_stop(&s->h.stream);
  }
}

static bool has_unread(const cnet_socket_t *s) {
  return s->extra != NULL && s->extra->unread != NULL;
}

static bool has_consumer(const cnet_socket_t *s) {
  return (s->flags & S_FLOWING) != 0;
}

static bool decoding(const cnet_socket_t *s) {
  return s->extra != NULL && s->extra->decoding;
}

/* Room for n bytes of text and a NUL in the loop's text buffer. */
static char *text_room(cnet_socket_t *s, size_t n) {
  cnet__loop_t *L = s->loop;

  if (L->text_cap < n + 1) {
    char *p = cnet__realloc(L->text, n + 1);
    if (p == NULL) {
      cnet__socket_destroy_errno(s, UV_ENOMEM, "read");
      return NULL;
    }
    L->text = p;
    L->text_cap = n + 1;
  }
  return L->text;
}

static void emit_data(cnet_socket_t *s, const char *base, size_t len);

/* setEncoding: 'data' carries the decoded text; a chunk that completes no
 * character emits nothing (correction 11). */
static void deliver_text(cnet_socket_t *s, const char *base, size_t len) {
  cnet_decoder_t *d = &s->extra->decoder;
  char *out = text_room(s, cnet_decoder_max_length(d, len));
  size_t n;

  if (out == NULL)
    return;
  n = cnet_decoder_write(d, base, len, out);
  out[n] = '\0';
  if (n > 0)
    emit_data(s, out, n);
}

/* What is left in the decoder at the peer's FIN, just before 'end'. */
static void flush_text(cnet_socket_t *s) {
  char *out;
  size_t n;

  if (!decoding(s) || (out = text_room(s, CNET_DECODER_END_MAX)) == NULL)
    return;
  n = cnet_decoder_end(&s->extra->decoder, out);
  out[n] = '\0';
  if (n > 0)
    emit_data(s, out, n);
}

static void deliver(cnet_socket_t *s, const char *base, size_t len) {
  if (decoding(s))
    deliver_text(s, base, len);
  else
    emit_data(s, base, len);
}

static int stream_write(cnet_socket_t *s, const void *data, size_t len,
                        cnet__chunk_t *c, cnet_write_cb cb, void *ctx);

/* The kernel may take len bytes for s now: connected, still writable,
 * nothing queued or corked ahead of them (every write's fast path). */
static inline bool writes_now(const cnet_socket_t *s, size_t len) {
  return (s->flags & (S_CONNECTED | S_DESTROYED | S_ENDING | S_AUTO_END)) ==
             S_CONNECTED &&
         s->wq_head == NULL && s->corked == 0 && len <= UINT32_MAX;
}
static int write_rest(cnet_socket_t *s, const char *data, size_t len, int n,
                      cnet__chunk_t *c, cnet_write_cb cb, void *ctx);

/* A pipe's write: a destination with nothing special (no extra part, so
 * not a channel) needs none of the public write's checks. */
static int pipe_write(cnet_socket_t *dst, const char *base, size_t len) {
  return dst->extra == NULL ? stream_write(dst, base, len, NULL, NULL, NULL)
                            : cnet_socket_write(dst, base, len, NULL, NULL);
}

/* The destination's buffer is past its high-water mark: the source pauses
 * until the destination's 'drain'. */
static void pipe_wait_for_drain(cnet_socket_t *s, cnet__pipe_t *p) {
  if (!p->waiting) {
    p->waiting = true;
    p->next_waiter = p->dst->drain_waiters;
    p->dst->drain_waiters = p;
  }
  cnet_socket_pause(s); /* every time, as Node: the user may have resumed */
}

/* After a pipe's write to dst returned r: wait for 'drain' (0), or fail
 * the destination when it could not take the bytes (out of memory for the
 * copy: they are not silently dropped). A write that destroyed dst (the
 * peer is gone) may have freed p -- with s's pipes when dst == s, or as
 * one of dst's drain waiters -- so p is not touched then. */
static void pipe_write_done(cnet_socket_t *s, cnet__pipe_t *p,
                            cnet_socket_t *dst, int r) {
  if ((s->flags & S_DESTROYED) || (dst->flags & S_DESTROYED))
    return;
  if (r == 0)
    pipe_wait_for_drain(s, p);
  else if (r < 0)
    cnet__socket_destroy_errno(dst, r, "write");
}

/* 'data' to the listeners, then to every pipe. */
static inline void emit_data(cnet_socket_t *s, const char *base, size_t len) {
  if (s->emitter.len != 0) {
    cnet_event_t ev = {.type = CNET_EV_DATA};
    ev.data.base = base;
    ev.data.len = len;
    cnet__socket_emit_to_listeners(s, &ev);
  }
  for (cnet__pipe_t *p = s->pipes; p != NULL && !(s->flags & S_DESTROYED);) {
    cnet__pipe_t *next = p->next;
    cnet_socket_t *dst = p->dst;
    pipe_write_done(s, p, dst, pipe_write(dst, base, len));
    p = next;
  }
}

/* Bytes nobody consumes yet (no 'data' listener, no pipe): Node keeps them
 * in the readable buffer; we keep them here and stop reading, so the kernel
 * pushes back on the peer. */
static void stash(cnet_socket_t *s, const char *base, size_t len) {
  cnet__extra_t *x = cnet__socket_extra(s);
  char *p = x != NULL ? cnet__realloc(x->unread, x->unread_len + len) : NULL;

  if (p == NULL) {
    cnet__socket_destroy_errno(s, UV_ENOMEM, "read");
    return;
  }
  memcpy(p + x->unread_len, base, len);
  x->unread = p;
  x->unread_len += len;
  stop_reading(s);
}

/* From here on a write gets WR-14's EPIPE: the peer ended the stream. */
static void run_auto_end(cnet__tick_t *t) {
  cnet_socket_t *s = t->obj;

  if (s->flags & (S_DESTROYED | S_ENDING))
    return;
  s->flags |= S_AUTO_END;
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

/* EN-01: 'end' with the socket still writable; the automatic end() of a
 * socket without allowHalfOpen comes on the next tick. */
static void emit_end(cnet_socket_t *s) {
  flush_text(s);
  if (s->flags & S_DESTROYED)
    return;
  s->flags |= S_END_EMITTED;
  cnet__socket_emit_simple(s, CNET_EV_END);
  /* next read first: an end() that destroys at once (dst == s, or a
   * failed shutdown) frees the pipes that lead to a destroyed socket. */
  for (cnet__pipe_t *p = s->pipes; p != NULL && !(s->flags & S_DESTROYED);) {
    cnet__pipe_t *next = p->next;
    if (p->end)
      cnet_socket_end(p->dst, NULL, 0, NULL, NULL);
    p = next;
  }
  if (s->flags & S_DESTROYED)
    return;
  if (s->flags & S_FINISHED) {
    cnet_socket_destroy(s, NULL);
  } else if (!(s->flags & (S_HALF_OPEN | S_ENDING))) {
    cnet__socket_defer(s, run_auto_end, NULL, NULL, 0);
  }
}

/* RD-05/07: the onread callback instead of 'data'; false pauses. */
static void read_into_user_memory(cnet_socket_t *s, char *base, size_t len) {
  cnet_onread_t *o = &s->extra->onread;

  if (!o->callback(s, base, len, o->ctx) && !(s->flags & S_DESTROYED))
    cnet_socket_pause(s);
}

/* Bytes for a socket with an extra part (a timeout, a channel, onread, a
 * decoder, bytes nobody consumed yet), or with no consumer. */
static void read_some(cnet_socket_t *s, char *base, size_t len) {
  cnet__timeout_touch(s);
  if (s->extra != NULL && s->extra->channel != NULL)
    cnet__channel_input(s, base, len);
  else if (has_onread(s))
    read_into_user_memory(s, base, len);
  else if (has_consumer(s) && !has_unread(s))
    deliver(s, base, len);
  else
    stash(s, base, len);
}

/* The echo's path, pipe(c, c) or any one plain pipe: the source has no
 * listener and no extra part, and the destination takes the bytes now.
 * No user code can run, so this skips the loop's enter/leave and the
 * socket's retain/release; what the public path would change it changes.
 * False if this is not that case and nothing was done. */
static inline bool pipe_at_once(cnet_socket_t *s, const char *base,
                                size_t len) {
  cnet__pipe_t *p = s->pipes;
  cnet_socket_t *dst;
  uv_buf_t buf;
  int n;

  if (p == NULL || p->next != NULL || s->extra != NULL ||
      s->emitter.len != 0)
    return false;
  dst = p->dst;
  if (dst->extra != NULL || !writes_now(dst, len) ||
      (dst->server != NULL && (dst->server->flags & SV_GRACEFUL)))
    return false;
  buf = cnet__buf(base, len);
  n = uv_try_write(&dst->h.stream, &buf, 1);
  s->bytes_read += len;
  dst->bytes_written += len;
  s->flags |= S_BUSY;
  if (n >= 0 && (size_t)n == len) {
    dst->flags &= ~S_BUSY; /* cnet__stream_went_idle, not graceful */
    return true;
  }
  cnet__loop_enter(s->loop); /* the kernel took less: queue the rest */
  cnet__socket_retain(s);
  pipe_write_done(s, p, dst,
                  write_rest(dst, base, len, n, NULL, NULL, NULL));
  cnet__socket_release(s);
  cnet__loop_leave(s->loop);
  return true;
}

/* A read that filled the slab: the kernel probably holds more. libuv would
 * read this socket again, up to 32 times, before it looks at any other;
 * instead the socket reads again on the loop's next turn, as a hand-written
 * epoll server does: every connection gets its turn, and in bulk echo the
 * kernel spends about a quarter less per MB (bench/RESULTS.md). Without
 * room to remember the socket it simply reads on. */
static void yield_after_full_read(cnet_socket_t *s) {
  cnet__loop_t *L = s->loop;

  if ((s->flags & (S_READING | S_DESTROYED)) != S_READING)
    return;
  if (L->n_yielded == L->yielded_cap) {
    unsigned cap = L->yielded_cap != 0 ? 2 * L->yielded_cap : 16;
    cnet_socket_t **y = cnet__realloc(L->yielded, cap * sizeof(*y));

    if (y == NULL)
      return;
    L->yielded = y;
    L->yielded_cap = cap;
  }
  L->yielded[L->n_yielded++] = s;
  cnet__socket_retain(s);
  stop_reading(s);
  cnet__loop_wake(L);
}

void cnet__stream_read_yielded(cnet__loop_t *L) {
  unsigned n = L->n_yielded;

  L->n_yielded = 0; /* starting to read calls nothing back: no new ones */
  for (unsigned i = 0; i < n; i++) {
    cnet_socket_t *s = L->yielded[i];

    cnet__stream_maybe_read(s); /* unless paused, ended or destroyed since */
    cnet__socket_release(s);
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  cnet_socket_t *s = container_of(stream, cnet_socket_t, h.stream);
  cnet__loop_t *L = s->loop;

  if (nread == 0)
    return; /* EAGAIN */
  if (nread > 0 && pipe_at_once(s, buf->base, (size_t)nread)) {
    if (nread == CNET__SLAB_SIZE)
      yield_after_full_read(s);
    return;
  }
  cnet__loop_enter(L);
  cnet__socket_retain(s);
  if (nread > 0) {
    s->bytes_read += (uint64_t)nread;
    s->flags |= S_BUSY;
    if (s->extra == NULL && has_consumer(s)) /* the common case */
      emit_data(s, buf->base, (size_t)nread);
    else
      read_some(s, buf->base, (size_t)nread);
    if (nread == CNET__SLAB_SIZE && buf->base == L->slab)
      yield_after_full_read(s);
  } else if (nread == UV_EOF) {
    s->flags = (s->flags | S_EOF) & ~S_READING;
    if (!has_unread(s))
      emit_end(s);
  } else {
    cnet__socket_destroy_errno(s, (int)nread, "read");
  }
  cnet__socket_release(s);
  cnet__loop_leave(L);
}

void cnet__stream_maybe_read(cnet_socket_t *s) {
  int err;

  if ((s->flags & (S_CONNECTED | S_DESTROYED | S_PAUSED | S_EOF |
                   S_READING)) != S_CONNECTED ||
      has_unread(s))
    return;
  err = uv_read_start(&s->h.stream, on_alloc, on_read);
  if (err != 0)
    cnet__socket_destroy_errno(s, err, "read");
  else
    s->flags |= S_READING;
}

/* resume() with stashed bytes: they go first, on the next tick (Node emits
 * buffered data after resume() returns). */
static void run_deliver_unread(cnet__tick_t *t) {
  cnet_socket_t *s = t->obj;

  if ((s->flags & S_DESTROYED) || !has_consumer(s))
    return;
  if (has_unread(s)) {
    char *base = s->extra->unread;
    size_t len = s->extra->unread_len;
    s->extra->unread = NULL;
    s->extra->unread_len = 0;
    deliver(s, base, len);
    cnet__free(base);
  }
  if ((s->flags & (S_EOF | S_END_EMITTED | S_DESTROYED)) == S_EOF &&
      !has_unread(s))
    emit_end(s);
  else
    cnet__stream_maybe_read(s);
}

void cnet_socket_pause(cnet_socket_t *s) {
  if (s == NULL)
    return;
  s->flags = (s->flags | S_PAUSED) & ~S_FLOWING;
  stop_reading(s);
}

void cnet_socket_resume(cnet_socket_t *s) {
  if (s == NULL || (s->flags & S_DESTROYED))
    return;
  s->flags = (s->flags | S_FLOWING) & ~S_PAUSED;
  if (has_unread(s) || (s->flags & (S_EOF | S_END_EMITTED)) == S_EOF)
    cnet__socket_defer(s, run_deliver_unread, NULL, NULL, 0);
  else
    cnet__stream_maybe_read(s);
}

bool cnet_socket_is_paused(const cnet_socket_t *s) {
  return s != NULL && (s->flags & S_PAUSED) != 0;
}

/* ---- writing ------------------------------------------------------------- */

static cnet__chunk_t *chunk_new(const void *data, size_t len, bool copy) {
  cnet__chunk_t *c = cnet__malloc(sizeof(*c) + (copy ? len : 0));

  if (c == NULL)
    return NULL;
  memset(c, 0, sizeof(*c));
  c->base = copy ? (char *)(c + 1) : (char *)data;
  c->len = len;
  if (copy)
    memcpy(c->base, data, len);
  return c;
}

static void enqueue(cnet_socket_t *s, cnet__chunk_t *c) {
  if (s->wq_tail != NULL)
    s->wq_tail->next = c;
  else
    s->wq_head = c;
  s->wq_tail = c;
  s->writable_length += c->len;
}

static void on_written(uv_write_t *req, int status);
static void wake_sources(cnet_socket_t *dst);
static void fail_end_cbs(cnet_socket_t *s, const cnet_error_t *err);
static void fail_pending(cnet_socket_t *s, bool connecting);

/* One write request in flight per socket at most, so requests come from a
 * per-loop free list rather than each socket keeping one: an idle socket
 * that once had to queue owns none. The list keeps a bounded number. */
#define MAX_FREE_WREQS 1024

static uv_write_t *wreq_take(cnet__loop_t *L) {
  uv_write_t *req = L->free_wreqs;

  if (req == NULL)
    return cnet__xmalloc(sizeof(*req));
  L->free_wreqs = req->data;
  L->n_free_wreqs--;
  return req;
}

static void wreq_give(cnet__loop_t *L, uv_write_t *req) {
  if (L->n_free_wreqs == MAX_FREE_WREQS) {
    cnet__free(req);
    return;
  }
  req->data = L->free_wreqs;
  L->free_wreqs = req;
  L->n_free_wreqs++;
}

void cnet__stream_flush(cnet_socket_t *s) {
  uv_buf_t bufs[MAX_BUFS_PER_WRITE];
  unsigned n = 0;
  uv_write_t *req;
  int err;

  if ((s->flags & (S_CONNECTED | S_DESTROYED)) != S_CONNECTED ||
      s->wq_inflight != 0 || s->wq_head == NULL || s->corked != 0)
    return;
  for (cnet__chunk_t *c = s->wq_head; c != NULL && n < ARRAY_SIZE(bufs);
       c = c->next)
    bufs[n++] = cnet__buf(c->base, (unsigned)c->len);
  req = wreq_take(s->loop);
  err = uv_write(req, &s->h.stream, bufs, n, on_written);
  if (err != 0) {
    wreq_give(s->loop, req);
    cnet__socket_destroy_errno(s, err, "write");
    return;
  }
  s->wq_inflight = n;
  cnet__socket_retain(s);
}

static void run_finish(cnet__tick_t *t);

static void after_shutdown(uv_shutdown_t *req, int status) {
  cnet_socket_t *s = req->data;
  cnet__loop_t *L = s->loop;

  /* Node's afterShutdown() ignores the status: a FIN that could not be sent
   * (the peer reset; ENOTSOCK on a pipe's write end, which has no FIN)
   * still finishes the writable side, and a broken connection shows on the
   * read side. */
  (void)status;
  cnet__free(req);
  cnet__loop_enter(L);
  if (!(s->flags & S_DESTROYED))
    run_finish(&(cnet__tick_t){.obj = s});
  cnet__socket_release(s);
  cnet__loop_leave(L);
}

static void do_shutdown(cnet_socket_t *s) {
  uv_shutdown_t *req = cnet__xmalloc(sizeof(*req));
  int err;

  s->flags |= S_SHUTDOWN;
  req->data = s;
  err = uv_shutdown(req, &s->h.stream, after_shutdown);
  if (err != 0) {
    cnet__free(req);
    cnet__socket_destroy_errno(s, err, "shutdown");
    return;
  }
  cnet__socket_retain(s);
}

/* Everything written and FIN sent: end callbacks, then 'finish' (Node runs
 * the end() callback before the 'finish' listeners). */
static void run_finish(cnet__tick_t *t) {
  cnet_socket_t *s = t->obj;

  if (s->flags & (S_DESTROYED | S_FINISHED))
    return;
  s->flags |= S_FINISHED;
  while (s->extra != NULL && s->extra->end_cbs != NULL &&
         !(s->flags & S_DESTROYED)) {
    cnet__end_cb_t *e = s->extra->end_cbs;
    s->extra->end_cbs = e->next;
    e->cb(s, NULL, e->ctx);
    cnet__free(e);
  }
  if (s->flags & S_DESTROYED)
    return;
  cnet__socket_emit_simple(s, CNET_EV_FINISH);
  if ((s->flags & (S_DESTROYED | S_END_EMITTED)) == S_END_EMITTED)
    cnet_socket_destroy(s, NULL);
}

static void after_queue_empty(cnet_socket_t *s) {
  if ((s->flags & (S_ENDING | S_SHUTDOWN | S_DESTROYED)) == S_ENDING)
    do_shutdown(s);
  else if (!(s->flags & S_DESTROYED))
    cnet__stream_went_idle(s);
}

static void on_written(uv_write_t *req, int status) {
  cnet_socket_t *s = container_of(req->handle, cnet_socket_t, h.stream);
  cnet__loop_t *L = s->loop;
  cnet__chunk_t *done = s->wq_head, *last = NULL;
  cnet_error_t err;

  wreq_give(L, req);
  cnet__loop_enter(L);
  cnet__timeout_touch(s);
  for (unsigned i = 0; i < s->wq_inflight; i++) {
    last = last == NULL ? s->wq_head : last->next;
    s->writable_length -= last->len;
  }
  s->wq_head = last->next;
  if (s->wq_head == NULL)
    s->wq_tail = NULL;
  last->next = NULL;
  s->wq_inflight = 0;
  if (status < 0) {
    cnet__error_errno(&err, status, "write");
    cnet_socket_destroy(s, &err);
  } else if ((s->flags & (S_NEED_DRAIN | S_ENDING | S_DESTROYED)) ==
                 S_NEED_DRAIN &&
             s->wq_head == NULL) {
    s->flags &= ~S_NEED_DRAIN; /* WR-02: 'drain' before the callbacks */
    cnet__socket_emit_simple(s, CNET_EV_DRAIN);
    if (!(s->flags & S_DESTROYED))
      wake_sources(s);
  }
  while (done != NULL) {
    cnet__chunk_t *c = done;
    done = c->next;
    if (c->cb != NULL)
      c->cb(s, status < 0 ? &err : NULL, c->ctx);
    chunk_release(c);
  }
  if (s->flags & S_DESTROYED)
    fail_pending(s, false); /* what queued behind, now in order */
  else if (s->wq_head != NULL)
    cnet__stream_flush(s);
  else
    after_queue_empty(s);
  cnet__socket_release(s);
  cnet__loop_leave(L);
}

/* A write that cannot happen: cb gets err on the next tick and, where Node
 * emits too, the socket is destroyed with it ('error' follows the cb). */
static int refuse_write(cnet_socket_t *s, cnet__chunk_t *c, cnet_write_cb cb,
                        void *ctx, const cnet_error_t *err, bool destroy) {
  if (c != NULL) {
    c->cb = cb;
    c->ctx = ctx;
    defer_chunk_failed(s, c, err);
  } else {
    defer_write_cb(s, cb, ctx, err);
  }
  if (destroy) { /* the end() callbacks before 'error', as Node */
    fail_end_cbs(s, err);
    cnet_socket_destroy(s, err);
  }
  return 0;
}

static int check_writable(cnet_socket_t *s, cnet__chunk_t *c, cnet_write_cb cb,
                          void *ctx) {
  cnet_error_t err;

  /* Node's order: ending before destroyed, so a write after end() is
   * "write after end" even once the socket is gone (correction 7: EPIPE
   * after the automatic end, no 'error' once destroyed). */
  bool live = !(s->flags & S_DESTROYED);

  if (s->flags & S_AUTO_END) { /* WR-14: the peer ended it */
    cnet__error_custom(&err, UV_EPIPE,
                       "This socket has been ended by the other party");
    return refuse_write(s, c, cb, ctx, &err, live);
  }
  if (s->flags & S_ENDING) { /* WR-12: callback, then 'error' */
    cnet__error_node(&err, CNET_ERR_STREAM_WRITE_AFTER_END);
    return refuse_write(s, c, cb, ctx, &err, live);
  }
  if (!live) { /* WR-13: callback only */
    cnet__error_node(&err, CNET_ERR_STREAM_DESTROYED, "write");
    return refuse_write(s, c, cb, ctx, &err, false);
  }
  return 1;
}

/* Behind what is queued: one more chunk, sent when its turn comes. */
static int write_queue(cnet_socket_t *s, cnet__chunk_t *c, cnet_write_cb cb,
                       void *ctx) {
  c->cb = cb;
  c->ctx = ctx;
  enqueue(s, c);
  s->flags |= S_NEED_DRAIN;
  cnet__stream_flush(s);
  return 0;
}

/* The kernel took all the bytes: the callback comes on the next tick (and
 * an owned buffer is released after it). */
static void written_at_once(cnet_socket_t *s, cnet__chunk_t *c,
                            cnet_write_cb cb, void *ctx) {
  if (c != NULL) {
    c->cb = cb, c->ctx = ctx;
    cnet__socket_defer(s, run_chunk_done, c, NULL, 0);
  } else {
    defer_write_cb(s, cb, ctx, NULL);
  }
}

/* The kernel took n < len bytes, or failed (n < 0): queue the tail it did
 * not take, or fail the write. */
static int write_rest(cnet_socket_t *s, const char *data, size_t len, int n,
                      cnet__chunk_t *c, cnet_write_cb cb, void *ctx) {
  cnet_error_t err;

  if (n == UV_EAGAIN || n == UV_ENOSYS)
    n = 0;
  if (n >= 0 && c != NULL) {
    c->base += n;
    c->len -= (size_t)n;
  } else if (n >= 0 && (c = chunk_new(data + n, len - (size_t)n, true)) ==
                           NULL) {
    n = UV_ENOMEM;
  }
  if (n < 0) { /* WR-15: the OS says the peer is gone */
    cnet__error_errno(&err, n, "write");
    return refuse_write(s, c, cb, ctx, &err, true);
  }
  return write_queue(s, c, cb, ctx);
}

/* Not connected yet, ended, destroyed, or behind what is queued. */
static int write_later(cnet_socket_t *s, const void *data, size_t len,
                       cnet__chunk_t *c, cnet_write_cb cb, void *ctx) {
  if (check_writable(s, c, cb, ctx) == 0)
    return 0;
  s->bytes_written += len;
  cnet__timeout_touch(s);
  if (c == NULL && (c = chunk_new(data, len, true)) == NULL)
    return cnet__fail(UV_ENOMEM);
  return write_queue(s, c, cb, ctx);
}

/* Inline, as it is every echo's path: when the socket is connected, still
 * writable and has nothing queued, the kernel gets the bytes at once, and
 * only the tail it did not take is copied. */
static inline int stream_write(cnet_socket_t *s, const void *data, size_t len,
                               cnet__chunk_t *c, cnet_write_cb cb, void *ctx) {
  uv_buf_t buf;
  int n;

  if (!writes_now(s, len))
    return write_later(s, data, len, c, cb, ctx);
  buf = cnet__buf(data, len);
  n = uv_try_write(&s->h.stream, &buf, 1);
  s->bytes_written += len;
  cnet__timeout_touch(s);
  if (n < 0 || (size_t)n != len)
    return write_rest(s, data, len, n, c, cb, ctx);
  cnet__stream_went_idle(s);
  if (c != NULL || cb != NULL)
    written_at_once(s, c, cb, ctx);
  return 1;
}

/* The checks every write makes before taking anything: misuse Node (or,
 * for channels, cnet) refuses at once. */
static int check_write_args(const cnet_socket_t *s, const void *data,
                            size_t len) {
  if (s == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"socket\" argument",
                      "cnet_socket_t", "NULL");
  if (data == NULL && len > 0)
    return cnet__fail(CNET_ERR_STREAM_NULL_VALUES);
  if (s->extra != NULL && s->extra->channel != NULL) /* bytes would break
                                                        its framing */
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "argument 'socket'",
                      "is a channel: use cnet_socket_send()", "a channel");
  return 0;
}

int cnet_socket_write(cnet_socket_t *s, const void *data, size_t len,
                      cnet_write_cb cb, void *ctx) {
  int err = check_write_args(s, data, len);

  return err != 0 ? err : stream_write(s, data, len, NULL, cb, ctx);
}

int cnet_socket_write_owned(cnet_socket_t *s, void *data, size_t len,
                            cnet_release_fn release, void *release_ctx,
                            cnet_write_cb cb, void *ctx) {
  cnet__chunk_t *c;
  int err = check_write_args(s, data, len);

  if (err != 0)
    return err;
  if ((c = chunk_new(data, len, false)) == NULL)
    return cnet__fail(UV_ENOMEM);
  c->release = release;
  c->release_ctx = release_ctx;
  return stream_write(s, data, len, c, cb, ctx);
}

int cnet_socket_write_string(cnet_socket_t *s, const char *str,
                             const char *encoding, cnet_write_cb cb,
                             void *ctx) {
  cnet_encoding_t enc = cnet_encoding_from_name(encoding);
  char small[1024]; /* most strings: no allocation (write copies anyway) */
  size_t len, room;
  char *bytes;
  int r;

  if (s == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"socket\" argument",
                      "cnet_socket_t", "NULL");
  if (str == NULL)
    return cnet__fail(CNET_ERR_STREAM_NULL_VALUES);
  if (enc == CNET_ENC_UNKNOWN)
    return cnet__fail(CNET_ERR_UNKNOWN_ENCODING, encoding);
  len = strlen(str);
  room = cnet_encode_max_length(enc, len);
  bytes = room <= sizeof(small) ? small : cnet__malloc(room);
  if (bytes == NULL)
    return cnet__fail(UV_ENOMEM);
  r = cnet_socket_write(s, bytes, cnet_encode(enc, str, len, bytes), cb, ctx);
  if (bytes != small)
    cnet__free(bytes);
  return r;
}

/* cork() / uncork(): while corked nothing is sent; the last uncork sends
 * what queued up, as one multi-buffer write. */
void cnet_socket_cork(cnet_socket_t *s) {
  if (s != NULL && s->corked < UINT16_MAX)
    s->corked++;
}

void cnet_socket_uncork(cnet_socket_t *s) {
  if (s == NULL || s->corked == 0 || --s->corked != 0)
    return;
  if (s->wq_head != NULL)
    cnet__stream_flush(s);
}

static void add_end_cb(cnet_socket_t *s, cnet__end_cb_t *e) {
  cnet__end_cb_t **tail = &s->extra->end_cbs;

  while (*tail != NULL)
    tail = &(*tail)->next;
  *tail = e;
}

int cnet_socket_end(cnet_socket_t *s, const void *data, size_t len,
                    cnet_write_cb cb, void *ctx) {
  cnet__end_cb_t *e = NULL;
  cnet_error_t err;
  int r;

  if (s == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"socket\" argument",
                      "cnet_socket_t", "NULL");
  /* The callback's record first: out of memory changes nothing. */
  if (cb != NULL && (cnet__socket_extra(s) == NULL ||
                     (e = cnet__malloc(sizeof(*e))) == NULL))
    return cnet__fail(UV_ENOMEM);
  if (len > 0 && (r = cnet_socket_write(s, data, len, NULL, NULL)) < 0) {
    cnet__free(e);
    return r;
  }
  if (e != NULL && (s->flags & (S_FINISHED | S_DESTROYED))) {
    cnet__free(e);
    cnet__error_node(&err, (s->flags & S_FINISHED)
                               ? CNET_ERR_STREAM_ALREADY_FINISHED
                               : CNET_ERR_STREAM_DESTROYED,
                     "end");
    defer_write_cb(s, cb, ctx, &err);
  } else if (e != NULL) {
    *e = (cnet__end_cb_t){.cb = cb, .ctx = ctx};
    add_end_cb(s, e);
  }
  if (s->flags & (S_ENDING | S_DESTROYED))
    return 0;
  s->flags |= S_ENDING;
  s->corked = 0; /* end() uncorks, as in Node */
  if (s->flags & S_CONNECTED) {
    if (s->wq_head == NULL)
      do_shutdown(s);
    else
      cnet__stream_flush(s);
  } else if (!(s->flags & S_CONNECTING)) {
    cnet__socket_defer(s, run_finish, NULL, NULL, 0); /* nothing to flush */
  }
  return 0;
}

size_t cnet_socket_writable_length(const cnet_socket_t *s) {
  return s != NULL ? s->writable_length : 0;
}

size_t cnet_socket_buffer_size(const cnet_socket_t *s) {
  return cnet_socket_writable_length(s);
}

int cnet_socket_set_encoding(cnet_socket_t *s, const char *encoding) {
  cnet_decoder_t d;
  cnet__extra_t *x;
  int err;

  if (s == NULL)
    return cnet__fail(UV_EINVAL);
  if ((err = cnet_decoder_init(&d, encoding)) != 0)
    return err;
  if ((x = cnet__socket_extra(s)) == NULL)
    return cnet__fail(UV_ENOMEM);
  x->decoder = d; /* Node replaces the decoder: pending bytes are dropped */
  x->decoding = true;
  return 0;
}

/* ---- pipe --------------------------------------------------------------- */

static void drop_waiter(cnet__pipe_t *p) {
  cnet__pipe_t **w = &p->dst->drain_waiters;

  if (!p->waiting)
    return;
  while (*w != p)
    w = &(*w)->next_waiter;
  *w = p->next_waiter;
  p->waiting = false;
}

static void pipe_free(cnet__pipe_t **link) {
  cnet__pipe_t *p = *link;

  *link = p->next;
  drop_waiter(p);
  cnet__free(p);
}

int cnet_socket_pipe(cnet_socket_t *src, cnet_socket_t *dst,
                     const cnet_pipe_options_t *opts) {
  cnet__pipe_t *p;

  if (src == NULL || dst == NULL || src->loop != dst->loop)
    return cnet__fail(UV_EINVAL);
  p = cnet__calloc(1, sizeof(*p));
  if (p == NULL)
    return cnet__fail(UV_ENOMEM);
  p->src = src;
  p->dst = dst;
  p->end = opts == NULL || !opts->no_end;
  p->next = src->pipes;
  src->pipes = p;
  cnet_socket_resume(src);
  return 0;
}

int cnet_socket_unpipe(cnet_socket_t *src, cnet_socket_t *dst) {
  cnet__pipe_t **link;

  if (src == NULL)
    return cnet__fail(UV_EINVAL);
  if (src->pipes == NULL)
    return 0;
  for (link = &src->pipes; *link != NULL;) {
    if (dst == NULL || (*link)->dst == dst)
      pipe_free(link);
    else
      link = &(*link)->next;
  }
  if (src->pipes == NULL) /* Node pauses a source left with no pipe */
    cnet_socket_pause(src);
  return 0;
}

/* dst drained: resume every source that paused for it. */
static void wake_sources(cnet_socket_t *dst) {
  while (dst->drain_waiters != NULL) {
    cnet__pipe_t *p = dst->drain_waiters;
    dst->drain_waiters = p->next_waiter;
    p->waiting = false;
    cnet_socket_resume(p->src);
  }
}

/* ---- lifetime hooks ------------------------------------------------------ */

/* destroy(): stop reading, fail what was never handed to libuv, call end
 * callbacks with the reason, and take the socket out of every pipe. */
static void fail_end_cbs(cnet_socket_t *s, const cnet_error_t *err) {
  while (s->extra != NULL && s->extra->end_cbs != NULL) {
    cnet__end_cb_t *e = s->extra->end_cbs;
    s->extra->end_cbs = e->next;
    defer_write_cb(s, e->cb, e->ctx, err);
    cnet__free(e);
  }
}

/* The writes still queued and the end() callbacks of a destroyed socket
 * get their error, in order: after the callbacks of a write already in
 * libuv's hands (on_written calls this once that one has completed). The
 * error is destroy()'s own, as Node's state.errored, else
 * ERR_STREAM_DESTROYED (ERR_SOCKET_CLOSED_BEFORE_CONNECTION while
 * connecting, WR-16). */
static void fail_pending(cnet_socket_t *s, bool connecting) {
  cnet__chunk_t *c;
  const cnet_error_t *pending = s->extra != NULL ? s->extra->pending_error
                                                 : NULL;
  cnet_error_t err;

  if (connecting)
    cnet__error_node(&err, CNET_ERR_SOCKET_CLOSED_BEFORE_CONNECTION);
  else if (pending != NULL)
    err = *pending;
  else
    cnet__error_node(&err, CNET_ERR_STREAM_DESTROYED, "write");
  while ((c = s->wq_head) != NULL) {
    s->wq_head = c->next;
    s->writable_length -= c->len;
    defer_chunk_failed(s, c, &err);
  }
  s->wq_tail = NULL;
  if (pending == NULL)
    cnet__error_node(&err, CNET_ERR_STREAM_DESTROYED, "end");
  fail_end_cbs(s, &err);
}

/* destroy(): stop reading, fail what was waiting to be written (see
 * fail_pending), and take the socket out of every pipe. */
void cnet__stream_on_destroy(cnet_socket_t *s) {
  stop_reading(s);
  cnet__channel_on_destroy(s);
  if (s->wq_inflight == 0)
    fail_pending(s, (s->flags & S_CONNECTING) != 0);
  while (s->pipes != NULL)
    pipe_free(&s->pipes);
  while (s->drain_waiters != NULL) { /* Node unpipes from a closed dst */
    cnet__pipe_t *p = s->drain_waiters, **link2 = &p->src->pipes;
    while (*link2 != p)
      link2 = &(*link2)->next;
    pipe_free(link2);
  }
}

/* A new connect() after 'close': a fresh stream, as Node's CN-18. */
void cnet__stream_reset(cnet_socket_t *s) {
  if (s->extra != NULL) {
    cnet__free(s->extra->unread);
    s->extra->unread = NULL;
    s->extra->unread_len = 0;
  }
  s->bytes_read = s->bytes_written = 0;
  s->writable_length = 0;
}

void cnet__stream_free(cnet_socket_t *s) {
  assert(s->wq_inflight == 0);
  while (s->wq_head != NULL) {
    cnet__chunk_t *c = s->wq_head;
    s->wq_head = c->next;
    chunk_release(c);
  }
  if (s->extra == NULL)
    return;
  cnet__free(s->extra->unread);
  while (s->extra->end_cbs != NULL) {
    cnet__end_cb_t *e = s->extra->end_cbs;
    s->extra->end_cbs = e->next;
    cnet__free(e);
  }
}

/* 'connect' has been emitted: send what was queued, end if asked, read. */
void cnet__stream_connected(cnet_socket_t *s) {
  if (s->wq_head != NULL)
    cnet__stream_flush(s);
  else
    after_queue_empty(s);
  cnet__stream_maybe_read(s);
}
